package nearcache

import (
	"sync/atomic"
	"testing"
	"time"
)

// While the coarse time lags the real clock by less than clockSlack,
// passed is exact: deadlines near the coarse time are read on the real
// clock.
func TestClockPassedIsExactWhileCoarseTimeLagsLessThanSlack(t *testing.T) {
	c := newClock() // not started: the test sets the coarse time itself
	c.on.Store(true)
	for _, lag := range []time.Duration{0, time.Millisecond, clockSlack / 2, clockSlack - time.Millisecond} {
		now := c.now()
		c.coarse.Store(now - int64(lag))
		for _, d := range []time.Duration{-time.Hour, -clockSlack, -time.Millisecond, -1} {
			if !c.passed(now + int64(d)) {
				t.Errorf("lag %v: deadline %v ago not passed", lag, -d)
			}
		}
		for _, d := range []time.Duration{50 * time.Millisecond, time.Hour} {
			if c.passed(now + int64(d)) {
				t.Errorf("lag %v: deadline in %v passed", lag, d)
			}
		}
	}
}

// Off, the clock reads the real clock, and asks its goroutine to run.
func TestClockOffReadsTheRealClockAndWakes(t *testing.T) {
	c := newClock()
	c.coarse.Store(-int64(time.Hour)) // a coarse time that must not be used
	if !c.passed(c.now() - 1) {
		t.Error("a passed deadline not passed with the clock off")
	}
	select {
	case <-c.wake:
	default:
		t.Error("passed with the clock off did not wake the goroutine")
	}
}

// The goroutine refreshes the coarse time, parks when idle, and comes back
// on with a fresh time when a read wakes it.
func TestClockParksWhenIdleAndWakesOnUse(t *testing.T) {
	c := newClock()
	c.tick, c.idle = time.Millisecond, 20*time.Millisecond
	// activity changes at every read while busy: as hits would.
	var busy atomic.Bool
	var reads, activity atomic.Uint64
	c.start(func() uint64 {
		reads.Add(1)
		if busy.Load() {
			return activity.Add(1)
		}
		return activity.Load()
	})
	defer c.stop()

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting until %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	first := c.coarse.Load()
	waitFor("the coarse time advances", func() bool { return c.coarse.Load() > first })
	waitFor("the idle clock parks", func() bool { return !c.on.Load() })

	parked := c.coarse.Load()
	time.Sleep(10 * time.Millisecond)
	if c.coarse.Load() != parked {
		t.Fatal("a parked clock still refreshes")
	}
	before := c.now()
	c.passed(before + int64(time.Hour)) // a read while off wakes it
	waitFor("the clock comes back on", c.on.Load)
	if got := c.coarse.Load(); got < before {
		t.Fatalf("back on with coarse time %d before the waking read %d", got, before)
	}
	// Activity keeps it on past the idle time: every tick sees a new
	// count, for three idle times' worth of ticks (counted, not slept, so
	// that a starved test goroutine cannot make it park).
	busy.Store(true)
	start := reads.Load()
	waitFor("three idle times of busy ticks", func() bool {
		return reads.Load()-start > 3*uint64(c.idle/c.tick)
	})
	on := c.on.Load()
	busy.Store(false)
	if !on {
		t.Fatal("the clock parked while in use")
	}
}

func TestClockStopTurnsItOff(t *testing.T) {
	c := newClock()
	c.start(func() uint64 { return 0 })
	c.stop()
	if c.on.Load() {
		t.Fatal("on after stop: hits would trust a coarse time nobody refreshes")
	}
}
