package tiered

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/invalidation"
)

// BenchmarkHeartbeats measures what the lease costs an idle fleet: the
// Redis commands, bytes Redis sends and Redis CPU per instance per second
// while n instances only prove they are Live, at the default
// HealthCheckInterval. Each op is one interval of the whole fleet.
//
//	go test -run '^$' -bench Heartbeats -benchtime 5x ./tiered
func BenchmarkHeartbeats(b *testing.B) {
	for _, n := range []int{1, 8, 32} {
		for _, own := range []bool{false, true} {
			mode := "tracking"
			if own {
				mode = "own-writes"
			}
			b.Run(fmt.Sprintf("%s/instances=%d", mode, n), func(b *testing.B) {
				srv := redistest.Start(b)
				stores := make([]*Store, n)
				for i := range stores {
					stores[i] = newStore(b, srv.Client(nil), Config{Invalidation: invalidation.ModeIf(own), HealthCheckInterval: DefaultHealthCheckInterval, AccessReportInterval: -1})
				}
				redistest.WaitLive(b, toLivers(stores)...)
				cmds0, out0 := commandsAndOutput(b, srv)
				cpu0 := srv.CPU()
				b.ResetTimer()
				start := time.Now()
				for range b.N {
					time.Sleep(DefaultHealthCheckInterval)
				}
				elapsed := time.Since(start).Seconds()
				b.StopTimer()
				cmds1, out1 := commandsAndOutput(b, srv)
				cpu := srv.CPU() - cpu0
				per := float64(n) * elapsed
				b.ReportMetric(float64(cmds1-cmds0)/per, "cmds/instance/s")
				b.ReportMetric(float64(out1-out0)/per, "redis-out-B/instance/s")
				b.ReportMetric(float64(cpu.Microseconds())/per, "redis-µs/instance/s")
				for _, s := range stores {
					if !s.Live() {
						b.Fatal("an instance lost its lease while idle")
					}
				}
			})
		}
	}
}

func toLivers(stores []*Store) []redistest.Liver {
	l := make([]redistest.Liver, len(stores))
	for i, s := range stores {
		l[i] = s
	}
	return l
}

// commandsAndOutput returns Redis's counts of commands processed and of
// bytes sent to clients (INFO stats).
func commandsAndOutput(b *testing.B, srv *redistest.Server) (cmds, out int64) {
	info, _ := srv.Do("INFO", "stats").(string)
	field := func(name string) int64 {
		_, rest, ok := strings.Cut(info, "\n"+name+":")
		if !ok {
			b.Fatalf("no %s in INFO stats", name)
		}
		line, _, _ := strings.Cut(rest, "\r")
		v, _ := strconv.ParseInt(line, 10, 64)
		return v
	}
	return field("total_commands_processed"), field("total_net_output_bytes")
}
