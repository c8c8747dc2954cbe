// Package invalidation documents how tiered keeps every instance's
// in-process cache coherent with Redis. It has no API: the mechanism (the
// message format, the subscription, the lease) is internal to tierstore,
// so that it can change without breaking users. What users can rely on is
// this:
//
//   - Every write through a tiered.Store (Set, Delete, an earlier expiry
//     through Touch) publishes an invalidation in the same atomic Redis
//     step as the write: a failed write publishes nothing, and no crash can
//     separate the two.
//   - Every other instance drops its cached copy when the message arrives;
//     until then it may serve the old value. That delay is the pub/sub
//     delivery delay, well under a millisecond on a local network.
//   - Redis pub/sub may lose messages (a dropped connection, a full output
//     buffer). Each instance pings its subscription and holds a lease of
//     tiered.Config.HealthCheckInterval: only while the lease holds does
//     it serve from memory. A lost or re-made subscription, an expired
//     lease or a message of a newer format than this release reads is a
//     gap, and a gap drops the whole in-process cache before it serves
//     again. So under faults an instance serves a stale value for at most
//     min(L1TTL, HealthCheckInterval).
//   - tiered.Store.Live reports whether the lease holds, tiered.Store.Stats
//     counts invalidations sent and received and gaps.
//
// Only writes made through a tiered.Store publish. A change made by
// another program, an operator or an l2.Store reaches the other instances'
// caches only when their entries expire (L1TTL); see docs/consistency.md.
package invalidation
