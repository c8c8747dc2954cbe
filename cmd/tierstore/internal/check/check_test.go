package check

import (
	"context"
	"testing"
	"time"

	"github.com/tierstore/tierstore/internal/testenv/redistest"
)

// The whole checker, briefly: every fault once, against a real
// redis-server with every write fsynced (so a crash loses no
// acknowledged write).
func TestEveryFaultKeepsThePromise(t *testing.T) {
	if testing.Short() {
		t.Skip("a run of all faults takes about 20s")
	}
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	rep, err := Run(context.Background(), Config{
		Server:        srv.Server,
		Phase:         time.Second,
		FaultDuration: 500 * time.Millisecond,
		Progress:      progress(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	requirePass(t, rep)
	if rep.FailedWrites == 0 || rep.ReadErrors == 0 {
		t.Fatalf("no write or read failed: the faults did not bite (%d failed writes, %d read errors)", rep.FailedWrites, rep.ReadErrors)
	}
}

// The judge must catch what it is there to catch.
func TestVerdictFindsStaleAndPhantomReads(t *testing.T) {
	ms := func(n int64) int64 { return n * int64(time.Millisecond) }
	ops := []Op{
		{Version: 1, Start: ms(0), End: ms(1), OK: true},
		{Version: 2, Start: ms(10), End: ms(11), OK: true},
		{Version: 3, Del: true, Start: ms(20), End: ms(21), OK: true},
		{Version: 4, Start: ms(30), End: ms(31), OK: false}, // failed
		{Version: 5, Start: ms(40), End: ms(41), OK: true},
	}
	ki := indexKey(ops)
	cases := []struct {
		name      string
		rd        Read
		staleness time.Duration
		phantom   bool
		ambiguous bool
	}{
		{"current value", Read{Version: 2, Start: ms(12), End: ms(13)}, 0, false, false},
		{"old value, replaced 4ms before the read", Read{Version: 1, Start: ms(15), End: ms(16)}, 4 * time.Millisecond, false, false},
		{"value read while its replacement was in flight", Read{Version: 1, Start: ms(10), End: ms(12)}, 0, false, false},
		{"deleted value read 9ms after the delete returned", Read{Version: 2, Start: ms(30), End: ms(30)}, 9 * time.Millisecond, false, false},
		{"not found after the delete", Read{Version: 0, Start: ms(25), End: ms(26)}, 0, false, false},
		{"not found before any delete, 14ms after a set", Read{Version: 0, Start: ms(15), End: ms(16)}, 14 * time.Millisecond, false, false},
		{"not found long after the set that followed the delete", Read{Version: 0, Start: ms(50), End: ms(51)}, 9 * time.Millisecond, false, false},
		{"a failed write's value", Read{Version: 4, Start: ms(35), End: ms(36)}, 0, false, true},
		{"a version never written", Read{Version: 9, Start: ms(50), End: ms(51)}, 0, true, false},
		{"a version written after the read", Read{Version: 5, Start: ms(38), End: ms(39)}, 0, true, false},
	}
	for _, c := range cases {
		s, _, phantom, ambiguous := ki.verdict(c.rd)
		if s != c.staleness || phantom != c.phantom || ambiguous != c.ambiguous {
			t.Errorf("%s: staleness %v phantom %v ambiguous %v; want %v %v %v", c.name, s, phantom, ambiguous, c.staleness, c.phantom, c.ambiguous)
		}
	}
}

// progress logs the checker's phases with the time since the run began.
func progress(t *testing.T) func(string) {
	start := time.Now()
	return func(s string) { t.Logf("%6.2fs %s", time.Since(start).Seconds(), s) }
}

// requirePass fails t if the run found violations or left a phase
// unchecked.
func requirePass(t *testing.T, rep *Report) {
	t.Helper()
	t.Log("\n" + rep.Table())
	if rep.Failed() {
		t.Fatal("the checker found violations")
	}
	for _, p := range rep.Phases {
		if p.Reads == 0 || p.Writes == 0 {
			t.Fatalf("phase %s made %d reads and %d writes: nothing was checked", p.Name, p.Reads, p.Writes)
		}
	}
}
