package redistest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tierstore/tierstore"
)

// Markers tells when an instance has applied the reports of every write
// made before a moment, without counting reports (one more report may be
// the instance's own write reported back late): set the instance's
// tiered.Config.OnInvalidate to OnInvalidate, then call CaughtUp.
type Markers struct{ m sync.Map } // key -> chan struct{}, closed when applied

// markerSeq names each marker key apart, across every Markers of a test
// binary sharing a Redis.
var markerSeq atomic.Int64

// OnInvalidate is the instance's Config.OnInvalidate.
func (w *Markers) OnInvalidate(key string) {
	if ch, ok := w.m.LoadAndDelete(key); ok {
		close(ch.(chan struct{}))
	}
}

// CaughtUp returns once reader, the instance whose OnInvalidate w is, has
// applied the reports of every write made before the call: reader reads a
// fresh marker key (so that per-key tracking follows it for reader),
// writer writes it, and reader waits for the marker's report. Redis
// reports the changes of a reader's keys in the order it makes them, so
// every earlier report was applied first.
func (w *Markers) CaughtUp(t testing.TB, reader, writer tierstore.Store) {
	t.Helper()
	ctx := context.Background()
	key := fmt.Sprintf("redistest-marker-%d", markerSeq.Add(1))
	ch := make(chan struct{})
	w.m.Store(key, ch)
	if _, err := reader.Get(ctx, key); err != nil && !errors.Is(err, tierstore.ErrNotFound) {
		t.Fatalf("marker read: %v", err)
	}
	if err := writer.Set(ctx, key, []byte("x"), time.Now().Add(time.Minute)); err != nil {
		t.Fatalf("marker write: %v", err)
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second): // a guard against a hung test, not a timing assumption
		t.Fatalf("timed out waiting for an instance to apply the invalidation of %s", key)
	}
}
