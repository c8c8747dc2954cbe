// Package invalidation is the public side of how tiered keeps every
// instance's in-process cache coherent with Redis: what a user observes
// (Stats, ErrNotLive) and the promise below. The mechanism (Redis's
// client tracking, the subscription, the lease) is internal to
// tierstore, so that it can change without breaking users. What users
// can rely on is this:
//
//   - Every change to a key under tiered.Config.KeyPrefix, by anyone,
//     reaches every instance: writes through any tiered.Store, l2.Store or
//     another program, DEL and UNLINK by an operator, EXPIRE and its
//     kind, RENAME, expiry and eviction by Redis itself, FLUSHDB,
//     FLUSHALL, SWAPDB, and a resync that replaces the dataset. Redis
//     reports them itself (server-assisted client tracking, in broadcast
//     mode for the key prefix), also on each master of a Cluster.
//   - An instance drops its cached copy when the report arrives; until
//     then it may serve the old value. That delay is the pub/sub delivery
//     delay, well under a millisecond on a local network. An instance is
//     not told of its own writes: it keeps serving what it wrote.
//   - Reports may be lost (a dropped connection, a full output buffer, a
//     lost registration, a permission withdrawn). Four times per
//     tiered.Config.HealthCheckInterval each instance changes a
//     heartbeat key of its own through another connection; only when
//     Redis's report of that change comes back on its subscription, behind
//     every report before it, is its lease renewed, until that heartbeat's
//     time plus the interval. Only while the lease holds does it serve
//     from memory: a pong proves nothing. A lost subscription or
//     registration, an expired lease, a flush or another dataset is a gap,
//     and a gap drops the whole in-process cache before it serves again.
//     So under any fault, misconfiguration or permission change an
//     instance serves a stale value for at most min(L1TTL,
//     HealthCheckInterval); SWAPDB, which Redis does not report, is caught
//     by each heartbeat, within HealthCheckInterval/4.
//   - A misconfiguration (an ACL without the channel, a renamed
//     SUBSCRIBE, credentials) is tiered.New's error, wrapping
//     tierstore.ErrRefused, when Redis answers; at run time it makes the
//     instance non-Live, counted and logged (tiered.Store.Health says why).
//   - tiered.Store.Live reports whether the lease holds;
//     tiered.Store.Health returns an error wrapping ErrNotLive and the
//     cause while it does not; tiered.Store.Stats().Invalidation counts
//     invalidations, gaps and heartbeats (Stats).
//
// With tiered.Config.Invalidation = invalidation.OwnWrites (for a Redis that refuses CLIENT
// TRACKING), only writes through a tiered.Store invalidate, by a pub/sub
// message published in the same atomic step as the write; a change made
// any other way reaches an instance's cache only when its entry expires
// (L1TTL). See docs/consistency.md.
package invalidation
