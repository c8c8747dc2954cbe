package tiered

import (
	"context"
	"fmt"
	"testing"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/redistest"
	"github.com/tierstore/tierstore/storetest"
)

func TestConformanceRealCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	n := 0
	storetest.Run(t, func(t *testing.T) tierstore.Store {
		n++ // a fresh prefix per subtest instead of flushing every master
		return newStore(t, cluster.Client(nil), Config{OwnWritesOnly: true, KeyPrefix: fmt.Sprintf("c%d:", n)})
	})
}

// Writes land on the node owning each key's slot; their invalidations must
// reach instances subscribed through any node.
func TestClusterInvalidationsReachEveryInstance(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	a := newStore(t, cluster.Client(nil), Config{OwnWritesOnly: true})
	b := newStore(t, cluster.Client(nil), Config{OwnWritesOnly: true})
	keys := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot"} // spread over the nodes
	for _, k := range keys {
		set(t, a, k, "v1")
		cached(t, b, k)
	}
	for _, k := range keys {
		set(t, a, k, "v2")
	}
	// With L1TTL at its default of a minute, only the invalidations can
	// make B see v2 within eventually's 10s.
	for _, k := range keys {
		redistest.Eventually(t, "B reads the new "+k, func() bool { return get(t, b, k) == "v2" })
	}
	if err := a.Delete(context.Background(), "alpha"); err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, "B drops the deleted key", func() bool { return get(t, b, "alpha") == "<not found>" })
}
