package rediskv_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/internal/rediskv"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
)

// pipeOn returns a Pipe on a client of addr made as the store makes its
// pipes' (opts may be nil), and its Conns; both end with the test.
func pipeOn(t *testing.T, addr string, opts *redis.Options, onLost func(error)) (*rediskv.Pipe, *rediskv.Conns) {
	t.Helper()
	if opts == nil {
		opts = &redis.Options{}
	}
	opts.Addr = addr
	conns := rediskv.NewConns()
	client := conns.Client(opts, func(o *redis.Options) {
		o.PoolSize, o.MinIdleConns, o.MaxIdleConns = 1, 0, 1
		o.ReadTimeout, o.WriteTimeout = max(o.ReadTimeout, 0), max(o.WriteTimeout, 0)
	})
	p := rediskv.NewPipe(client, onLost)
	t.Cleanup(func() {
		p.Close()
		conns.Abort()
		_ = client.Close()
	})
	return p, conns
}

// run is Pipe.Run of a command, failing the test unless done was called
// once, with the Cmd that Run returns.
func run(t *testing.T, p *rediskv.Pipe, call rediskv.Call) *redis.Cmd {
	t.Helper()
	var calls atomic.Int32
	var got *redis.Cmd
	cmd := p.Run(context.Background(), call, func(c *redis.Cmd) { calls.Add(1); got = c })
	if n := calls.Load(); n != 1 || got != cmd {
		t.Fatalf("%v: done called %d times (same Cmd: %v), want once with Run's", call.Args, n, got == cmd)
	}
	return cmd
}

func do(args ...any) rediskv.Call { return rediskv.Call{Args: args} }

// clientID returns the CLIENT ID of p's connection, through Do.
func clientID(t *testing.T, p *rediskv.Pipe) int64 {
	t.Helper()
	var id int64
	err := p.Do(context.Background(), func(ctx context.Context, conn *redis.Conn) error {
		var err error
		id, err = conn.ClientID(ctx).Result()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// The replies the Pipe reads are the values go-redis's Cmd would hold:
// the same Val and Err (text, redis.Error, redis.Nil) for each kind of
// reply, nested and null elements included.
func TestPipeRepliesAsGoRedis(t *testing.T) {
	srv := redistest.Start(t)
	plain := srv.Client(nil)
	p, _ := pipeOn(t, srv.Addr(), nil, nil)
	ctx := context.Background()
	plain.Set(ctx, "str", "v", 0)
	plain.Set(ctx, "bin", "a\r\nb\x00c", 0)
	plain.Set(ctx, "empty", "", 0)
	plain.RPush(ctx, "list", "x", "y")
	script := redis.NewScript(`return {1, -2, 'three', false, {'nested', {}}, redis.status_reply('FINE'), redis.error_reply('ERR inside')}`)
	calls := []rediskv.Call{
		do("SET", "k", "v"),            // status OK
		do("PING"),                     // status PONG
		do("GET", "str"),               // bulk
		do("GET", "bin"),               // bulk with CR LF and NUL
		do("GET", "empty"),             // empty bulk
		do("GET", "missing"),           // null bulk: redis.Nil
		do("INCRBY", "n", -5),          // negative integer
		do("LRANGE", "list", 0, -1),    // array
		do("LRANGE", "missing", 0, -1), // empty array
		do("INCR", "str"),              // error reply
		do("NOSUCHCOMMAND"),            // error reply
		do("EVAL", "return redis.call('GET', KEYS[1])", 1, "missing"), // null from a script
		{Script: script},                       // nested array, nil, status, error elements
		do("BLPOP", "missing", "0.01"),         // null array: redis.Nil
		do("ECHO", strconv.Itoa(1<<20)+"\xff"), // bytes as written
		// Arguments of each type, as go-redis writes them.
		do("ECHO", []byte("a\r\nb")), do("ECHO", nil), do("ECHO", true), do("ECHO", false),
		do("ECHO", -7), do("ECHO", int8(-8)), do("ECHO", int16(16)), do("ECHO", int32(-32)), do("ECHO", int64(-1<<63)),
		do("ECHO", uint(7)), do("ECHO", uint8(8)), do("ECHO", uint16(16)), do("ECHO", uint32(32)), do("ECHO", uint64(1<<64-1)),
		do("ECHO", float32(0.1)), do("ECHO", 2.5e-300), do("ECHO", 1e21), do("ECHO", 3*time.Second),
		do("ECHO", time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)),
	}
	for _, c := range calls {
		var want *redis.Cmd
		if c.Script != nil {
			want = c.Script.Run(ctx, plain, c.Keys, c.Args...)
		} else {
			want = plain.Do(ctx, c.Args...)
		}
		plain.Set(ctx, "n", 0, 0)
		got := run(t, p, c)
		plain.Set(ctx, "n", 0, 0)
		if !reflect.DeepEqual(errorsAsText(got.Val()), errorsAsText(want.Val())) {
			t.Errorf("%v: Val() = %#v, go-redis %#v", c.Args, got.Val(), want.Val())
		}
		if fmt.Sprint(got.Err()) != fmt.Sprint(want.Err()) || errors.Is(got.Err(), redis.Nil) != errors.Is(want.Err(), redis.Nil) {
			t.Errorf("%v: Err() = %v, go-redis %v", c.Args, got.Err(), want.Err())
		}
		var gr, wr redis.Error
		if errors.As(got.Err(), &gr) != errors.As(want.Err(), &wr) {
			t.Errorf("%v: Err() %v is a redis.Error: %v, go-redis's %v", c.Args, got.Err(), gr != nil, wr != nil)
		}
	}
	if err := run(t, p, do("NOSUCHCOMMAND")).Err(); !redis.HasErrorPrefix(err, "unknown command") {
		t.Errorf("HasErrorPrefix(%v, \"unknown command\") is false", err)
	}
	if s, err := run(t, p, rediskv.Call{Script: script}).Slice(); err != nil || len(s) != 7 || s[3] != nil || !redis.HasErrorPrefix(s[6].(error), "inside") {
		t.Errorf("Slice() = %#v, %v", s, err)
	}
}

// errorsAsText returns v with its error elements (go-redis's own type, or
// the Pipe's) replaced by their text and redis.Error-ness.
func errorsAsText(v any) any {
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = errorsAsText(e)
		}
		return out
	case error:
		var re redis.Error
		return fmt.Sprintf("error %q (redis.Error: %v)", v.Error(), errors.As(v, &re))
	}
	return v
}

// While the replies of a call are held up on their way, the Pipe goes on
// writing the calls after it (full duplex), and each caller then gets its
// own reply, the error replies between the others included.
func TestPipeWritesWhileRepliesAreOutstanding(t *testing.T) {
	srv := redistest.Start(t)
	plain := srv.Client(nil)
	hold := redistest.NewReplyHold(t, srv.Addr())
	p, _ := pipeOn(t, hold.Addr(), nil, nil)
	ctx := context.Background()
	run(t, p, do("SET", "text", "not a number")) // dialled, outside the hold
	held, release := hold.Arm("marker")
	first := make(chan *redis.Cmd, 1)
	go func() { first <- p.Run(ctx, do("ECHO", "marker"), func(*redis.Cmd) {}) }()
	<-held

	type result struct {
		i   int
		cmd *redis.Cmd
	}
	calls := []rediskv.Call{
		do("SET", "k", "v"), do("INCR", "text"), do("RPUSH", "sent", "x"), do("GET", "missing"), do("GET", "k"), do("NOSUCH"),
	}
	results := make(chan result, len(calls))
	for i, c := range calls {
		go func() { results <- result{i, p.Run(ctx, c, func(*redis.Cmd) {})} }()
	}
	// Redis runs the RPUSH while the first reply is still held: a Pipe
	// that waits for replies before it writes again never sends it.
	if v, err := plain.BLPop(ctx, 10*time.Second, "sent").Result(); err != nil {
		t.Fatalf("BLPOP of the list a call pushes to while the replies before it are held: %v, %v", v, err)
	}
	select {
	case cmd := <-first:
		t.Fatalf("the call whose reply is held ended: %v", cmd)
	case r := <-results:
		t.Fatalf("call %v answered while the reply before it is held: %v", calls[r.i].Args, r.cmd)
	default:
	}
	release()
	if s, err := (<-first).Text(); s != "marker" || err != nil {
		t.Fatalf("ECHO marker = %q, %v", s, err)
	}
	for range calls {
		r := <-results
		var ok bool
		switch r.i {
		case 0:
			ok = r.cmd.Val() == "OK"
		case 1:
			ok = redis.HasErrorPrefix(r.cmd.Err(), "value is not an integer")
		case 2:
			ok = r.cmd.Val() == int64(1)
		case 3:
			ok = errors.Is(r.cmd.Err(), redis.Nil)
		case 4:
			// SET and GET of k came from two goroutines: either order.
			ok = r.cmd.Val() == "v" || errors.Is(r.cmd.Err(), redis.Nil)
		case 5:
			ok = redis.HasErrorPrefix(r.cmd.Err(), "unknown command")
		}
		if !ok {
			t.Errorf("%v: %v", calls[r.i].Args, r.cmd)
		}
	}
}

// Many callers at once, each with its own reply or error, and done called
// once with it before Run returns.
func TestPipeManyCallers(t *testing.T) {
	srv := redistest.Start(t)
	srv.Client(nil).Set(context.Background(), "text", "not a number", 0)
	p, _ := pipeOn(t, srv.Addr(), nil, nil)
	script := redis.NewScript(`return {ARGV[1], false, tonumber(ARGV[2])}`)
	const callers, each = 48, 150
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := range callers {
		wg.Go(func() {
			key := "count:" + strconv.Itoa(g)
			for i := range each {
				id := strconv.Itoa(g) + "/" + strconv.Itoa(i)
				var c rediskv.Call
				switch i % 5 {
				case 0:
					c = do("ECHO", id)
				case 1:
					c = do("INCR", key)
				case 2:
					c = do("INCR", "text")
				case 3:
					c = rediskv.Call{Script: script, Args: []any{id, i}}
				case 4:
					c = do("GET", "missing:"+id)
				}
				var dones atomic.Int32
				var seen *redis.Cmd
				cmd := p.Run(context.Background(), c, func(cmd *redis.Cmd) { dones.Add(1); seen = cmd })
				var ok bool
				switch i % 5 {
				case 0:
					ok = cmd.Val() == id && cmd.Err() == nil
				case 1:
					ok = cmd.Val() == int64(i/5+1)
				case 2:
					ok = redis.HasErrorPrefix(cmd.Err(), "value is not an integer")
				case 3:
					ok = reflect.DeepEqual(cmd.Val(), []any{id, nil, int64(i)})
				case 4:
					ok = errors.Is(cmd.Err(), redis.Nil)
				}
				if !ok || dones.Load() != 1 || seen != cmd {
					errs <- fmt.Errorf("caller %d call %d %v: %v (done %d times)", g, i, c.Args, cmd, dones.Load())
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A connection killed with calls in flight: each fails with a broken
// connection's error, onLost runs once, before their done, and the next
// call dials again.
func TestPipeKilledWithCallsInFlight(t *testing.T) {
	srv := redistest.Start(t)
	var lost atomic.Int32
	p, _ := pipeOn(t, srv.Addr(), nil, func(error) { lost.Add(1) })
	const n = 8
	written := make(chan int, 2*n)
	rediskv.OnWritten(p, func(calls int) { written <- calls })
	before := clientID(t, p)

	ctx := context.Background()
	results := make(chan error, n+1)
	dones := make(chan int32, n+1)
	done := func(*redis.Cmd) { dones <- lost.Load() }
	// BLPOP blocks the connection in Redis: the calls after it are sent,
	// and not answered.
	go func() { results <- p.Run(ctx, do("BLPOP", "never", 0), done).Err() }()
	sent := <-written
	for i := range n {
		go func() { results <- p.Run(ctx, do("SET", "k"+strconv.Itoa(i), "v"), done).Err() }()
	}
	for sent < n+1 {
		sent += <-written
	}
	srv.Do("CLIENT", "KILL", "ID", before)
	for range n + 1 {
		if err := <-results; err == nil || !rediskv.Broken(err) {
			t.Errorf("a call in flight on a killed connection: %v, want a broken connection's error", err)
		}
		if l := <-dones; l != 1 {
			t.Errorf("done ran with onLost called %d times before, want 1", l)
		}
	}
	if l := lost.Load(); l != 1 {
		t.Fatalf("onLost called %d times, want 1", l)
	}
	if err := run(t, p, do("SET", "after", "v")).Err(); err != nil {
		t.Fatalf("the call after the kill: %v", err)
	}
	if after := clientID(t, p); after == before {
		t.Fatalf("CLIENT ID %d after the kill, the killed connection's", after)
	}
	if l := lost.Load(); l != 1 {
		t.Fatalf("onLost called %d times, want 1", l)
	}
}

// After SCRIPT FLUSH, scripts sent as EVALSHA come back NOSCRIPT and the
// Pipe sends them again with their source, among other calls.
func TestPipeScriptsAfterFlush(t *testing.T) {
	srv := redistest.Start(t)
	p, _ := pipeOn(t, srv.Addr(), nil, nil)
	push := redis.NewScript(`return redis.call('RPUSH', KEYS[1], ARGV[1])`)
	echo := redis.NewScript(`return ARGV[1]`)
	for round := range 3 {
		srv.Do("SCRIPT", "FLUSH")
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				for i := range 20 {
					id := fmt.Sprintf("%d/%d/%d", round, g, i)
					var err error
					switch i % 3 {
					case 0:
						var n int64
						n, err = p.Run(context.Background(), rediskv.Call{Script: push, Keys: []string{"l:" + strconv.Itoa(g)}, Args: []any{id}}, func(*redis.Cmd) {}).Int64()
						if err == nil && n != int64(round*7+i/3+1) {
							err = fmt.Errorf("RPUSH answered %d", n)
						}
					case 1:
						var s string
						s, err = p.Run(context.Background(), rediskv.Call{Script: echo, Args: []any{id}}, func(*redis.Cmd) {}).Text()
						if err == nil && s != id {
							err = fmt.Errorf("echo answered %q", s)
						}
					case 2:
						err = p.Run(context.Background(), do("SET", id, "v"), func(*redis.Cmd) {}).Err()
					}
					if err != nil {
						t.Errorf("%s: %v", id, err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	if n := srv.Do("LLEN", "l:3"); n != int64(21) {
		t.Fatalf("LLEN = %v, want 21", n)
	}
}

// Do runs between batches, with nothing in flight, while callers keep
// the Pipe busy: a reply read by the wrong side would show in either.
func TestPipeDoBetweenBatches(t *testing.T) {
	srv := redistest.Start(t)
	p, _ := pipeOn(t, srv.Addr(), nil, nil)
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("call %d/%d", g, i)
				if s, err := p.Run(ctx, do("ECHO", id), func(*redis.Cmd) {}).Text(); s != id || err != nil {
					errs <- fmt.Errorf("ECHO %s = %q, %v", id, s, err)
					return
				}
			}
		})
	}
	id := clientID(t, p)
	for i := range 100 {
		err := p.Do(ctx, func(ctx context.Context, conn *redis.Conn) error {
			cmds, err := conn.Pipelined(ctx, func(pl redis.Pipeliner) error {
				pl.Echo(ctx, "do "+strconv.Itoa(i))
				pl.Incr(ctx, "do:"+strconv.Itoa(i))
				pl.Do(ctx, "NOSUCH") // an error reply, not a broken connection
				return nil
			})
			if s := cmds[0].(*redis.StringCmd).Val(); s != "do "+strconv.Itoa(i) {
				return fmt.Errorf("ECHO in Do = %q", s)
			}
			return err
		})
		if !redis.HasErrorPrefix(err, "unknown command") {
			t.Fatalf("Do %d: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if after := clientID(t, p); after != id {
		t.Fatalf("CLIENT ID %d after Do with error replies, was %d: the connection was dropped", after, id)
	}
}

// A call whose context is done before it is sent is not sent, and done
// hears the context's error.
func TestPipeCancelledBeforeSending(t *testing.T) {
	srv := redistest.Start(t)
	p, _ := pipeOn(t, srv.Addr(), nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var heard error
	var dones int
	cmd := p.Run(ctx, do("SET", "k", "v"), func(cmd *redis.Cmd) { dones++; heard = cmd.Err() })
	if !errors.Is(cmd.Err(), context.Canceled) || !errors.Is(heard, context.Canceled) || dones != 1 {
		t.Fatalf("Run with a cancelled context: %v, done %d times with %v", cmd.Err(), dones, heard)
	}
	if n := run(t, p, do("EXISTS", "k")).Val(); n != int64(0) {
		t.Fatalf("EXISTS k = %v: the cancelled SET was sent", n)
	}
}

// Close while callers run: no panic, every done exactly once, and the
// calls after Close fail with ErrClosed.
func TestPipeCloseDuringCalls(t *testing.T) {
	srv := redistest.Start(t)
	p, _ := pipeOn(t, srv.Addr(), nil, nil)
	run(t, p, do("PING"))
	var runs, dones atomic.Int64
	var wg sync.WaitGroup
	started := make(chan struct{}, 32)
	for g := range 32 {
		wg.Go(func() {
			for i := 0; ; i++ {
				var once atomic.Int32
				runs.Add(1)
				err := p.Run(context.Background(), do("SET", fmt.Sprint(g, i), "v"), func(*redis.Cmd) {
					if once.Add(1) != 1 {
						panic("done called twice")
					}
					dones.Add(1)
				}).Err()
				if i == 0 {
					started <- struct{}{}
				}
				if errors.Is(err, tierstore.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("call before Close: %v", err)
					return
				}
			}
		})
	}
	for range 32 {
		<-started
	}
	p.Close()
	wg.Wait()
	if r, d := runs.Load(), dones.Load(); r != d {
		t.Fatalf("%d calls, %d done", r, d)
	}
	if err := p.Do(context.Background(), func(context.Context, *redis.Conn) error { return nil }); !errors.Is(err, tierstore.ErrClosed) {
		t.Fatalf("Do after Close: %v", err)
	}
}

// Close with a call in flight on a black-holed network waits for it;
// Conns.Abort ends it at once.
func TestPipeCloseOnBlackHoleEndsByAbort(t *testing.T) {
	srv := redistest.Start(t)
	proxy := redistest.NewProxy(t, srv.Addr())
	var lost atomic.Int32
	p, conns := pipeOn(t, proxy.Addr(), &redis.Options{ReadTimeout: time.Hour, WriteTimeout: time.Hour}, func(error) { lost.Add(1) })
	run(t, p, do("PING"))
	proxy.BlackHole()
	result := make(chan error, 1)
	go func() { result <- p.Run(context.Background(), do("SET", "k", "v"), func(*redis.Cmd) {}).Err() }()
	redistest.Eventually(t, "the SET is sent and dropped", func() bool { return proxy.Dropped() > 0 })
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	select {
	case err := <-result:
		t.Fatalf("the call on a black-holed network ended before Abort: %v", err)
	case <-closed:
		t.Fatal("Close returned with a call in flight")
	default:
	}
	conns.Abort()
	<-closed
	if err := <-result; !rediskv.Broken(err) {
		t.Fatalf("the call in flight at Abort: %v, want a broken connection's error", err)
	}
	if l := lost.Load(); l != 1 {
		t.Fatalf("onLost called %d times, want 1", l)
	}
}

// The options of the client apply to the Pipe's connection: credentials
// (a password, or a user through a CredentialsProvider, one that may not
// even PING), DB, client name, OnConnect.
func TestPipeConnectionKeepsOptions(t *testing.T) {
	srv := redistest.Start(t)
	srv.Do("CONFIG", "SET", "requirepass", "secret")
	admin := srv.Client(&redis.Options{Password: "secret"})
	ctx := context.Background()
	if err := admin.Do(ctx, "ACL", "SETUSER", "piper", "on", ">piper-pw", "~*", "+@all", "-ping", "-echo").Err(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, user string
		opts       redis.Options
	}{
		{"password", "default", redis.Options{Password: "secret"}},
		{"provider", "piper", redis.Options{CredentialsProvider: func() (string, string) { return "piper", "piper-pw" }}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var connects atomic.Int32
			opts := tc.opts
			opts.DB, opts.ClientName = 3, "pipe-"+tc.name
			opts.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
				connects.Add(1)
				return cn.Set(ctx, "connected:"+tc.name, "yes", 0).Err()
			}
			p, _ := pipeOn(t, srv.Addr(), &opts, nil)
			if err := run(t, p, do("SET", "k:"+tc.name, "v")).Err(); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				call rediskv.Call
				want any
			}{
				{do("ACL", "WHOAMI"), tc.user},
				{do("CLIENT", "GETNAME"), "pipe-" + tc.name},
				{do("GET", "connected:"+tc.name), "yes"}, // OnConnect ran on this connection, in DB 3
			} {
				if got := run(t, p, c.call).Val(); got != c.want {
					t.Errorf("%v = %v, want %v", c.call.Args, got, c.want)
				}
			}
			db3 := srv.Client(&redis.Options{Password: "secret", DB: 3})
			if db3.Exists(ctx, "k:"+tc.name).Val() != 1 || admin.Exists(ctx, "k:"+tc.name).Val() != 0 {
				t.Error("the Pipe's SET did not land in DB 3")
			}
			if n := connects.Load(); n != 1 {
				t.Errorf("OnConnect ran %d times, want 1", n)
			}
		})
	}
	// Refused credentials fail the call, as a broken connection.
	var lost atomic.Int32
	p, _ := pipeOn(t, srv.Addr(), &redis.Options{Password: "wrong", MaxRetries: -1}, func(error) { lost.Add(1) })
	if err := run(t, p, do("PING")).Err(); err == nil || !redis.HasErrorPrefix(err, "WRONGPASS") && !redis.HasErrorPrefix(err, "NOAUTH") {
		t.Fatalf("PING with a wrong password: %v", err)
	}
	if l := lost.Load(); l != 1 {
		t.Fatalf("onLost called %d times after a refused handshake, want 1", l)
	}
}

// A reply that does not come within ReadTimeout breaks the connection.
func TestPipeReadTimeout(t *testing.T) {
	srv := redistest.Start(t)
	var lost atomic.Int32
	p, _ := pipeOn(t, srv.Addr(), &redis.Options{ReadTimeout: 100 * time.Millisecond}, func(error) { lost.Add(1) })
	err := run(t, p, do("BLPOP", "never", 0)).Err()
	var ne interface{ Timeout() bool }
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("BLPOP past ReadTimeout: %v, want a timeout", err)
	}
	if lost.Load() != 1 {
		t.Fatalf("onLost called %d times, want 1", lost.Load())
	}
	// The next call dials again. On a loaded machine its reply may itself
	// come after the 100 ms ReadTimeout, a timeout of its own; a Pipe that
	// stayed broken would fail every try.
	for try := 1; ; try++ {
		err := run(t, p, do("PING")).Err()
		if err == nil {
			break
		}
		if !errors.As(err, &ne) || !ne.Timeout() || try == 20 {
			t.Fatalf("the call after a timeout (try %d): %v", try, err)
		}
	}
}

// A write pause (CLIENT PAUSE WRITE) holds the writes of one Pipe, not
// the reads of another.
func TestPipeWritePauseStallsOnlyItsPipe(t *testing.T) {
	srv := redistest.Start(t)
	writes, _ := pipeOn(t, srv.Addr(), nil, nil)
	reads, _ := pipeOn(t, srv.Addr(), nil, nil)
	run(t, writes, do("SET", "k", "v"))
	run(t, reads, do("PING"))
	srv.Do("CLIENT", "PAUSE", "20000", "WRITE")
	t.Cleanup(func() { srv.Do("CLIENT", "UNPAUSE") })
	written := make(chan error, 1)
	go func() { written <- writes.Run(context.Background(), do("SET", "k", "w"), func(*redis.Cmd) {}).Err() }()
	for range 10 {
		if s, err := run(t, reads, do("GET", "k")).Text(); s != "v" || err != nil {
			t.Fatalf("GET during the pause = %q, %v", s, err)
		}
	}
	select {
	case err := <-written:
		t.Fatalf("the write ended during the pause: %v", err)
	default:
	}
	srv.Do("CLIENT", "UNPAUSE")
	if err := <-written; err != nil {
		t.Fatal(err)
	}
}
