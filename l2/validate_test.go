package l2_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/rediskv"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/l2"
)

// countHook counts the commands a client sends, pipelined or not.
type countHook struct{ n atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// call is one entry point of an l2.Store with a key and a value.
type call struct {
	name string
	do   func(ctx context.Context, s *l2.Store, key string, value []byte) error
}

func calls() []call {
	hour, past := time.Now().Add(time.Hour), time.Now().Add(-time.Hour)
	return []call{
		{"Get", func(ctx context.Context, s *l2.Store, k string, _ []byte) error { _, err := s.Get(ctx, k); return err }},
		{"GetVersion", func(ctx context.Context, s *l2.Store, k string, _ []byte) error {
			_, _, _, err := s.GetVersion(ctx, k, tierstore.NoVersion)
			return err
		}},
		{"Set", func(ctx context.Context, s *l2.Store, k string, v []byte) error { return s.Set(ctx, k, v, hour) }},
		{"Set(no expiry)", func(ctx context.Context, s *l2.Store, k string, v []byte) error { return s.Set(ctx, k, v, time.Time{}) }},
		{"Set(past expiry)", func(ctx context.Context, s *l2.Store, k string, v []byte) error { return s.Set(ctx, k, v, past) }},
		{"SetIf", func(ctx context.Context, s *l2.Store, k string, v []byte) error {
			_, err := s.SetIf(ctx, k, v, hour, tierstore.NoVersion)
			return err
		}},
		{"SetIf(past expiry)", func(ctx context.Context, s *l2.Store, k string, v []byte) error {
			_, err := s.SetIf(ctx, k, v, past, tierstore.NoVersion)
			return err
		}},
		{"Delete", func(ctx context.Context, s *l2.Store, k string, _ []byte) error { return s.Delete(ctx, k) }},
		{"DeleteIf", func(ctx context.Context, s *l2.Store, k string, _ []byte) error {
			return s.DeleteIf(ctx, k, tierstore.NoVersion)
		}},
		{"Touch", func(ctx context.Context, s *l2.Store, k string, _ []byte) error { return s.Touch(ctx, k, hour) }},
		{"Touch(past expiry)", func(ctx context.Context, s *l2.Store, k string, _ []byte) error { return s.Touch(ctx, k, past) }},
	}
}

// The Redis client under a Store checks nothing itself, so every entry
// point must refuse bad input before a command is sent: an invalid key
// (whatever the expiry), a done context, and an oversized value.
func TestBadInputSendsNothingToRedis(t *testing.T) {
	_, c := redistest.Miniredis(t)
	s, err := l2.New(l2.Config{Redis: c, KeyPrefix: "test:", MaxValueBytes: 8})
	if err != nil {
		t.Fatal(err)
	}
	h := &countHook{}
	c.AddHook(h)
	ctx := context.Background()
	refused := func(what string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s = %v, want %v", what, err, want)
		}
		if n := h.n.Swap(0); n != 0 {
			t.Errorf("%s sent %d commands to Redis, want none", what, n)
		}
	}
	for _, key := range []string{"", strings.Repeat("k", 1<<20), "\x00\x01", "a\tb", "\xc3\x28"} {
		for _, c := range calls() {
			refused(c.name+"(invalid key)", c.do(ctx, s, key, []byte("v")), tierstore.ErrInvalidKey)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for _, c := range calls() {
		refused(c.name+"(cancelled)", c.do(cancelled, s, "k", []byte("v")), context.Canceled)
	}
	refused("Keys(cancelled)", s.Keys(cancelled, func(string) bool { return true }), context.Canceled)
	for _, c := range calls() {
		if strings.HasPrefix(c.name, "Set") && !strings.Contains(c.name, "past") {
			refused(c.name+"(9 bytes)", c.do(ctx, s, "k", []byte("123456789")), tierstore.ErrTooLarge)
		}
	}
	// And valid input does reach Redis, so the count above could fail.
	if err := s.Set(ctx, "k", []byte("12345678"), time.Time{}); err != nil || h.n.Load() == 0 {
		t.Fatalf("Set of a valid value: %v after %d commands", err, h.n.Load())
	}
}

// The size error names the limit and the size, never the key.
func TestTooLargeSaysWhatTheLimitIs(t *testing.T) {
	_, c := redistest.Miniredis(t)
	s, err := l2.New(l2.Config{Redis: c, MaxValueBytes: 8})
	if err != nil {
		t.Fatal(err)
	}
	if s.MaxValueBytes() != 8 {
		t.Fatalf("MaxValueBytes = %d, want 8", s.MaxValueBytes())
	}
	err = s.Set(context.Background(), "secret-key", make([]byte, 9), time.Time{})
	if !errors.Is(err, tierstore.ErrTooLarge) {
		t.Fatalf("Set(9 bytes) = %v, want ErrTooLarge", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "9 bytes") || !strings.Contains(msg, "MaxValueBytes (8)") || strings.Contains(msg, "secret-key") {
		t.Fatalf("error %q should give the size and the limit, not the key", msg)
	}
}

// A write whose expiry is past deletes, conditionally for SetIf.
func TestPastExpiryDeletes(t *testing.T) {
	_, c := redistest.Miniredis(t)
	s := newStore(t, c)
	ctx := context.Background()
	past := time.Now().Add(-time.Millisecond)
	if err := s.Set(ctx, "k", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(ctx, "k", []byte("w"), past); err != nil {
		t.Fatalf("Set(past) = %v", err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, tierstore.ErrNotFound) {
		t.Fatalf("Get after Set(past) = %v, want ErrNotFound", err)
	}
	v, err := s.SetIf(ctx, "k", []byte("v"), time.Time{}, tierstore.NoVersion)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetIf(ctx, "k", []byte("w"), past, v+1); !errors.Is(err, tierstore.ErrConflict) {
		t.Fatalf("SetIf(past, another version) = %v, want ErrConflict", err)
	}
	if nv, err := s.SetIf(ctx, "k", []byte("w"), past, v); err != nil || nv != 0 {
		t.Fatalf("SetIf(past, its version) = %d, %v; want 0, nil", nv, err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, tierstore.ErrNotFound) {
		t.Fatalf("Get after SetIf(past) = %v, want ErrNotFound", err)
	}
}

// An l2.Store and a tiered.Store share data with their default prefixes.
func TestDefaultKeyPrefixIsTiereds(t *testing.T) {
	if l2.DefaultKeyPrefix != rediskv.DefaultKeyPrefix {
		t.Fatalf("l2.DefaultKeyPrefix %q, the Redis client's %q", l2.DefaultKeyPrefix, rediskv.DefaultKeyPrefix)
	}
	_, c := redistest.Miniredis(t)
	s, err := l2.New(l2.Config{Redis: c})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Set(ctx, "k", []byte("v"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Exists(ctx, l2.DefaultKeyPrefix+"k").Result(); err != nil || n != 1 {
		t.Fatalf("EXISTS %sk = %d, %v; want 1", l2.DefaultKeyPrefix, n, err)
	}
}
