//go:build !unix

package fleet

import "time"

// fleetProcessCPU is not measured on this platform.
func fleetProcessCPU() time.Duration { return 0 }
