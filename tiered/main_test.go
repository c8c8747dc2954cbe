package tiered

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a store or bus starts must be gone after Close. go-redis
// redials a pool whose dials kept failing on a goroutine that sleeps a
// second between attempts and sees only then that its client was closed
// (TestNetworkTimeoutIsNotReadAgain makes dials fail): not the store's.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"))
}
