// Command tierstore demonstrates the tiered store and checks its promise.
//
//	go run ./cmd/tierstore demo              # two instances on an embedded miniredis
//	go run ./cmd/tierstore demo -redis URL   # ... on a real Redis (host:port or redis:// URL)
//	go run ./cmd/tierstore bench -out DIR    # memory vs Redis vs tiered, with a chart
//	go run ./cmd/tierstore check             # the staleness checker under injected faults
//	go run ./cmd/tierstore check -procs -ops 1000000   # a soak, one OS process per instance
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/cmd/tierstore/internal/check"
	"github.com/tierstore/tierstore/invalidation"
	"github.com/tierstore/tierstore/tiered"
)

func main() {
	err := run(os.Args[1:], os.Stdout)
	switch {
	case errors.Is(err, flag.ErrHelp): // -h: the flags were printed
	case errors.Is(err, errHelp):
		fmt.Fprintln(os.Stdout, usage)
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "tierstore:", err)
		os.Exit(1)
	}
}

const usage = `usage: tierstore demo [-redis host:port|redis://URL]
       tierstore bench [flags]   (tierstore bench -h lists them)
       tierstore check [flags]   (tierstore check -h lists them)
       tierstore dashboard [flags]   (tierstore dashboard -h lists them)

demo   runs two tiered instances against one Redis and shows a write on one
       invalidating the other's in-process cache, with timings. Without
       -redis it starts an embedded miniredis.
bench  measures memory vs Redis vs tiered on a mixed workload, and the
       invalidation delay; prints a table, and with -out DIR writes
       results.md and chart.svg. Embedded miniredis unless -redis is given.
check  starts a redis-server (apt-get install redis-server), runs several
       instances against it under load, injects faults, and judges every
       read against the documented staleness bounds. Exits 1 on a violation.
dashboard  starts a redis-server, runs three instances under load through
       a killed subscriber and an outage, scrapes contrib/prometheus's
       collector every 100 ms and draws the shipped dashboard's panels to a
       PNG (docs/dashboard.png).`

var (
	errUsage = errors.New("usage: tierstore demo|bench|check|dashboard [flags]")
	errHelp  = errors.New("help requested")
)

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		return errHelp
	case "demo":
	case "check":
		return runCheck(args[1:], out)
	case "bench":
		return runBench(args[1:], out)
	case "dashboard":
		return runDashboard(args[1:], out)
	case "check-worker": // one instance of `check -procs`, driven over stdin/stdout
		return check.ServeWorker(context.Background(), os.Stdin, os.Stdout)
	default:
		return errUsage
	}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(out)
	addr := fs.String("redis", "", "Redis address (host:port or redis:// URL); empty: embedded miniredis")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	opts, cleanup, err := redisOptions(*addr, out)
	if err != nil {
		return err
	}
	defer cleanup()
	return demo(context.Background(), opts, out)
}

// embeddedAddr is the address of the miniredis redisOptions started, if
// any: it has no CLIENT TRACKING, so stores on it run invalidation.OwnWrites.
var embeddedAddr string

// redisOptions returns client options for addr, starting a miniredis when
// addr is empty.
func redisOptions(addr string, out io.Writer) (*redis.Options, func(), error) {
	if addr == "" {
		m, err := miniredis.Run()
		if err != nil {
			return nil, nil, fmt.Errorf("start embedded miniredis: %w", err)
		}
		fmt.Fprintf(out, "Redis: embedded miniredis at %s (pass -redis host:port for a real server;\n       miniredis timings are for the demo, not a benchmark)\n\n", m.Addr())
		embeddedAddr = m.Addr()
		return &redis.Options{Addr: m.Addr(), ContextTimeoutEnabled: true}, m.Close, nil
	}
	if strings.Contains(addr, "://") {
		opts, err := redis.ParseURL(addr)
		if err != nil {
			return nil, nil, err
		}
		opts.ContextTimeoutEnabled = true
		fmt.Fprintf(out, "Redis: %s\n\n", opts.Addr)
		return opts, func() {}, nil
	}
	fmt.Fprintf(out, "Redis: %s\n\n", addr)
	return &redis.Options{Addr: addr, ContextTimeoutEnabled: true}, func() {}, nil
}

func demo(ctx context.Context, opts *redis.Options, out io.Writer) error {
	// Two instances, as two processes of one service would be: each has
	// its own Redis connections and its own L1.
	newInstance := func() (*tiered.Store, func(), error) {
		o := *opts
		rdb := redis.NewClient(&o)
		s, err := tiered.New(tiered.Config{Redis: rdb, KeyPrefix: "tierstore-demo:", Invalidation: invalidation.ModeIf(o.Addr == embeddedAddr)})
		if err != nil {
			rdb.Close()
			return nil, nil, err
		}
		return s, func() { s.Close(); rdb.Close() }, nil
	}
	a, closeA, err := newInstance()
	if err != nil {
		return err
	}
	defer closeA()
	b, closeB, err := newInstance()
	if err != nil {
		return err
	}
	defer closeB()
	live, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, s := range []*tiered.Store{a, b} {
		if err := s.WaitLive(live); err != nil {
			return errors.New("the invalidation subscription did not come up within 10s; is Redis reachable?")
		}
	}
	fmt.Fprintln(out, "Instances A and B are subscribed to the invalidation channel.")

	const key = "session:demo"
	expiry := time.Now().Add(time.Hour)
	step := func(what string, f func() error) error {
		start := time.Now()
		err := f()
		fmt.Fprintf(out, "  %-52s %10v\n", what, time.Since(start).Round(100*time.Nanosecond))
		return err
	}
	getB := func() ([]byte, error) { return b.Get(ctx, key) }

	if err := step(`A.Set  session = {user: ada}`, func() error { return a.Set(ctx, key, []byte(`{"user":"ada"}`), expiry) }); err != nil {
		return err
	}
	if err := step("B.Get  L1 miss: read from Redis, fill L1", func() error { _, err := getB(); return err }); err != nil {
		return err
	}
	waitCached(ctx, b, key)
	var v []byte
	if err := step("B.Get  L1 hit: served from memory", func() (err error) { v, err = getB(); return err }); err != nil {
		return err
	}
	fmt.Fprintf(out, "  %-52s %s\n", "  B sees", v)

	received := b.Stats().Invalidation.Received
	if err := step(`A.Set  session = {user: grace}, publishes invalidation`, func() error { return a.Set(ctx, key, []byte(`{"user":"grace"}`), expiry) }); err != nil {
		return err
	}
	if b.Stats().Invalidation.Received > received {
		fmt.Fprintln(out, "    B had dropped its copy before A's Set returned")
	} else {
		start := time.Now()
		waitReceived(b, received)
		fmt.Fprintf(out, "  %-52s %10v\n", "  B dropped its copy, after A's Set returned, within", time.Since(start).Round(100*time.Nanosecond))
	}
	if err := step("B.Get  L1 miss (entry dropped): read from Redis", func() (err error) { v, err = getB(); return err }); err != nil {
		return err
	}
	fmt.Fprintf(out, "  %-52s %s\n", "  B sees", v)

	received = b.Stats().Invalidation.Received
	if err := step("A.Delete session", func() error { return a.Delete(ctx, key) }); err != nil {
		return err
	}
	waitReceived(b, received)
	_, err = getB()
	fmt.Fprintf(out, "  %-52s %v\n", "  B.Get after the delete:", err)
	if !errors.Is(err, tierstore.ErrNotFound) {
		return fmt.Errorf("instance B still sees the deleted session: %w", err)
	}

	sa, sb := a.Stats(), b.Stats()
	fmt.Fprintf(out, "\nInvalidations: A sent %d, B received %d; subscription gaps (each flushes L1): A %d, B %d\n",
		sa.Invalidation.Sent, sb.Invalidation.Received, sa.Invalidation.Gaps, sb.Invalidation.Gaps)
	return nil
}

// waitReceived waits until s has applied an invalidation beyond the
// first n.
func waitReceived(s *tiered.Store, n uint64) {
	for s.Stats().Invalidation.Received <= n {
		time.Sleep(5 * time.Microsecond)
	}
}

// waitCached gives the L1 cache a moment to admit the fill (ristretto
// applies new keys asynchronously), so the next read shows a hit.
func waitCached(ctx context.Context, s *tiered.Store, key string) {
	for range 100 {
		hits := s.Stats().L1.Hits
		if _, err := s.Get(ctx, key); err == nil && s.Stats().L1.Hits > hits {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
