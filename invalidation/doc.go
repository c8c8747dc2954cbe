// Package invalidation is the public side of how tiered keeps every
// instance's in-process cache coherent with Redis: what a user observes
// (Stats, ErrNotLive), the modes (Mode) and the promise below. The
// mechanism (Redis's client tracking, the subscription, the lease) is
// internal to tierstore, so that it can change without breaking users.
// What users can rely on is this:
//
//   - Every change to a key under tiered.Config.KeyPrefix, by anyone,
//     reaches every instance that holds the key: writes through any
//     tiered.Store, l2.Store or another program, DEL and UNLINK by an
//     operator, EXPIRE and its kind, RENAME, expiry and eviction by
//     Redis itself, FLUSHDB, FLUSHALL, SWAPDB, and a resync that
//     replaces the dataset. Redis reports them itself (server-assisted
//     client tracking), also on each master of a Cluster.
//   - With PerKey, the default, Redis reports a change of a key only to
//     the instances that read or wrote it since its last change: a write
//     costs messages in proportion to the instances holding the key, not
//     to the fleet, and Redis keeps a tracking table of the keys each
//     instance follows (bounded by tracking-table-max-keys; a key Redis
//     stops following is reported as changed). With Broadcast, Redis
//     reports every change under the prefix to every instance and keeps
//     no table: each write costs a message per instance.
//   - An instance drops its cached copy when the report arrives; until
//     then it may serve the old value. That delay is the pub/sub delivery
//     delay, well under a millisecond on a local network.
//   - Redis may report an instance's own write back to it: with PerKey
//     whenever the instance followed the key (a conditional write reads
//     it first, so always), and with Broadcast on Redis 7.0 for a
//     conditional write (a script). A report does not say whose change it is, so the instance
//     drops its copy as for any report and, when that copy was what it
//     wrote, reads the key again off the request path: it goes on serving
//     what it wrote from memory, and a peer's change made in the same
//     instant is never mistaken for its own.
//   - Reports may be lost (a dropped connection, a full output buffer, a
//     lost registration, a permission withdrawn). Four times per
//     tiered.Config.HealthCheckInterval each instance changes a
//     heartbeat key of its own through another connection; only when
//     Redis's report of that change comes back on its subscription (with
//     PerKey, one report per registration), behind every report before
//     it, is its lease renewed, until that heartbeat's time plus the
//     interval. Only while the lease holds does it serve from memory: a
//     pong proves nothing. A lost subscription or registration, an
//     expired lease, a flush or another dataset is a gap, and a gap drops
//     the whole in-process cache before it serves again. So under any
//     fault, misconfiguration or permission change an instance serves a
//     stale value for at most min(L1TTL, HealthCheckInterval); SWAPDB,
//     which Redis does not report, is caught by each heartbeat, within
//     HealthCheckInterval/4.
//   - A misconfiguration (an ACL without the channel, a renamed
//     SUBSCRIBE, credentials) is tiered.New's error, wrapping
//     tierstore.ErrRefused, when Redis answers; at run time it makes the
//     instance non-Live, counted and logged (tiered.Store.Health says why).
//   - tiered.Store.Live reports whether the lease holds;
//     tiered.Store.Health returns an error wrapping ErrNotLive and the
//     cause while it does not; tiered.Store.Stats().Invalidation counts
//     invalidations, gaps and heartbeats (Stats).
//
// With OwnWrites (for a Redis that refuses CLIENT TRACKING), only writes
// through a tiered.Store invalidate, by a pub/sub message published in
// the same atomic step as the write; a change made any other way reaches
// an instance's cache only when its entry expires (L1TTL). See
// docs/consistency.md.
package invalidation
