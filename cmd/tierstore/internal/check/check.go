// Package check tries hard to break tierstore's consistency promise: it
// runs several tiered instances against one real redis-server, writes
// monotonically increasing versions of hot keys, reads them on every
// instance, injects faults, and judges every read against the documented
// staleness bounds and every acknowledged write against Redis's final
// state.
package check

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/testenv/redisproc"
	"github.com/tierstore/tierstore/invalidation"
	"github.com/tierstore/tierstore/l2"
)

// Config configures a run. Zero fields take the defaults in parentheses.
type Config struct {
	// Server is the redis-server the instances use and the faults hit;
	// required. For the crash fault to lose no acknowledged write it must
	// run with --appendonly yes --appendfsync always. The instances log
	// in as an ACL user that Run creates through the default user, and
	// adds to the server's restart arguments.
	Server *redisproc.Server
	// Instances is the number of tiered stores (3), each with its own
	// Redis clients; at least 3.
	Instances int
	// Keys is the number of hot keys (32). Their names are long (300
	// bytes), so that invalidations are big enough to fill a slow
	// subscriber's output buffer quickly.
	Keys int
	// ReadersPerInstance (2) read random keys in a loop, pausing ReadPause
	// (50µs) between reads.
	ReadersPerInstance int
	ReadPause          time.Duration
	// WritePause (1ms) is the pause between one instance's writes. Each
	// instance writes only the keys it owns (key % Instances), so the
	// versions of a key are written in order by one writer.
	WritePause time.Duration
	// DeleteRatio is the share of writes that are deletes (0.1).
	DeleteRatio float64
	// ColdWriteShare is the share of writes that go to the cold half of
	// the keys (0.01); the rest go to the hot half. Rarely written keys
	// make a lost invalidation visible for long.
	ColdWriteShare float64
	// Phase is how long each phase observes (2s): the baseline, and the
	// time after each fault has been repaired and the instances recovered.
	Phase time.Duration
	// FaultDuration is how long a lasting fault lasts (1s).
	FaultDuration time.Duration
	// HealthCheckInterval of the instances (200ms).
	HealthCheckInterval time.Duration
	// Invalidation is the instances' tiered.Config.Invalidation
	// (invalidation.PerKey, the default). With invalidation.OwnWrites no
	// instance hears a change made to Redis outside tiered: the faults
	// that make one (Fault.Outside) cannot be judged, and Run refuses
	// them (AllFaults leaves them out: see FaultsFor).
	Invalidation invalidation.Mode
	// L1TTL of the instances (1 minute: far longer than a run, so that
	// only invalidations and gaps can make a read fresh).
	L1TTL time.Duration
	// Delta is the staleness budget outside faults (100ms): the
	// invalidation delivery delay, with room for a loaded 2-core machine
	// and the race detector.
	Delta time.Duration
	// FailSafe is the instances' tiered.Config.FailSafe, in every phase
	// (0: off, unless a fault needs it: Fault.FailSafe, whose runs take
	// FaultDuration/2, so that the outage outlasts the window). With it
	// on, each instance's reads take turns, so that its Stats tell which
	// ones the fail-safe served: those are judged by the fail-safe's rule
	// (see docs/consistency.md).
	FailSafe time.Duration
	// Faults to inject, in order (AllFaults).
	Faults []Fault
	// Ops, if positive, makes the run repeat the fault sequence until at
	// least this many reads and writes were made (a soak).
	Ops int
	// Progress, if set, is called with a line at each phase change.
	Progress func(string)
	// Worker, if set, runs each instance in its own OS process: it returns
	// the command that starts instance id as a worker (see ServeWorker),
	// with its stdin and stdout free for the checker.
	Worker func(id int) *exec.Cmd
}

func (c *Config) defaults() error {
	if c.Server == nil {
		return errors.New("check: Config.Server is nil")
	}
	setDefault(&c.Instances, 3)
	if c.Instances < 3 {
		return errors.New("check: at least 3 instances")
	}
	setDefault(&c.Keys, 32)
	setDefault(&c.ReadersPerInstance, 2)
	setDefault(&c.ReadPause, 50*time.Microsecond)
	setDefault(&c.WritePause, time.Millisecond)
	setDefault(&c.DeleteRatio, 0.1)
	setDefault(&c.ColdWriteShare, 0.01)
	setDefault(&c.Phase, 2*time.Second)
	setDefault(&c.FaultDuration, time.Second)
	setDefault(&c.HealthCheckInterval, 200*time.Millisecond)
	setDefault(&c.L1TTL, time.Minute)
	setDefault(&c.Delta, 100*time.Millisecond)
	if c.Faults == nil {
		c.Faults = FaultsFor(c.Invalidation)
	}
	if err := JudgeableFaults(c.Invalidation, c.Faults); err != nil {
		return err
	}
	if c.FailSafe < 0 {
		return errors.New("check: negative FailSafe")
	}
	if c.FailSafe == 0 && slices.ContainsFunc(c.Faults, func(f Fault) bool { return f.FailSafe }) {
		c.FailSafe = c.FaultDuration / 2
	}
	if c.Progress == nil {
		c.Progress = func(string) {}
	}
	return nil
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// member is one instance as the checker drives it: a worker in this
// process, or one in a worker process.
type member interface {
	probe(ctx context.Context) error
	setSlow(slow bool) error
	pauseReads(pause bool) error
	writeCold() error
	readFill(on bool) error
	setOutside(on bool) error
	holdWrites(hold bool) error
	deletedAll(start, end int64) error
	state() (instState, error)
	count() (int64, error)
	finish() (map[int][]Op, []Read, error)
	close()
}

// run holds the state of one run.
type run struct {
	cfg     *Config
	members []member
	proxy   *redisproc.Proxy // nil unless a fault is Proxied
	ops     [][]Op           // per key, in version order
	reads   []Read
	phases  []phase
}

// phase is a span of the run, with the fault window inside it.
type phase struct {
	name                  string
	start, end            int64
	faultStart, recovered int64 // zero for the baseline
	recovery              time.Duration
	broken                []string // see Env.brokenf
}

// The ACL user the instances log in as. The checker's own connections
// (fault injection, the final state) use the default user.
const (
	checkUser     = "tierstore-check"
	checkPassword = "check"
)

// checkRules are the instances' permissions: all, so that whatever a
// fault withdraws is all they lack.
var checkRules = []string{"reset", "on", ">" + checkPassword, "+@all", "~*", "&*"}

// grant creates the instances' user, on the running server and in the
// arguments of its restarts: ACL users are in no append-only file, and a
// restarted server that refused their logins for a moment would be a
// fault of its own, not the crash under test.
func grant(srv *redisproc.Server) error {
	args := []any{"ACL", "SETUSER", checkUser}
	for _, r := range checkRules {
		args = append(args, r)
	}
	if _, err := srv.Do(args...); err != nil {
		return err
	}
	srv.AddRestartArgs(append([]string{"--user", checkUser}, checkRules...)...)
	return nil
}

// Run runs the checker and returns its report. The error is for a run that
// could not be made; a run that found violations returns a Report whose
// Failed method says so.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	r := &run{cfg: &cfg}
	if err := grant(cfg.Server); err != nil {
		return nil, fmt.Errorf("check: create the instances' user: %w", err)
	}
	// Only the instances go through the proxy; the checker's own
	// connections go straight to Redis.
	addr := cfg.Server.Addr()
	if slices.ContainsFunc(cfg.Faults, func(f Fault) bool { return f.Proxied }) {
		var err error
		if r.proxy, err = redisproc.StartProxy(addr); err != nil {
			return nil, fmt.Errorf("check: start the proxy: %w", err)
		}
		defer r.proxy.Close() // after the instances
		addr = r.proxy.Addr()
	}
	for i := range cfg.Instances {
		var m member
		var err error
		if cfg.Worker != nil {
			m, err = startProcess(cfg.Worker(i), loadOf(&cfg, addr, i))
		} else {
			m, err = startLocal(loadOf(&cfg, addr, i))
		}
		if err != nil {
			return nil, fmt.Errorf("check: start instance %d: %w", i, err)
		}
		defer m.close()
		r.members = append(r.members, m)
	}
	if err := r.waitRecovered(ctx, 10*time.Second); err != nil {
		return nil, fmt.Errorf("check: instances not ready: %w", err)
	}
	runErr := r.phasesLoop(ctx)
	r.ops = make([][]Op, cfg.Keys)
	for i, m := range r.members {
		ops, reads, err := m.finish()
		if err != nil {
			return nil, fmt.Errorf("check: instance %d: %w", i, err)
		}
		for k, o := range ops {
			r.ops[k] = o
		}
		r.reads = append(r.reads, reads...)
	}
	if runErr != nil {
		return nil, runErr
	}
	return r.judge(ctx)
}

func (r *run) opsSoFar() int64 {
	var n int64
	for _, m := range r.members {
		c, _ := m.count()
		n += c
	}
	return n
}

func (r *run) phasesLoop(ctx context.Context) error {
	observe := func(p phase) error {
		err := wait(ctx, r.cfg.Phase)
		p.end = time.Now().UnixNano()
		r.phases = append(r.phases, p)
		return err
	}
	r.cfg.Progress("baseline")
	if err := observe(phase{name: "baseline", start: time.Now().UnixNano()}); err != nil {
		return err
	}
	for round := 1; ; round++ {
		for _, f := range r.cfg.Faults {
			r.cfg.Progress(fmt.Sprintf("fault: %s (round %d, %d ops so far)", f.Name, round, r.opsSoFar()))
			p := phase{name: f.Name, start: time.Now().UnixNano()}
			if !f.Outside {
				p.faultStart = p.start
			}
			if err := f.Inject(ctx, Env{cfg: r.cfg, members: r.members, proxy: r.proxy, broken: &p.broken}); err != nil {
				return fmt.Errorf("check: inject %s: %w", f.Name, err)
			}
			repaired := time.Now()
			if err := r.waitRecovered(ctx, 30*time.Second); err != nil {
				return fmt.Errorf("check: after %s: %w", f.Name, err)
			}
			p.recovered = time.Now().UnixNano()
			p.recovery = time.Since(repaired)
			if err := observe(p); err != nil {
				return err
			}
		}
		if r.cfg.Ops <= 0 || r.opsSoFar() >= int64(r.cfg.Ops) || len(r.cfg.Faults) == 0 {
			return nil
		}
	}
}

// waitRecovered waits until every instance is live and can write and read
// back a probe key.
func (r *run) waitRecovered(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for i, m := range r.members {
		for {
			err := m.probe(ctx)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("instance %d: %w", i, err)
			}
			if err := wait(ctx, 5*time.Millisecond); err != nil {
				return err
			}
		}
	}
	return nil
}

// finalState reads every key from Redis directly.
func (r *run) finalState(ctx context.Context) ([]uint64, error) {
	c := redis.NewClient(&redis.Options{Addr: r.cfg.Server.Addr()})
	defer c.Close()
	direct, err := l2.New(l2.Config{Redis: c, KeyPrefix: "check:"})
	if err != nil {
		return nil, err
	}
	final := make([]uint64, r.cfg.Keys)
	for k := range final {
		v, err := direct.Get(ctx, keyName(k))
		switch {
		case errors.Is(err, tierstore.ErrNotFound):
		case err != nil:
			return nil, err
		default:
			final[k], _ = decodeVersion(v)
		}
	}
	return final, nil
}
