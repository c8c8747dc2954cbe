package l2_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/storetest"
)

func TestConformanceRealCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	c := cluster.Client(nil)
	storetest.Run(t, func(t *testing.T) tierstore.Store {
		err := c.ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
			return m.FlushAll(ctx).Err()
		})
		if err != nil {
			t.Fatal(err)
		}
		return newStore(t, c)
	})
}
