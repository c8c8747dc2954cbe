package redistest

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"
)

// Latency starts a TCP proxy on a free loopback port that forwards to addr
// and delivers every byte d after it arrived, in each direction: a server
// across a network (a round trip takes 2d more), on loopback. Pipelined
// bytes are not held back by the ones before them, so the proxy adds
// latency, not a bandwidth limit. It stops when the test ends; it returns
// the address to dial.
func Latency(t testing.TB, addr string, d time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		conns   []net.Conn
		stopped bool
		wg      sync.WaitGroup
	)
	track := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		conns = append(conns, c)
		return !stopped
	}
	wg.Go(func() {
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", addr)
			if err != nil {
				_ = down.Close()
				continue
			}
			if !track(down) || !track(up) {
				_ = down.Close()
				_ = up.Close()
				continue
			}
			wg.Go(func() { delayCopy(up, down, d) })
			wg.Go(func() { delayCopy(down, up, d) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		stopped = true
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// delayCopy copies src to dst, writing each chunk d after it was read.
// When either side fails it closes both.
func delayCopy(dst, src net.Conn, d time.Duration) {
	type chunk struct {
		b  []byte
		at time.Time
	}
	chunks := make(chan chunk, 4096)
	go func() {
		defer close(chunks)
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				chunks <- chunk{bytes.Clone(buf[:n]), time.Now()}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range chunks {
		time.Sleep(time.Until(c.at.Add(d)))
		if _, err := dst.Write(c.b); err != nil {
			break
		}
	}
	_ = dst.Close()
	_ = src.Close()
	for range chunks { // let the reader finish
	}
}
