package fleet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCmdCopy checks that cmd/tierstore runs the fleet workload this
// package runs: its copies of these files differ in the package clause
// only.
func TestCmdCopy(t *testing.T) {
	for file, dup := range map[string]string{
		"fleet.go":     "bench_fleet.go",
		"cpu_unix.go":  "bench_fleet_cpu_unix.go",
		"cpu_other.go": "bench_fleet_cpu_other.go",
	} {
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join("..", "..", "..", "cmd", "tierstore", dup))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Replace(string(want), "\npackage fleet\n", "\npackage main\n", 1) != string(got) {
			t.Errorf("cmd/tierstore/%s is not benchmarks/internal/fleet/%s with package main: copy it over", dup, file)
		}
	}
}

// The sticky chooser sends Affinity of an instance's operations to its
// own keys, the rest to others', and the uniform one ignores instances.
func TestChooser(t *testing.T) {
	cfg := FleetConfig{Instances: 8, Sticky: true}
	cfg.defaults()
	const ops = 100000
	for g := range 3 {
		c := newFleetChooser(cfg, g, runSeed)
		own, reads := 0, 0
		for range ops {
			k, read := c.next()
			if k < 0 || k >= cfg.Keys {
				t.Fatalf("key %d out of range", k)
			}
			if k%cfg.Instances == g%cfg.Instances {
				own++
			}
			if read {
				reads++
			}
		}
		if s := float64(own) / ops; s < 0.89 || s > 0.91 {
			t.Errorf("goroutine %d: %.3f of its keys are its instance's, want 0.9", g, s)
		}
		if s := float64(reads) / ops; s < 0.945 || s > 0.955 {
			t.Errorf("goroutine %d: %.3f reads, want 0.95", g, s)
		}
	}
	cfg.Sticky = false
	c := newFleetChooser(cfg, 0, runSeed)
	own := 0
	for range ops {
		if k, _ := c.next(); k%cfg.Instances == 0 {
			own++
		}
	}
	// Zipf puts key 0 first: the share of instance 0's partition is above
	// 1/8, far below 0.9.
	if s := float64(own) / ops; s > 0.6 {
		t.Errorf("uniform: %.3f of the keys in instance 0's partition", s)
	}
	// The same seed gives the same operations.
	a, b := newFleetChooser(cfg, 5, runSeed), newFleetChooser(cfg, 5, runSeed)
	for range 1000 {
		ka, ra := a.next()
		kb, rb := b.next()
		if ka != kb || ra != rb {
			t.Fatal("two choosers of one seed differ")
		}
	}
}
