package rediskv

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
)

// maxBatch bounds the calls sent in one pipeline.
const maxBatch = 256

// Pipe is a Runner with one connection of its own: the calls that arrive
// while a batch is in flight go out together in the next one, in order.
// Calls once sent run to their reply without a caller's context, bounded
// by the client's socket timeouts, so that done always learns the
// outcome; make the client with Conns, whose Abort ends them at once.
type Pipe struct {
	client *redis.Client
	onLost func(err error)

	ops     chan *op
	excl    chan *exclusive
	stop    chan struct{} // closed by Close
	stopped chan struct{} // closed when the loop has ended
	once    sync.Once

	conn *redis.Conn // owned by the loop goroutine
}

// NewPipe returns a Pipe on client (never closed by the Pipe) and starts
// its goroutine. It dials nothing yet. onLost, if not nil, runs on the
// Pipe's goroutine after the connection broke and was dropped: whatever
// the connection carried (a tracking registration) is gone.
func NewPipe(client *redis.Client, onLost func(err error)) *Pipe {
	if onLost == nil {
		onLost = func(error) {}
	}
	p := &Pipe{
		client: client, onLost: onLost,
		ops: make(chan *op), excl: make(chan *exclusive),
		stop: make(chan struct{}), stopped: make(chan struct{}),
	}
	go p.loop()
	return p
}

// op is one call on the connection.
type op struct {
	call  Call
	done  func(*redis.Cmd)
	cmd   *redis.Cmd
	reply chan struct{} // closed once cmd is set and done has run
}

// exclusive is a function run on the connection between two batches.
type exclusive struct {
	ctx  context.Context
	fn   func(ctx context.Context, conn *redis.Conn) error
	done chan error
}

// Run implements Runner: the call joins the next batch.
func (p *Pipe) Run(ctx context.Context, call Call, done func(*redis.Cmd)) *redis.Cmd {
	o := &op{call: call, done: done, reply: make(chan struct{})}
	if err := ctx.Err(); err != nil {
		return failed(o, err) // select would pick at random among ready cases
	}
	select {
	case p.ops <- o:
	case <-ctx.Done():
		return failed(o, ctx.Err())
	case <-p.stopped:
		return failed(o, tierstore.ErrClosed)
	}
	select {
	case <-o.reply:
		return o.cmd
	case <-ctx.Done():
		// Sent or about to be: the loop calls done with the outcome.
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(ctx.Err())
		return cmd
	}
}

// failed ends an op that was never sent.
func failed(o *op, err error) *redis.Cmd {
	o.cmd = redis.NewCmd(context.Background())
	o.cmd.SetErr(err)
	o.done(o.cmd)
	return o.cmd
}

// Do runs fn on the Pipe's connection between two batches, with ctx,
// which bounds its socket reads and writes. An error that leaves the
// connection in doubt drops it (see onLost). It returns ctx's error if
// ctx ends before fn has started, and ErrClosed after Close.
func (p *Pipe) Do(ctx context.Context, fn func(ctx context.Context, conn *redis.Conn) error) error {
	x := &exclusive{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case p.excl <- x:
	case <-ctx.Done():
		return ctx.Err()
	case <-p.stopped:
		return tierstore.ErrClosed
	}
	return <-x.done
}

// Close ends the goroutine once the batch in flight is answered, and
// closes the connection. It does not close the client.
func (p *Pipe) Close() {
	p.once.Do(func() { close(p.stop) })
	<-p.stopped
}

func (p *Pipe) loop() {
	defer close(p.stopped)
	batch := make([]*op, 0, maxBatch)
	for {
		select {
		case <-p.stop:
			p.disconnect()
			return
		case x := <-p.excl:
			err := x.fn(x.ctx, p.connection())
			if Broken(err) {
				p.lost(err)
			}
			x.done <- err
		case o := <-p.ops:
			batch = append(batch[:0], o)
			// The callers answered by the last batch are waking up now:
			// yielding once lets them join this one, instead of each
			// waiting for its own round trip.
			runtime.Gosched()
		more:
			for len(batch) < maxBatch {
				select {
				case o := <-p.ops:
					batch = append(batch, o)
				default:
					break more
				}
			}
			p.write(batch)
			clear(batch)
		}
	}
}

func (p *Pipe) connection() *redis.Conn {
	if p.conn == nil {
		// Ephemeral: a connection that carried CLIENT TRACKING must never
		// go back to a pool.
		p.conn = p.client.EphemeralConn()
	}
	return p.conn
}

func (p *Pipe) disconnect() {
	if p.conn != nil {
		_ = p.conn.Close()
		p.conn = nil
	}
}

func (p *Pipe) lost(err error) {
	p.disconnect()
	p.onLost(err)
}

// write sends a batch in one pipeline. Without a caller's context: a
// call once sent runs to its reply (or the socket's timeouts), so that
// its outcome, which done reports, is known.
func (p *Pipe) write(batch []*op) {
	ctx := context.Background()
	conn := p.connection()
	_, err := conn.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for _, o := range batch {
			if o.call.Script == nil {
				o.cmd = pl.Do(ctx, o.call.Args...)
			} else {
				o.cmd = o.call.Script.EvalSha(ctx, pl, o.call.Keys, o.call.Args...)
			}
		}
		return nil
	})
	var lostErr error
	for _, o := range batch {
		// go-redis may fail a pipeline (a connection whose handshake was
		// refused, say) without setting its commands' errors: a command
		// with neither a reply nor an error was not answered.
		if o.cmd.Err() == nil && o.cmd.Val() == nil {
			if err == nil {
				err = errors.New("rediskv: no reply")
			}
			o.cmd.SetErr(err)
		}
	}
	for _, o := range batch {
		if err := o.cmd.Err(); Broken(err) {
			lostErr = err
		} else if redis.HasErrorPrefix(err, "NOSCRIPT") && o.call.Script != nil && lostErr == nil {
			// The script cache was flushed: send the source.
			o.cmd = o.call.Script.Eval(ctx, conn, o.call.Keys, o.call.Args...)
			if Broken(o.cmd.Err()) {
				lostErr = o.cmd.Err()
			}
		}
	}
	if lostErr != nil {
		p.lost(lostErr)
	}
	for _, o := range batch {
		o.done(o.cmd)
		close(o.reply)
	}
}

// Broken reports whether err leaves a connection unusable or in doubt:
// anything but an error reply from Redis, and READONLY (the server became
// a replica: a new connection finds the master, through a Sentinel
// client's dialer), after which go-redis marks the connection bad
// ("Conn is in a bad state", which wraps the reply) for good.
func Broken(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	if redis.HasErrorPrefix(err, "READONLY") || strings.HasPrefix(err.Error(), "redis: Conn is in a bad state") {
		return true
	}
	var reply redis.Error
	return !errors.As(err, &reply)
}
