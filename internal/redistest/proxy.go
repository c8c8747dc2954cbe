package redistest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy is a loopback TCP proxy in front of a server that can black-hole
// it: while it does, every connection, open or new, is accepted but
// nothing is forwarded either way, as a network that drops packets (a
// partition, a firewall change) looks to a client: dials that are never
// answered, and requests that never get a reply.
type Proxy struct {
	l      net.Listener
	target string

	mu      sync.Mutex
	holed   bool
	dropped int64 // bytes read and not forwarded while black-holed
	conns   []net.Conn
	wg      sync.WaitGroup
}

// NewProxy starts a proxy to target on a free loopback port, stopped when
// the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{l: l, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Dropped returns how many bytes the proxy has read and dropped while
// black-holed: a client's request, waiting for a reply that never comes.
func (p *Proxy) Dropped() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

// Addr returns the proxy's address.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// BlackHole stops forwarding until Heal.
func (p *Proxy) BlackHole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holed = true
}

// Heal forwards again; the connections that were black-holed stay dead
// (their bytes are lost, as after a partition), which their clients find
// out when they next read or write.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.holed {
		p.holed = false
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.conns = nil
	}
}

func (p *Proxy) close() {
	_ = p.l.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		holed := p.holed
		p.mu.Unlock()
		if holed {
			continue // accepted, never answered; closed by Heal
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

// forward copies between c and a new connection to the target until
// either ends or a black hole starts (then both are left open, silent).
func (p *Proxy) forward(c net.Conn) {
	defer p.wg.Done()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, s)
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.copy(s, c) }()
	go func() { defer wg.Done(); p.copy(c, s) }()
	wg.Wait()
	_ = c.Close()
	_ = s.Close()
}

// copy forwards src to dst, dropping what it reads while black-holed.
func (p *Proxy) copy(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			holed := p.holed
			if holed {
				p.dropped += int64(n)
			}
			p.mu.Unlock()
			if !holed {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}
