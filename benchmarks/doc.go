// Package benchmarks compares tierstore with peer libraries, measured in
// one run against one real redis-server. It is its own module so that the
// core module's dependencies stay free of the peers.
//
//	cd benchmarks && go test -run '^$' -bench . -benchmem -count 6 | tee sessions.out
//	benchstat sessions.out
package benchmarks
