// Command fleettable prints BenchmarkFleet's output (standard input) as
// the markdown table of docs/benchmarks.md: a line per key mode and
// fleet size, the stores side by side, each figure the median of the
// runs (-count).
//
//	cd benchmarks && go run ./internal/fleettable < fleet.out
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/tierstore/tierstore/benchmarks/internal/fleet"
)

// name matches a result line's name: BenchmarkFleet/keys=K/n=N/store=S-P.
var name = regexp.MustCompile(`^BenchmarkFleet/keys=(\w+)/n=(\d+)/store=([\w-]+?)(-\d+)?$`)

func main() {
	rows, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleettable:", err)
		os.Exit(1)
	}
	fmt.Print(fleet.FleetTable(rows))
}

// parse returns the median row of each leaf's runs, in the order the
// leaves first appear.
func parse(r io.Reader) ([]fleet.FleetRow, error) {
	runs := map[string][]fleet.FleetRow{}
	var order []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 {
			continue
		}
		m := name.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		row := fleet.FleetRow{Keys: m[1], Instances: n, Store: m[3], HitPercent: -1}
		// f[1] is b.N, then value-unit pairs.
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: %q: %v", f[0], f[i], err)
			}
			switch f[i+1] {
			case "ops/s":
				row.OpsPerSecond = v
			case "invalidations/write":
				row.InvalidationsPerWrite = v
			case "redis-cpu-µs/write":
				row.RedisCPUPerWrite = v
			case "client-cpu-µs/op":
				row.ClientCPUPerOp = v
			case "%hit":
				row.HitPercent = v
			case "%stale":
				row.StalePercent = v
			}
		}
		key := m[1] + "/" + m[2] + "/" + m[3]
		if runs[key] == nil {
			order = append(order, key)
		}
		runs[key] = append(runs[key], row)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("no BenchmarkFleet results in the input")
	}
	var rows []fleet.FleetRow
	for _, k := range order {
		rows = append(rows, fleet.FleetMedian(runs[k]))
	}
	return rows, nil
}
