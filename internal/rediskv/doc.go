// Package rediskv is the Redis side of tierstore: framed values under a
// key prefix in any go-redis UniversalClient, with native expiry, written
// by scripts that can publish an invalidation in the same atomic step, and
// go-redis errors mapped to tierstore's. l2 (the Redis-only store) and
// tiered both use it; the frame format and the scripts are mechanism, so
// they stay internal.
package rediskv
