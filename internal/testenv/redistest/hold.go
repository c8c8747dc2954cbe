package redistest

import (
	"sync"
	"testing"
)

// Invalidations holds back an instance's invalidations for as long as a
// test needs, so that the instance's copies stay stale for certain: set
// tiered.Config.OnInvalidate to OnInvalidate, then Hold. Redis reports
// changes in order, so while the instance's subscription waits in
// OnInvalidate on the marker key, every later report queues behind it.
// Give the instance a long HealthCheckInterval, so that it stays Live
// (serving its stale copies) while held.
type Invalidations struct {
	// Marker is the key (without the key prefix) whose invalidation the
	// subscription waits on. Default "hold".
	Marker string

	mu      sync.Mutex
	entered chan struct{} // closed when the subscription waits; nil when not armed
	release chan struct{}
}

// OnInvalidate is the instance's Config.OnInvalidate.
func (h *Invalidations) OnInvalidate(key string) {
	h.mu.Lock()
	entered, release := h.entered, h.release
	if key != h.marker() || entered == nil {
		h.mu.Unlock()
		return
	}
	h.entered = nil // armed once
	h.mu.Unlock()
	close(entered)
	<-release
}

func (h *Invalidations) marker() string {
	if h.Marker == "" {
		return "hold"
	}
	return h.Marker
}

// Hold calls change, which must change the marker key (through another
// instance, or a plain client with the prefix) after the held instance
// read it (so that per-key tracking reports it there), and returns once the
// instance's subscription waits on its report. release, also called when
// the test ends, lets the reports through; it may be called more than once.
func (h *Invalidations) Hold(t testing.TB, change func(marker string)) (release func()) {
	t.Helper()
	entered, gate := make(chan struct{}), make(chan struct{})
	h.mu.Lock()
	h.entered, h.release = entered, gate
	h.mu.Unlock()
	change(h.marker())
	<-entered
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	return release
}
