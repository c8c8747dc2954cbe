package l1_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The store starts no goroutines; the tests' own must all be gone.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
