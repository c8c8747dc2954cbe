package check

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Fault is one fault: Inject causes it and, after it has lasted, repairs
// it, then returns.
type Fault struct {
	Name   string
	Inject func(ctx context.Context, e Env) error
	// Outside marks a change made to Redis outside tiered, not a fault
	// of Redis or the network: its phase is judged against Delta, like
	// the baseline, since such changes reach every instance like its
	// own writes (server-assisted invalidation).
	Outside bool
}

// Env is what a fault can act on.
type Env struct {
	cfg     *Config
	members []member
}

func wait(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// AllFaults returns every fault, in the order the checker injects them.
func AllFaults() []Fault {
	return []Fault{
		{"pubsub-kill", pubsubKill, false},
		{"client-pause", clientPause, false},
		{"output-buffer", outputBuffer, false},
		{"crash-restart", crashRestart, false},
		{"unreachable", unreachable, false},
		{"stop-start", stopStart, false},
		{"outside-writes", outsideWrites, true},
		{"flushdb", flushDB, true},
	}
}

// FaultsNamed returns the faults with the given names.
func FaultsNamed(names ...string) ([]Fault, error) {
	var out []Fault
	for _, n := range names {
		found := false
		for _, f := range AllFaults() {
			if f.Name == n {
				out, found = append(out, f), true
			}
		}
		if !found {
			return nil, fmt.Errorf("check: no fault named %q", n)
		}
	}
	return out, nil
}

// pubsubKill cuts every subscription while data connections live.
func pubsubKill(_ context.Context, e Env) error {
	_, err := e.cfg.Server.Do("CLIENT", "KILL", "TYPE", "pubsub")
	return err
}

// clientPause stops Redis answering anyone for three health-check
// intervals.
func clientPause(ctx context.Context, e Env) error {
	d := 3 * e.cfg.HealthCheckInterval
	if _, err := e.cfg.Server.Do("CLIENT", "PAUSE", d.Milliseconds(), "ALL"); err != nil {
		return err
	}
	return wait(ctx, d)
}

// outputBuffer makes instance 0's subscriber slow until Redis disconnects
// it for exceeding a lowered pub/sub output-buffer limit. While it is cut
// off, every cold key is written (so its invalidations are lost for it),
// and its readers leave the cold keys alone: the keys nobody reads during
// an outage are the ones only the flush on resubscription keeps from being
// served stale, while its reads of hot keys show the lease at work.
func outputBuffer(ctx context.Context, e Env) error {
	srv := e.cfg.Server
	if _, err := srv.Do("CONFIG", "SET", "client-output-buffer-limit", "pubsub 64kb 0 0"); err != nil {
		return err
	}
	defer srv.Do("CONFIG", "SET", "client-output-buffer-limit", "pubsub 32mb 8mb 60")
	subscribers := func() (int, error) {
		list, err := srv.Do("CLIENT", "LIST", "TYPE", "pubsub")
		if err != nil {
			return 0, err
		}
		return strings.Count(strings.TrimSpace(fmt.Sprint(list)), "\n") + 1, nil
	}
	before, err := subscribers()
	if err != nil {
		return err
	}
	victim := e.members[0]
	subs, err := victim.subscriptions()
	if err != nil {
		return err
	}
	if err := victim.pauseReads(true); err != nil {
		return err
	}
	if err := victim.setSlow(true); err != nil {
		return err
	}
	for n, deadline := before, time.Now().Add(30*time.Second); n >= before; {
		if time.Now().After(deadline) {
			return errors.New("the slow subscriber was never disconnected")
		}
		if err := wait(ctx, 10*time.Millisecond); err != nil {
			return err
		}
		if n, err = subscribers(); err != nil {
			return err
		}
	}
	for _, m := range e.members {
		if err := m.writeCold(); err != nil {
			return err
		}
	}
	if err := victim.setSlow(false); err != nil {
		return err
	}
	// The cold keys stay unread until the victim has resubscribed and
	// regained its lease: reads in between would go to Redis and refill
	// its cache, hiding a missing flush.
	for deadline := time.Now().Add(30 * time.Second); ; {
		n, err := victim.subscriptions()
		if err != nil {
			return err
		}
		if n > subs && victim.probe(ctx) == nil {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("the slow subscriber did not resubscribe")
		}
		if err := wait(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
	return victim.pauseReads(false)
}

// crashRestart kills redis-server with SIGKILL and restarts it on the same
// port at once; with appendfsync always no acknowledged write is lost.
func crashRestart(_ context.Context, e Env) error {
	e.cfg.Server.Kill()
	return e.cfg.Server.Restart()
}

// unreachable freezes redis-server (SIGSTOP) for FaultDuration: its port
// accepts connections but nothing is answered, as when the network drops
// packets, so clients time out rather than fail fast.
func unreachable(ctx context.Context, e Env) error {
	e.cfg.Server.Freeze()
	err := wait(ctx, e.cfg.FaultDuration)
	e.cfg.Server.Thaw()
	return err
}

// stopStart shuts redis-server down, leaves it down for FaultDuration
// (connections refused), and starts it again.
func stopStart(ctx context.Context, e Env) error {
	e.cfg.Server.Shutdown()
	err := wait(ctx, e.cfg.FaultDuration)
	if rerr := e.cfg.Server.Restart(); rerr != nil {
		return rerr
	}
	return err
}

// outsideWrites makes every instance's writes, for FaultDuration, those of
// other programs: sets through the Redis-only store (an admin tool),
// deletes with a plain DEL (an operator revoking a session).
func outsideWrites(ctx context.Context, e Env) error {
	set := func(on bool) error {
		for _, m := range e.members {
			if err := m.setOutside(on); err != nil {
				return err
			}
		}
		return nil
	}
	if err := set(true); err != nil {
		return err
	}
	err := wait(ctx, e.cfg.FaultDuration)
	return errors.Join(err, set(false))
}

// flushDB empties the database with FLUSHDB while every writer is held,
// and records it as a delete of every key. The epoch key tiered checks
// (see package tracking) is put back in the same script, so that only
// Redis's report of the flush can tell an instance of it: otherwise the
// next check, well within Delta, would flush L1 as well and hide a lost
// report.
func flushDB(_ context.Context, e Env) error {
	for _, m := range e.members {
		if err := m.holdWrites(true); err != nil {
			return err
		}
	}
	start := time.Now().UnixNano()
	epoch, err := e.cfg.Server.Do("EVAL", `local e = redis.call('GET', KEYS[1])
redis.call('FLUSHDB')
if e then redis.call('SET', KEYS[1], e) end
return e`, 1, "check:\x00epoch")
	end := time.Now().UnixNano()
	if err == nil && epoch == nil {
		err = errors.New("no epoch key to keep: are the instances tracking?")
	}
	for _, m := range e.members {
		if err == nil {
			err = m.deletedAll(start, end)
		}
	}
	for _, m := range e.members {
		err = errors.Join(err, m.holdWrites(false))
	}
	return err
}
