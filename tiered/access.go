package tiered

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Reads served from L1 never reach Redis, so Redis's LRU or LFU eviction
// would see the busiest keys as idle and evict them first. The access
// reporter tells Redis about them: L1 hands it a key at most once per
// AccessReportInterval per entry (nearcache.Config.OnAccess), and it sends
// the keys in batches as TOUCH commands (which update the access time and
// frequency without changing the key, so they invalidate nothing).
//
// Reports are best effort by design: a full queue drops keys instead of
// slowing a hit, a failed batch is not retried, and nothing is sent while
// Redis's maxmemory-policy is not an LRU or LFU one (checked every
// policyCheckEvery), where access times decide nothing.
const (
	accessQueue      = 4096                   // keys waiting to be sent
	accessBatch      = 512                    // keys per pipeline
	accessFlushAfter = 100 * time.Millisecond // longest a key waits for its batch
	policyCheckEvery = time.Minute
)

type accessReporter struct {
	rdb     redis.UniversalClient
	prefix  string
	keys    chan string
	done    chan struct{}
	wg      sync.WaitGroup
	enabled atomic.Bool // the eviction policy uses access times (or is unknown)

	queued, sent, dropped atomic.Uint64
}

func newAccessReporter(rdb redis.UniversalClient, prefix string) *accessReporter {
	r := &accessReporter{rdb: rdb, prefix: prefix, keys: make(chan string, accessQueue), done: make(chan struct{})}
	r.enabled.Store(true)
	r.wg.Add(1)
	go r.run()
	return r
}

// report queues key, or drops it if the queue is full. It never blocks:
// it runs on the goroutine of an L1 hit.
func (r *accessReporter) report(key string) {
	select {
	case r.keys <- key:
		r.queued.Add(1)
	default:
		r.dropped.Add(1)
	}
}

func (r *accessReporter) close() {
	close(r.done)
	r.wg.Wait()
}

func (r *accessReporter) run() {
	defer r.wg.Done()
	r.checkPolicy()
	policy := time.NewTicker(policyCheckEvery)
	defer policy.Stop()
	batch := make([]string, 0, accessBatch)
	var flush <-chan time.Time
	var timer *time.Timer
	for {
		select {
		case <-r.done:
			return
		case <-policy.C:
			r.checkPolicy()
		case key := <-r.keys:
			batch = append(batch, key)
			if len(batch) < accessBatch {
				if flush == nil {
					timer = time.NewTimer(accessFlushAfter)
					flush = timer.C
				}
				continue
			}
			timer.Stop()
			r.send(batch)
			batch, flush = batch[:0], nil
		case <-flush:
			r.send(batch)
			batch, flush = batch[:0], nil
		}
	}
}

// send touches the batch's keys in one pipeline (one TOUCH per key, so
// that a Cluster client can route each to its slot).
func (r *accessReporter) send(batch []string) {
	if !r.enabled.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, key := range batch {
			p.Touch(ctx, r.prefix+key)
		}
		return nil
	})
	if err == nil {
		r.sent.Add(uint64(len(batch)))
	}
}

// checkPolicy enables reports for LRU and LFU eviction policies, and for
// a policy it cannot read (a proxy or provider may hide INFO), where a
// report costs little and may matter.
func (r *accessReporter) checkPolicy() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	info, err := r.rdb.Info(ctx, "memory").Result()
	if err != nil {
		return // keep the last decision
	}
	r.enabled.Store(usesAccessTimes(info))
}

// usesAccessTimes reports whether INFO memory output names a maxmemory
// policy that evicts by access time or frequency, or names none.
func usesAccessTimes(info string) bool {
	_, rest, ok := strings.Cut(info, "maxmemory_policy:")
	if !ok {
		return true
	}
	policy, _, _ := strings.Cut(rest, "\r")
	policy = strings.TrimSpace(policy)
	return strings.HasSuffix(policy, "-lru") || strings.HasSuffix(policy, "-lfu")
}
