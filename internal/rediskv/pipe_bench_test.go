//go:build unix

package rediskv_test

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore/internal/rediskv"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
)

// benchSet is a write as the store makes them: a script that stores its
// argument. Its own script, so that the benchmark measures the Pipe
// whatever the store's scripts do.
var benchSet = redis.NewScript(`redis.call('SET', KEYS[1], ARGV[1]) return 1`)

// BenchmarkPipe: 32 goroutines writing 500-byte values through one Pipe,
// each call a script (EVALSHA). cpu-ns/op is this process's CPU time (user
// and system) per write: the client's cost, the server's excluded.
func BenchmarkPipe(b *testing.B) {
	srv := redistest.Start(b)
	conns := rediskv.NewConns()
	b.Cleanup(conns.Abort)
	client := conns.Client(srv.Client(nil).Options(), func(o *redis.Options) {
		o.PoolSize, o.MinIdleConns, o.MaxIdleConns = 1, 0, 1
		o.ReadTimeout, o.WriteTimeout = max(o.ReadTimeout, 0), max(o.WriteTimeout, 0)
	})
	b.Cleanup(func() { _ = client.Close() })
	p := rediskv.NewPipe(client, nil)
	b.Cleanup(p.Close)
	value := make([]byte, 500)
	ctx := context.Background()
	if err := p.Run(ctx, rediskv.Call{Script: benchSet, Keys: []string{"bench:warm"}, Args: []any{value}}, func(*redis.Cmd) {}).Err(); err != nil {
		b.Fatal(err) // loads the script, dials
	}
	var next atomic.Int64
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	cpu := processCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		key := []string{"bench:" + strconv.FormatInt(next.Add(1), 10)}
		args := []any{value}
		for pb.Next() {
			if err := p.Run(ctx, rediskv.Call{Script: benchSet, Keys: key, Args: args}, func(*redis.Cmd) {}).Err(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
}

// processCPU returns the CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
