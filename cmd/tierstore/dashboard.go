package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"image/color"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/tierstore/tierstore"
	tierstoreprom "github.com/tierstore/tierstore/contrib/prometheus"
	"github.com/tierstore/tierstore/internal/testenv/redisproc"
	"github.com/tierstore/tierstore/tiered"
)

// runDashboard is `tierstore dashboard`: the shipped Grafana dashboard's
// panels drawn from a real run. Three instances read and write under
// load; at 1/4 of the run every subscriber is killed, at 1/2 Redis is
// killed for 1/6 of the run and started again. Each instance's
// collector is scraped every 100 ms, and each panel's query is computed
// from the scrapes as Prometheus would (rates over 1 s).
func runDashboard(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("dashboard", flag.ContinueOnError)
	fs.SetOutput(out)
	duration := fs.Duration("duration", 24*time.Second, "length of the run")
	path := fs.String("out", "docs/dashboard.png", "PNG to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "tierstore-dashboard-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := redisproc.Start(dir)
	if err != nil {
		return err
	}
	defer srv.Stop()
	var scrapes []scrape
	if err := runUnderFaults(srv, *duration, &scrapes); err != nil {
		return err
	}
	if err := drawDashboard(scrapes, *path); err != nil {
		return err
	}
	fmt.Fprintf(out, "dashboard: %d scrapes of 3 instances over %v, drawn to %s\n", len(scrapes), *duration, *path)
	return nil
}

// scrape is every series of every instance at one time, summed by the
// labels a panel groups by.
type scrape struct {
	at     time.Duration
	series map[string]float64 // name{label=value} (the store label left out), summed over instances
	live   float64            // instances Live
}

func runUnderFaults(srv *redisproc.Server, d time.Duration, scrapes *[]scrape) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var regs []*prometheus.Registry
	var stores []*tiered.Store
	for range 3 {
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		defer rdb.Close()
		s, err := tiered.New(tiered.Config{Redis: rdb, KeyPrefix: "dash:", HealthCheckInterval: 250 * time.Millisecond, FailSafe: 30 * time.Second})
		if err != nil {
			return err
		}
		defer s.Close()
		reg := prometheus.NewRegistry()
		reg.MustRegister(tierstoreprom.NewCollector(s, tierstoreprom.WithStoreName("sessions")))
		regs, stores = append(regs, reg), append(stores, s)
	}
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() { load(ctx, s, uint64(i)) })
	}
	start := time.Now()
	faults := []struct {
		at time.Duration
		do func() error
	}{
		{d / 4, func() error { _, err := srv.Do("CLIENT", "KILL", "TYPE", "pubsub"); return err }},
		{d / 2, func() error { srv.Kill(); return nil }},
		{d/2 + d/6, srv.Restart},
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for now := time.Duration(0); now < d; now = time.Since(start) {
		for len(faults) > 0 && now >= faults[0].at {
			if err := faults[0].do(); err != nil {
				return err
			}
			faults = faults[1:]
		}
		sc := scrape{at: now, series: map[string]float64{}}
		for _, reg := range regs {
			if err := gather(reg, sc.series); err != nil {
				return err
			}
		}
		for _, s := range stores {
			if s.Live() {
				sc.live++
			}
		}
		*scrapes = append(*scrapes, sc)
		<-tick.C
	}
	cancel()
	wg.Wait()
	return nil
}

// load reads 200 keys (skewed: the first ones are hot) and writes one in
// twenty reads, each instance at its own pace, until ctx ends.
func load(ctx context.Context, s *tiered.Store, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 1))
	for ctx.Err() == nil {
		key := "k" + strconv.Itoa(int(200*math.Pow(r.Float64(), 3)))
		call, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		var err error
		if r.IntN(20) == 0 {
			err = s.Set(call, key, []byte("value of "+key), time.Time{})
		} else {
			_, err = s.Get(call, key)
		}
		cancel()
		if err != nil && !errors.Is(err, tierstore.ErrNotFound) {
			time.Sleep(5 * time.Millisecond) // Redis down: do not spin
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// gather adds reg's series to into, keyed without the store label.
func gather(reg *prometheus.Registry, into map[string]float64) error {
	families, err := reg.Gather()
	if err != nil {
		return err
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() != "store" {
					key += "{" + l.GetName() + "=" + l.GetValue() + "}"
				}
			}
			switch {
			case m.Counter != nil:
				into[key] += m.Counter.GetValue()
			case m.Gauge != nil:
				into[key] += m.Gauge.GetValue()
			case m.Histogram != nil:
				for _, b := range m.Histogram.GetBucket() {
					into[key+"_bucket{le="+strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)+"}"] += float64(b.GetCumulativeCount())
				}
				into[key+"_count"] += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return nil
}

// window is the rate window of the panels, in scrapes (1 s).
const window = 10

// rate is the per-second increase of series key over the window ending
// at scrape i (0 before a full window).
func rate(sc []scrape, i int, key string) float64 {
	if i < window {
		return 0
	}
	dt := (sc[i].at - sc[i-window].at).Seconds()
	return max(sc[i].series[key]-sc[i-window].series[key], 0) / dt
}

// quantile is histogram_quantile(q) of the proof lag's bucket rates over
// the window ending at scrape i, in milliseconds (NaN without proofs).
func quantile(sc []scrape, i int, q float64) float64 {
	const name = "tierstore_invalidation_proof_lag_seconds"
	type bucket struct{ le, n float64 }
	var bs []bucket
	for key := range sc[i].series {
		if le, ok := cutLe(key, name+"_bucket{le="); ok {
			bs = append(bs, bucket{le, rate(sc, i, key)})
		}
	}
	sort.Slice(bs, func(a, b int) bool { return bs[a].le < bs[b].le })
	total := rate(sc, i, name+"_count")
	if total == 0 || len(bs) == 0 {
		return math.NaN()
	}
	rank, lo, below := q*total, 0.0, 0.0
	for _, b := range bs {
		if b.n >= rank {
			return 1000 * (lo + (b.le-lo)*(rank-below)/max(b.n-below, 1e-9))
		}
		lo, below = b.le, b.n
	}
	return 1000 * lo
}

func cutLe(key, prefix string) (float64, bool) {
	if len(key) <= len(prefix) || key[:len(prefix)] != prefix {
		return 0, false
	}
	v, err := strconv.ParseFloat(key[len(prefix):len(key)-1], 64)
	return v, err == nil
}

// panel is one chart: its title, y axis label and lines.
type panel struct {
	title, y string
	lines    []line
}

type line struct {
	name string
	at   func(i int) float64
}

func drawDashboard(sc []scrape, path string) error {
	reqs := func(level, result string) string {
		return "tierstore_cache_requests_total{level=" + level + "}{result=" + result + "}"
	}
	ratio := func(level string, results ...string) func(int) float64 {
		return func(i int) float64 {
			var all float64
			for _, r := range results {
				all += rate(sc, i, reqs(level, r))
			}
			if all == 0 {
				return math.NaN()
			}
			return 100 * rate(sc, i, reqs(level, "hit")) / all
		}
	}
	perSecond := func(key string) func(int) float64 { return func(i int) float64 { return rate(sc, i, key) } }
	var gaps, errs []line
	for _, cause := range []string{"connection_lost", "resubscribed", "reregistered", "lease_expired", "replaced"} {
		gaps = append(gaps, line{cause, perSecond("tierstore_gaps_total{cause=" + cause + "}")})
	}
	for _, class := range []string{"unavailable", "refused", "corrupt"} {
		errs = append(errs, line{class, perSecond("tierstore_redis_errors_total{class=" + class + "}")})
	}
	panels := []panel{
		{"Hit ratio by level", "%", []line{
			{"l1", ratio("l1", "hit", "miss", "stale", "bypass")},
			{"redis", ratio("redis", "hit", "miss")},
		}},
		{"Invalidation proof lag", "ms", []line{
			{"p50", func(i int) float64 { return quantile(sc, i, 0.5) }},
			{"p99", func(i int) float64 { return quantile(sc, i, 0.99) }},
		}},
		{"Gaps by cause", "per second", gaps},
		{"Live instances", "instances", []line{{"live", func(i int) float64 { return sc[i].live }}}},
		{"Redis errors by class", "per second", errs},
		{"Fail-safe serves", "per second", []line{
			{"served fail-safe", perSecond("tierstore_failsafe_serves_total")},
		}},
	}
	const rows, cols = 3, 2
	img := vgimg.New(12*vg.Inch, 10*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	palette := []color.Color{
		color.RGBA{31, 119, 180, 255}, color.RGBA{255, 127, 14, 255}, color.RGBA{44, 160, 44, 255},
		color.RGBA{214, 39, 40, 255}, color.RGBA{148, 103, 189, 255},
	}
	for n, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.title
		p.X.Label.Text = "seconds"
		p.Y.Label.Text = pn.y
		p.Y.Min = 0
		p.Legend.Top = true
		for k, ln := range pn.lines {
			var pts plotter.XYs
			for i := range sc {
				if v := ln.at(i); !math.IsNaN(v) {
					pts = append(pts, plotter.XY{X: sc[i].at.Seconds(), Y: v})
				}
			}
			if len(pts) == 0 {
				continue
			}
			l, err := plotter.NewLine(pts)
			if err != nil {
				return err
			}
			l.Color = palette[k%len(palette)]
			l.Width = vg.Points(1.2)
			p.Add(l)
			p.Legend.Add(ln.name, l)
		}
		p.Draw(tiles.At(dc, n%cols, n/cols))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
