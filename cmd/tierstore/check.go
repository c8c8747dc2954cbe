package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"time"

	"github.com/tierstore/tierstore/cmd/tierstore/internal/check"
	"github.com/tierstore/tierstore/internal/testenv/redisproc"
	"github.com/tierstore/tierstore/invalidation"
)

// errViolations makes the command exit 1 after printing a failing report.
var errViolations = errors.New("the checker found violations")

func runCheck(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		instances = fs.Int("instances", 3, "number of instances (at least 3)")
		procs     = fs.Bool("procs", false, "run each instance in its own OS process")
		ops       = fs.Int("ops", 0, "repeat the fault sequence until this many reads and writes were made (a soak)")
		faults    = fs.String("faults", "all", "comma-separated faults to inject: all, none, or some of "+faultNames())
		phase     = fs.Duration("phase", 2*time.Second, "observation time of the baseline and after each fault")
		faultDur  = fs.Duration("fault-duration", time.Second, "how long lasting faults last")
		hc        = fs.Duration("health-check", 200*time.Millisecond, "instances' HealthCheckInterval")
		delta     = fs.Duration("delta", 100*time.Millisecond, "staleness bound outside faults")
		keys      = fs.Int("keys", 32, "number of hot keys")
		failSafe  = fs.Duration("failsafe", 0, "the instances' tiered FailSafe in every phase (0: off, or fault-duration/2 if the failsafe fault is named); its reads are judged by the fail-safe's rule")
		invMode   = fs.String("invalidation", invalidation.PerKey.String(), "the instances' invalidation mode: per-key, broadcast, or own-writes (which does not hear changes made outside tiered: -faults all then leaves out "+outsideFaultNames()+", and naming one is an error)")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	mode, err := invalidation.ParseMode(*invMode)
	if err != nil {
		return err
	}
	cfg := check.Config{
		Instances: *instances, Ops: *ops, Phase: *phase, FaultDuration: *faultDur,
		HealthCheckInterval: *hc, Delta: *delta, Keys: *keys, Invalidation: mode, FailSafe: *failSafe,
		Progress: func(s string) { fmt.Fprintf(out, "%s  %s\n", time.Now().Format("15:04:05.000"), s) },
	}
	switch *faults {
	case "all":
	case "none":
		cfg.Faults = []check.Fault{}
	default:
		if cfg.Faults, err = check.FaultsNamed(strings.Split(*faults, ",")...); err != nil {
			return err
		}
	}
	if err := check.JudgeableFaults(mode, cfg.Faults); err != nil {
		return err
	}
	if *procs {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		cfg.Worker = func(int) *exec.Cmd {
			cmd := exec.Command(exe, "check-worker")
			cmd.Stderr = os.Stderr
			return cmd
		}
	}
	dir, err := os.MkdirTemp("", "tierstore-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Every write fsynced: a crash must lose no acknowledged write.
	srv, err := redisproc.Start(dir, "--appendonly", "yes", "--appendfsync", "always")
	if err != nil {
		return err
	}
	defer srv.Stop()
	cfg.Server = srv
	where := "in one process"
	if *procs {
		where = "one OS process each"
	}
	fmt.Fprintf(out, "redis-server %s (appendfsync always); %d instances, %s; invalidation %v\n", srv.Addr(), *instances, where, mode)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	rep, err := check.Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nPer phase:\n\n%s\nPer fault:\n\n%s\n%d operations in %v\n",
		rep.Table(), rep.Summary(), rep.Ops(), time.Since(start).Round(time.Second))
	if rep.Failed() {
		return errViolations
	}
	return nil
}

// outsideFaultNames lists the faults that change Redis outside tiered.
func outsideFaultNames() string {
	var names []string
	for _, f := range check.AllFaults() {
		if f.Outside {
			names = append(names, f.Name)
		}
	}
	return strings.Join(names, ", ")
}

func faultNames() string {
	var names []string
	for _, f := range append(check.AllFaults(), check.OptionalFaults()...) {
		names = append(names, f.Name)
	}
	return strings.Join(names, ", ")
}
