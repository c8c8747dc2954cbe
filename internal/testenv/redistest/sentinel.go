package redistest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore/internal/testenv/redisproc"
)

// Sentinel is a master and its replica watched by one redis-server in
// sentinel mode, on free loopback ports.
type Sentinel struct {
	t          testing.TB
	Master     *Server
	Replica    *Server
	Sentinel   *redisproc.Server
	MasterName string
}

// StartSentinel starts a master, a replica of it, and a sentinel
// monitoring them as "mymaster", and waits until the replica is in sync
// and the sentinel knows both.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	master := Start(t, "--repl-diskless-sync-delay", "0")
	replica := Start(t, "--replicaof", "127.0.0.1", fmt.Sprint(master.Port()))
	Eventually(t, "the replica is in sync", func() bool {
		info, err := replica.Server.Do("INFO", "replication")
		return err == nil && strings.Contains(fmt.Sprint(info), "master_link_status:up")
	})
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	// A sentinel rewrites its config file, so it must be writable.
	body := fmt.Sprintf("sentinel monitor mymaster 127.0.0.1 %d 1\nsentinel down-after-milliseconds mymaster 5000\n", master.Port())
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	sen, err := redisproc.StartWith(dir, []string{conf, "--sentinel"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sen.Stop)
	s := &Sentinel{t: t, Master: master, Replica: replica, Sentinel: sen, MasterName: "mymaster"}
	Eventually(t, "the sentinel knows the master and its replica", func() bool {
		v, err := sen.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")
		if err != nil || fmt.Sprint(v) != fmt.Sprintf("[127.0.0.1 %d]", master.Port()) {
			return false
		}
		r, err := sen.Do("SENTINEL", "REPLICAS", "mymaster")
		return err == nil && strings.Contains(fmt.Sprint(r), fmt.Sprint(replica.Port()))
	})
	return s
}

// Failover makes the sentinel promote the replica (SENTINEL FAILOVER) and
// waits until it reports the new master.
func (s *Sentinel) Failover() {
	s.t.Helper()
	if _, err := s.Sentinel.Do("SENTINEL", "FAILOVER", s.MasterName); err != nil {
		s.t.Fatal(err)
	}
	Eventually(s.t, "the sentinel reports the replica as master", func() bool {
		v, err := s.Sentinel.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.MasterName)
		return err == nil && fmt.Sprint(v) == fmt.Sprintf("[127.0.0.1 %d]", s.Replica.Port())
	})
}

// Client returns a failover client through the sentinel, closed when the
// test ends.
func (s *Sentinel) Client() *redis.Client {
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:    s.MasterName,
		SentinelAddrs: []string{s.Sentinel.Addr()},
		DialTimeout:   time.Second,
	})
	s.t.Cleanup(func() { c.Close() })
	return c
}
