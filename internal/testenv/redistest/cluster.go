package redistest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of redis-server processes on 127.0.0.1, one
// master per node and no replicas.
type Cluster struct {
	t     testing.TB
	Nodes []*Server
}

// StartCluster starts a Cluster of n masters (at least 3, as Redis
// requires for a healthy cluster) with the 16384 slots split evenly, and
// waits until every node reports it healthy.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 3 {
		t.Fatalf("redistest: a cluster needs at least 3 masters, got %d", n)
	}
	c := &Cluster{t: t}
	for range n {
		c.Nodes = append(c.Nodes, Start(t,
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000",
		))
	}
	const slots = 16384
	for i, node := range c.Nodes {
		first, last := i*slots/n, (i+1)*slots/n-1
		node.Do("CLUSTER", "ADDSLOTSRANGE", first, last)
		if i > 0 {
			node.Do("CLUSTER", "MEET", "127.0.0.1", c.Nodes[0].Port())
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for !c.healthy() {
		if time.Now().After(deadline) {
			t.Fatal("redistest: cluster not healthy within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}

func (c *Cluster) healthy() bool {
	for _, node := range c.Nodes {
		info, ok := node.Do("CLUSTER", "INFO").(string)
		if !ok || !strings.Contains(info, "cluster_state:ok") ||
			!strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(len(c.Nodes))) {
			return false
		}
	}
	return true
}

// Addrs returns the nodes' addresses.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// Client returns a new Cluster client, closed when the test ends. opts may
// be nil; its Addrs are set.
func (c *Cluster) Client(opts *redis.ClusterOptions) *redis.ClusterClient {
	if opts == nil {
		opts = &redis.ClusterOptions{}
	}
	opts.Addrs = c.Addrs()
	cc := redis.NewClusterClient(opts)
	c.t.Cleanup(func() { _ = cc.Close() })
	// Wait until the client has loaded a complete slot map.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := cc.ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
			return m.Ping(ctx).Err()
		})
		if err == nil {
			return cc
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("redistest: cluster client not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// String describes the cluster for test logs.
func (c *Cluster) String() string { return fmt.Sprintf("cluster%v", c.Addrs()) }
