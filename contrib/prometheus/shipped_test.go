package tierstoreprom_test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	tierstoreprom "github.com/tierstore/tierstore/contrib/prometheus"
	"github.com/tierstore/tierstore/internal/testenv/metricsrun"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/session"
)

// promtool runs promtool with args in alerts/, failing the test if it
// fails; without promtool it skips, or fails when CI is set.
func promtool(t *testing.T, args ...string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if errors.Is(err, exec.ErrNotFound) {
		const msg = "promtool not found in PATH: install it (apt-get install -y prometheus) or run ./scripts/test.sh, which does"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " (CI is set, so this is a failure, not a skip)")
		}
		t.Skip(msg)
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = "alerts"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// The shipped alert rules are valid and do what tierstore.rules_test.yml
// says, on the series it writes.
func TestAlertRules(t *testing.T) {
	promtool(t, "check", "rules", "tierstore.rules.yml")
	promtool(t, "test", "rules", "tierstore.rules_test.yml")
}

// emitted returns the names of every series a real store's and
// session manager's collectors emit (a histogram's _bucket, _sum and
// _count).
func emitted(t *testing.T) []string {
	t.Helper()
	srv := redistest.Start(t)
	s := metricsrun.NewStore(t, srv, "m:")
	m, err := session.New(session.Config{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(tierstoreprom.NewCollector(s), tierstoreprom.NewSessionCollector(m))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
		if f.GetType().String() == "HISTOGRAM" {
			names = append(names, f.GetName()+"_bucket", f.GetName()+"_sum", f.GetName()+"_count")
		}
	}
	return names
}

var metricName = regexp.MustCompile(`\btierstore_[a-z0-9_]+`)

// checkNames fails t for each metric named in exprs that the collectors
// do not emit, and reports which emitted ones no expression uses.
func checkNames(t *testing.T, what string, exprs []string, names []string) {
	t.Helper()
	if len(exprs) == 0 {
		t.Fatalf("no expression found in %s", what)
	}
	for _, e := range exprs {
		for _, n := range metricName.FindAllString(e, -1) {
			if !slices.Contains(names, n) {
				t.Errorf("%s: %q uses %s, which the collector does not emit", what, e, n)
			}
		}
	}
}

// Every metric the dashboard and the alert rules query is one the
// collectors emit.
func TestDashboardAndRulesUseEmittedMetrics(t *testing.T) {
	names := emitted(t)
	raw, err := os.ReadFile("dashboards/tierstore.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	checkNames(t, "dashboard", exprs, names)

	rules, err := os.ReadFile("alerts/tierstore.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var ruleExprs []string
	for line := range strings.SplitSeq(string(rules), "\n") {
		if e, ok := strings.CutPrefix(strings.TrimSpace(line), "expr:"); ok {
			ruleExprs = append(ruleExprs, e)
		}
	}
	checkNames(t, "alert rules", ruleExprs, names)
}
