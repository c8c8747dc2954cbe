package check

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/invalidation"
)

// TestMain doubles the test binary as a check worker process.
func TestMain(m *testing.M) {
	if os.Getenv("TIERSTORE_CHECK_WORKER") == "1" {
		if err := ServeWorker(context.Background(), os.Stdin, os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Instances in separate OS processes, with the faults that act on the
// subscription, its permission, the server and the network; in broadcast
// mode, briefly, with those the mode changes most (what reaches a slow
// subscriber, a flush), and the check that the mode reached the workers.
func TestInstancesInSeparateProcessesKeepThePromise(t *testing.T) {
	for _, c := range []struct {
		mode   invalidation.Mode
		phase  time.Duration
		faults []string
	}{
		{invalidation.PerKey, time.Second, []string{"pubsub-kill", "acl-channels", "output-buffer", "crash-restart", "blackhole", "outside-writes", "flushdb"}},
		{invalidation.Broadcast, 500 * time.Millisecond, []string{"output-buffer", "flushdb"}},
	} {
		t.Run(c.mode.String(), func(t *testing.T) {
			srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
			faults, err := FaultsNamed(c.faults...)
			if err != nil {
				t.Fatal(err)
			}
			cfg := Config{
				Server:        srv.Server,
				Phase:         c.phase,
				FaultDuration: 500 * time.Millisecond,
				Faults:        faults,
				Invalidation:  c.mode,
				Worker: func(int) *exec.Cmd {
					cmd := exec.Command(os.Args[0], "-test.run=^$")
					cmd.Env = append(os.Environ(), "TIERSTORE_CHECK_WORKER=1")
					cmd.Stderr = os.Stderr
					return cmd
				},
			}
			tr := watchTracking(t, &cfg)
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			requirePass(t, rep)
			tr.require(t, c.mode, cfg.Instances)
		})
	}
}
