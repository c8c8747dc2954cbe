package tiered

import (
	"testing"

	"github.com/tierstore/tierstore/internal/bus"
	"github.com/tierstore/tierstore/internal/nearcache"
)

// The public defaults are literals, so that go doc shows their values;
// the engines' own defaults must be the same.
func TestPublicDefaultsAreTheEnginesDefaults(t *testing.T) {
	if DefaultHealthCheckInterval != bus.DefaultHealthCheckInterval {
		t.Errorf("DefaultHealthCheckInterval %v, the bus's %v", DefaultHealthCheckInterval, bus.DefaultHealthCheckInterval)
	}
	if DefaultL1MaxBytes != nearcache.DefaultMaxBytes {
		t.Errorf("DefaultL1MaxBytes %d, the near cache's %d", DefaultL1MaxBytes, nearcache.DefaultMaxBytes)
	}
}
