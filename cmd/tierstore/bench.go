package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/workload"
	"github.com/tierstore/tierstore/invalidation"
	"github.com/tierstore/tierstore/l1"
	"github.com/tierstore/tierstore/l2"
	"github.com/tierstore/tierstore/tiered"
)

// benchRow is one store's result.
type benchRow struct {
	name   string
	result workload.Result
}

func runBench(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		addr     = fs.String("redis", "", "Redis address (host:port or redis:// URL); empty: embedded miniredis")
		duration = fs.Duration("duration", 2*time.Second, "how long each store runs")
		conc     = fs.Int("concurrency", 8, "goroutines, spread over two instances")
		size     = fs.Int("value-size", 500, "bytes per value")
		reads    = fs.Float64("reads", 0.95, "share of reads")
		keys     = fs.Int("keys", 10000, "number of keys (Zipf-like popularity)")
		ttl      = fs.Duration("l1-ttl", tiered.DefaultL1TTL, "tiered L1TTL")
		l1Size   = fs.Int64("l1-size", tiered.DefaultL1MaxBytes, "L1 size in bytes (memory store and tiered)")
		samples  = fs.Int("delay-samples", 1000, "writes measured for the invalidation delay")
		outDir   = fs.String("out", "", "directory to write results.md and chart.svg to")
		fleetN   = fs.Int("instances", 0, "instead of the two-instance comparison, run the fleet workload (benchmarks' BenchmarkFleet) at this many instances of each store; needs -redis")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *fleetN > 0 && *addr == "" {
		return errors.New("bench: -instances needs -redis: miniredis has no client tracking")
	}
	opts, cleanup, err := redisOptions(*addr, out)
	if err != nil {
		return err
	}
	defer cleanup()
	ctx := context.Background()
	if *fleetN > 0 {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		cfg := FleetConfig{
			Instances: *fleetN, ReadShare: *reads, ValueSize: *size, L1TTL: *ttl, L1MaxBytes: *l1Size,
			KeyPrefix: "tierstore-bench:fleet:",
		}
		// The fleet's own defaults (100k keys, 32 goroutines) unless given.
		if set["keys"] {
			cfg.Keys = *keys
		}
		if set["concurrency"] {
			cfg.Goroutines = *conc
		}
		return runFleetBench(ctx, opts, cfg, *duration, *outDir, out)
	}
	cfg := workload.Config{Keys: *keys, ReadShare: *reads, ValueSize: *size, Concurrency: *conc, Duration: *duration}
	fmt.Fprintf(out, "workload: %d keys, %.0f%% reads, %d-byte values, %d goroutines, %v per store\n\n",
		*keys, 100**reads, *size, *conc, *duration)

	client := func() *redis.Client { o := *opts; c := redis.NewClient(&o); return c }
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	newTiered := func(onInvalidate func(string)) (*tiered.Store, error) {
		c := client()
		s, err := tiered.New(tiered.Config{
			Redis: c, KeyPrefix: "tierstore-bench:tiered:", L1TTL: *ttl, L1MaxBytes: *l1Size,
			OnInvalidate: onInvalidate, Invalidation: invalidation.ModeIf(opts.Addr == embeddedAddr),
		})
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() { s.Close(); c.Close() })
		live, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return s, s.WaitLive(live)
	}
	mem, err := l1.New(l1.Config{MaxBytes: *l1Size})
	if err != nil {
		return err
	}
	closers = append(closers, func() { mem.Close() })
	var red []tierstore.Store
	for range 2 {
		c := client()
		closers = append(closers, func() { c.Close() })
		s, err := l2.New(l2.Config{Redis: c, KeyPrefix: "tierstore-bench:redis:"})
		if err != nil {
			return err
		}
		red = append(red, s)
	}
	ta, err := newTiered(nil)
	if err != nil {
		return err
	}
	// b marks each invalidation of the delay measurement's key it applies.
	seen := workload.NewMarks()
	tb, err := newTiered(func(key string) {
		if key == delayKey {
			seen.MarkNext()
		}
	})
	if err != nil {
		return err
	}
	type setup struct {
		name      string
		instances []tierstore.Store
	}
	setups := []setup{
		{"memory (l1, one instance: not shared)", []tierstore.Store{mem}},
		{"Redis (l2, two instances)", red},
		{"tiered (two instances)", []tierstore.Store{ta, tb}},
	}
	// rueidis's client-side cache needs CLIENT TRACKING, which miniredis
	// does not have.
	if opts.Addr != embeddedAddr {
		var peers []tierstore.Store
		for range 2 {
			r, err := newRueidis(opts, *ttl)
			if err != nil {
				return fmt.Errorf("rueidis: %w", err)
			}
			closers = append(closers, r.c.Close)
			peers = append(peers, r)
		}
		setups = append(setups, setup{"rueidis client-side cache (DoCache, two instances)", peers})
	}
	progress := newProgress(out)
	var rows []benchRow
	for _, s := range setups {
		progress.update(s.name+": preloading", 0)
		if err := workload.Preload(ctx, s.instances[0], cfg); err != nil {
			return fmt.Errorf("%s: preload: %w", s.name, err)
		}
		if err := workload.Warm(ctx, s.instances, cfg); err != nil {
			return fmt.Errorf("%s: warm-up: %w", s.name, err)
		}
		run := cfg
		run.Progress = func(done float64) { progress.update(s.name, done) }
		r, err := workload.Run(ctx, s.instances, run)
		if err != nil {
			return err
		}
		progress.done(s.name)
		rows = append(rows, benchRow{s.name, r})
	}
	progress.update("invalidation delay", 0)
	delays, err := invalidationDelays(ctx, ta, tb, seen, *size, *samples, progress)
	if err != nil {
		return err
	}
	progress.done("invalidation delay")

	table := benchTable(rows, delays)
	fmt.Fprintf(out, "\n%s", table)
	if *addr == "" {
		fmt.Fprintln(out, "\nThese figures come from an embedded miniredis: they show the shape of the comparison,\nnot Redis's speed. Pass -redis with a real server for figures to trust.")
	}
	if *outDir != "" {
		if err := writeBenchOutput(*outDir, table, rows, *addr == ""); err != nil {
			return err
		}
		fmt.Fprintf(out, "\nwrote %s and %s\n", filepath.Join(*outDir, "results.md"), filepath.Join(*outDir, "chart.svg"))
	}
	return nil
}

// delayKey is the key the invalidation delay is measured on; the mixed
// workload's keys are named by workload.KeyName.
const delayKey = "delay"

// invalidationDelays measures, for n writes of delayKey on a, how long
// until b has dropped the old value (it marks each such invalidation in
// seen). b reads the key before each write: it holds the old value, and
// in per-key mode Redis reports a change only to the instances that read
// the key.
func invalidationDelays(ctx context.Context, a, b *tiered.Store, seen *workload.Marks, size, n int, p *progress) ([]time.Duration, error) {
	value := make([]byte, size)
	return workload.Delays(n, func(k int) {
		p.update("invalidation delay", float64(k)/float64(n))
		_, _ = b.Get(ctx, delayKey)
	},
		func(k int) error {
			binary.BigEndian.PutUint64(value, uint64(k))
			return a.Set(ctx, delayKey, value, time.Now().Add(time.Hour))
		},
		seen)
}

func benchTable(rows []benchRow, delays []time.Duration) string {
	var b strings.Builder
	var redisOps float64
	for _, r := range rows {
		if strings.HasPrefix(r.name, "Redis") {
			redisOps = r.result.OpsPerSecond()
		}
	}
	fmt.Fprintf(&b, "| store | ops/s | × Redis only | CPU µs/op (this process) | reads | writes | errors | stale reads |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rows {
		ratio, cpu := "—", "—"
		if redisOps > 0 {
			ratio = strconv.FormatFloat(r.result.OpsPerSecond()/redisOps, 'f', 1, 64) + "×"
		}
		if ops := r.result.Reads + r.result.Writes; r.result.CPU > 0 && ops > 0 {
			cpu = strconv.FormatFloat(float64(r.result.CPU.Nanoseconds())/1e3/float64(ops), 'f', 2, 64)
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %d | %d | %d | %.3f%% |\n", r.name, r.result.OpsPerSecond(), ratio, cpu,
			r.result.Reads, r.result.Writes, r.result.Errors, 100*r.result.StaleShare())
	}
	b.WriteString("\nCPU is this process's (both instances, the workload driver and, without -redis, the embedded\n" +
		"miniredis), per operation: throughput × CPU per operation is the number of cores kept busy.\n")
	fmt.Fprintf(&b, "\nInvalidation delay (Set starts on A → B has dropped the old value), %d writes: p50 %v, p99 %v, max %v\n",
		len(delays), workload.Percentile(delays, 50).Round(time.Microsecond), workload.Percentile(delays, 99).Round(time.Microsecond),
		workload.Percentile(delays, 100).Round(time.Microsecond))
	return b.String()
}

func writeBenchOutput(dir, table string, rows []benchRow, mini bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	host, _ := os.Hostname()
	note := "Redis: a real server."
	if mini {
		note = "Redis: embedded miniredis — for the demo; real-Redis figures are the ones to trust."
	}
	md := fmt.Sprintf("# tierstore bench\n\n%s, %s. %s\n\n![throughput](chart.svg)\n\n%s", host, time.Now().UTC().Format(time.RFC3339), note, table)
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	p := plot.New()
	p.Title.Text = "Mixed workload throughput"
	p.Y.Label.Text = "operations per second"
	values := make(plotter.Values, len(rows))
	names := make([]string, len(rows))
	for i, r := range rows {
		values[i] = r.result.OpsPerSecond()
		names[i], _, _ = strings.Cut(r.name, " (")
	}
	bars, err := plotter.NewBarChart(values, vg.Points(40))
	if err != nil {
		return err
	}
	// The memory bar dwarfs the others: label every bar with its value.
	var xys plotter.XYLabels
	for i, v := range values {
		xys.XYs = append(xys.XYs, plotter.XY{X: float64(i), Y: v})
		xys.Labels = append(xys.Labels, fmt.Sprintf("%.0fk/s", v/1000))
	}
	labels, err := plotter.NewLabels(xys)
	if err != nil {
		return err
	}
	for i := range labels.TextStyle {
		labels.TextStyle[i].XAlign = -0.5 // centred over the bar
		labels.TextStyle[i].YAlign = 0    // just above it
	}
	p.Add(bars, labels)
	p.NominalX(names...)
	return p.Save(5*vg.Inch, 3.5*vg.Inch, filepath.Join(dir, "chart.svg"))
}

// progress shows a bar on a terminal and plain lines otherwise.
type progress struct {
	out      io.Writer
	terminal bool
	last     string
}

func newProgress(out io.Writer) *progress {
	p := &progress{out: out}
	if f, ok := out.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.terminal = true
		}
	}
	return p
}

func (p *progress) update(what string, done float64) {
	if p.terminal {
		n := int(done * 30)
		fmt.Fprintf(p.out, "\r%-45s [%s%s] %3.0f%%", what, strings.Repeat("=", n), strings.Repeat(" ", 30-n), 100*done)
		return
	}
	if what != p.last {
		fmt.Fprintf(p.out, "%s ...\n", what)
		p.last = what
	}
}

func (p *progress) done(what string) {
	if p.terminal {
		p.update(what, 1)
		fmt.Fprintln(p.out)
	}
}
