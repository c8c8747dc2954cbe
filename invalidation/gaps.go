package invalidation

import "time"

// GapCause is why a gap happened: what made the store drop its memory
// and its lease (Stats.GapsBy counts each).
type GapCause uint8

// The causes of gaps. A lost connection is usually followed by a
// GapResubscribed (or GapReregistered) when it is made again: one
// outage counts in both.
const (
	// GapConnectionLost: the subscription's connection, or a tracked
	// connection whose writes and reads Redis reports, broke.
	GapConnectionLost GapCause = iota
	// GapLeaseExpired: no heartbeat came back within
	// HealthCheckInterval (heartbeats late: a slow or stalled Redis, a
	// slow OnInvalidate, a network holding replies).
	GapLeaseExpired
	// GapResubscribed: the subscription was made again (after its
	// connection was lost, or was refused and then permitted).
	GapResubscribed
	// GapReplaced: heartbeats Redis acknowledged did not arrive (the
	// registration or its redirect lost): the subscription was replaced.
	GapReplaced
	// GapReregistered: the tracking registration was made again (a
	// tracked connection re-dialled).
	GapReregistered
	// GapFlushed: Redis invalidated everything (FLUSHDB, FLUSHALL, a
	// full resync from a master) or the dataset was replaced (SWAPDB,
	// another epoch).
	GapFlushed
	// GapMalformed: a message this version cannot read (a newer peer).
	GapMalformed
	// GapTopology: the masters of a Cluster changed.
	GapTopology

	// NumGapCauses is the number of causes: the length of Stats.GapsBy.
	NumGapCauses
)

var gapCauseNames = [NumGapCauses]string{
	"connection_lost", "lease_expired", "resubscribed", "replaced", "reregistered", "flushed", "malformed", "topology",
}

// String returns the cause's name, a metric attribute value:
// "connection_lost", "lease_expired", "resubscribed", "replaced",
// "reregistered", "flushed", "malformed" or "topology".
func (c GapCause) String() string {
	if c < NumGapCauses {
		return gapCauseNames[c]
	}
	return "unknown"
}

// ProofLagBounds are the upper bounds of ProofLag's buckets: from a
// loopback round trip to past the default HealthCheckInterval.
var ProofLagBounds = [...]time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2500 * time.Millisecond,
}

// ProofLag is a histogram of the time from a heartbeat's send to its
// proof being heard (acknowledged by Redis and its report back on the
// subscription, from every registration that follows it): how long the
// invalidation path takes end to end, and how much of
// HealthCheckInterval it leaves. All counts are cumulative.
type ProofLag struct {
	// Counts[i] counts the proofs of lag at most ProofLagBounds[i] and
	// more than the bound before it; the last counts those above every
	// bound. Not cumulative across buckets.
	Counts [len(ProofLagBounds) + 1]uint64
	// Count is the number of proofs (the sum of Counts); Sum their lags.
	Count uint64
	Sum   time.Duration
}
