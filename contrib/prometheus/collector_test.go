package tierstoreprom_test

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	tierstoreprom "github.com/tierstore/tierstore/contrib/prometheus"
	"github.com/tierstore/tierstore/internal/testenv/metricsrun"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/invalidation"
	"github.com/tierstore/tierstore/tiered"
)

// series gathers c and returns every series as "name{label=value,...}"
// (labels sorted, store included) with its value; a histogram's count,
// sum and buckets are series of their own, as in the text format.
func series(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			name := func(suffix string, extra ...string) string {
				return f.GetName() + suffix + "{" + strings.Join(append(slices.Clone(labels), extra...), ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[name("")] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[name("")] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[name("_count")] = float64(m.Histogram.GetSampleCount())
				out[name("_sum")] = m.Histogram.GetSampleSum()
				for _, b := range m.Histogram.GetBucket() {
					out[name("_bucket", fmt.Sprintf("le=%g", b.GetUpperBound()))] = float64(b.GetCumulativeCount())
				}
			}
		}
	}
	return out
}

// checkpointWant is what the collector reports at the scenario's
// checkpoint, but for the proof lag (see checkProofLag).
const checkpointWant = `
# HELP tierstore_cache_requests_total Reads by level (l1, redis) and result (hit, miss, stale, bypass).
# TYPE tierstore_cache_requests_total counter
tierstore_cache_requests_total{level="l1",result="bypass",store="sessions"} 0
tierstore_cache_requests_total{level="l1",result="hit",store="sessions"} 3
tierstore_cache_requests_total{level="l1",result="miss",store="sessions"} 3
tierstore_cache_requests_total{level="l1",result="stale",store="sessions"} 1
tierstore_cache_requests_total{level="redis",result="hit",store="sessions"} 3
tierstore_cache_requests_total{level="redis",result="miss",store="sessions"} 1
# HELP tierstore_failsafe_activations_total Fail-safe windows opened: times the store lost its proof with Config.FailSafe set.
# TYPE tierstore_failsafe_activations_total counter
tierstore_failsafe_activations_total{store="sessions"} 0
# HELP tierstore_failsafe_active 1 while a fail-safe window is open, else 0.
# TYPE tierstore_failsafe_active gauge
tierstore_failsafe_active{store="sessions"} 0
# HELP tierstore_failsafe_serves_total Reads served from L1 under Config.FailSafe while Redis was unreachable.
# TYPE tierstore_failsafe_serves_total counter
tierstore_failsafe_serves_total{store="sessions"} 0
# HELP tierstore_failing_fast 1 while calls fail fast (Redis known to be unreachable, until a probe reaches it), else 0.
# TYPE tierstore_failing_fast gauge
tierstore_failing_fast{store="sessions"} 0
# HELP tierstore_fast_failures_total Calls failed at once because Redis was known to be unreachable.
# TYPE tierstore_fast_failures_total counter
tierstore_fast_failures_total{store="sessions"} 0
# HELP tierstore_gaps_total Times L1 was flushed because invalidations may have been missed, by cause.
# TYPE tierstore_gaps_total counter
tierstore_gaps_total{cause="connection_lost",store="sessions"} 1
tierstore_gaps_total{cause="flushed",store="sessions"} 0
tierstore_gaps_total{cause="lease_expired",store="sessions"} 0
tierstore_gaps_total{cause="malformed",store="sessions"} 0
tierstore_gaps_total{cause="replaced",store="sessions"} 0
tierstore_gaps_total{cause="reregistered",store="sessions"} 1
tierstore_gaps_total{cause="resubscribed",store="sessions"} 1
tierstore_gaps_total{cause="topology",store="sessions"} 0
# HELP tierstore_invalidations_received_total Invalidations applied to this instance's L1.
# TYPE tierstore_invalidations_received_total counter
tierstore_invalidations_received_total{store="sessions"} 1
# HELP tierstore_invalidations_sent_total Writes this instance made, each reported to the instances holding the key.
# TYPE tierstore_invalidations_sent_total counter
tierstore_invalidations_sent_total{store="sessions"} 0
# HELP tierstore_l1_entries Entries held in L1.
# TYPE tierstore_l1_entries gauge
tierstore_l1_entries{store="sessions"} 1
# HELP tierstore_l1_evictions_total Entries L1 evicted to make room.
# TYPE tierstore_l1_evictions_total counter
tierstore_l1_evictions_total{store="sessions"} 0
# HELP tierstore_live 1 while L1 may serve (the invalidation lease is held), else 0.
# TYPE tierstore_live gauge
tierstore_live{store="sessions"} 1
# HELP tierstore_redis_errors_total Failed Redis reads and writes, by class (unavailable, refused, corrupt, other).
# TYPE tierstore_redis_errors_total counter
tierstore_redis_errors_total{class="corrupt",store="sessions"} 0
tierstore_redis_errors_total{class="other",store="sessions"} 0
tierstore_redis_errors_total{class="refused",store="sessions"} 0
tierstore_redis_errors_total{class="unavailable",store="sessions"} 0
`

var checkpointNames = []string{
	"tierstore_cache_requests_total", "tierstore_gaps_total", "tierstore_invalidations_received_total",
	"tierstore_invalidations_sent_total", "tierstore_l1_entries", "tierstore_l1_evictions_total",
	"tierstore_live", "tierstore_redis_errors_total", "tierstore_failsafe_serves_total",
	"tierstore_failsafe_activations_total", "tierstore_failsafe_active", "tierstore_fast_failures_total",
	"tierstore_failing_fast",
}

// checkProofLag checks the histogram against the store's own counts,
// which heartbeats keep changing: read before and after the scrape.
func checkProofLag(t *testing.T, a *tiered.Store, c prometheus.Collector) {
	t.Helper()
	before := a.Stats().Invalidation.ProofLag
	got := series(t, c)
	after := a.Stats().Invalidation.ProofLag
	n := got[`tierstore_invalidation_proof_lag_seconds_count{store=sessions}`]
	if n < float64(before.Count) || n > float64(after.Count) || n == 0 {
		t.Fatalf("proof lag count %v, store counted %d then %d", n, before.Count, after.Count)
	}
	if n == float64(after.Count) {
		var cum uint64
		for i, bound := range invalidation.ProofLagBounds {
			cum += after.Counts[i]
			key := fmt.Sprintf("tierstore_invalidation_proof_lag_seconds_bucket{store=sessions,le=%g}", bound.Seconds())
			if got[key] != float64(cum) {
				t.Fatalf("%s = %v, want %d", key, got[key], cum)
			}
		}
		if s := got[`tierstore_invalidation_proof_lag_seconds_sum{store=sessions}`]; math.Abs(s-after.Sum.Seconds()) > 1e-9 {
			t.Fatalf("sum %v, want %v", s, after.Sum.Seconds())
		}
	}
}

// After the known sequence, every series is exactly what the sequence
// made: checked at the checkpoint as text, and after the outage for what
// it changed.
func TestCollectorReportsTheSequence(t *testing.T) {
	var c prometheus.Collector
	metricsrun.Run(t, [2]string{"k", "absent"}, metricsrun.Phases{Checkpoint: func(a *tiered.Store) {
		c = tierstoreprom.NewCollector(a, tierstoreprom.WithStoreName("sessions"))
		if err := testutil.CollectAndCompare(c, strings.NewReader(checkpointWant), checkpointNames...); err != nil {
			t.Fatal(err)
		}
		got := series(t, c)
		if b := got["tierstore_l1_bytes{store=sessions}"]; b != float64(a.Stats().L1.Bytes) || b == 0 {
			t.Fatalf("l1 bytes %v, store says %d", b, a.Stats().L1.Bytes)
		}
		checkProofLag(t, a, c)
		if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
			t.Fatalf("lint: %v %+v", err, problems)
		}
	}, Outage: func(a *tiered.Store) {
		redistest.Eventually(t, "L1's bytes follow the failed write's drop", func() bool { return a.Stats().L1.Bytes == 0 })
		got := series(t, c)
		lost := a.Stats().Invalidation.GapsBy[invalidation.GapConnectionLost]
		for name, want := range map[string]float64{
			"tierstore_cache_requests_total{level=l1,result=bypass,store=sessions}": 1,
			"tierstore_cache_requests_total{level=l1,result=miss,store=sessions}":   3,
			"tierstore_cache_requests_total{level=redis,result=hit,store=sessions}": 3,
			"tierstore_redis_errors_total{class=unavailable,store=sessions}":        2,
			"tierstore_redis_errors_total{class=other,store=sessions}":              0,
			"tierstore_live{store=sessions}":                                        0,
			"tierstore_l1_entries{store=sessions}":                                  0,
			"tierstore_l1_bytes{store=sessions}":                                    0,
			"tierstore_gaps_total{cause=connection_lost,store=sessions}":            float64(lost),
			"tierstore_gaps_total{cause=resubscribed,store=sessions}":               1,
		} {
			if got[name] != want {
				t.Errorf("%s = %v, want %v", name, got[name], want)
			}
		}
		if lost < 2 {
			t.Errorf("%d lost connections counted, want the outage's on top of the kill's", lost)
		}
	}})
}

// No label value depends on a key: two runs with different keys give the
// same label sets.
func TestLabelsDoNotDependOnKeys(t *testing.T) {
	labels := func(keys [2]string) []string {
		var out []string
		metricsrun.Run(t, keys, metricsrun.Phases{Checkpoint: func(a *tiered.Store) {
			for s := range series(t, tierstoreprom.NewCollector(a)) {
				out = append(out, s)
			}
		}, Outage: func(*tiered.Store) {}})
		slices.Sort(out)
		return out
	}
	one, two := labels([2]string{"k", "absent"}), labels([2]string{"user:42:cart", "other:key:x"})
	if !slices.Equal(one, two) {
		t.Fatalf("label sets differ with the keys:\n%v\n%v", one, two)
	}
	for _, s := range one {
		if strings.Contains(s, "user:42") || strings.Contains(s, "absent") {
			t.Fatalf("a key in a series: %s", s)
		}
	}
}
