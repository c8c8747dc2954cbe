package check

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/tierstore/tierstore/internal/testenv/redistest"
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
// subscription, its permission, the server and the network.
func TestInstancesInSeparateProcessesKeepThePromise(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	faults, err := FaultsNamed("pubsub-kill", "acl-channels", "output-buffer", "crash-restart", "blackhole", "outside-writes", "flushdb")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), Config{
		Server:        srv.Server,
		Phase:         time.Second,
		FaultDuration: 500 * time.Millisecond,
		Faults:        faults,
		Progress:      progress(t),
		Worker: func(int) *exec.Cmd {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "TIERSTORE_CHECK_WORKER=1")
			cmd.Stderr = os.Stderr
			return cmd
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	requirePass(t, rep)
}
