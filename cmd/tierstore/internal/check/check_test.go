package check

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tierstore/tierstore/internal/testenv/redisproc"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/invalidation"
)

// The whole checker, briefly: every fault once, against a real
// redis-server with every write fsynced (so a crash loses no
// acknowledged write), in each mode in which Redis reports every change.
func TestEveryFaultKeepsThePromise(t *testing.T) {
	if testing.Short() {
		t.Skip("a run of all faults takes about 20s a mode")
	}
	for _, mode := range []invalidation.Mode{invalidation.PerKey, invalidation.Broadcast} {
		t.Run(mode.String(), func(t *testing.T) {
			srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
			cfg := Config{
				Server:        srv.Server,
				Phase:         time.Second,
				FaultDuration: 500 * time.Millisecond,
				Invalidation:  mode,
			}
			tr := watchTracking(t, &cfg)
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			requirePass(t, rep)
			tr.require(t, mode, cfg.Instances)
			if rep.Invalidation != mode {
				t.Errorf("the report says invalidation %v, want %v", rep.Invalidation, mode)
			}
			if rep.FailedWrites == 0 || rep.ReadErrors == 0 {
				t.Fatalf("no write or read failed: the faults did not bite (%d failed writes, %d read errors)", rep.FailedWrites, rep.ReadErrors)
			}
		})
	}
}

// With invalidation.OwnWrites, changes made outside tiered go unheard:
// the default faults leave them out, and a run naming one is refused.
func TestOwnWritesLeavesOutTheOutsideFaults(t *testing.T) {
	for _, f := range FaultsFor(invalidation.OwnWrites) {
		if f.Outside {
			t.Errorf("FaultsFor(own-writes) has %s, a change made outside tiered", f.Name)
		}
	}
	if n, all := len(FaultsFor(invalidation.OwnWrites)), len(AllFaults()); n == all || n == 0 {
		t.Errorf("FaultsFor(own-writes) has %d faults of %d", n, all)
	}
	for _, m := range []invalidation.Mode{invalidation.PerKey, invalidation.Broadcast} {
		if n, all := len(FaultsFor(m)), len(AllFaults()); n != all {
			t.Errorf("FaultsFor(%v) has %d faults, want all %d", m, n, all)
		}
	}
	faults, err := FaultsNamed("pubsub-kill", "flushdb")
	if err != nil {
		t.Fatal(err)
	}
	if err := JudgeableFaults(invalidation.OwnWrites, faults); err == nil || !strings.Contains(err.Error(), "flushdb") {
		t.Errorf("JudgeableFaults(own-writes, pubsub-kill and flushdb) = %v, want an error naming flushdb", err)
	}
	if err := JudgeableFaults(invalidation.PerKey, faults); err != nil {
		t.Errorf("JudgeableFaults(per-key) = %v", err)
	}
	// Refused before anything starts: the server is never used.
	srv := &redisproc.Server{}
	if _, err := Run(context.Background(), Config{Server: srv, Invalidation: invalidation.OwnWrites, Faults: faults}); err == nil {
		t.Error("Run with own-writes and flushdb did not fail")
	}
}

// trackingSeen is what watchTracking saw of the instances' tracking
// registrations during the baseline.
type trackingSeen struct {
	tracked, broadcast int
	err                error
}

// watchTracking makes cfg's Progress log the phases and, at the baseline
// (every instance live), count the instances' connections registered
// for tracking (CLIENT LIST flag t) and those of them in broadcast mode
// (B): whether the mode reached every instance.
func watchTracking(t *testing.T, cfg *Config) *trackingSeen {
	seen := &trackingSeen{}
	logf := progress(t)
	cfg.Progress = func(s string) {
		logf(s)
		if s != "baseline" {
			return
		}
		list, err := cfg.Server.Do("CLIENT", "LIST")
		if err != nil {
			seen.err = err
			return
		}
		for line := range strings.Lines(fmt.Sprint(list)) {
			fields := strings.Fields(line)
			if !slices.Contains(fields, "user="+checkUser) {
				continue
			}
			for _, f := range fields {
				if flags, ok := strings.CutPrefix(f, "flags="); ok && strings.Contains(flags, "t") {
					seen.tracked++
					if strings.Contains(flags, "B") {
						seen.broadcast++
					}
				}
			}
		}
	}
	return seen
}

// require fails t unless the registrations seen are those of mode: in
// per-key mode none in broadcast, in broadcast mode one for each instance.
func (s *trackingSeen) require(t *testing.T, mode invalidation.Mode, instances int) {
	t.Helper()
	if instances == 0 {
		instances = 3
	}
	if s.err != nil {
		t.Fatalf("CLIENT LIST: %v", s.err)
	}
	ok := s.tracked >= instances
	switch mode {
	case invalidation.PerKey:
		ok = ok && s.broadcast == 0
	case invalidation.Broadcast:
		ok = ok && s.broadcast == instances
	}
	if !ok {
		t.Fatalf("in %v mode, %d instances had %d connections tracking, %d of them in broadcast mode", mode, instances, s.tracked, s.broadcast)
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

// A violation is shown, not only counted: which instance read which key,
// how stale, against which bound.
func TestReportListsStaleReads(t *testing.T) {
	rep := &Report{Delta: 100 * time.Millisecond, Phases: []PhaseReport{{
		Name: "pubsub-kill", Fault: true, Violations: 7,
		Stale: []StaleRead{{Key: 20, Inst: 1, Cold: true, Version: 3, Replaced: 4, At: 1500 * time.Millisecond, Staleness: 400 * time.Millisecond, Bound: 300 * time.Millisecond}},
	}}}
	want := "STALE in pubsub-kill: instance 1 read cold key 20 (version 3) 1.5s into the phase, replaced by version 4 400ms before (bound 300ms)"
	for name, out := range map[string]string{"Table": rep.Table(), "Summary": rep.Summary()} {
		if !strings.Contains(out, want) || !strings.Contains(out, "STALE in pubsub-kill: 6 more") {
			t.Errorf("%s lacks %q and the 6 more:\n%s", name, want, out)
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

// Redis unreachable with the fail-safe on: the instances serve kept
// copies for a while, and every read the fail-safe served keeps its rule.
// A run in which none was served proves nothing: it happens when a lease
// that a loaded machine let lapse just before the outage opened the
// windows early (the loss of proof is then that lapse, and the window
// may end before Redis does), so the run is made again, up to 3 times.
func TestFailSafeFaultKeepsItsRule(t *testing.T) {
	faults, err := FaultsNamed("failsafe")
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
		rep, err := Run(context.Background(), Config{
			Server: srv.Server, Phase: time.Second, FaultDuration: time.Second, Faults: faults,
			HealthCheckInterval: time.Second, Progress: progress(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		requirePass(t, rep)
		if rep.FailSafe != 500*time.Millisecond {
			t.Errorf("FailSafe %v, want FaultDuration/2", rep.FailSafe)
		}
		if rep.ReadErrors == 0 {
			t.Fatal("no read failed: the fault did not bite")
		}
		if rep.FailSafeReads > 0 {
			return
		}
		if attempt == 3 {
			t.Fatalf("no read served by the fail-safe in %d runs", attempt)
		}
		t.Logf("run %d: no read served by the fail-safe; again", attempt)
	}
}

// The fail-safe's rule, read by read: within FailSafe of the loss of
// proof, the latest value then (but for the fault's bound), never after
// the instance's own write of the key ended after the loss.
func TestFailSafeVerdict(t *testing.T) {
	ms := func(n int64) int64 { return n * int64(time.Millisecond) }
	ops := []Op{
		{Version: 1, Start: ms(0), End: ms(1), OK: true},
		{Version: 2, Start: ms(10), End: ms(11), OK: true},
		{Version: 3, Start: ms(600), End: ms(601), OK: false}, // during the outage
	}
	ki := indexKey(ops)
	const failSafe, bound = 500 * time.Millisecond, 100 * time.Millisecond
	cases := []struct {
		name string
		rd   Read
		own  bool
		bad  bool
	}{
		{"latest value, within the window", Read{Version: 2, Start: ms(400), End: ms(401), FailSafeSince: ms(300)}, false, false},
		{"past the window", Read{Version: 2, Start: ms(801), End: ms(802), FailSafeSince: ms(300)}, false, true},
		{"replaced within the bound before the loss", Read{Version: 1, Start: ms(50), End: ms(51), FailSafeSince: ms(60)}, false, false},
		{"replaced long before the loss", Read{Version: 1, Start: ms(400), End: ms(401), FailSafeSince: ms(300)}, false, true},
		{"after a peer's failed write", Read{Version: 2, Start: ms(700), End: ms(701), FailSafeSince: ms(300)}, false, false},
		{"after its own failed write", Read{Version: 2, Start: ms(700), End: ms(701), FailSafeSince: ms(300)}, true, true},
		{"during its own write", Read{Version: 2, Start: ms(600), End: ms(601), FailSafeSince: ms(300)}, true, false},
	}
	for _, c := range cases {
		why := ki.failSafeVerdict(c.rd, c.own, failSafe, bound)
		if (why != "") != c.bad {
			t.Errorf("%s: %q, want a violation: %v", c.name, why, c.bad)
		}
	}
}
