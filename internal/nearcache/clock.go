package nearcache

import (
	"sync/atomic"
	"time"
)

// Reading the monotonic clock is a large share of the cost of a hit (see
// docs/benchmarks.md). A hit therefore compares the entry's
// deadline with a coarse clock that a background goroutine refreshes every
// clockTick, and reads the real clock only when the deadline is within
// clockSlack of the coarse time.
//
// The coarse time is a past reading, so it is never ahead of the real
// clock. An entry is served on the coarse time only if its deadline is
// more than clockSlack after it: that is correct whenever the refreshing
// goroutine is less than clockSlack late, which leaves room for 20 ticks.
// A goroutine delayed longer than that (a process stopped with SIGSTOP, a
// paused VM) can let an entry outlive its deadline by the excess of the
// delay, until the goroutine runs again; the bus's health-check lease has
// the same dependency on timely timers.
//
// The goroutine parks after clockIdle without hits, so an idle process
// does not wake every tick; the next hit reads the real clock and wakes it.
const (
	clockTick  = 10 * time.Millisecond
	clockSlack = 200 * time.Millisecond
	clockIdle  = time.Second
)

// clock is the coarse clock of a Cache. Times are ns since born, on the
// monotonic clock.
type clock struct {
	born       time.Time
	tick, idle time.Duration // clockTick and clockIdle; tests shorten them
	coarse     atomic.Int64  // a recent reading, refreshed every tick while on
	on         atomic.Bool   // the refreshing goroutine runs (coarse is fresh)
	wake       chan struct{}
	done       chan struct{}
	exited     chan struct{}
}

func newClock() *clock {
	return &clock{born: time.Now(), tick: clockTick, idle: clockIdle, wake: make(chan struct{}, 1), done: make(chan struct{}), exited: make(chan struct{})}
}

// now reads the real clock.
func (c *clock) now() int64 { return int64(time.Since(c.born)) }

// passed reports whether deadline (ns since born) has passed. Deadlines
// more than clockSlack after the coarse time are judged on it alone.
func (c *clock) passed(deadline int64) bool {
	if c.on.Load() {
		if deadline-c.coarse.Load() > int64(clockSlack) {
			return false
		}
	} else {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	return c.now() >= deadline
}

// run refreshes the coarse time until stop. activity returns a count that
// grows while the clock is used; when it stays put for clockIdle the
// goroutine parks until passed wakes it.
func (c *clock) run(activity func() uint64) {
	defer close(c.exited)
	defer c.on.Store(false)
	t := time.NewTicker(c.tick)
	defer t.Stop()
	last, idle := activity(), time.Duration(0)
	for {
		select {
		case <-c.done:
			return
		case <-c.wake:
			// A wake-up while running: a hit saw the clock off just
			// before it came back on.
			continue
		case <-t.C:
		}
		c.coarse.Store(c.now())
		if n := activity(); n != last {
			last, idle = n, 0
			continue
		}
		if idle += c.tick; idle < c.idle {
			continue
		}
		c.on.Store(false)
		select {
		case <-c.done:
			return
		case <-c.wake:
		}
		// Fresh time first, then on: a hit that sees on sees this time.
		c.coarse.Store(c.now())
		c.on.Store(true)
		t.Reset(c.tick)
		last, idle = activity(), 0
	}
}

// start runs the clock's goroutine, initially on.
func (c *clock) start(activity func() uint64) {
	c.coarse.Store(c.now())
	c.on.Store(true)
	go c.run(activity)
}

// stop ends the goroutine and waits for it. Later hits read the real clock.
func (c *clock) stop() {
	c.on.Store(false)
	close(c.done)
	<-c.exited
}
