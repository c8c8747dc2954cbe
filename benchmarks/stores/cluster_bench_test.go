package stores_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/invalidation"
	"github.com/tierstore/tierstore/tiered"
)

// BenchmarkClusterInvalidation writes b.N keys, spread over the slots,
// through instance A of a real Cluster with 3 and then 6 masters, and
// waits until instance B, which read every key before, has heard every
// write. It reports, per write,
// what the invalidations cost the cluster: the messages its nodes
// forwarded to each other over the cluster bus (CLUSTER INFO's
// cluster_stats_messages_publish_sent, summed over the nodes), the
// invalidations B received, and the CPU of all nodes. With tracking
// (per-key, the default) a write is reported by the master that owns the key
// alone; with invalidation.OwnWrites it is a PUBLISH, which every node forwards.
func BenchmarkClusterInvalidation(b *testing.B) {
	for _, masters := range []int{3, 6} {
		cluster := redistest.StartCluster(b, masters)
		for _, mode := range []string{"tracking", "publish"} {
			b.Run(fmt.Sprintf("masters=%d/%s", masters, mode), func(b *testing.B) {
				prefix := "cluster-" + mode + ":"
				open := func() *tiered.Store {
					s, err := tiered.New(tiered.Config{
						Redis: cluster.Client(&redis.ClusterOptions{ContextTimeoutEnabled: true}), KeyPrefix: prefix,
						Invalidation: invalidation.ModeIf(mode == "publish"),
					})
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { s.Close() })
					redistest.WaitLive(b, s)
					return s
				}
				a, other := open(), open()
				ctx := context.Background()
				value := make([]byte, benchValueSize)
				// B reads every key first (absent keys too): in per-key
				// mode Redis reports a change only to the instances that
				// read the key.
				for i := range b.N {
					if _, err := other.Get(ctx, "k"+strconv.Itoa(i)); err != nil && !errors.Is(err, tierstore.ErrNotFound) {
						b.Fatal(err)
					}
				}
				busBefore, cpuBefore := clusterBusPublishes(b, cluster), clusterCPU(cluster)
				heardBefore := other.Stats().Invalidation.Received
				b.ResetTimer()
				for i := range b.N {
					if err := a.Set(ctx, "k"+strconv.Itoa(i), value, time.Now().Add(time.Hour)); err != nil {
						b.Fatal(err)
					}
				}
				redistest.Eventually(b, "B hears every write", func() bool {
					return other.Stats().Invalidation.Received-heardBefore >= uint64(b.N)
				})
				n := float64(b.N)
				b.ReportMetric(float64(clusterBusPublishes(b, cluster)-busBefore)/n, "bus-msgs/write")
				b.ReportMetric(float64(other.Stats().Invalidation.Received-heardBefore)/n, "received/write")
				b.ReportMetric(float64((clusterCPU(cluster)-cpuBefore).Microseconds())/n, "server-cpu-µs/write")
			})
		}
	}
}

// clusterBusPublishes sums the PUBLISH messages the nodes sent each other.
func clusterBusPublishes(b *testing.B, c *redistest.Cluster) (n int64) {
	for _, node := range c.Nodes {
		info, _ := node.Do("CLUSTER", "INFO").(string)
		for line := range strings.SplitSeq(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster_stats_messages_publish_sent:"); ok {
				x, _ := strconv.ParseInt(v, 10, 64)
				n += x
			}
		}
	}
	return n
}

func clusterCPU(c *redistest.Cluster) (d time.Duration) {
	for _, node := range c.Nodes {
		d += node.CPU()
	}
	return d
}
