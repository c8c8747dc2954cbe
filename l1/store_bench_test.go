package l1_test

import (
	"bytes"
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tierstore/tierstore/l1"
)

// The benchmarks use 500-byte values, a typical encoded session, and
// session-length keys. Compare with another store by running the same
// file against it:
//
//	go test -run '^$' -bench 'Set|Get' -count 6 ./l1 | tee new.out && benchstat new.out

const benchKeys = 1024

func benchKey(prefix string, i int) string {
	return prefix + "0123456789abcdef0123456789abcdef:" + strconv.Itoa(i)
}

func benchStore(b *testing.B) *l1.Store {
	b.Helper()
	s, err := l1.New(l1.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkSet measures writes of new keys (the store fills, then every
// write evicts) and overwrites of keys present, serially and from every
// core. refused/op counts writes that failed.
func BenchmarkSet(b *testing.B) {
	ctx := context.Background()
	value := bytes.Repeat([]byte("v"), 500)
	expiry := time.Now().Add(time.Hour)
	run := func(b *testing.B, s *l1.Store, key func(g, i int) string, parallel bool) {
		var refused, goroutines atomic.Int64
		b.ReportAllocs()
		if parallel {
			b.RunParallel(func(pb *testing.PB) {
				g := int(goroutines.Add(1))
				for i := 0; pb.Next(); i++ {
					if s.Set(ctx, key(g, i), value, expiry) != nil {
						refused.Add(1)
					}
				}
			})
		} else {
			i := 0
			for b.Loop() {
				if s.Set(ctx, key(0, i), value, expiry) != nil {
					refused.Add(1)
				}
				i++
			}
		}
		b.ReportMetric(float64(refused.Load())/float64(b.N), "refused/op")
	}
	newKey := func(g, i int) string { return benchKey("g"+strconv.Itoa(g)+":", i) }
	var present [benchKeys]string
	for i := range present {
		present[i] = benchKey("", i)
	}
	overwrite := func(g, i int) string { return present[(g*(benchKeys/8)+i)%benchKeys] }
	fill := func(s *l1.Store) *l1.Store {
		for _, k := range present {
			if err := s.Set(ctx, k, value, expiry); err != nil {
				b.Fatal(err)
			}
		}
		return s
	}
	b.Run("new-key", func(b *testing.B) { run(b, benchStore(b), newKey, false) })
	b.Run("new-key/parallel", func(b *testing.B) { run(b, benchStore(b), newKey, true) })
	b.Run("overwrite", func(b *testing.B) { run(b, fill(benchStore(b)), overwrite, false) })
	b.Run("overwrite/parallel", func(b *testing.B) { run(b, fill(benchStore(b)), overwrite, true) })
}

// BenchmarkGet measures hits on 1024 present keys, copying (Get) and
// lending (View), serially and from every core.
func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	value := bytes.Repeat([]byte("v"), 500)
	s := benchStore(b)
	var keys [benchKeys]string
	for i := range keys {
		keys[i] = benchKey("", i)
		if err := s.Set(ctx, keys[i], value, time.Now().Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	ops := []struct {
		name string
		op   func(key string) error
	}{
		{"Get", func(k string) error { _, err := s.Get(ctx, k); return err }},
		{"View", func(k string) error { return s.View(ctx, k, func([]byte) error { return nil }) }},
	}
	for _, o := range ops {
		b.Run(o.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := o.op(keys[i%benchKeys]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(o.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			var goroutines atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				g := int(goroutines.Add(1))
				for i := g * (benchKeys / 8); pb.Next(); i++ {
					if err := o.op(keys[i%benchKeys]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
