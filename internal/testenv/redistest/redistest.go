// Package redistest starts real redis-server processes on free loopback
// ports for tests: single nodes that can be killed and restarted on the
// same port, and small Clusters.
//
// When redis-server is not installed the test is skipped, unless the CI
// environment variable is set, in which case it fails: CI must never
// silently skip the real-Redis tests.
package redistest

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore/internal/testenv/redisproc"
)

// Server is a redis-server process owned by a test.
type Server struct {
	*redisproc.Server
	t testing.TB
}

// Start starts a redis-server on a free loopback port with persistence
// off, and stops it when the test ends. extra are additional
// `--name value` arguments.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	srv, err := redisproc.Start(t.TempDir(), extra...)
	if errors.Is(err, redisproc.ErrNoBinary) {
		const msg = "redis-server not found in PATH: install it (apt-get install -y redis-server) or run ./scripts/test.sh, which does"
		if redisproc.CIRequiresRedis() {
			t.Fatal(msg + " (CI is set, so this is a failure, not a skip)")
		}
		t.Skip(msg)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return &Server{Server: srv, t: t}
}

// Client returns a new client of the server, closed when the test ends.
// opts may be nil; its Addr is set.
func (s *Server) Client(opts *redis.Options) *redis.Client {
	if opts == nil {
		opts = &redis.Options{}
	}
	opts.Addr = s.Addr()
	c := redis.NewClient(opts)
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Do runs one command on a fresh connection and fails the test on error.
func (s *Server) Do(args ...any) any {
	s.t.Helper()
	v, err := s.Server.Do(args...)
	if err != nil {
		s.t.Fatalf("redistest: %v: %v", args, err)
	}
	return v
}

// Restart starts the server again on the same port, failing the test if
// it cannot.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.Server.Restart(); err != nil {
		s.t.Fatal(err)
	}
}

// CPU returns the CPU time (user + system) the server has used since it
// started, as INFO reports it.
func (s *Server) CPU() time.Duration {
	s.t.Helper()
	info, _ := s.Do("INFO", "cpu").(string)
	var total float64
	for _, field := range []string{"used_cpu_user:", "used_cpu_sys:"} {
		_, rest, ok := strings.Cut(info, "\n"+field)
		line, _, _ := strings.Cut(rest, "\r")
		sec, err := strconv.ParseFloat(line, 64)
		if !ok || err != nil {
			s.t.Fatalf("redistest: no %s in INFO cpu: %q", field, info)
		}
		total += sec
	}
	return time.Duration(total * float64(time.Second))
}
