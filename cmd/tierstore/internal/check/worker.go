package check

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/invalidation"
	"github.com/tierstore/tierstore/l2"
	"github.com/tierstore/tierstore/tiered"
)

// keyName is the name of hot key k.
func keyName(k int) string {
	return fmt.Sprintf("check:%03d:", k) + strings.Repeat("k", 290)
}

// encodeValue stores a version in a value.
func encodeValue(version uint64, inst int) []byte {
	b := make([]byte, 9, 64)
	binary.BigEndian.PutUint64(b, version)
	b[8] = byte(inst)
	return append(b, "tierstore-check"...)
}

func decodeVersion(b []byte) (uint64, bool) {
	if len(b) < 9 {
		return 0, false
	}
	return binary.BigEndian.Uint64(b), true
}

// Op is one write: a Set of Version, or a Delete (which takes a version
// too). Times are wall-clock Unix nanoseconds, comparable across the
// processes of one machine.
type Op struct {
	Version    uint64
	Del        bool
	Start, End int64
	OK         bool
	Err        Failure // when not OK
}

// Read is one Get. Version 0 means not found.
type Read struct {
	Key, Inst  int32
	Version    uint64
	Start, End int64
	Err        Failure // Succeeded unless it failed
	// FailSafeSince, for a read the fail-safe served, is when its
	// instance lost its proof (FailSafeStats.Since); 0 for any other.
	FailSafeSince int64
}

// Failure is how an operation failed, in the terms of the failure table
// of docs/consistency.md.
type Failure uint8

const (
	Succeeded   Failure = iota
	Unavailable         // tierstore.ErrUnavailable: Redis did not answer
	Refused             // tierstore.ErrRefused: a permission, credentials
	// Unexplained is any other error, or a value that is not one the
	// checker wrote: a broken promise.
	Unexplained
)

func failureOf(err error) Failure {
	switch {
	case err == nil:
		return Succeeded
	case errors.Is(err, tierstore.ErrUnavailable):
		return Unavailable
	case errors.Is(err, tierstore.ErrRefused):
		return Refused
	default:
		return Unexplained
	}
}

// instState is what the faults observe of an instance.
type instState struct {
	Live bool
	// Refused: Health wraps tierstore.ErrRefused.
	Refused        bool
	Gaps, Refusals uint64
	Health         string // why the instance is not Live; empty while it is
	// FailSafeActivations: tiered.FailSafeStats.Activations.
	FailSafeActivations uint64
}

// load is what a worker is told to do: the part of Config it needs.
type load struct {
	// Addr is Redis's address, or a proxy's in front of it; the
	// instances log in as User with Password.
	Addr, User, Password        string
	ID, Instances, Keys         int
	ReadersPerInstance          int
	ReadPause, WritePause       time.Duration
	DeleteRatio, ColdWriteShare float64
	HealthCheckInterval, L1TTL  time.Duration
	Invalidation                invalidation.Mode
	FailSafe                    time.Duration
}

func loadOf(cfg *Config, addr string, id int) load {
	return load{
		Addr: addr, User: checkUser, Password: checkPassword, ID: id, Instances: cfg.Instances, Keys: cfg.Keys,
		ReadersPerInstance: cfg.ReadersPerInstance, ReadPause: cfg.ReadPause, WritePause: cfg.WritePause,
		DeleteRatio: cfg.DeleteRatio, ColdWriteShare: cfg.ColdWriteShare, HealthCheckInterval: cfg.HealthCheckInterval, L1TTL: cfg.L1TTL,
		Invalidation: cfg.Invalidation, FailSafe: cfg.FailSafe,
	}
}

// worker is one instance under load: a tiered store with its own Redis
// client, one writer of the keys it owns (key % Instances == ID, so each
// key's versions are written in order by one writer) and readers of every
// key.
type worker struct {
	l      load
	store  *tiered.Store
	rdb    *redis.Client
	slow   atomic.Bool // makes OnInvalidate block: a slow subscriber
	paused atomic.Bool // the readers skip the cold keys
	count  atomic.Int64
	burst  chan chan struct{} // asks the writer to write every cold key it owns

	// outside makes the writer write as another program would: sets
	// through admin (the Redis-only store), deletes with a plain DEL.
	outside atomic.Bool
	admin   *l2.Store
	// hold parks the writer (closing the channel it receives once parked)
	// until release.
	hold, release chan chan struct{}

	// stopFill, while the worker reads the filler keys (readFill), ends
	// that reading; fillDone is closed when it has.
	stopFill, fillDone chan struct{}

	// readOne serialises the reads when the fail-safe is on, so that
	// the Stats around each tell whether the fail-safe served it.
	readOne sync.Mutex

	ops   map[int][]Op
	reads [][]Read
	stop  chan struct{}
	wg    sync.WaitGroup
}

func startWorker(l load) (*worker, error) {
	w := &worker{
		l: l, ops: map[int][]Op{}, stop: make(chan struct{}), burst: make(chan chan struct{}),
		hold: make(chan chan struct{}), release: make(chan chan struct{}),
	}
	w.rdb = redis.NewClient(&redis.Options{
		Addr: l.Addr, Username: l.User, Password: l.Password, ContextTimeoutEnabled: true, MaxRetries: -1,
		DialTimeout: 500 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond,
		// A dialer with no timeout of its own, which honours only its
		// context: the store must bound its dials itself.
		Dialer: (&net.Dialer{}).DialContext,
	})
	var err error
	w.store, err = tiered.New(tiered.Config{
		Redis: w.rdb, KeyPrefix: "check:", L1TTL: l.L1TTL,
		HealthCheckInterval: l.HealthCheckInterval, Invalidation: l.Invalidation, FailSafe: l.FailSafe,
		OnInvalidate: func(string) {
			for w.slow.Load() {
				time.Sleep(10 * time.Millisecond)
			}
		},
	})
	if err != nil {
		w.rdb.Close()
		return nil, err
	}
	if w.admin, err = l2.New(l2.Config{Redis: w.rdb, KeyPrefix: "check:"}); err != nil {
		w.store.Close()
		w.rdb.Close()
		return nil, err
	}
	return w, nil
}

// run starts the writer and readers.
func (w *worker) run() {
	w.wg.Go(w.write)
	w.reads = make([][]Read, w.l.ReadersPerInstance)
	for i := range w.reads {
		w.wg.Go(func() { w.reads[i] = w.readLoop(uint64(i)) })
	}
}

// finish stops the load and returns the records.
func (w *worker) finish() (map[int][]Op, []Read) {
	close(w.stop)
	w.wg.Wait()
	var all []Read
	for _, r := range w.reads {
		all = append(all, r...)
	}
	return w.ops, all
}

func (w *worker) close() {
	w.readFill(false)
	w.slow.Store(false)
	w.store.Close()
	w.rdb.Close()
}

func (w *worker) state() instState {
	st := w.store.Stats()
	is := instState{
		Live: st.Invalidation.Live, Gaps: st.Invalidation.Gaps, Refusals: st.Invalidation.Refusals,
		FailSafeActivations: st.FailSafe.Activations,
	}
	if err := w.store.Health(); err != nil {
		is.Health, is.Refused = err.Error(), errors.Is(err, tierstore.ErrRefused)
	}
	return is
}

// probe writes and reads back a key of its own, once live, and reads one
// nobody writes: the read of the key just written is an L1 hit, the other
// goes to Redis (misses are not cached), so both paths work.
func (w *worker) probe(ctx context.Context) error {
	if !w.store.Live() {
		return errors.New("not live")
	}
	key := fmt.Sprintf("probe:%d", w.l.ID)
	want := []byte(time.Now().String())
	if err := w.store.Set(ctx, key, want, time.Now().Add(time.Minute)); err != nil {
		return err
	}
	got, err := w.store.Get(ctx, key)
	if err != nil {
		return err
	}
	if string(got) != string(want) {
		return errors.New("probe read back a different value")
	}
	if _, err := w.store.Get(ctx, "probe:absent"); !errors.Is(err, tierstore.ErrNotFound) {
		return fmt.Errorf("probe read of a key never written: %v", err)
	}
	return nil
}

func (w *worker) write() {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(uint64(w.l.ID), 7))
	// Half the keys are hot, half cold: a cold key is written about once
	// a second, so that a lost invalidation of it leaves an instance stale
	// for long enough to exceed any bound, unless a gap flushed it.
	var hot, cold []int
	for k := range w.l.Keys {
		switch {
		case k%w.l.Instances != w.l.ID:
		case k < w.l.Keys/2:
			hot = append(hot, k)
		default:
			cold = append(cold, k)
		}
	}
	for {
		select {
		case <-w.stop:
			return
		case done := <-w.burst:
			for _, k := range cold {
				w.writeKey(ctx, k, false)
			}
			close(done)
		case parked := <-w.hold:
			close(parked)
			select {
			case done := <-w.release:
				close(done)
			case <-w.stop:
				return
			}
		case <-time.After(w.l.WritePause):
			k := hot[rng.IntN(len(hot))]
			if rng.Float64() < w.l.ColdWriteShare {
				k = cold[rng.IntN(len(cold))]
			}
			w.writeKey(ctx, k, rng.Float64() < w.l.DeleteRatio)
		}
	}
}

// writeKey writes the next version of key k, or deletes it, and records it.
func (w *worker) writeKey(ctx context.Context, k int, del bool) {
	o := Op{Version: uint64(len(w.ops[k])) + 1, Del: del}
	o.Start = time.Now().UnixNano()
	var err error
	switch outside := w.outside.Load(); {
	case del && outside:
		err = w.rdb.Del(ctx, "check:"+keyName(k)).Err()
	case del:
		err = w.store.Delete(ctx, keyName(k))
	case outside:
		err = w.admin.Set(ctx, keyName(k), encodeValue(o.Version, w.l.ID), time.Now().Add(time.Hour))
	default:
		err = w.store.Set(ctx, keyName(k), encodeValue(o.Version, w.l.ID), time.Now().Add(time.Hour))
	}
	o.End = time.Now().UnixNano()
	o.OK, o.Err = err == nil, failureOf(err)
	w.ops[k] = append(w.ops[k], o)
	w.count.Add(1)
}

// holdWrites parks the writer (true) or lets it go on (false), and waits
// until it has.
func (w *worker) holdWrites(hold bool) {
	ch, done := w.release, make(chan struct{})
	if hold {
		ch = w.hold
	}
	select {
	case ch <- done:
		<-done
	case <-w.stop:
	}
}

// deletedAll records that every key this worker owns was deleted between
// start and end by someone else (a FLUSHDB), as the next version of each.
// The writer must be held.
func (w *worker) deletedAll(start, end int64) {
	for k := range w.l.Keys {
		if k%w.l.Instances == w.l.ID {
			w.ops[k] = append(w.ops[k], Op{Version: uint64(len(w.ops[k])) + 1, Del: true, Start: start, End: end, OK: true})
		}
	}
}

// readFill starts (true) or stops (false, returning once it has) reading
// the filler keys of the output-buffer fault in a loop, so that Redis,
// with per-key tracking, reports their changes to this instance (see
// outputBuffer). Their values are no Store's: every read fails
// (tierstore.ErrCorrupt; ErrNotFound before the first write) and caches
// nothing, so each goes to Redis, which follows
// the key again. The reads are not recorded.
func (w *worker) readFill(on bool) {
	if w.stopFill != nil {
		close(w.stopFill)
		<-w.fillDone
		w.stopFill, w.fillDone = nil, nil
	}
	if !on {
		return
	}
	stop, done := make(chan struct{}), make(chan struct{})
	w.stopFill, w.fillDone = stop, done
	var keys []string
	for _, n := range fillNames() {
		keys = append(keys, strings.TrimPrefix(n, "check:"))
	}
	// Several readers, whose reads share the store's batches, so that the
	// victim follows the keys again about as fast as fill changes them.
	var wg sync.WaitGroup
	for r := range fillReaders {
		wg.Go(func() {
			for i := r; ; i++ {
				select {
				case <-stop:
					return
				case <-w.stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, err := w.store.Get(ctx, keys[i%len(keys)])
				cancel()
				if err != nil && !errors.Is(err, tierstore.ErrCorrupt) && !errors.Is(err, tierstore.ErrNotFound) {
					// Not a read Redis answered: no spinning on it.
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(done)
	}()
}

// fillReaders is the number of goroutines readFill reads with.
const fillReaders = 4

// writeCold makes the writer write every cold key it owns, and waits.
func (w *worker) writeCold() {
	done := make(chan struct{})
	select {
	case w.burst <- done:
		<-done
	case <-w.stop:
	}
}

// read reads key k, and, with the fail-safe on, learns whether the
// fail-safe served it.
func (w *worker) read(ctx context.Context, k int) (Read, []byte, error) {
	if w.l.FailSafe > 0 {
		w.readOne.Lock()
		defer w.readOne.Unlock()
	}
	var before uint64
	if w.l.FailSafe > 0 {
		before = w.store.Stats().FailSafe.Serves
	}
	rd := Read{Key: int32(k), Inst: int32(w.l.ID), Start: time.Now().UnixNano()}
	v, err := w.store.Get(ctx, keyName(k))
	rd.End = time.Now().UnixNano()
	if w.l.FailSafe > 0 {
		if st := w.store.Stats().FailSafe; st.Serves > before {
			rd.FailSafeSince = st.Since.UnixNano()
		}
	}
	return rd, v, err
}

func (w *worker) readLoop(seed uint64) []Read {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(uint64(w.l.ID), seed))
	reads := make([]Read, 0, 1<<16)
	for {
		select {
		case <-w.stop:
			return reads
		default:
		}
		k := rng.IntN(w.l.Keys)
		if w.paused.Load() && k >= w.l.Keys/2 {
			continue
		}
		rd, v, err := w.read(ctx, k)
		switch {
		case errors.Is(err, tierstore.ErrNotFound):
		case err != nil:
			rd.Err = failureOf(err)
		default:
			ver, ok := decodeVersion(v)
			rd.Version = ver
			if !ok {
				rd.Err = Unexplained
			}
		}
		reads = append(reads, rd)
		w.count.Add(1)
		if w.l.ReadPause > 0 {
			time.Sleep(w.l.ReadPause)
		}
	}
}
