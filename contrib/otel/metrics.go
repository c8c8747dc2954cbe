package tierstoreotel

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/tierstore/tierstore/invalidation"
	"github.com/tierstore/tierstore/session"
	"github.com/tierstore/tierstore/tiered"
)

// InstrumentMetrics makes s's metrics observable through the
// MeterProvider: tierstore.cache.requests {tierstore.level,
// tierstore.result}, tierstore.invalidations.received and .sent,
// tierstore.gaps {tierstore.gap.cause}, tierstore.live,
// tierstore.l1.memory.usage, tierstore.l1.entries, tierstore.l1.evictions,
// tierstore.redis.errors {tierstore.error.class} and the histogram
// tierstore.invalidation.proof_lag (seconds), each with
// tierstore.store.name. Call it once per store and MeterProvider.
//
// OpenTelemetry has no observable histogram, so the proof lag is a
// synchronous histogram fed by the store with each proof
// (tiered.Store.ObserveProofLag), a few times per HealthCheckInterval,
// off the request path; it counts the proofs from this call on, where
// the observable counters count from the store's start.
func InstrumentMetrics(s *tiered.Store, opts ...Option) error {
	if s == nil {
		return errors.New("tierstoreotel: InstrumentMetrics of a nil Store")
	}
	c := resolve(opts)
	m := c.mp.Meter(ScopeName)
	b := builder{m: m}
	requests := b.counter("tierstore.cache.requests", "{request}", "Reads by level (l1, redis) and result (hit, miss, stale, bypass).")
	gaps := b.counter("tierstore.gaps", "{gap}", "Times L1 was flushed because invalidations may have been missed, by cause.")
	redisErrors := b.counter("tierstore.redis.errors", "{error}", "Failed Redis reads and writes, by class (unavailable, refused, corrupt, other).")
	// The instruments read from one Stats field, with the store name only.
	single := []struct {
		i    metric.Int64Observable
		read func(tiered.Stats) uint64
	}{
		{b.counter("tierstore.invalidations.received", "{invalidation}", "Invalidations applied to this instance's L1."),
			func(st tiered.Stats) uint64 { return st.Invalidation.Received }},
		{b.counter("tierstore.invalidations.sent", "{invalidation}", "Writes this instance made, each reported to the instances holding the key."),
			func(st tiered.Stats) uint64 { return st.Invalidation.Sent }},
		{b.gauge("tierstore.live", "1", "1 while L1 may serve (the invalidation lease is held), else 0."),
			func(st tiered.Stats) uint64 { return boolUint(st.Invalidation.Live) }},
		{b.updown("tierstore.l1.memory.usage", "By", "Bytes charged to L1's entries (bounded by L1MaxBytes)."),
			func(st tiered.Stats) uint64 { return st.L1.Bytes }},
		{b.updown("tierstore.l1.entries", "{entry}", "Entries held in L1."),
			func(st tiered.Stats) uint64 { return st.L1.Entries }},
		{b.counter("tierstore.l1.evictions", "{entry}", "Entries L1 evicted to make room."),
			func(st tiered.Stats) uint64 { return st.L1.Evictions }},
		{b.counter("tierstore.failsafe.serves", "{read}", "Reads served from L1 under Config.FailSafe while Redis was unreachable."),
			func(st tiered.Stats) uint64 { return st.FailSafe.Serves }},
		{b.counter("tierstore.failsafe.activations", "{window}", "Fail-safe windows opened: times the store lost its proof with Config.FailSafe set."),
			func(st tiered.Stats) uint64 { return st.FailSafe.Activations }},
		{b.gauge("tierstore.failsafe.active", "1", "1 while a fail-safe window is open, else 0."),
			func(st tiered.Stats) uint64 { return boolUint(st.FailSafe.Active) }},
		{b.counter("tierstore.fast_failures", "{call}", "Calls failed at once because Redis was known to be unreachable."),
			func(st tiered.Stats) uint64 { return st.FailSafe.FastFails }},
		{b.gauge("tierstore.failing_fast", "1", "1 while calls fail fast (Redis known to be unreachable, until a probe reaches it), else 0."),
			func(st tiered.Stats) uint64 { return boolUint(st.FailSafe.Open) }},
	}
	lag, err := m.Float64Histogram("tierstore.invalidation.proof_lag", metric.WithUnit("s"),
		metric.WithDescription("Time from a heartbeat's send to its proof arriving by the invalidation path."),
		metric.WithExplicitBucketBoundaries(lagBounds()...))
	b.errs = append(b.errs, err)
	if err := errors.Join(b.errs...); err != nil {
		return err
	}

	// Attribute sets made once: a collection allocates none.
	store := c.attrs()
	var requestSets []attribute.Set
	for _, r := range (tiered.Stats{}).Requests() {
		requestSets = append(requestSets, c.attrs(attribute.String("tierstore.level", r.Level), attribute.String("tierstore.result", r.Result)))
	}
	var gapSets [invalidation.NumGapCauses]attribute.Set
	for cause := range gapSets {
		gapSets[cause] = c.attrs(attribute.String("tierstore.gap.cause", invalidation.GapCause(cause).String()))
	}
	var errorSets [tiered.NumErrorClasses]attribute.Set
	for class := range errorSets {
		errorSets[class] = c.attrs(attribute.String("tierstore.error.class", tiered.ErrorClass(class).String()))
	}

	observed := []metric.Observable{requests, gaps, redisErrors}
	for _, x := range single {
		observed = append(observed, x.i)
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := s.Stats()
		for i, r := range st.Requests() {
			o.ObserveInt64(requests, int64(r.Count), metric.WithAttributeSet(requestSets[i]))
		}
		for cause, n := range st.Invalidation.GapsBy {
			o.ObserveInt64(gaps, int64(n), metric.WithAttributeSet(gapSets[cause]))
		}
		for class, n := range st.Redis.ErrorsBy {
			o.ObserveInt64(redisErrors, int64(n), metric.WithAttributeSet(errorSets[class]))
		}
		for _, x := range single {
			o.ObserveInt64(x.i, int64(x.read(st)), metric.WithAttributeSet(store))
		}
		return nil
	}, observed...)
	if err != nil {
		return err
	}
	record := metric.WithAttributeSet(store)
	s.ObserveProofLag(func(d time.Duration) { lag.Record(context.Background(), d.Seconds(), record) })
	return nil
}

// lagBounds are invalidation.ProofLagBounds in seconds: the histogram's
// buckets are the store's own.
func lagBounds() []float64 {
	out := make([]float64, len(invalidation.ProofLagBounds))
	for i, b := range invalidation.ProofLagBounds {
		out[i] = b.Seconds()
	}
	return out
}

func boolUint(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// InstrumentSessionMetrics makes m's counters observable:
// tierstore.session.created, .renewed, .destroyed, .saves, .merges and
// .save_failures {tierstore.error.class}, each with tierstore.store.name.
func InstrumentSessionMetrics(m *session.Manager, opts ...Option) error {
	if m == nil {
		return errors.New("tierstoreotel: InstrumentSessionMetrics of a nil Manager")
	}
	c := resolve(opts)
	meter := c.mp.Meter(ScopeName)
	b := builder{m: meter}
	counter := b.counter
	created := counter("tierstore.session.created", "{session}", "New sessions saved for the first time.")
	renewed := counter("tierstore.session.renewed", "{session}", "Sessions given a new ID (Renew).")
	destroyed := counter("tierstore.session.destroyed", "{session}", "Sessions ended by Destroy (logout).")
	saves := counter("tierstore.session.saves", "{save}", "Sessions written (new or changed).")
	merges := counter("tierstore.session.merges", "{merge}", "Concurrent changes merged into a save or a Renew after a conflict.")
	failures := counter("tierstore.session.save_failures", "{failure}", "Requests whose session could not be saved, by class.")
	if err := errors.Join(b.errs...); err != nil {
		return err
	}
	store := metric.WithAttributeSet(c.attrs())
	var failureSets [session.NumFailureClasses]metric.ObserveOption
	for class := range failureSets {
		failureSets[class] = metric.WithAttributeSet(c.attrs(attribute.String("tierstore.error.class", session.FailureClass(class).String())))
	}
	_, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := m.Stats()
		o.ObserveInt64(created, int64(st.Created), store)
		o.ObserveInt64(renewed, int64(st.Renewed), store)
		o.ObserveInt64(destroyed, int64(st.Destroyed), store)
		o.ObserveInt64(saves, int64(st.Saves), store)
		o.ObserveInt64(merges, int64(st.Merges), store)
		for class, n := range st.SaveFailures {
			o.ObserveInt64(failures, int64(n), failureSets[class])
		}
		return nil
	}, created, renewed, destroyed, saves, merges, failures)
	return err
}

// builder makes instruments, keeping their errors for one check.
type builder struct {
	m    metric.Meter
	errs []error
}

func (b *builder) counter(name, unit, desc string) metric.Int64ObservableCounter {
	i, err := b.m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	b.errs = append(b.errs, err)
	return i
}

func (b *builder) gauge(name, unit, desc string) metric.Int64ObservableGauge {
	i, err := b.m.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
	b.errs = append(b.errs, err)
	return i
}

func (b *builder) updown(name, unit, desc string) metric.Int64ObservableUpDownCounter {
	i, err := b.m.Int64ObservableUpDownCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	b.errs = append(b.errs, err)
	return i
}
