package rediskv

import (
	"bufio"
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore"
)

// maxBatch bounds the calls sent in one write.
const maxBatch = 256

// maxInflight bounds the batches sent on a connection and not yet
// answered.
const maxInflight = 64

// Pipe is a Runner with one connection of its own, full duplex: a batch
// goes out as soon as calls are queued, while the replies of the batches
// before it are still coming back; the calls that arrive while a batch is
// written go out together in the next one, in order. Calls once sent run
// to their reply without a caller's context, bounded by the client's
// socket timeouts (a reply must come within ReadTimeout of when the Pipe
// starts waiting for its batch, a write end within WriteTimeout), so that
// done always learns the outcome; make the client with Conns, whose Abort
// ends them at once. done runs on the connection's reader goroutine, in
// the order of the replies (a script sent again after NOSCRIPT comes back
// later), and must not block.
//
// go-redis dials the connection and makes its handshake (every option of
// the client applies: credentials, DB, client name, OnConnect, TLS), then
// the Pipe speaks RESP2 on its socket itself (see tap), and lends it back
// to go-redis only in Do, with nothing in flight.
type Pipe struct {
	client *redis.Client
	onLost func(err error)
	claim  *claim

	// The client's socket timeouts as go-redis holds them once its options
	// are initialised: -1 sets no deadline, 0 clears it.
	readTimeout, writeTimeout time.Duration
	readBuffer                int

	ops     chan *op
	excl    chan *exclusive
	stop    chan struct{} // closed by Close
	stopped chan struct{} // closed when the loop has ended
	once    sync.Once

	// Owned by the loop goroutine.
	sess *session // nil: none
	wbuf []byte   // a batch, encoded

	written func(calls int) // tests: after each write; set before any call
}

// NewPipe returns a Pipe on client (never closed by the Pipe) and starts
// its goroutine. It dials nothing yet. The client must be the Pipe's own,
// unused before (make it with Conns.Client): NewPipe adds a dial hook to
// it, through which the Pipe finds its connection's socket. onLost, if
// not nil, runs on the Pipe's goroutine after the connection broke and was
// dropped, before the done of any call it failed: whatever the connection
// carried (a tracking registration) is gone.
func NewPipe(client *redis.Client, onLost func(err error)) *Pipe {
	p := newPipe(client, onLost)
	go p.loop()
	return p
}

// newPipe is NewPipe without its goroutine.
func newPipe(client *redis.Client, onLost func(err error)) *Pipe {
	if onLost == nil {
		onLost = func(error) {}
	}
	o := client.Options()
	p := &Pipe{
		client: client, onLost: onLost, claim: newClaim(),
		readTimeout: o.ReadTimeout, writeTimeout: o.WriteTimeout, readBuffer: o.ReadBufferSize,
		ops: make(chan *op), excl: make(chan *exclusive),
		stop: make(chan struct{}), stopped: make(chan struct{}),
	}
	if p.readBuffer <= 0 {
		p.readBuffer = 32 << 10
	}
	client.AddHook(tapHook{p.claim})
	return p
}

// op is one call on the connection.
type op struct {
	call  Call
	done  func(*redis.Cmd)
	cmd   *redis.Cmd
	reply chan struct{} // closed once cmd is set and done has run
	eval  bool          // a script Redis did not have: sent again as EVAL
}

// exclusive is a function run on the connection between two batches.
type exclusive struct {
	ctx  context.Context
	fn   func(ctx context.Context, conn *redis.Conn) error
	done chan error
}

// batch is the calls of one write, handed to the reader in the order
// written. A barrier has no calls: the reader closes it once every batch
// before it is answered.
type batch struct {
	ops     []*op
	barrier chan struct{}
}

var batches = sync.Pool{New: func() any { return &batch{ops: make([]*op, 0, maxBatch)} }}

// putBatch recycles b, unless it is a barrier: one of those taken for a
// batch would swallow its calls.
func putBatch(b *batch) {
	if b.barrier != nil {
		return
	}
	clear(b.ops)
	b.ops = b.ops[:0]
	batches.Put(b)
}

// Run implements Runner: the call joins the next batch.
func (p *Pipe) Run(ctx context.Context, call Call, done func(*redis.Cmd)) *redis.Cmd {
	o := &op{call: call, done: done, reply: make(chan struct{})}
	if err := ctx.Err(); err != nil {
		fail(o, err) // select would pick at random among ready cases
		return o.cmd
	}
	select {
	case p.ops <- o:
	case <-ctx.Done():
		fail(o, ctx.Err())
		return o.cmd
	case <-p.stopped:
		fail(o, tierstore.ErrClosed)
		return o.cmd
	}
	select {
	case <-o.reply:
		return o.cmd
	case <-ctx.Done():
		// Sent or about to be: the Pipe calls done with the outcome.
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(ctx.Err())
		return cmd
	}
}

// answer ends o with Redis's reply (err nil, a replyError or redis.Nil) or
// a failure.
func answer(o *op, v any, err error) {
	o.cmd = redis.NewCmd(context.Background())
	if err != nil {
		o.cmd.SetErr(err)
	} else {
		o.cmd.SetVal(v)
	}
	o.done(o.cmd)
	close(o.reply)
}

func fail(o *op, err error) { answer(o, nil, err) }

// Do runs fn on the Pipe's connection between two batches, with ctx,
// which bounds its socket reads and writes: every call sent before is
// answered first, and the calls after wait until fn has returned. fn must
// leave no reply unread. An error that leaves the connection in doubt
// drops it (see onLost). It returns ctx's error if ctx ends before fn has
// started, and ErrClosed after Close.
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

// Close ends the goroutine once the calls in flight are answered, and
// closes the connection. It does not close the client.
func (p *Pipe) Close() {
	p.once.Do(func() { close(p.stop) })
	<-p.stopped
}

func (p *Pipe) loop() {
	defer close(p.stopped)
	for {
		var broken, retry <-chan struct{}
		if s := p.sess; s != nil {
			broken, retry = s.broken, s.retry
		}
		select {
		case <-p.stop:
			p.drain()
			p.disconnect()
			return
		case x := <-p.excl:
			p.exclusive(x)
		case o := <-p.ops:
			b := batches.Get().(*batch)
			b.ops = append(b.ops, o)
			// The callers the reader has just answered are waking up now:
			// yielding once lets them join this batch instead of each
			// sending its own.
			runtime.Gosched()
		more:
			for len(b.ops) < maxBatch {
				select {
				case o := <-p.ops:
					b.ops = append(b.ops, o)
				default:
					break more
				}
			}
			p.send(b)
		case <-retry:
			p.resend()
		case <-broken:
			p.lost()
		}
	}
}

// session is one connection, from its handshake to its end. The loop
// goroutine writes, a reader goroutine reads the replies; a failure of
// either ends the session (fail, then the loop's lost).
type session struct {
	conn *redis.Conn   // go-redis's: the handshake, Do, and closing
	tap  *tap          // its socket
	nc   net.Conn      // the socket under the tap, for the Pipe's own I/O
	br   *bufio.Reader // the reader goroutine's

	inflight chan *batch   // written (or being written), to be answered
	retry    chan struct{} // a call waits in retries
	broken   chan struct{} // closed by fail
	lostDone chan struct{} // closed once onLost has run (or will not)
	exited   chan struct{} // closed when the reader has ended

	failed atomic.Bool // err is set

	mu      sync.Mutex
	err     error // why the session failed
	retries []*op // scripts Redis did not have, to send again as EVAL
}

// fail records the first error that ends the session and closes its
// socket, which ends a read or write under way.
func (s *session) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	s.err = err
	s.failed.Store(true)
	close(s.broken)
	_ = s.nc.Close()
}

func (s *session) cause() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// session returns the connection, dialled if there is none.
func (p *Pipe) session() (*session, error) {
	if p.sess != nil {
		return p.sess, nil
	}
	// Ephemeral: a connection that carried CLIENT TRACKING must never go
	// back to a pool.
	conn := p.client.EphemeralConn()
	t, err := p.claim.find(conn)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	s := &session{
		conn: conn, tap: t, nc: t.Conn, br: bufio.NewReaderSize(t.Conn, p.readBuffer),
		inflight: make(chan *batch, maxInflight), retry: make(chan struct{}, 1),
		broken: make(chan struct{}), lostDone: make(chan struct{}), exited: make(chan struct{}),
	}
	go p.read(s)
	p.sess = s
	return s, nil
}

// send writes a batch, dialling first if needed. A failed dial or
// handshake fails the batch, as a broken connection would.
func (p *Pipe) send(b *batch) {
	s, err := p.session()
	if err != nil {
		p.onLost(err)
		for _, o := range b.ops {
			fail(o, err)
		}
		putBatch(b)
		return
	}
	p.write(s, b)
}

// write encodes b and hands it to the reader, then writes it. A call that
// cannot be encoded fails alone, unsent.
func (p *Pipe) write(s *session, b *batch) {
	buf, n := p.wbuf[:0], 0
	for _, o := range b.ops {
		start := len(buf)
		var err error
		if buf, err = appendCall(buf, &o.call, o.eval); err != nil {
			buf = buf[:start]
			fail(o, err)
			continue
		}
		b.ops[n] = o
		n++
	}
	clear(b.ops[n:])
	b.ops = b.ops[:n]
	if cap(buf) <= 1<<20 { // do not pin a huge buffer
		p.wbuf = buf[:0]
	} else {
		p.wbuf = nil
	}
	if n == 0 {
		putBatch(b)
		return
	}
	// Handed over before it is written: the reader takes the replies as
	// they come, even while a large batch is still being written.
	if !p.hand(s, b) {
		return
	}
	err := setDeadline(s.nc, false, p.writeTimeout)
	if err == nil {
		_, err = s.nc.Write(buf)
	}
	if err != nil {
		s.fail(err)
		p.lost()
		return
	}
	if p.written != nil {
		p.written(n)
	}
}

// hand gives b to the reader. If the session has broken, it ends the
// session and fails b instead, and returns false.
func (p *Pipe) hand(s *session, b *batch) bool {
	select {
	case s.inflight <- b:
		return true
	case <-s.broken:
		p.lost()
		err := s.cause()
		for _, o := range b.ops {
			fail(o, err)
		}
		putBatch(b)
		return false
	}
}

// resend sends again, as EVAL, the scripts Redis did not have, in the
// order of their NOSCRIPT replies.
func (p *Pipe) resend() {
	s := p.sess
	s.mu.Lock()
	ops := s.retries
	s.retries = nil
	s.mu.Unlock()
	for len(ops) > 0 && p.sess == s {
		b := batches.Get().(*batch)
		k := min(len(ops), maxBatch)
		for _, o := range ops[:k] {
			o.eval = true
			b.ops = append(b.ops, o)
		}
		ops = ops[k:]
		p.write(s, b)
	}
	for _, o := range ops { // the session broke: lost has run
		fail(o, s.cause())
	}
}

// drain waits until every call sent is answered (scripts sent again
// included), and reports whether the session is still up; it has ended
// it if not.
func (p *Pipe) drain() bool {
	s := p.sess
	for s != nil {
		p.resend()
		if p.sess != s {
			return false
		}
		bar := &batch{barrier: make(chan struct{})}
		if !p.hand(s, bar) {
			return false
		}
		select {
		case <-bar.barrier:
		case <-s.broken:
		}
		s.mu.Lock()
		err, more := s.err, len(s.retries) > 0
		s.mu.Unlock()
		if err != nil {
			p.lost()
			return false
		}
		if !more {
			return true
		}
	}
	return false
}

// exclusive runs x's function with the connection to itself.
func (p *Pipe) exclusive(x *exclusive) {
	if err := x.ctx.Err(); err != nil {
		x.done <- err
		return
	}
	p.drain()
	if err := x.ctx.Err(); err != nil {
		x.done <- err
		return
	}
	s, err := p.session()
	if err != nil {
		p.onLost(err)
		x.done <- err
		return
	}
	err = x.fn(x.ctx, s.conn)
	if Broken(err) {
		s.fail(err)
		p.lost()
	} else if t, serr := p.claim.find(s.conn); serr != nil || t != s.tap {
		// go-redis may hold bytes the Pipe would then miss.
		if serr == nil {
			serr = errors.New("rediskv: pipe: the connection changed its socket")
		}
		s.fail(serr)
		p.lost()
	}
	x.done <- err
}

// lost ends a session that failed: it drops the connection, runs onLost,
// then lets the reader fail what was in flight.
func (p *Pipe) lost() {
	s := p.sess
	p.sess = nil
	err := s.cause()
	_ = s.conn.Close()
	p.onLost(err)
	close(s.lostDone)
	s.mu.Lock()
	retries := s.retries
	s.retries = nil
	s.mu.Unlock()
	for _, o := range retries {
		fail(o, err)
	}
	close(s.inflight)
	<-s.exited
}

// disconnect ends a session with nothing in flight, and closes its
// connection.
func (p *Pipe) disconnect() {
	s := p.sess
	if s == nil {
		return
	}
	p.sess = nil
	close(s.lostDone)
	close(s.inflight)
	<-s.exited
	_ = s.conn.Close()
}

// read is the session's reader: it answers the calls of each batch in
// order, as their replies come.
func (p *Pipe) read(s *session) {
	defer close(s.exited)
	for b := range s.inflight {
		if b.barrier != nil {
			if s.br.Buffered() > 0 {
				s.fail(errors.New("rediskv: pipe: Redis sent bytes no call asked for"))
			}
			close(b.barrier)
			continue
		}
		p.answerBatch(s, b)
		putBatch(b)
	}
}

func (p *Pipe) answerBatch(s *session, b *batch) {
	i := 0
	if !s.failed.Load() {
		if err := setDeadline(s.nc, true, p.readTimeout); err != nil {
			s.fail(err)
		}
	}
	for ; i < len(b.ops) && !s.failed.Load(); i++ {
		o := b.ops[i]
		v, err := readReply(s.br)
		if err != nil && !isReply(err) {
			s.fail(err)
			break
		}
		if err != nil && o.call.Script != nil && !o.eval && redis.HasErrorPrefix(err, "NOSCRIPT") {
			// The script cache was flushed: the loop sends the source.
			s.mu.Lock()
			if s.err == nil {
				s.retries = append(s.retries, o)
				o = nil
			}
			s.mu.Unlock()
			if o == nil {
				select {
				case s.retry <- struct{}{}:
				default:
				}
				continue
			}
			break // failed meanwhile: o fails below
		}
		if err != nil && Broken(err) { // READONLY: Redis answered, but the session ends
			s.fail(err)
			<-s.lostDone
			answer(o, v, err)
			i++
			break
		}
		answer(o, v, err)
	}
	if i < len(b.ops) {
		// The session failed: every call in flight fails with its cause,
		// once onLost has run.
		<-s.lostDone
		err := s.cause()
		for _, o := range b.ops[i:] {
			fail(o, err)
		}
	}
}

// setDeadline sets the socket's read or write deadline for timeout as
// go-redis does (-1: leave it; 0: none).
func setDeadline(nc net.Conn, read bool, timeout time.Duration) error {
	var t time.Time
	switch {
	case timeout < 0:
		return nil
	case timeout > 0:
		t = time.Now().Add(timeout)
	}
	if read {
		return nc.SetReadDeadline(t)
	}
	return nc.SetWriteDeadline(t)
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
