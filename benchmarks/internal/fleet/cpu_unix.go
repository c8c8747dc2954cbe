//go:build unix

package fleet

import (
	"syscall"
	"time"
)

// fleetProcessCPU returns the CPU time (user + system) this process has
// used.
func fleetProcessCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
