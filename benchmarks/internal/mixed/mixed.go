// Package mixed runs the mixed workload (package workload) as a
// benchmark, on any stores, and reports what it measured in the same
// units for every benchmark that uses it.
package mixed

import (
	"context"
	"testing"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/internal/testenv/workload"
	"github.com/tierstore/tierstore/tiered"
)

// TieredStats is implemented by tiered stores and by wrappers of one:
// their Redis reads are counted.
type TieredStats interface {
	Stats() tiered.Stats
}

// Run runs the workload on instances b.N times (one iteration is one run
// of cfg.Duration) and reports its throughput, the CPU per operation in
// this process (the instances, the workload and anything else in it) and
// in srv's redis-server, the stale reads, and, for tiered stores, the
// Redis reads (L1 misses) each write causes on all instances. Throughput
// times CPU per operation is the number of cores in use, which the
// machine bounds.
func Run(b *testing.B, srv *redistest.Server, instances []tierstore.Store, cfg workload.Config) {
	l2Reads := func() (n uint64) {
		for _, s := range instances {
			if t, ok := s.(TieredStats); ok {
				st := t.Stats()
				n += st.Redis.Hits + st.Redis.Misses
			}
		}
		return n
	}
	var total workload.Result
	readsBefore, serverBefore := l2Reads(), srv.CPU()
	for b.Loop() {
		r, err := workload.Run(context.Background(), instances, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if r.Errors > 0 {
			b.Fatalf("%d errors", r.Errors)
		}
		total.Add(r)
	}
	ops := float64(total.Reads + total.Writes)
	b.ReportMetric(total.OpsPerSecond(), "ops/s")
	b.ReportMetric(float64(total.CPU.Nanoseconds())/ops, "client-cpu-ns/op")
	b.ReportMetric(float64((srv.CPU()-serverBefore).Nanoseconds())/ops, "server-cpu-ns/op")
	b.ReportMetric(100*total.StaleShare(), "%stale")
	if _, ok := instances[0].(TieredStats); ok && total.Writes > 0 {
		b.ReportMetric(float64(l2Reads()-readsBefore)/float64(total.Writes), "redis-reads/write")
	}
}
