package benchmarks

import (
	"testing"
	"time"

	"github.com/tierstore/tierstore/internal/testenv/redistest"
)

// raceOutcome is the result of one trial of a race scenario.
type raceOutcome struct {
	bad        bool // the scenario's bad outcome happened
	oldID      bool // the old cookie names a stored session afterwards, whatever its data
	lost       int  // changes acknowledged with a 2xx but missing afterwards
	failed     int  // requests answered with an error status
	serialized bool // the stack held a request up until the paused one went on
}

// raceScenario is one of the races of BenchmarkSessionRaces.
type raceScenario struct {
	name     string
	bLatency time.Duration // between B and Redis, each direction
	renew    bool          // needs a library that renews IDs
	oldID    bool          // ends an ID: reports oldID
	lost     bool          // counts lost changes
	paused   bool          // holds a request: reports serialized
	run      func(tb testing.TB, p *racePair) raceOutcome
}

func raceScenarios() []raceScenario {
	all := []raceScenario{
		{name: "logout-during-write", oldID: true, paused: true, run: func(tb testing.TB, p *racePair) raceOutcome {
			return duringWrite(tb, p, "/logout")
		}},
		{name: "renew-during-write", renew: true, oldID: true, paused: true, run: func(tb testing.TB, p *racePair) raceOutcome {
			return duringWrite(tb, p, "/renew")
		}},
	}
	for _, d := range []time.Duration{0, time.Millisecond, 5 * time.Millisecond} {
		all = append(all, raceScenario{name: "write-after-logout" + latencySuffix(d), bLatency: d, oldID: true, run: writeAfterLogout})
	}
	for _, d := range []time.Duration{0, time.Millisecond, 5 * time.Millisecond} {
		all = append(all, raceScenario{name: "sequential-different-keys" + latencySuffix(d), bLatency: d, lost: true, run: sequentialDifferentKeys})
	}
	return append(all,
		raceScenario{name: "concurrent-different-keys", lost: true, paused: true, run: func(tb testing.TB, p *racePair) raceOutcome {
			return concurrentDifferentKeys(tb, p, p.b)
		}},
		raceScenario{name: "concurrent-different-keys-one-instance", lost: true, paused: true, run: func(tb testing.TB, p *racePair) raceOutcome {
			return concurrentDifferentKeys(tb, p, p.a)
		}},
	)
}

func latencySuffix(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return "-B" + d.String()
}

// BenchmarkSessionRaces counts how often races between two instances of
// an app lose a logout or a change, for several session stacks side by
// side (see raceStacks): tierstore's session package on tiered and, as a
// reference, on the Redis-only l2; scs on scsstore over tiered and on its
// own redisstore; gorilla/sessions on gorillastore over tiered and on
// boj/redistore. A and B are two instances (their own store objects and
// session managers, like two processes) over one redis-server. Each
// iteration is one trial, on a session that a fresh login on A started
// and that B then read until it served it from memory, where it has an
// in-process cache (see raceLogin). The scenarios, each a function of a
// racePair that a test can call too:
//
//   - logout-during-write: a writing request on B has loaded the session
//     and waits until a logout on A has returned; then it puts a value and
//     returns, and its middleware saves. Bad: the old session is alive
//     afterwards (a request with the old cookie sees user=ada).
//   - renew-during-write: the same with a renewal of the ID on A (login,
//     change of privilege) instead of the logout. Bad: the old ID is alive
//     again. Gorilla has no renewal: not run.
//   - write-after-logout: a logout on A has returned; right after it, a
//     writing request on B with the old cookie. Bad: the session is
//     resurrected. Suffix -B1ms, -B5ms: B is that far from Redis, each
//     way (redistest.Latency), A is not.
//   - sequential-different-keys: a request on A puts "a" and returns; then
//     a request on B puts "b". Bad: a change is lost. Same suffixes.
//   - concurrent-different-keys: requests on A and B, one putting "a" and
//     the other "b", both load the session before either changes it.
//     Bad: a change is lost. -one-instance: both requests on A.
//
// "Afterwards" is read by a judge: an instance of the stack that reads
// Redis without an in-process cache (for the tiered stacks, the same
// library on an l2 store with the same key prefix), which is what every
// instance sees once the invalidations in flight have arrived.
//
// Metrics: bad% is the percentage of trials with the bad outcome; oldid%
// (logout and renewal) the percentage in which the old cookie names a
// stored session afterwards, with the login's data or not (a store that
// adopts the ID a request brings, for a new session, has it without bad);
// lost/op the changes acknowledged with a 2xx yet missing, per trial (at
// most 2); failed/op the requests answered with an error status, per trial
// (a refused save is not a silent loss); serialized% (scenarios that hold a
// request) the percentage in which the stack did not let the race happen
// but held the other request up until the held one went on (see
// raceHoldUp). Run a fixed count of trials:
//
//	go test -run '^$' -bench SessionRaces -benchtime 50x -count 1 .
func BenchmarkSessionRaces(b *testing.B) { runRaces(b, raceStacks()) }

// runRaces runs every scenario on each of stacks, a sub-benchmark each.
func runRaces(b *testing.B, stacks []raceStack) {
	srv := redistest.Start(b)
	for _, sc := range raceScenarios() {
		b.Run(sc.name, func(b *testing.B) {
			for _, st := range stacks {
				if sc.renew && !st.renew {
					continue
				}
				b.Run(st.name, func(b *testing.B) {
					p := newRacePair(b, srv, st, sc.bLatency)
					var trials, bad, oldID, lost, failed, serialized int
					for b.Loop() {
						o := sc.run(b, p)
						trials++
						if o.bad {
							bad++
						}
						if o.oldID {
							oldID++
						}
						if o.serialized {
							serialized++
						}
						lost += o.lost
						failed += o.failed
					}
					b.ReportMetric(100*float64(bad)/float64(trials), "bad%")
					if sc.oldID {
						b.ReportMetric(100*float64(oldID)/float64(trials), "oldid%")
					}
					if sc.lost {
						b.ReportMetric(float64(lost)/float64(trials), "lost/op")
					}
					b.ReportMetric(float64(failed)/float64(trials), "failed/op")
					if sc.paused {
						b.ReportMetric(100*float64(serialized)/float64(trials), "serialized%")
					}
				})
			}
		})
	}
}

// Every stack serves the race routes as they say, and every scenario runs
// through on it (whatever its outcome).
func TestSessionRaceStacks(t *testing.T) {
	srv := redistest.Start(t)
	for _, st := range append(raceStacks(), frameworkRaceStacks()...) {
		t.Run(st.name, func(t *testing.T) {
			p := newRacePair(t, srv, st, 0)
			u := raceLogin(t, p)
			if r := send(p.a, "POST", "/write?key=a", u, nil); !r.ok() {
				t.Fatalf("write: %d %q", r.code, r.body)
			}
			if v, want := read(t, p.judge, u), (sessionValues{"ada", raceValue, ""}); v != want {
				t.Fatalf("after the write the judge reads %+v, want %+v", v, want)
			}
			if st.renew {
				old := u.clone()
				if r := send(p.a, "POST", "/renew", u, nil); !r.ok() {
					t.Fatalf("renew: %d %q", r.code, r.body)
				}
				if v := read(t, p.judge, old); v.user != "" {
					t.Fatalf("after the renewal the old cookie reads %+v", v)
				}
				if v, want := read(t, p.judge, u), (sessionValues{"ada", raceValue, ""}); v != want {
					t.Fatalf("after the renewal the judge reads %+v, want %+v", v, want)
				}
			}
			old := u.clone()
			if r := send(p.b, "POST", "/logout", u, nil); !r.ok() || !u.empty() {
				t.Fatalf("logout: %d %q; cookie deleted: %v", r.code, r.body, u.empty())
			}
			if v := read(t, p.judge, old); v.user != "" {
				t.Fatalf("after the logout the old cookie reads %+v", v)
			}
			for _, sc := range raceScenarios() {
				if sc.bLatency == 0 && (st.renew || !sc.renew) {
					sc.run(t, p)
				}
			}
		})
	}
}

// raceLogin logs a new user in on A, and reads the session on B until B
// serves it from memory where it has an in-process cache, as an instance
// that has served the session for a while does. (The first read may not
// do: the login's invalidation, if it reaches B after that read, drops
// B's copy.) It returns the user's cookies.
func raceLogin(tb testing.TB, p *racePair) *jar {
	u := newJar()
	if r := send(p.a, "POST", "/login", u, nil); !r.ok() || u.empty() {
		tb.Fatalf("login: %d %q, cookies %v", r.code, r.body, u.cookies)
	}
	for i := 0; ; i++ {
		var hits uint64
		if p.b.l1Hits != nil {
			hits = p.b.l1Hits()
		}
		if v := read(tb, p.b, u); v.user != "ada" {
			tb.Fatalf("B does not see the login: %+v", v)
		}
		if p.b.l1Hits == nil || p.b.l1Hits() > hits {
			return u
		}
		if i == 100 {
			tb.Fatal("B does not keep the session in memory")
		}
	}
}

// failures counts the responses with an error status.
func failures(rs ...raceResponse) int {
	n := 0
	for _, r := range rs {
		if !r.ok() {
			n++
		}
	}
	return n
}

// duringWrite: a writing request on B loads the session, then waits until
// path (/logout or /renew) on A has returned. Bad: the old ID is alive.
func duringWrite(tb testing.TB, p *racePair, path string) raceOutcome {
	u := raceLogin(tb, p)
	old := u.clone()
	release := make(chan struct{})
	w := startWrite(p.b, "a", u.clone(), release)
	<-w.loaded
	var r raceResponse
	done := make(chan struct{})
	go func() {
		r = send(p.a, "POST", path, u, nil)
		close(done)
	}()
	returned := within(done)
	close(release)
	wr := w.wait()
	<-done
	o := oldCookie(tb, p, old, r, wr)
	o.serialized = !returned
	return o
}

// writeAfterLogout: a logout on A returns, then a writing request on B
// with the old cookie. Bad: the session is resurrected.
func writeAfterLogout(tb testing.TB, p *racePair) raceOutcome {
	u := raceLogin(tb, p)
	old := u.clone()
	r := send(p.a, "POST", "/logout", u, nil)
	wr := send(p.b, "POST", "/write?key=a", old.clone(), nil)
	return oldCookie(tb, p, old, r, wr)
}

// oldCookie reads the session through the judge with the cookies old,
// after responses rs: bad if it holds the login's data.
func oldCookie(tb testing.TB, p *racePair, old *jar, rs ...raceResponse) raceOutcome {
	v := read(tb, p.judge, old)
	return raceOutcome{bad: v.user == "ada", oldID: v != sessionValues{}, failed: failures(rs...)}
}

// sequentialDifferentKeys: a request on A puts "a" and returns, then a
// request on B puts "b". Bad: a change is lost.
func sequentialDifferentKeys(tb testing.TB, p *racePair) raceOutcome {
	u := raceLogin(tb, p)
	ra := send(p.a, "POST", "/write?key=a", u, nil)
	rb := send(p.b, "POST", "/write?key=b", u, nil)
	return lostChanges(tb, p, u, ra, rb)
}

// concurrentDifferentKeys: a request on A putting "a" and one on second
// putting "b" both load the session before either changes it. Bad: a
// change is lost.
func concurrentDifferentKeys(tb testing.TB, p *racePair, second raceInstance) raceOutcome {
	u := raceLogin(tb, p)
	release := make(chan struct{})
	wa := startWrite(p.a, "a", u, release)
	<-wa.loaded
	wb := startWrite(second, "b", u, release)
	loaded := within(wb.loaded)
	close(release)
	o := lostChanges(tb, p, u, wa.wait(), wb.wait())
	o.serialized = !loaded
	return o
}

// lostChanges reads the session through the judge after ra put "a" and rb
// put "b".
func lostChanges(tb testing.TB, p *racePair, u *jar, ra, rb raceResponse) raceOutcome {
	v := read(tb, p.judge, u)
	o := raceOutcome{failed: failures(ra, rb)}
	if ra.ok() && v.a != raceValue {
		o.lost++
	}
	if rb.ok() && v.b != raceValue {
		o.lost++
	}
	o.bad = o.lost > 0
	return o
}
