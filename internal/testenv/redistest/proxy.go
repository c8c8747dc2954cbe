package redistest

import (
	"testing"

	"github.com/tierstore/tierstore/internal/testenv/redisproc"
)

// Proxy is a loopback TCP proxy in front of a server that can black-hole
// it (see redisproc.Proxy): BlackHole, Heal, Dropped.
type Proxy struct{ *redisproc.Proxy }

// NewProxy starts a proxy to target on a free loopback port, stopped when
// the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p, err := redisproc.StartProxy(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return &Proxy{p}
}
