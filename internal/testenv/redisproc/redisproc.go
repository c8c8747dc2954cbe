// Package redisproc runs redis-server processes on free loopback ports: start,
// crash (SIGKILL), freeze (SIGSTOP), restart on the same port. The tests
// use it through redistest; the check command uses it directly.
package redisproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNoBinary is returned when redis-server is not in PATH.
var ErrNoBinary = errors.New("redis-server not found in PATH: install it (apt-get install -y redis-server)")

// Server is one redis-server process on 127.0.0.1.
type Server struct {
	bin     string
	dir     string
	port    int
	leading []string // before the generated arguments (a config file)
	args    []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been reaped
	out    *bytes.Buffer
}

// Start starts redis-server on a free loopback port, with its working
// directory dir, persistence off unless extra turns it on, and waits until
// it answers PING. extra are additional `--name value` arguments.
func Start(dir string, extra ...string) (*Server, error) {
	return StartWith(dir, nil, extra...)
}

// StartWith is Start with arguments that go before the generated ones,
// such as a config file and --sentinel.
func StartWith(dir string, leading []string, extra ...string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNoBinary
	}
	s := &Server{bin: bin, dir: dir, leading: leading, args: extra}
	for range 5 { // a free port can be taken between probe and bind
		if s.port, err = freePort(); err != nil {
			return nil, err
		}
		if err = s.start(); err == nil {
			return s, nil
		}
	}
	return nil, fmt.Errorf("redisproc: start redis-server: %w", err)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redisproc: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) start() error {
	args := append([]string{}, s.leading...)
	args = append(args,
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--dir", s.dir, "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--logfile", "",
	)
	args = append(args, s.args...)
	cmd := exec.Command(s.bin, args...)
	out := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited, s.out = cmd, exited, out
	s.mu.Unlock()

	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited: %s", out.String())
		default:
		}
		if s.Ping() == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-exited
	return errors.New("redis-server did not answer PING within 10s: " + out.String())
}

// Ping checks that the server answers.
func (s *Server) Ping() error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// Addr returns host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port returns the port.
func (s *Server) Port() int { return s.port }

// Do runs one command on a fresh connection (for fault injection such as
// CLIENT KILL and CONFIG SET).
func (s *Server) Do(args ...any) (any, error) {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	return c.Do(context.Background(), args...).Result()
}

// Kill stops the server with SIGKILL, as a crash would, and waits until it
// is gone.
func (s *Server) Kill() { s.signalAndReap(syscall.SIGKILL) }

// Shutdown stops the server with SIGTERM (which flushes an append-only
// file) and waits until it is gone.
func (s *Server) Shutdown() { s.signalAndReap(syscall.SIGTERM) }

func (s *Server) signalAndReap(sig syscall.Signal) {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // a frozen process cannot handle SIGTERM
	_ = cmd.Process.Signal(sig)
	<-exited
}

// Freeze suspends the server (SIGSTOP): it keeps its port and accepts
// connections but answers nothing, like a host cut off by the network.
func (s *Server) Freeze() { s.signal(syscall.SIGSTOP) }

// Thaw resumes a frozen server (SIGCONT).
func (s *Server) Thaw() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

// Restart starts the server again on the same port and directory (after
// Kill or Shutdown): with an empty dataset, unless persistence is on.
func (s *Server) Restart() error {
	var err error
	for range 50 { // the port may linger briefly after a kill
		if err = s.start(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("redisproc: restart on port %d: %w", s.port, err)
}

// Stop kills the server if it runs.
func (s *Server) Stop() { s.Kill() }

// CIRequiresRedis reports whether a missing redis-server must fail rather
// than skip: when the CI environment variable is set.
func CIRequiresRedis() bool { return os.Getenv("CI") != "" }
