package check

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tierstore/tierstore/invalidation"
)

// Report is the verdict of a run.
type Report struct {
	// Invalidation is the instances' invalidation mode.
	Invalidation invalidation.Mode
	Phases       []PhaseReport
	// Delta is the staleness bound outside faults; FaultBound the bound
	// for staleness that overlaps a fault (min(L1TTL,
	// HealthCheckInterval) + Delta).
	Delta, FaultBound time.Duration

	Reads, ReadErrors, Writes, FailedWrites int
	// Unavailable, Refused and Unexplained count the failed reads and
	// writes by cause: tierstore.ErrUnavailable, tierstore.ErrRefused,
	// and anything else (another error, or a value the checker never
	// wrote), which breaks the failure table's promise.
	Unavailable, Refused, Unexplained int
	// LostWrites counts keys whose final state in Redis is neither the last
	// acknowledged write nor a write that returned an error.
	LostWrites int
	// AmbiguousFinal counts keys whose final state is a write that returned
	// an error: sent, then timed out, yet applied by Redis. Allowed: a
	// failed write's outcome is unknown (see docs/consistency.md).
	AmbiguousFinal int
	// AmbiguousReads counts reads that returned such a write's value.
	AmbiguousReads int
	// Phantoms counts reads of values never written, or written only
	// after the read ended: always a bug.
	Phantoms int
	// FailSafe is the instances' fail-safe window (0: off);
	// FailSafeReads counts the reads it served, FailSafeViolations those
	// that broke its rule (see PhaseReport.FailSafeBroken).
	FailSafe                          time.Duration
	FailSafeReads, FailSafeViolations int
}

// PhaseReport is the verdict of one phase.
type PhaseReport struct {
	Name                                    string
	Reads, ReadErrors, Writes, FailedWrites int
	// Superseded counts reads that returned a state already replaced by an
	// acknowledged write when the read began; Violations those whose
	// staleness exceeded the bound.
	Superseded, Violations int
	// Staleness percentiles and maximum over the superseded reads: how
	// long before the read the replacing write had returned.
	P50, P99, Max time.Duration
	// Recovery is how long after the fault's repair every instance was
	// live and could write and read again.
	Recovery time.Duration
	Fault    bool
	// Broken lists what the fault saw wrong in the instances' state
	// (Live while it must not be, a refusal not counted).
	Broken []string
	// Stale describes the first violations (up to maxStaleListed): what
	// was read, where, and how stale.
	Stale []StaleRead
	// FailSafeReads counts the reads the fail-safe served, judged by its
	// rule rather than by the staleness bound; FailSafeViolations those
	// that broke it, the first of which FailSafeBroken describes.
	FailSafeReads, FailSafeViolations int
	FailSafeBroken                    []string
}

// maxStaleListed bounds PhaseReport.Stale.
const maxStaleListed = 5

// StaleRead is a read staler than its bound.
type StaleRead struct {
	Key, Inst int
	// Cold: one of the rarely written keys (the upper half).
	Cold bool
	// Version read (0: not found), and the version that replaced it.
	Version, Replaced uint64
	// At is when the read began, since the phase began; Staleness how
	// long before that the replacing write had returned.
	At, Staleness, Bound time.Duration
}

func (s StaleRead) String() string {
	kind := "hot"
	if s.Cold {
		kind = "cold"
	}
	read := fmt.Sprintf("version %d", s.Version)
	if s.Version == 0 {
		read = "not found"
	}
	return fmt.Sprintf("instance %d read %s key %d (%s) %v into the phase, replaced by version %d %v before (bound %v)",
		s.Inst, kind, s.Key, read, round(s.At), s.Replaced, round(s.Staleness), s.Bound)
}

// Failed reports whether the run broke a promise.
func (r *Report) Failed() bool {
	if r.LostWrites > 0 || r.Phantoms > 0 || r.Unexplained > 0 || r.FailSafeViolations > 0 {
		return true
	}
	for _, p := range r.Phases {
		if p.Violations > 0 || len(p.Broken) > 0 {
			return true
		}
	}
	return false
}

// Ops is the number of reads and writes made.
func (r *Report) Ops() int { return r.Reads + r.Writes }

// keyIndex is one key's history, prepared for judging reads.
type keyIndex struct {
	ops []Op
	// nextAcked[i]: the end of the first acknowledged op at index ≥ i
	// (version ≥ i+1), or -1; nextAckedSet likewise for Sets only.
	nextAcked, nextAckedSet []int64
	// deleteVersions and deleteStarts of every delete, in version order.
	deleteVersions []uint64
	deleteStarts   []int64
}

func indexKey(ops []Op) *keyIndex {
	ki := &keyIndex{ops: ops, nextAcked: make([]int64, len(ops)+1), nextAckedSet: make([]int64, len(ops)+1)}
	ki.nextAcked[len(ops)], ki.nextAckedSet[len(ops)] = -1, -1
	for i := len(ops) - 1; i >= 0; i-- {
		ki.nextAcked[i], ki.nextAckedSet[i] = ki.nextAcked[i+1], ki.nextAckedSet[i+1]
		if ops[i].OK {
			ki.nextAcked[i] = ops[i].End
			if !ops[i].Del {
				ki.nextAckedSet[i] = ops[i].End
			}
		}
	}
	for _, o := range ops {
		if o.Del {
			ki.deleteVersions = append(ki.deleteVersions, o.Version)
			ki.deleteStarts = append(ki.deleteStarts, o.Start)
		}
	}
	return ki
}

// verdict judges one read: its staleness (0 if it returned a state no
// acknowledged write had replaced when it began), or a phantom or
// ambiguous outcome.
func (ki *keyIndex) verdict(rd Read) (staleness time.Duration, replacedAt int64, phantom, ambiguous bool) {
	sup, phantom, ambiguous := ki.supersededAt(rd)
	if phantom || ambiguous || sup < 0 || sup >= rd.Start {
		return 0, 0, phantom, ambiguous
	}
	return time.Duration(rd.Start - sup), sup, false, false
}

// supersededAt returns when the first acknowledged write that replaced
// the state rd read returned (-1: none yet), or that rd is a phantom or
// an ambiguous outcome.
func (ki *keyIndex) supersededAt(rd Read) (sup int64, phantom, ambiguous bool) {
	if rd.Version > 0 {
		if rd.Version > uint64(len(ki.ops)) {
			return 0, true, false
		}
		o := ki.ops[rd.Version-1]
		if o.Del || o.Start > rd.End {
			return 0, true, false
		}
		if !o.OK {
			return 0, false, true
		}
		sup = ki.nextAcked[rd.Version]
	} else {
		// Not found: the most recent delete that had started before the
		// read ended may be what it saw (or the initial absence).
		n := sort.Search(len(ki.deleteStarts), func(i int) bool { return ki.deleteStarts[i] > rd.End })
		d := uint64(0)
		if n > 0 {
			d = ki.deleteVersions[n-1]
		}
		sup = ki.nextAckedSet[d]
	}
	return sup, false, false
}

// failSafeVerdict judges a read the fail-safe served by its rule, and
// says how it broke it ("" if it did not): served within failSafe of the
// moment its instance lost its proof; the value then the latest but for
// the changes of the last bound (which the lost proof may not have
// covered: the staleness bound of a fault); never after a write or
// delete of the key by its instance (the key's writer: own) ended after
// that moment, which leaves a tombstone.
func (ki *keyIndex) failSafeVerdict(rd Read, own bool, failSafe, bound time.Duration) string {
	since := rd.FailSafeSince
	if late := time.Duration(rd.Start - since); late > failSafe {
		return fmt.Sprintf("served %v after the proof was lost (FailSafe %v)", round(late), failSafe)
	}
	sup, phantom, _ := ki.supersededAt(rd)
	switch {
	case phantom:
		return "" // counted as a phantom
	case sup >= 0 && sup < since-int64(bound):
		return fmt.Sprintf("version %d replaced %v before the proof was lost (bound %v)", rd.Version, round(time.Duration(since-sup)), bound)
	}
	if own {
		for _, o := range ki.ops {
			if o.End >= since && o.End < rd.Start {
				return fmt.Sprintf("served after this instance's write of version %d ended during the outage", o.Version)
			}
		}
	}
	return ""
}

// replacing returns the version of the acknowledged op that returned at
// end (0 if none).
func (ki *keyIndex) replacing(end int64) uint64 {
	for _, o := range ki.ops {
		if o.OK && o.End == end {
			return o.Version
		}
	}
	return 0
}

func (r *run) judge(ctx context.Context) (*Report, error) {
	rep := &Report{
		Invalidation: r.cfg.Invalidation, Delta: r.cfg.Delta, FaultBound: min(r.cfg.L1TTL, r.cfg.HealthCheckInterval) + r.cfg.Delta,
		FailSafe: r.cfg.FailSafe,
	}
	index := make([]*keyIndex, r.cfg.Keys)
	for k := range index {
		index[k] = indexKey(r.ops[k])
	}
	phaseOf := func(t int64) int {
		for i, p := range r.phases {
			if t >= p.start && t < p.end {
				return i
			}
		}
		return -1
	}
	inFault := func(from, to int64) bool {
		for _, p := range r.phases {
			if p.faultStart != 0 && from <= p.recovered && to >= p.faultStart {
				return true
			}
		}
		return false
	}
	rep.Phases = make([]PhaseReport, len(r.phases))
	stale := make([][]time.Duration, len(r.phases))
	for i, p := range r.phases {
		rep.Phases[i] = PhaseReport{Name: p.name, Recovery: p.recovery, Fault: p.faultStart != 0, Broken: p.broken}
	}
	countFailure := func(f Failure) {
		switch f {
		case Unavailable:
			rep.Unavailable++
		case Refused:
			rep.Refused++
		case Unexplained:
			rep.Unexplained++
		}
	}
	for _, ops := range r.ops {
		for _, o := range ops {
			rep.Writes++
			if !o.OK {
				rep.FailedWrites++
				countFailure(o.Err)
			}
			if i := phaseOf(o.Start); i >= 0 {
				rep.Phases[i].Writes++
				if !o.OK {
					rep.Phases[i].FailedWrites++
				}
			}
		}
	}
	{
		for _, rd := range r.reads {
			rep.Reads++
			i := phaseOf(rd.Start)
			var ph *PhaseReport
			if i >= 0 {
				ph = &rep.Phases[i]
				ph.Reads++
			}
			if rd.Err != Succeeded {
				rep.ReadErrors++
				countFailure(rd.Err)
				if ph != nil {
					ph.ReadErrors++
				}
				continue
			}
			if rd.FailSafeSince != 0 {
				rep.FailSafeReads++
				own := int(rd.Key)%r.cfg.Instances == int(rd.Inst)
				why := index[rd.Key].failSafeVerdict(rd, own, r.cfg.FailSafe, rep.FaultBound)
				if ph != nil {
					ph.FailSafeReads++
				}
				if why != "" {
					rep.FailSafeViolations++
					if ph != nil {
						ph.FailSafeViolations++
						if len(ph.FailSafeBroken) < maxStaleListed {
							ph.FailSafeBroken = append(ph.FailSafeBroken, fmt.Sprintf("instance %d key %d: %s", rd.Inst, rd.Key, why))
						}
					}
				}
				if _, phantom, _ := index[rd.Key].supersededAt(rd); phantom {
					rep.Phantoms++
				}
				continue
			}
			staleness, replacedAt, phantom, ambiguous := index[rd.Key].verdict(rd)
			switch {
			case phantom:
				rep.Phantoms++
			case ambiguous:
				rep.AmbiguousReads++
			case staleness > 0 && ph != nil:
				ph.Superseded++
				stale[i] = append(stale[i], staleness)
				bound := rep.Delta
				if inFault(replacedAt, rd.Start) {
					bound = rep.FaultBound
				}
				if staleness > bound {
					ph.Violations++
					if len(ph.Stale) < maxStaleListed {
						ph.Stale = append(ph.Stale, StaleRead{
							Key: int(rd.Key), Inst: int(rd.Inst), Cold: int(rd.Key) >= r.cfg.Keys/2,
							Version: rd.Version, Replaced: index[rd.Key].replacing(replacedAt),
							At: time.Duration(rd.Start - r.phases[i].start), Staleness: staleness, Bound: bound,
						})
					}
				}
			}
		}
	}
	for i, s := range stale {
		if len(s) == 0 {
			continue
		}
		slices.Sort(s)
		rep.Phases[i].P50 = s[len(s)/2]
		rep.Phases[i].P99 = s[len(s)*99/100]
		rep.Phases[i].Max = s[len(s)-1]
	}

	final, err := r.finalState(ctx)
	if err != nil {
		return nil, fmt.Errorf("check: read final state: %w", err)
	}
	for k, got := range final {
		ops := r.ops[k]
		want := uint64(0) // the state of the last acknowledged op
		for i := len(ops) - 1; i >= 0; i-- {
			if ops[i].OK {
				if !ops[i].Del {
					want = ops[i].Version
				}
				break
			}
		}
		if got == want {
			continue
		}
		// A failed write's outcome is unknown: its state is acceptable.
		ambiguous := false
		for _, o := range ops {
			if !o.OK && (o.Del && got == 0 || !o.Del && o.Version == got) {
				ambiguous = true
				break
			}
		}
		if ambiguous {
			rep.AmbiguousFinal++
		} else {
			rep.LostWrites++
		}
	}
	return rep, nil
}

// Table formats the report as a Markdown table with a summary.
func (r *Report) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "| phase | reads | read errors | writes | failed writes | superseded reads | p50 | p99 | max staleness | bound | violations | recovery |\n")
	fmt.Fprintf(&b, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, p := range r.Phases {
		bound, recovery := r.Delta, "—"
		if p.Fault {
			bound, recovery = r.FaultBound, round(p.Recovery).String()
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %v | %v | %v | %v | %d | %s |\n",
			p.Name, p.Reads, p.ReadErrors, p.Writes, p.FailedWrites, p.Superseded,
			round(p.P50), round(p.P99), round(p.Max), bound, p.Violations, recovery)
	}
	r.writeBroken(&b)
	verdict := "PASS"
	if r.Failed() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "\n%s: invalidation %v; %d reads (%d errors), %d writes (%d failed); errors: %d unavailable, %d refused, %d unexplained; "+
		"writes lost: %d; phantom reads: %d; failed writes applied anyway: %d in the final state, %d reads saw one.\n",
		verdict, r.Invalidation, r.Reads, r.ReadErrors, r.Writes, r.FailedWrites, r.Unavailable, r.Refused, r.Unexplained,
		r.LostWrites, r.Phantoms, r.AmbiguousFinal, r.AmbiguousReads)
	r.writeFailSafe(&b)
	return b.String()
}

// writeFailSafe says, with the fail-safe on, how many reads it served in
// each phase and how many broke its rule.
func (r *Report) writeFailSafe(b *strings.Builder) {
	if r.FailSafe <= 0 {
		return
	}
	var per []string
	for _, p := range r.Phases {
		if p.FailSafeReads > 0 {
			per = append(per, fmt.Sprintf("%s %d", p.Name, p.FailSafeReads))
		}
	}
	fmt.Fprintf(b, "fail-safe %v: %d reads served (%s), judged by its rule (within FailSafe of the loss of proof, the latest value then but for the last %v, never after this instance's write of the key): %d violations.\n",
		r.FailSafe, r.FailSafeReads, strings.Join(per, ", "), r.FaultBound, r.FailSafeViolations)
}

// writeBroken lists what the faults saw wrong in the instances' state,
// and the first stale reads over the bound of each phase.
func (r *Report) writeBroken(b *strings.Builder) {
	listed := false
	for _, p := range r.Phases {
		for _, s := range p.Broken {
			fmt.Fprintf(b, "\nBROKEN in %s: %s", p.Name, s)
			listed = true
		}
		for _, s := range p.Stale {
			fmt.Fprintf(b, "\nSTALE in %s: %v", p.Name, s)
			listed = true
		}
		for _, s := range p.FailSafeBroken {
			fmt.Fprintf(b, "\nFAIL-SAFE in %s: %s", p.Name, s)
			listed = true
		}
		if n := p.Violations - len(p.Stale); n > 0 && len(p.Stale) > 0 {
			fmt.Fprintf(b, "\nSTALE in %s: %d more", p.Name, n)
		}
	}
	if listed {
		b.WriteString("\n")
	}
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// Summary formats the report as one row per fault, over every round:
// the table docs/consistency.md publishes.
func (r *Report) Summary() string {
	type agg struct {
		rounds, reads, superseded, violations int
		max, recovery                         time.Duration
		fault                                 bool
	}
	var order []string
	byName := map[string]*agg{}
	for _, p := range r.Phases {
		a, ok := byName[p.Name]
		if !ok {
			a = &agg{fault: p.Fault}
			byName[p.Name] = a
			order = append(order, p.Name)
		}
		a.rounds++
		a.reads += p.Reads
		a.superseded += p.Superseded
		a.violations += p.Violations
		a.max = max(a.max, p.Max)
		a.recovery = max(a.recovery, p.Recovery)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| fault | rounds | reads | superseded reads | max staleness observed | bound promised | stale reads over the bound | worst time to recover |\n")
	fmt.Fprintf(&b, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, name := range order {
		a := byName[name]
		bound, recovery := r.Delta, "—"
		if a.fault {
			bound, recovery = r.FaultBound, round(a.recovery).String()
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %v | %v | %d | %s |\n",
			name, a.rounds, a.reads, a.superseded, round(a.max), bound, a.violations, recovery)
	}
	r.writeBroken(&b)
	fmt.Fprintf(&b, "\ninvalidation %v; writes acknowledged: %d, lost: %d; writes failed: %d, of which applied anyway: %d in the final state; "+
		"errors: %d unavailable, %d refused, %d unexplained; phantom reads: %d\n",
		r.Invalidation, r.Writes-r.FailedWrites, r.LostWrites, r.FailedWrites, r.AmbiguousFinal, r.Unavailable, r.Refused, r.Unexplained, r.Phantoms)
	r.writeFailSafe(&b)
	return b.String()
}
