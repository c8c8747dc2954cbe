package tierstoreotel_test

import (
	"context"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	tierstoreotel "github.com/tierstore/tierstore/contrib/otel"
	"github.com/tierstore/tierstore/internal/testenv/metricsrun"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/invalidation"
	"github.com/tierstore/tierstore/tiered"
)

// points collects r and returns every data point as "name{k=v,...}"
// (attributes sorted) with its value; a histogram as its count, with the
// points themselves in hists.
func points(t *testing.T, r *sdkmetric.ManualReader) (map[string]float64, map[string]metricdata.HistogramDataPoint[float64]) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out, hists := map[string]float64{}, map[string]metricdata.HistogramDataPoint[float64]{}
	key := func(name string, set attribute.Set) string {
		var kv []string
		for _, a := range set.ToSlice() {
			kv = append(kv, string(a.Key)+"="+a.Value.String())
		}
		return name + "{" + strings.Join(kv, ",") + "}"
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = float64(p.Value)
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = float64(p.Value)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[key(m.Name, p.Attributes)] = float64(p.Count)
					hists[key(m.Name, p.Attributes)] = p
				}
			default:
				t.Fatalf("%s: unexpected data %T", m.Name, m.Data)
			}
		}
	}
	return out, hists
}

const name = "tierstore.store.name=sessions"

// checkpointWant is every point at the scenario's checkpoint but the
// proof lag's (see checkProofLag) and L1's memory (compared with Stats).
var checkpointWant = map[string]float64{
	"tierstore.cache.requests{tierstore.level=l1,tierstore.result=hit," + name + "}":     3,
	"tierstore.cache.requests{tierstore.level=l1,tierstore.result=miss," + name + "}":    3,
	"tierstore.cache.requests{tierstore.level=l1,tierstore.result=stale," + name + "}":   1,
	"tierstore.cache.requests{tierstore.level=l1,tierstore.result=bypass," + name + "}":  0,
	"tierstore.cache.requests{tierstore.level=redis,tierstore.result=hit," + name + "}":  3,
	"tierstore.cache.requests{tierstore.level=redis,tierstore.result=miss," + name + "}": 1,
	"tierstore.invalidations.received{" + name + "}":                                     1,
	"tierstore.invalidations.sent{" + name + "}":                                         0,
	"tierstore.gaps{tierstore.gap.cause=connection_lost," + name + "}":                   1,
	"tierstore.gaps{tierstore.gap.cause=lease_expired," + name + "}":                     0,
	"tierstore.gaps{tierstore.gap.cause=resubscribed," + name + "}":                      1,
	"tierstore.gaps{tierstore.gap.cause=replaced," + name + "}":                          0,
	"tierstore.gaps{tierstore.gap.cause=reregistered," + name + "}":                      1,
	"tierstore.gaps{tierstore.gap.cause=flushed," + name + "}":                           0,
	"tierstore.gaps{tierstore.gap.cause=malformed," + name + "}":                         0,
	"tierstore.gaps{tierstore.gap.cause=topology," + name + "}":                          0,
	"tierstore.live{" + name + "}":                                                       1,
	"tierstore.l1.entries{" + name + "}":                                                 1,
	"tierstore.l1.evictions{" + name + "}":                                               0,
	"tierstore.redis.errors{tierstore.error.class=unavailable," + name + "}":             0,
	"tierstore.redis.errors{tierstore.error.class=refused," + name + "}":                 0,
	"tierstore.redis.errors{tierstore.error.class=corrupt," + name + "}":                 0,
	"tierstore.redis.errors{tierstore.error.class=other," + name + "}":                   0,
	"tierstore.failsafe.serves{" + name + "}":                                            0,
	"tierstore.failsafe.activations{" + name + "}":                                       0,
	"tierstore.failsafe.active{" + name + "}":                                            0,
	"tierstore.fast_failures{" + name + "}":                                              0,
	"tierstore.failing_fast{" + name + "}":                                               0,
}

const (
	memory   = "tierstore.l1.memory.usage{" + name + "}"
	proofLag = "tierstore.invalidation.proof_lag{" + name + "}"
)

// After the known sequence each instrument reports exactly what the
// sequence made.
func TestInstrumentsReportTheSequence(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	var atStart invalidation.ProofLag
	metricsrun.Run(t, [2]string{"k", "absent"}, metricsrun.Phases{
		Start: func(a *tiered.Store) {
			atStart = a.Stats().Invalidation.ProofLag
			if err := tierstoreotel.InstrumentMetrics(a, tierstoreotel.WithMeterProvider(mp), tierstoreotel.WithStoreName("sessions")); err != nil {
				t.Fatal(err)
			}
		},
		Checkpoint: func(a *tiered.Store) {
			before := a.Stats().Invalidation.ProofLag
			got, hists := points(t, reader)
			after := a.Stats().Invalidation.ProofLag
			for k, want := range checkpointWant {
				if v, ok := got[k]; !ok || v != want {
					t.Errorf("%s = %v (reported: %v), want %v", k, v, ok, want)
				}
			}
			if extra := len(got) - len(checkpointWant) - 2; extra != 0 {
				t.Errorf("%d points beyond the expected ones: %v", extra, slices.Sorted(maps.Keys(got)))
			}
			if m := got[memory]; m == 0 || m != float64(a.Stats().L1.Bytes) {
				t.Errorf("%s = %v, store says %d", memory, m, a.Stats().L1.Bytes)
			}
			h, ok := hists[proofLag]
			if !ok {
				t.Fatalf("no %s point", proofLag)
			}
			// Heartbeats go on: what the histogram saw lies between the
			// proofs counted at the reads before and after, minus those
			// made before InstrumentMetrics.
			lo, hi := int64(before.Count-atStart.Count)-1, int64(after.Count-atStart.Count)
			if n := int64(h.Count); n < 1 || n < lo || n > hi {
				t.Errorf("proof lag count %d, want 1 or more within [%d, %d]", h.Count, lo, hi)
			}
			var sum uint64
			for _, n := range h.BucketCounts {
				sum += n
			}
			if sum != h.Count || h.Sum <= 0 || len(h.Bounds) != len(invalidation.ProofLagBounds) {
				t.Errorf("proof lag point %+v: buckets sum %d, want count and the store's %d bounds", h, sum, len(invalidation.ProofLagBounds))
			}
			for i, b := range invalidation.ProofLagBounds {
				if math.Abs(h.Bounds[i]-b.Seconds()) > 1e-12 {
					t.Errorf("bound %d = %v, want %v", i, h.Bounds[i], b.Seconds())
				}
			}
		},
		Outage: func(a *tiered.Store) {
			redistest.Eventually(t, "L1's bytes follow the failed write's drop", func() bool { return a.Stats().L1.Bytes == 0 })
			got, _ := points(t, reader)
			lost := a.Stats().Invalidation.GapsBy[invalidation.GapConnectionLost]
			for k, want := range map[string]float64{
				"tierstore.cache.requests{tierstore.level=l1,tierstore.result=bypass," + name + "}": 1,
				"tierstore.cache.requests{tierstore.level=l1,tierstore.result=miss," + name + "}":   3,
				"tierstore.redis.errors{tierstore.error.class=unavailable," + name + "}":            2,
				"tierstore.redis.errors{tierstore.error.class=other," + name + "}":                  0,
				"tierstore.live{" + name + "}":       0,
				"tierstore.l1.entries{" + name + "}": 0,
				memory:                               0,
				"tierstore.gaps{tierstore.gap.cause=connection_lost," + name + "}": float64(lost),
				"tierstore.gaps{tierstore.gap.cause=resubscribed," + name + "}":    1,
			} {
				if got[k] != want {
					t.Errorf("%s = %v, want %v", k, got[k], want)
				}
			}
			if lost < 2 {
				t.Errorf("%d lost connections counted, want the outage's on top of the kill's", lost)
			}
		},
	})
}

// No attribute value depends on a key: two runs with different keys give
// the same attribute sets, and none holds a key.
func TestAttributesDoNotDependOnKeys(t *testing.T) {
	sets := func(keys [2]string) []string {
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		t.Cleanup(func() { mp.Shutdown(context.Background()) })
		var out []string
		collect := func(*tiered.Store) {
			got, _ := points(t, reader)
			out = append(out, slices.Sorted(maps.Keys(got))...)
		}
		metricsrun.Run(t, keys, metricsrun.Phases{
			Start: func(a *tiered.Store) {
				if err := tierstoreotel.InstrumentMetrics(a, tierstoreotel.WithMeterProvider(mp)); err != nil {
					t.Fatal(err)
				}
			},
			Checkpoint: collect, Outage: collect,
		})
		return out
	}
	one, two := sets([2]string{"k", "absent"}), sets([2]string{"user:42:cart", "other:key:x"})
	if !slices.Equal(one, two) {
		t.Fatalf("attribute sets differ with the keys:\n%v\n%v", one, two)
	}
	for _, s := range one {
		if strings.Contains(s, "user:42") || strings.Contains(s, "absent") {
			t.Fatalf("a key in an attribute: %s", s)
		}
	}
}
