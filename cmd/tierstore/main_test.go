package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tierstore/tierstore/internal/testenv/redistest"
)

func TestDemoOnEmbeddedMiniredis(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"demo"}, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{"embedded miniredis", `B sees                                             {"user":"grace"}`, "tierstore: not found"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestDemoOnRealRedis(t *testing.T) {
	srv := redistest.Start(t)
	var out bytes.Buffer
	if err := run([]string{"demo", "-redis", "redis://" + srv.Addr()}, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), `{"user":"grace"}`) {
		t.Errorf("demo output lacks the second value:\n%s", out.String())
	}
}

func TestUsageWithoutCommand(t *testing.T) {
	if err := run(nil, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Fatalf("run() = %v, want usage", err)
	}
}

func TestCheckCommandPasses(t *testing.T) {
	redistest.Start(t) // fails or skips as the harness does when redis-server is missing
	for _, mode := range []string{"", "per-key", "broadcast"} {
		args := []string{"check", "-faults", "pubsub-kill", "-phase", "300ms"}
		want := "per-key" // the default
		if mode != "" {
			args, want = append(args, "-invalidation", mode), mode
		}
		var out bytes.Buffer
		err := run(args, &out)
		if err != nil || !strings.Contains(out.String(), "PASS: invalidation "+want+";") {
			t.Fatalf("check %s: %v\n%s", strings.Join(args[1:], " "), err, out.String())
		}
	}
}

// own-writes does not hear changes made outside tiered: the check refuses
// to judge them, before it starts anything, and names the fault.
func TestCheckCommandRefusesOutsideFaultsWithOwnWrites(t *testing.T) {
	var out bytes.Buffer
	err := run([]string{"check", "-invalidation", "own-writes", "-faults", "pubsub-kill,outside-writes"}, &out)
	if err == nil || !strings.Contains(err.Error(), "outside-writes") || out.Len() != 0 {
		t.Fatalf("check -invalidation own-writes -faults pubsub-kill,outside-writes = %v, printed %q; want an error naming outside-writes, nothing started", err, out.String())
	}
	if err := run([]string{"check", "-invalidation", "nope"}, &out); err == nil {
		t.Fatal("check -invalidation nope did not fail")
	}
}

func TestBenchCommandWritesTableAndChart(t *testing.T) {
	srv := redistest.Start(t)
	dir := t.TempDir()
	var out bytes.Buffer
	err := run([]string{"bench", "-redis", srv.Addr(), "-duration", "200ms", "-delay-samples", "20", "-keys", "500", "-out", dir}, &out)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	for _, want := range []string{"| memory (l1", "| Redis (l2", "| tiered (two", "| rueidis client-side cache", "Invalidation delay"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// Each store's row has a CPU per operation (a number, on Unix).
	if !regexp.MustCompile(`\| tiered \(two instances\) \| \d+ \| [\d.]+× \| \d+\.\d\d \|`).MatchString(out.String()) {
		t.Errorf("tiered row lacks ops/s, ratio or CPU per op:\n%s", out.String())
	}
	md, err := os.ReadFile(filepath.Join(dir, "results.md"))
	if err != nil || !strings.Contains(string(md), "| tiered (two") {
		t.Fatalf("results.md: %v\n%s", err, md)
	}
	svg, err := os.ReadFile(filepath.Join(dir, "chart.svg"))
	if err != nil || !strings.Contains(string(svg), "<svg") {
		t.Fatalf("chart.svg: %v", err)
	}
}

// -h is a request, not a mistake: main exits 0 on these errors.
func TestHelpIsNotAnError(t *testing.T) {
	if err := run([]string{"-h"}, &bytes.Buffer{}); !errors.Is(err, errHelp) {
		t.Fatalf("run(-h) = %v, want errHelp", err)
	}
	var out bytes.Buffer
	if err := run([]string{"demo", "-h"}, &out); !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "-redis") {
		t.Fatalf("run(demo -h) = %v, printed %q; want flag.ErrHelp and the flags", err, out.String())
	}
}
