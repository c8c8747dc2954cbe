//go:build !unix

package main

import "time"

// fleetProcessCPU is not measured on this platform.
func fleetProcessCPU() time.Duration { return 0 }
