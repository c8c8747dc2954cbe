package invalidation

import "errors"

// ErrNotLive is wrapped, beside the cause, by the error tiered.Store.Health
// returns while the store may not serve from memory: its subscription or
// heartbeats failed (the cause then also wraps tierstore.ErrRefused or
// tierstore.ErrUnavailable), or a gap ended its lease and no heartbeat
// has renewed it yet. Reads still work then: they go to Redis.
var ErrNotLive = errors.New("tierstore: not live")

// Stats counts what keeps an instance's memory coherent with Redis
// (tiered.Stats.Invalidation). All counters are cumulative.
type Stats struct {
	// Sent counts the writes this instance made: Redis reports each to
	// the instances that hold the key (PerKey, this one included) or to
	// every other instance (Broadcast); with OwnWrites, each published
	// its invalidation.
	Sent uint64
	// Received counts the invalidations applied to this instance's
	// memory, as Redis reported them (with OwnWrites, as peers published
	// them): changes made by others and, with PerKey (or Broadcast on
	// Redis 7.0, for a conditional write), the report back of this
	// instance's own writes.
	Received uint64
	// Gaps counts the times this instance may have missed an
	// invalidation (a lost subscription or registration, an expired
	// lease, a flush, another dataset): each dropped all of its memory.
	Gaps uint64
	// GapsBy counts the gaps by cause (indexed by GapCause); they sum to
	// Gaps.
	GapsBy [NumGapCauses]uint64
	// Heartbeats counts the heartbeats Redis acknowledged (four per
	// HealthCheckInterval while healthy); HeartbeatsHeard those that came
	// back on the subscription, each renewing the lease.
	Heartbeats, HeartbeatsHeard uint64
	// Refusals counts the commands of the subscription or heartbeats that
	// Redis refused (an ACL, a renamed command, credentials): see
	// tiered.Store.Health.
	Refusals uint64
	// ProofLag: how long heartbeats took to be proven (see ProofLag).
	ProofLag ProofLag
	// Live: the store holds its lease and may serve from memory.
	Live bool
}
