package tracking

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a tracker starts must be gone after Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
