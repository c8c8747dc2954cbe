package nearcache_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a store or bus starts must be gone after Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
