package redisproc

import (
	"net"
	"sync"
)

// proxyBuffer is the kernel buffer of each of a proxy's sockets, each way:
// small, so that the proxy adds little to what a client that stops
// reading leaves queued (a slow subscriber must reach the server's
// output-buffer limit about as soon as without the proxy).
const proxyBuffer = 64 << 10

// Proxy is a loopback TCP proxy in front of a server that can black-hole
// it: while it does, every connection, open or new, is accepted but
// nothing is forwarded either way, as a network that drops packets (a
// partition, a firewall change) looks to a client: dials that are never
// answered, and requests that never get a reply. Tests get one
// with redistest.NewProxy.
type Proxy struct {
	l      net.Listener
	target string

	mu      sync.Mutex
	holed   bool
	closed  bool
	dropped int64                 // bytes read and not forwarded while black-holed
	conns   map[net.Conn]struct{} // both ends of every connection open
	wg      sync.WaitGroup
}

// StartProxy starts a proxy to target on a free loopback port. Close
// stops it.
func StartProxy(target string) (*Proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{l: l, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
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
// (their bytes are lost, as after a partition): Heal closes them, which
// their clients find out when they next read or write.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.holed {
		p.holed = false
		p.closeAll()
	}
}

// Close stops the proxy and closes every connection through it.
func (p *Proxy) Close() {
	_ = p.l.Close()
	p.mu.Lock()
	p.closed = true
	p.closeAll()
	p.mu.Unlock()
	p.wg.Wait()
}

// closeAll closes every connection; p.mu must be held.
func (p *Proxy) closeAll() {
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
}

// track adds c to the open connections, or closes it if the proxy is
// closed, and reports whether it did the former.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(proxyBuffer)
		_ = tc.SetWriteBuffer(proxyBuffer)
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) forget(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
		delete(p.conns, c)
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			continue
		}
		p.mu.Lock()
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
// either ends or a black hole starts (then both are left open, silent,
// until Heal closes them).
func (p *Proxy) forward(c net.Conn) {
	defer p.wg.Done()
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		p.forget(c)
		return
	}
	if !p.track(s) {
		p.forget(c)
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.copy(s, c) }()
	go func() { defer wg.Done(); p.copy(c, s) }()
	wg.Wait()
	p.forget(c, s)
}

// copy forwards src to dst, dropping what it reads while black-holed.
// When src ends it closes both, so that the other copy ends too; but not
// while black-holed, when no end may learn anything of the other (Heal
// closes them).
func (p *Proxy) copy(dst, src net.Conn) {
	defer func() {
		p.mu.Lock()
		holed := p.holed
		p.mu.Unlock()
		if !holed {
			_ = dst.Close()
			_ = src.Close()
		}
	}()
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
