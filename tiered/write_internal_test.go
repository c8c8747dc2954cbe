package tiered

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/invalidation"
)

// A past expiry makes a write a delete before its value is looked at, as
// in l2: an oversized value with a past expiry deletes the key.
func TestPastExpiryDeletesWhateverTheValueSize(t *testing.T) {
	ctx := context.Background()
	_, c := redistest.Miniredis(t)
	s := newStore(t, c, Config{Invalidation: invalidation.OwnWrites, MaxValueBytes: 10})
	big, past := make([]byte, 11), time.Now().Add(-time.Hour)
	set(t, s, "k", "v")
	if err := s.Set(ctx, "k", big, past); err != nil {
		t.Fatalf("Set(oversized, past expiry) = %v, want the delete's nil", err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, tierstore.ErrNotFound) {
		t.Fatalf("after Set(oversized, past expiry), Get = %v; want ErrNotFound", err)
	}
	_, v, _, err := s.GetVersion(ctx, "j", tierstore.NoVersion)
	if !errors.Is(err, tierstore.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := s.SetIf(ctx, "j", big, past, v); err != nil {
		t.Fatalf("SetIf(oversized, past expiry, absent) = %v, want the delete's nil", err)
	}
	if err := s.Set(ctx, "k", big, time.Time{}); !errors.Is(err, tierstore.ErrTooLarge) {
		t.Fatalf("Set(oversized) = %v, want ErrTooLarge", err)
	}
}
