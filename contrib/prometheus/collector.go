// Package tierstoreprom exports a tiered.Store's and a session.Manager's
// counters as Prometheus metrics: a prometheus.Collector that reads
// Stats() at each scrape, so the store pays nothing per request for it.
// The figures and their meaning are those of contrib/otel, in Prometheus
// naming; docs/operations.md lists them. The module also ships a Grafana
// dashboard (dashboards/tierstore.json) and alert rules
// (alerts/tierstore.rules.yml) over these metrics.
package tierstoreprom

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tierstore/tierstore/invalidation"
	"github.com/tierstore/tierstore/session"
	"github.com/tierstore/tierstore/tiered"
)

// DefaultStoreName is the store label of a collector made without
// WithStoreName.
const DefaultStoreName = "default"

// Option configures a collector.
type Option func(*options)

type options struct{ name string }

// WithStoreName sets the value of the store label, the only label that
// tells stores apart (for several stores in one process, say sessions
// and a cache). Default DefaultStoreName. Never put a key, a session ID
// or an instance ID here: Prometheus's target labels (job, instance)
// tell instances apart.
func WithStoreName(name string) Option { return func(o *options) { o.name = name } }

func resolve(opts []Option) options {
	o := options{name: DefaultStoreName}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// collector is the Store's prometheus.Collector.
type collector struct {
	s      *tiered.Store
	single []single // the series without labels of their own

	requests, gaps, redisErrors, proofLag *prometheus.Desc
}

// single is a series read from one Stats field.
type single struct {
	desc *prometheus.Desc
	kind prometheus.ValueType
	read func(tiered.Stats) uint64
}

func desc(name, help string, o options, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, prometheus.Labels{"store": o.name})
}

// NewCollector returns a collector of s's metrics. Register it once per
// store, with a distinct WithStoreName for each store of a process.
func NewCollector(s *tiered.Store, opts ...Option) prometheus.Collector {
	o := resolve(opts)
	counter := func(name, help string, read func(tiered.Stats) uint64) single {
		return single{desc(name, help, o), prometheus.CounterValue, read}
	}
	gauge := func(name, help string, read func(tiered.Stats) uint64) single {
		return single{desc(name, help, o), prometheus.GaugeValue, read}
	}
	return &collector{
		s: s,
		single: []single{
			counter("tierstore_invalidations_received_total", "Invalidations applied to this instance's L1.",
				func(st tiered.Stats) uint64 { return st.Invalidation.Received }),
			counter("tierstore_invalidations_sent_total", "Writes this instance made, each reported to the instances holding the key.",
				func(st tiered.Stats) uint64 { return st.Invalidation.Sent }),
			gauge("tierstore_live", "1 while L1 may serve (the invalidation lease is held), else 0.",
				func(st tiered.Stats) uint64 { return boolUint(st.Invalidation.Live) }),
			gauge("tierstore_l1_bytes", "Bytes charged to L1's entries (bounded by L1MaxBytes).",
				func(st tiered.Stats) uint64 { return st.L1.Bytes }),
			gauge("tierstore_l1_entries", "Entries held in L1.",
				func(st tiered.Stats) uint64 { return st.L1.Entries }),
			counter("tierstore_l1_evictions_total", "Entries L1 evicted to make room.",
				func(st tiered.Stats) uint64 { return st.L1.Evictions }),
			counter("tierstore_failsafe_serves_total", "Reads served from L1 under Config.FailSafe while Redis was unreachable.",
				func(st tiered.Stats) uint64 { return st.FailSafe.Serves }),
			counter("tierstore_failsafe_activations_total", "Fail-safe windows opened: times the store lost its proof with Config.FailSafe set.",
				func(st tiered.Stats) uint64 { return st.FailSafe.Activations }),
			gauge("tierstore_failsafe_active", "1 while a fail-safe window is open, else 0.",
				func(st tiered.Stats) uint64 { return boolUint(st.FailSafe.Active) }),
			counter("tierstore_fast_failures_total", "Calls failed at once because Redis was known to be unreachable.",
				func(st tiered.Stats) uint64 { return st.FailSafe.FastFails }),
			gauge("tierstore_failing_fast", "1 while calls fail fast (Redis known to be unreachable, until a probe reaches it), else 0.",
				func(st tiered.Stats) uint64 { return boolUint(st.FailSafe.Open) }),
		},
		requests:    desc("tierstore_cache_requests_total", "Reads by level (l1, redis) and result (hit, miss, stale, bypass).", o, "level", "result"),
		gaps:        desc("tierstore_gaps_total", "Times L1 was flushed because invalidations may have been missed, by cause.", o, "cause"),
		redisErrors: desc("tierstore_redis_errors_total", "Failed Redis reads and writes, by class (unavailable, refused, corrupt, other).", o, "class"),
		proofLag:    desc("tierstore_invalidation_proof_lag_seconds", "Time from a heartbeat's send to its proof arriving by the invalidation path.", o),
	}
}

func boolUint(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.requests, c.gaps, c.redisErrors, c.proofLag} {
		ch <- d
	}
	for _, m := range c.single {
		ch <- m.desc
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, r := range st.Requests() {
		counter(c.requests, r.Count, r.Level, r.Result)
	}
	for cause, n := range st.Invalidation.GapsBy {
		counter(c.gaps, n, invalidation.GapCause(cause).String())
	}
	for class, n := range st.Redis.ErrorsBy {
		counter(c.redisErrors, n, tiered.ErrorClass(class).String())
	}
	for _, m := range c.single {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, float64(m.read(st)))
	}
	ch <- proofLagHistogram(c.proofLag, st.Invalidation.ProofLag)
}

// proofLagHistogram is p as a Prometheus histogram: cumulative buckets
// at invalidation.ProofLagBounds, in seconds.
func proofLagHistogram(d *prometheus.Desc, p invalidation.ProofLag) prometheus.Metric {
	buckets := make(map[float64]uint64, len(invalidation.ProofLagBounds))
	var cum uint64
	for i, bound := range invalidation.ProofLagBounds {
		cum += p.Counts[i]
		buckets[bound.Seconds()] = cum
	}
	return prometheus.MustNewConstHistogram(d, p.Count, p.Sum.Seconds(), buckets)
}

// sessionCollector is the Manager's prometheus.Collector.
type sessionCollector struct {
	m                           *session.Manager
	created, renewed, destroyed *prometheus.Desc
	saves, merges, failures     *prometheus.Desc
}

// NewSessionCollector returns a collector of m's session metrics.
func NewSessionCollector(m *session.Manager, opts ...Option) prometheus.Collector {
	o := resolve(opts)
	return &sessionCollector{
		m:         m,
		created:   desc("tierstore_sessions_created_total", "New sessions saved for the first time.", o),
		renewed:   desc("tierstore_sessions_renewed_total", "Sessions given a new ID (Renew).", o),
		destroyed: desc("tierstore_sessions_destroyed_total", "Sessions ended by Destroy (logout).", o),
		saves:     desc("tierstore_session_saves_total", "Sessions written (new or changed).", o),
		merges:    desc("tierstore_session_merges_total", "Concurrent changes merged into a save or a Renew after a conflict.", o),
		failures:  desc("tierstore_session_save_failures_total", "Requests whose session could not be saved, by class.", o, "class"),
	}
}

func (c *sessionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.created, c.renewed, c.destroyed, c.saves, c.merges, c.failures} {
		ch <- d
	}
}

func (c *sessionCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.m.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.created, st.Created)
	counter(c.renewed, st.Renewed)
	counter(c.destroyed, st.Destroyed)
	counter(c.saves, st.Saves)
	counter(c.merges, st.Merges)
	for class, n := range st.SaveFailures {
		counter(c.failures, n, session.FailureClass(class).String())
	}
}
