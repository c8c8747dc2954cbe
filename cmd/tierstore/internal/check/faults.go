package check

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore/internal/testenv/redisproc"
	"github.com/tierstore/tierstore/invalidation"
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
	// Proxied marks a fault of the network between the instances and
	// Redis: in a run with such a fault, the instances reach Redis
	// through a proxy (Env.proxy) in every phase.
	Proxied bool
	// FailSafe marks a fault that needs the instances' fail-safe on
	// (Config.FailSafe): a run with it has it on in every phase.
	FailSafe bool
}

// Env is what a fault can act on.
type Env struct {
	cfg     *Config
	members []member
	proxy   *redisproc.Proxy // nil unless the fault is Proxied
	broken  *[]string        // see brokenf
}

// brokenf records a promise the fault saw broken in the instances' state
// (not Live when they must not be, a refusal not counted), rather than in
// the reads the judge sees: it fails the run.
func (e Env) brokenf(format string, args ...any) {
	*e.broken = append(*e.broken, fmt.Sprintf(format, args...))
}

// states returns every instance's state.
func (e Env) states() ([]instState, error) {
	out := make([]instState, len(e.members))
	for i, m := range e.members {
		var err error
		if out[i], err = m.state(); err != nil {
			return nil, fmt.Errorf("instance %d: %w", i, err)
		}
	}
	return out, nil
}

// until polls the instances until ok has held for each of them (at some
// poll, not necessarily the same one), or limit has passed; it returns
// the instances for which ok never held.
func (e Env) until(ctx context.Context, limit time.Duration, ok func(i int, s instState) bool) ([]int, error) {
	held := make([]bool, len(e.members))
	for deadline := time.Now().Add(limit); ; {
		st, err := e.states()
		if err != nil {
			return nil, err
		}
		var not []int
		for i, s := range st {
			held[i] = held[i] || ok(i, s)
			if !held[i] {
				not = append(not, i)
			}
		}
		if len(not) == 0 || time.Now().After(deadline) {
			return not, nil
		}
		if err := wait(ctx, 5*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// during polls the instances for d and records as broken, once per
// instance, the first wrong state bad finds ("" if none): what a fault
// requires of the instances while it lasts. The instances in skip are
// not watched (already recorded as broken).
func (e Env) during(ctx context.Context, d time.Duration, skip []int, bad func(s instState) string) error {
	seen := make([]bool, len(e.members))
	for _, i := range skip {
		seen[i] = true
	}
	for end := time.Now().Add(d); time.Now().Before(end); {
		st, err := e.states()
		if err != nil {
			return err
		}
		for i, s := range st {
			if why := bad(s); why != "" && !seen[i] {
				seen[i] = true
				e.brokenf("instance %d %s (%s)", i, why, describe(s))
			}
		}
		if err := wait(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// each calls do for every instance, and returns the first error.
func (e Env) each(do func(m member) error) error {
	for _, m := range e.members {
		if err := do(m); err != nil {
			return err
		}
	}
	return nil
}

// describe formats an instance's state for a report.
func describe(s instState) string {
	health := s.Health
	if health == "" {
		health = "live"
	}
	return fmt.Sprintf("%d refusals, %d gaps; %s", s.Refusals, s.Gaps, health)
}

// outage is how long a withdrawn permission or a black hole lasts once
// every instance has noticed it: FaultDuration, and at least two
// health-check intervals, so that an instance that kept serving from
// memory would show stale reads beyond the bound.
func (e Env) outage() time.Duration {
	return max(e.cfg.FaultDuration, 2*e.cfg.HealthCheckInterval)
}

// noticeLimit bounds the wait for every instance to notice a fault (lose
// Live, count a refusal): a generous cap, not a timing the checker
// judges.
const noticeLimit = 10 * time.Second

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
		{Name: "pubsub-kill", Inject: pubsubKill},
		{Name: "acl-channels", Inject: aclChannels},
		{Name: "client-pause", Inject: clientPause},
		{Name: "output-buffer", Inject: outputBuffer},
		{Name: "crash-restart", Inject: crashRestart},
		{Name: "unreachable", Inject: unreachable},
		{Name: "blackhole", Inject: blackhole, Proxied: true},
		{Name: "stop-start", Inject: stopStart},
		{Name: "outside-writes", Inject: outsideWrites, Outside: true},
		{Name: "flushdb", Inject: flushDB, Outside: true},
	}
}

// FaultsFor returns the faults a run in invalidation mode m can judge, in
// the order the checker injects them: every fault, less the changes made
// outside tiered (Fault.Outside) with invalidation.OwnWrites, which does
// not hear them.
func FaultsFor(m invalidation.Mode) []Fault {
	all := AllFaults()
	if m != invalidation.OwnWrites {
		return all
	}
	return slices.DeleteFunc(all, func(f Fault) bool { return f.Outside })
}

// JudgeableFaults returns an error if a run in invalidation mode m cannot
// judge one of faults: with invalidation.OwnWrites, a change made outside
// tiered (Fault.Outside), which that mode does not hear (an instance may
// serve the old value until its L1 entry ends).
func JudgeableFaults(m invalidation.Mode, faults []Fault) error {
	if m != invalidation.OwnWrites {
		return nil
	}
	for _, f := range faults {
		if f.Outside {
			return fmt.Errorf("check: fault %s changes Redis outside tiered, which invalidation mode %v does not hear: it cannot be judged", f.Name, m)
		}
	}
	return nil
}

// OptionalFaults are the faults a run injects only when named: the
// fail-safe, which changes what every other fault's reads may return.
func OptionalFaults() []Fault {
	return []Fault{{Name: "failsafe", Inject: failSafeOutage, FailSafe: true}}
}

// failSafeOutage is "Redis unreachable with the fail-safe on": with the
// writers held for a moment, so that the readers cache most keys (hot
// keys are otherwise invalidated faster than they are read), the server
// is shut down (connections refused); once every instance has lost its
// proof the writers go on (their writes fail, leaving tombstones), and
// the server stays down for twice the fail-safe window, so that the
// window's end is judged too. Every instance must have opened a window.
func failSafeOutage(ctx context.Context, e Env) error {
	before, err := e.states()
	if err != nil {
		return err
	}
	hold := func(on bool) error { return e.each(func(m member) error { return m.holdWrites(on) }) }
	if err := hold(true); err != nil {
		return err
	}
	// Each must lose its proof after before: one that lost it just now
	// (a lease a loaded machine let lapse) is Live again first.
	_, err = e.until(ctx, noticeLimit, func(_ int, s instState) bool { return s.Live })
	if err == nil {
		err = wait(ctx, e.cfg.HealthCheckInterval/2) // the readers fill L1
	}
	if err != nil {
		return errors.Join(err, hold(false))
	}
	e.cfg.Server.Shutdown()
	missed, err := e.until(ctx, noticeLimit, func(_ int, s instState) bool { return !s.Live })
	if herr := hold(false); herr != nil {
		err = errors.Join(err, herr)
	}
	if err == nil {
		for _, i := range missed {
			e.brokenf("instance %d was still Live %v after Redis was shut down", i, noticeLimit)
		}
		err = wait(ctx, max(e.outage(), 2*e.cfg.FailSafe))
	}
	after, serr := e.states()
	if rerr := e.cfg.Server.Restart(); rerr != nil {
		return rerr
	}
	if err != nil || serr != nil {
		return errors.Join(err, serr)
	}
	for i := range after {
		if after[i].FailSafeActivations == before[i].FailSafeActivations {
			e.brokenf("instance %d opened no fail-safe window when it lost its proof (%s)", i, describe(after[i]))
		}
	}
	return nil
}

// FaultsNamed returns the faults with the given names.
func FaultsNamed(names ...string) ([]Fault, error) {
	var out []Fault
	for _, n := range names {
		found := false
		for _, f := range append(AllFaults(), OptionalFaults()...) {
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
// Meanwhile the checker writes filler keys (see fill) and instance 0
// reads them again and again (readFill): with per-key tracking Redis
// reports a change of a key only to the instances that read it since
// its last change, so the filler's reports reach the victim only because
// it keeps reading them; the others never read them and hear nothing of
// them. With invalidation.OwnWrites nothing reports the filler's writes:
// the backlog grows with the peers' published writes alone, seconds
// slower.
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
	st, err := victim.state()
	if err != nil {
		return err
	}
	gaps := st.Gaps
	if err := victim.pauseReads(true); err != nil {
		return err
	}
	if err := victim.setSlow(true); err != nil {
		return err
	}
	if err := victim.readFill(true); err != nil {
		return err
	}
	filling := time.Now()
	stopFilling := fill(srv.Addr())
	stop := func() error { return errors.Join(victim.readFill(false), stopFilling()) }
	// The deadline only ends a fault that cannot work, so it is generous:
	// under per-key tracking the victim's rereads of the fill keys pace
	// the filling, and on a loaded machine they are slow.
	for n, deadline := before, time.Now().Add(90*time.Second); n >= before; {
		if time.Now().After(deadline) {
			return errors.Join(errors.New("the slow subscriber was never disconnected"), stop())
		}
		if err := wait(ctx, 10*time.Millisecond); err != nil {
			return errors.Join(err, stop())
		}
		if n, err = subscribers(); err != nil {
			return errors.Join(err, stop())
		}
	}
	e.cfg.Progress(fmt.Sprintf("output-buffer: the slow subscriber was disconnected %v after the filling began", time.Since(filling).Round(time.Millisecond)))
	if err := stop(); err != nil {
		return err
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
		st, err := victim.state()
		if err != nil {
			return err
		}
		if st.Gaps > gaps && victim.probe(ctx) == nil {
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

// Filler keys: fillKeys names under the prefix, fillKeyBytes long in
// Redis (the prefix and the longest key a Store takes, 512 bytes), written
// fillBatch at a time.
const (
	fillKeys     = 64
	fillKeyBytes = len("check:") + 512
	fillBatch    = 8
)

// fillNames returns the filler keys' names in Redis (under the prefix).
func fillNames() []string {
	names := make([]string, fillKeys)
	for i := range names {
		names[i] = fmt.Sprintf("check:fill:%02d:", i)
		names[i] += strings.Repeat("f", fillKeyBytes-len(names[i]))
	}
	return names
}

// fill writes filler keys through a connection of the checker's own,
// fillBatch a millisecond in one round trip, until the function it
// returns is called (which deletes them). Broadcast tracking reports each
// write to every instance, per-key tracking to the one that keeps reading
// the keys (see outputBuffer), so that a stuck subscriber's backlog grows
// by megabytes a second: the writers' reports alone take seconds to fill
// the kernel's buffers between Redis and the subscriber (megabytes on
// loopback), longer on a loaded machine. The names are none of the load's
// keys, and their values are no Store's (a read of one fails with
// tierstore.ErrCorrupt and caches nothing), so the instances hold no copy
// and drop the reports as they arrive; a few writes a round trip keep
// what Redis queues at once small (it holds a client to its output-buffer
// limit as each message is queued, however fast the client reads).
func fill(addr string) (stop func() error) {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	names := fillNames()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			// A failure only slows the fault down.
			_, _ = c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for j := range fillBatch {
					p.Set(ctx, names[(i*fillBatch+j)%fillKeys], "", 0)
				}
				return nil
			})
			cancel()
		}
	})
	return func() error {
		close(done)
		wg.Wait()
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return c.Del(ctx, names...).Err()
	}
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
	set := func(on bool) error { return e.each(func(m member) error { return m.setOutside(on) }) }
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

// aclChannels withdraws the instances' permission to use any channel
// (ACL SETUSER resetchannels), as an operator's ACL change would, while
// every instance goes on writing and reading: Redis 7 cuts their
// subscribers, and refuses their resubscriptions (NOPERM). Every instance
// must lose Live and count the refusal, then stay not Live for the
// outage, during which a store that kept serving from memory would serve
// its peers' writes stale; then the permission is restored. Nothing else
// the instances do (reads, writes, heartbeats, the plain DELs and l2 sets
// of outside-writes) needs a channel.
func aclChannels(ctx context.Context, e Env) error {
	before, err := e.states()
	if err != nil {
		return err
	}
	srv := e.cfg.Server
	if _, err := srv.Do("ACL", "SETUSER", checkUser, "resetchannels"); err != nil {
		return err
	}
	err = func() error {
		missed, err := e.until(ctx, noticeLimit, func(i int, s instState) bool {
			return !s.Live && s.Refused && s.Refusals > before[i].Refusals
		})
		if err != nil {
			return err
		}
		st, err := e.states()
		if err != nil {
			return err
		}
		for _, i := range missed {
			e.brokenf("instance %d did not lose Live with a counted refusal within %v of its channel permission being withdrawn (%s)", i, noticeLimit, describe(st[i]))
		}
		return e.during(ctx, e.outage(), missed, func(s instState) string {
			if s.Live {
				return "was Live while it could not subscribe"
			}
			return ""
		})
	}()
	_, rerr := srv.Do("ACL", "SETUSER", checkUser, "allchannels")
	return errors.Join(err, rerr)
}

// blackhole makes the network between the instances and Redis drop every
// packet: the proxy in front of Redis forwards nothing either way, and
// accepts new connections without ever answering them, so that every
// request and every dial (made with a dialer that honours only its
// context) hangs until the store's own deadlines end it. Every instance
// must lose Live, and stay not Live for the outage; its reads and writes
// fail meanwhile (ErrUnavailable). Then the network heals: the proxy
// closes the black-holed connections, and the time to recover runs until
// every instance is Live again and can write and read.
func blackhole(ctx context.Context, e Env) error {
	e.proxy.BlackHole()
	defer e.proxy.Heal()
	missed, err := e.until(ctx, noticeLimit, func(_ int, s instState) bool { return !s.Live })
	if err != nil {
		return err
	}
	for _, i := range missed {
		e.brokenf("instance %d was still Live %v after Redis was black-holed", i, noticeLimit)
	}
	return e.during(ctx, e.outage(), missed, func(s instState) string {
		if s.Live {
			return "was Live while Redis was black-holed"
		}
		return ""
	})
}
