package rediskv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// A Pipe does its own I/O on the socket under a go-redis connection, which
// go-redis does not expose. So the Pipe's client dials through a hook that
// wraps every socket in a tap, and the Pipe sends through the connection a
// word of its own (a nonce) as a command: the tap whose writes carry it is
// the one under that connection. The command is one no server has, so
// that no ACL can refuse it (Redis answers an unknown command before it
// checks permissions; even PING may be denied) and it does nothing; its
// error reply repeats the nonce. That reply also shows that go-redis's
// buffered reader holds nothing: the last bytes go-redis read from the
// socket are that reply, which it has consumed. The taps pass everything
// through; they look at the bytes only while a claim is armed.

// tap is a socket the Pipe's client dialled.
type tap struct {
	net.Conn
	claim *claim
	watch atomic.Bool // the claimed tap: record the bytes go-redis reads

	mu    sync.Mutex
	wtail []byte // the end of the last write seen while armed
	rtail []byte // the end of what go-redis has read since the claim
}

// tailLen bounds what a tap keeps of the bytes it sees: more than the
// reply to a nonce.
const tailLen = 256

func (t *tap) Write(b []byte) (int, error) {
	if t.claim.armed.Load() {
		t.claim.saw(t, b)
	}
	return t.Conn.Write(b)
}

func (t *tap) Read(b []byte) (int, error) {
	n, err := t.Conn.Read(b)
	if n > 0 && t.watch.Load() {
		t.mu.Lock()
		t.rtail = keepTail(append(t.rtail, b[:n]...), tailLen)
		t.mu.Unlock()
	}
	return n, err
}

// keepTail returns the last n bytes of b, in b's memory unless that is
// much larger (a tap keeps little).
func keepTail(b []byte, n int) []byte {
	if len(b) > n {
		b = b[:copy(b, b[len(b)-n:])]
	}
	if cap(b) > 2*tailLen {
		b = bytes.Clone(b)
	}
	return b
}

// claim finds the tap under a connection of a client, for one Pipe.
type claim struct {
	armed atomic.Bool
	mu    sync.Mutex
	nonce []byte // armed: the word to look for
	got   *tap   // the tap that wrote it

	prefix string // unique to the Pipe
	seq    uint64
}

func newClaim() *claim {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &claim{prefix: "tierstore-pipe-" + hex.EncodeToString(b[:]) + "-"}
}

// saw looks for the nonce in what t writes (with the end of its last
// write, should go-redis's buffer have split the command).
func (c *claim) saw(t *tap, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nonce == nil || c.got != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	w := append(t.wtail, b...)
	if bytes.Contains(w, c.nonce) {
		c.got = t
		t.wtail, t.rtail = t.wtail[:0], t.rtail[:0]
		t.watch.Store(true)
		return
	}
	t.wtail = keepTail(w, len(c.nonce))
}

// find sends a fresh nonce through conn (dialling it and making
// go-redis's handshake first if it is new) and returns the tap under it,
// once go-redis's reader is known to hold nothing.
func (c *claim) find(conn *redis.Conn) (*tap, error) {
	c.seq++
	nonce := c.prefix + strconv.FormatUint(c.seq, 10)
	c.mu.Lock()
	c.nonce, c.got = []byte(nonce), nil
	c.mu.Unlock()
	c.armed.Store(true)
	err := conn.Do(context.Background(), nonce).Err()
	c.armed.Store(false)
	c.mu.Lock()
	t := c.got
	c.nonce, c.got = nil, nil
	c.mu.Unlock()
	var tail []byte
	if t != nil {
		t.watch.Store(false)
		t.mu.Lock()
		tail = append(tail, t.rtail...)
		t.mu.Unlock()
	}
	var reply redis.Error
	switch {
	case !errors.As(err, &reply):
		if err == nil {
			err = errors.New("rediskv: pipe: a command no server has was answered")
		}
		return nil, err // the handshake failed, or the connection
	case !strings.Contains(reply.Error(), nonce):
		// The handshake's refusal (credentials, say), or a reply that was
		// not this command's.
		return nil, fmt.Errorf("rediskv: pipe: connection: %w", err)
	case t == nil:
		return nil, errors.New("rediskv: pipe: the connection was not dialled through the pipe's hook")
	case !bytes.HasSuffix(tail, []byte("-"+reply.Error()+"\r\n")):
		return nil, errors.New("rediskv: pipe: go-redis read past the reply to its nonce")
	}
	return t, nil
}

// tapHook is the dial hook that wraps a Pipe's sockets in taps.
type tapHook struct{ claim *claim }

func (h tapHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil || conn == nil {
			return conn, err
		}
		return &tap{Conn: conn, claim: h.claim}, nil
	}
}

func (tapHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (tapHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
