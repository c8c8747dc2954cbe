package redistest

import (
	"bytes"
	"net"
	"sync"
	"testing"
)

// ReplyHold is a loopback TCP proxy that forwards everything, except
// that, once armed with a marker, it holds the replies on the connection
// whose request carries the marker, from that request on, until
// released: a reply that Redis sent but a slow network has not
// delivered yet. Other connections through it (a subscription, say) are
// not held. Tests use it to land a read's reply after something that
// happened later in Redis.
type ReplyHold struct {
	ln net.Listener
	to string

	mu      sync.Mutex
	marker  []byte        // armed: hold the connection that sends it
	held    chan struct{} // closed when a held reply has arrived
	free    chan struct{} // closed by release
	release func()        // the last arming's
	wg      sync.WaitGroup
	conns   []net.Conn
}

// NewReplyHold starts a ReplyHold to addr, stopped when the test ends.
// Dial its Addr.
func NewReplyHold(t testing.TB, addr string) *ReplyHold {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &ReplyHold{ln: ln, to: addr}
	h.wg.Add(1)
	go h.accept()
	t.Cleanup(h.stop)
	return h
}

// Addr is the address to dial.
func (h *ReplyHold) Addr() string { return h.ln.Addr().String() }

// Arm makes the next connection that sends marker hold its replies. held
// is closed once a reply on it has reached the proxy after that request
// (Redis has answered it, or a request pipelined before it: arm it where
// the marked request is the only one in flight on its connection);
// release delivers what was held and stops holding.
func (h *ReplyHold) Arm(marker string) (held <-chan struct{}, release func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.marker, h.held, h.free = []byte(marker), make(chan struct{}), make(chan struct{})
	free := h.free
	var once sync.Once
	h.release = func() { once.Do(func() { close(free) }) }
	return h.held, h.release
}

func (h *ReplyHold) accept() {
	defer h.wg.Done()
	for {
		c, err := h.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", h.to)
		if err != nil {
			c.Close()
			continue
		}
		h.mu.Lock()
		h.conns = append(h.conns, c, s)
		h.mu.Unlock()
		var hold holdState
		h.wg.Add(2)
		go func() { defer h.wg.Done(); forward(s, c, h.mark(&hold)) }()
		go func() { defer h.wg.Done(); forward(c, s, hold.wait) }()
	}
}

// holdState is one connection's: whether its replies are held, and the
// channels of the arming that held it.
type holdState struct {
	mu         sync.Mutex
	held, free chan struct{}
}

// mark returns what requests pass through: it holds the connection when
// they carry the armed marker, and disarms.
func (h *ReplyHold) mark(st *holdState) func([]byte) {
	return func(b []byte) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.marker != nil && bytes.Contains(b, h.marker) {
			st.mu.Lock()
			st.held, st.free = h.held, h.free
			st.mu.Unlock()
			h.marker = nil
		}
	}
}

// wait, before a reply is forwarded, holds it while the connection is
// held, saying so once.
func (st *holdState) wait([]byte) {
	st.mu.Lock()
	held, free := st.held, st.free
	st.held, st.free = nil, nil
	st.mu.Unlock()
	if held != nil {
		close(held)
		<-free
	}
}

// forward copies src to dst until either ends, calling before with each
// chunk before it is written: a request is marked before Redis can
// answer it, a reply held before the client sees it.
func forward(dst, src net.Conn, before func([]byte)) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			before(buf[:n])
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (h *ReplyHold) stop() {
	h.ln.Close()
	h.mu.Lock()
	for _, c := range h.conns {
		c.Close()
	}
	release := h.release
	h.mu.Unlock()
	if release != nil {
		release()
	}
	h.wg.Wait()
}
