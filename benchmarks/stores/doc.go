// Package stores holds the benchmarks of tierstore's own stores, side by
// side in one run on a real redis-server: memory only (l1), Redis only
// (l2) and tiered, with hits, writes, the 95/5 mixed workload (also with
// Redis 1 ms away) and the invalidation delay. See docs/benchmarks.md.
//
//	cd benchmarks && go test -run '^$' -bench . -count 6 ./stores | tee stores.out && benchstat stores.out
package stores
