package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"
)

// runFleetBench runs the fleet workload (bench_fleet.go, the driver of
// the benchmarks module's BenchmarkFleet) at cfg.Instances instances of
// every store, with sticky and with uniform keys, each for d after its
// warm-up, and prints the table of docs/benchmarks.md for that size.
func runFleetBench(ctx context.Context, opts *redis.Options, cfg FleetConfig, d time.Duration, outDir string, out io.Writer) error {
	shown := cfg
	shown.defaults()
	fmt.Fprintf(out, "fleet workload: %d instances of each store, %d goroutines in all, %d keys, %.0f%% reads, %d-byte values, Zipf %.1f;\n"+
		"sticky: %.0f%% of an instance's operations on its own keys; per store, %v of warm-up, then %v measured (the same operations again)\n\n",
		shown.Instances, shown.Goroutines, shown.Keys, 100*shown.ReadShare, shown.ValueSize, shown.Zipf,
		100*shown.Affinity, d, d)
	progress := newProgress(out)
	var rows []FleetRow
	for _, sticky := range []bool{true, false} {
		cfg.Sticky = sticky
		for _, store := range FleetStores {
			name := fmt.Sprintf("%s keys, %s", cfg.KeysName(), store)
			progress.update(name+": preloading, warming up", 0)
			f, err := NewFleet(ctx, opts, store, cfg)
			if err != nil {
				return err
			}
			if err := f.Warm(ctx, 0, d); err != nil {
				f.Close()
				return err
			}
			progress.update(name, 0)
			r, err := f.Run(ctx, 0, d)
			f.Close()
			if err != nil {
				return err
			}
			if r.Errors > 0 {
				return fmt.Errorf("%s: %d errors", name, r.Errors)
			}
			progress.done(name)
			rows = append(rows, r.Row())
		}
	}
	table := FleetTable(rows)
	fmt.Fprintf(out, "\n%s", table)
	fmt.Fprint(out, "\nInvalidations are those the instances received (tiered: not of their own writes; rueidis: of\n"+
		"its own writes too). Redis CPU is all of redis-server's (INFO cpu), over the writes; client CPU is\n"+
		"this process's, every instance and the driver, over the operations. Local hits: reads served from\n"+
		"the instance's memory.\n")
	if outDir != "" {
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return err
		}
		host, _ := os.Hostname()
		md := fmt.Sprintf("# tierstore bench -instances %d\n\n%s, %s.\n\n%s", cfg.Instances, host, time.Now().UTC().Format(time.RFC3339), table)
		if err := os.WriteFile(filepath.Join(outDir, "results.md"), []byte(md), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(out, "\nwrote %s\n", filepath.Join(outDir, "results.md"))
	}
	return nil
}
