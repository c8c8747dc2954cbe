package l2_test

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
)

func v2frame(version uint64, value string) string {
	b := []byte{0xB2}
	b = binary.BigEndian.AppendUint64(b, version)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum([]byte(value), crc32.MakeTable(crc32.Castagnoli)))
	return string(append(b, value...))
}

// A key at the largest version a read accepts (2^53 - 1: a forged frame,
// or a clock past 2255) is never given a version reads refuse: the
// conditional write fails loudly instead.
func TestSetIfPastTheVersionRangeFailsLoudly(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	c := srv.Client(nil)
	s := newStore(t, c)
	if err := c.Set(ctx, "test:k", v2frame(1<<53-1, "a"), 0).Err(); err != nil {
		t.Fatal(err)
	}
	_, v, _, err := s.GetVersion(ctx, "k", tierstore.NoVersion)
	if err != nil || v != 1<<53-1 {
		t.Fatalf("GetVersion = %d, %v", v, err)
	}
	if nv, err := s.SetIf(ctx, "k", []byte("b"), time.Time{}, v); !errors.Is(err, tierstore.ErrRefused) {
		t.Fatalf("SetIf past the version range = %d, %v; want ErrRefused", nv, err)
	}
	if b, got, _, err := s.GetVersion(ctx, "k", tierstore.NoVersion); err != nil || string(b) != "a" || got != v {
		t.Fatalf("after the refused SetIf GetVersion = %q at %d, %v", b, got, err)
	}
}

// Foreign data under a key: a clear error (ErrCorrupt), or a conflict for
// bytes that are no frame, never a panic; a 1 MiB value round-trips.
func TestConditionalWritesOnForeignData(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	c := srv.Client(nil)
	s := newStore(t, c)
	if err := c.HSet(ctx, "test:k", "f", "v").Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.GetVersion(ctx, "k", 0); !errors.Is(err, tierstore.ErrCorrupt) {
		t.Errorf("GetVersion on a hash: %v, want ErrCorrupt", err)
	}
	if _, err := s.SetIf(ctx, "k", []byte("x"), time.Time{}, 0); !errors.Is(err, tierstore.ErrCorrupt) {
		t.Errorf("SetIf on a hash: %v, want ErrCorrupt", err)
	}
	if err := s.DeleteIf(ctx, "k", 0); !errors.Is(err, tierstore.ErrCorrupt) {
		t.Errorf("DeleteIf on a hash: %v, want ErrCorrupt", err)
	}
	if err := c.Set(ctx, "test:k", "", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetIf(ctx, "k", []byte("x"), time.Time{}, 0); !errors.Is(err, tierstore.ErrConflict) {
		t.Errorf("SetIf(absent) on an empty string: %v, want ErrConflict", err)
	}
	big := make([]byte, tierstore.DefaultMaxValueBytes)
	v, err := s.SetIf(ctx, "big", big, time.Now().Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	if b, got, _, err := s.GetVersion(ctx, "big", 0); err != nil || len(b) != len(big) || got != v {
		t.Fatalf("big: %d bytes at %d, %v", len(b), got, err)
	}
}
