package scsstore_test

import (
	"fmt"
	"strings"
	"testing"
)

// The tests of issue #12: one per race, each on every setup (see setups),
// each counting the rounds with a bad outcome and wanting none.

// bHoldsCopy has B read the session twice, expecting user=ada: a read
// that meets an invalidation in flight (of A's write that created the
// session, on its way to B) does not fill B's memory, so the first may
// not; the second, after that invalidation arrived (it was sent before
// the first read's answer), does.
func (e *env) bHoldsCopy(t *testing.T, token string) {
	t.Helper()
	for range 2 {
		if got := e.b.do(t, "/get", token).body; got != "user=ada" {
			t.Fatalf("B reads %q", got)
		}
	}
}

// loaded waits until the gated request has loaded its session, failing t
// if the request ends first.
func loaded(t *testing.T, g *gate, res <-chan response) {
	t.Helper()
	select {
	case <-g.loaded:
	case r := <-res:
		t.Fatalf("the gated request ended before its gate: %d %q %v", r.status, r.body, r.err)
	}
}

// A logout on A while a request of the same session on B, which loaded
// it before, saves after.
func TestDestroyDuringAWriteDoesNotRevive(t *testing.T) {
	forEachSetup(t, false, func(t *testing.T, e *env) string {
		token := e.a.do(t, "/put?user=ada", "").token
		g, name := e.gate("b")
		res := e.b.async("/put?cart=1", token, "X-Gate", name)
		loaded(t, g, res)
		e.a.do(t, "/destroy", token)
		close(g.release)
		check(t, "B /put", <-res)
		if v := session(t, e.truth, token); v != nil {
			return fmt.Sprintf("the destroyed session is alive again: %v", v)
		}
		return ""
	})
}

// RenewToken on A while a request on the old token on B, which loaded it
// before, saves after.
func TestRenewDuringAWriteDoesNotReviveTheOldToken(t *testing.T) {
	forEachSetup(t, false, func(t *testing.T, e *env) string {
		token := e.a.do(t, "/put?user=ada", "").token
		g, name := e.gate("b")
		res := e.b.async("/put?cart=1", token, "X-Gate", name)
		loaded(t, g, res)
		renewed := e.a.do(t, "/renew", token).token
		close(g.release)
		check(t, "B /put", <-res)
		if v := session(t, e.truth, renewed); v["user"] != "ada" {
			t.Fatalf("the renewed session holds %v", v)
		}
		if v := session(t, e.truth, token); v != nil {
			return fmt.Sprintf("the renewed token is alive again: %v", v)
		}
		return ""
	})
}

// After a logout (Destroy, RenewToken, an operator's DEL) has returned, a
// request on B with the old cookie, while B may still hold its copy of
// the session. B loads its copy before the logout; where B's
// invalidations are held, B serves that stale copy in every round.
func TestWriteAfterLogoutDoesNotRevive(t *testing.T) {
	for _, kill := range []string{"destroy", "renew", "operator-del"} {
		t.Run(kill, func(t *testing.T) {
			forEachSetup(t, true, func(t *testing.T, e *env) string {
				token := e.a.do(t, "/put?user=ada", "").token
				e.bHoldsCopy(t, token)
				release := e.hold(t)
				switch kill {
				case "destroy":
					e.a.do(t, "/destroy", token)
				case "renew":
					e.a.do(t, "/renew", token)
				default:
					e.del(t, "scs:"+token)
				}
				r := e.b.do(t, "/put?cart=1", token)
				release()
				if r.body == "user=ada" {
					e.stale++
				}
				if v := session(t, e.truth, token); v != nil {
					return fmt.Sprintf("the deleted session is alive again: %v (B loaded %q)", v, r.body)
				}
				return ""
			})
		})
	}
}

// Two requests of one session, one after the other, on A then on B, each
// changing different keys (A also removes one); B loaded a copy before
// A's request, which it may still serve.
func TestSequentialRequestsOnTwoInstancesKeepBothChanges(t *testing.T) {
	forEachSetup(t, true, func(t *testing.T, e *env) string {
		token := e.a.do(t, "/put?user=ada", "").token
		e.bHoldsCopy(t, token)
		release := e.hold(t)
		e.a.do(t, "/put?x=1&user=-", token)
		r := e.b.do(t, "/put?y=2", token)
		release()
		if r.body == "user=ada" {
			e.stale++
		}
		if v := session(t, e.truth, token); len(v) != 2 || v["x"] != "1" || v["y"] != "2" {
			return fmt.Sprintf("the session holds %v, want x=1 y=2 (B loaded %q)", v, r.body)
		}
		return ""
	})
}

// Two concurrent requests of one session, on A and B, changing different
// keys: both load, then they save one after the other (even rounds) or
// at once (odd rounds).
func TestConcurrentRequestsKeepBothChanges(t *testing.T) {
	forEachSetup(t, false, func(t *testing.T, e *env) string {
		token := e.a.do(t, "/put?user=ada", "").token
		ga, na := e.gate("a")
		gb, nb := e.gate("b")
		ra := e.a.async("/put?x=1", token, "X-Gate", na)
		rb := e.b.async("/put?y=2&user=-", token, "X-Gate", nb)
		loaded(t, ga, ra)
		loaded(t, gb, rb)
		close(ga.release)
		if e.round%2 == 0 {
			check(t, "A /put", <-ra)
		}
		close(gb.release)
		check(t, "B /put", <-rb)
		if e.round%2 == 1 {
			check(t, "A /put", <-ra)
		}
		if v := session(t, e.truth, token); len(v) != 2 || v["x"] != "1" || v["y"] != "2" {
			return fmt.Sprintf("the session holds %v, want x=1 y=2", v)
		}
		return ""
	})
}

// Two concurrent requests changing the same key: the last save wins.
func TestConcurrentChangesOfOneKeyLastWriterWins(t *testing.T) {
	forEachSetup(t, false, func(t *testing.T, e *env) string {
		token := e.a.do(t, "/put?k=0&other=1", "").token
		ga, na := e.gate("a")
		gb, nb := e.gate("b")
		ra := e.a.async("/put?k=a", token, "X-Gate", na)
		rb := e.b.async("/put?k=b", token, "X-Gate", nb)
		loaded(t, ga, ra)
		loaded(t, gb, rb)
		close(ga.release)
		check(t, "A /put", <-ra)
		close(gb.release)
		check(t, "B /put", <-rb)
		if v := session(t, e.truth, token); len(v) != 2 || v["k"] != "b" || v["other"] != "1" {
			return fmt.Sprintf("the session holds %v, want k=b (the last save) other=1", v)
		}
		return ""
	})
}

// A RenewToken (here with a Put, as at login) on B racing a logout on A
// of the session B loaded: B's request finds its session deleted when it
// deletes it, and creates no new session.
func TestRenewAfterAConcurrentLogoutCreatesNoSession(t *testing.T) {
	forEachSetup(t, false, func(t *testing.T, e *env) string {
		token := e.a.do(t, "/put?user=ada", "").token
		g, name := e.gate("b")
		res := e.b.async("/renew?admin=1", token, "X-Gate", name)
		loaded(t, g, res)
		e.a.do(t, "/destroy", token)
		close(g.release)
		r := <-res
		check(t, "B /renew", r)
		if r.token == "" || r.token == token {
			t.Fatalf("B's RenewToken set the cookie %q", r.token)
		}
		var bad []string
		if v := session(t, e.truth, token); v != nil {
			bad = append(bad, fmt.Sprintf("the destroyed token is alive again: %v", v))
		}
		if v := session(t, e.truth, r.token); v != nil {
			bad = append(bad, fmt.Sprintf("the renewal of a destroyed session was saved: %v", v))
		}
		return strings.Join(bad, "; ")
	})
}

// A request that commits twice (sm.Commit in the handler, then
// LoadAndSave), with a change by A before the first (merged into it) and,
// in odd rounds, another between the two.
func TestCommitTwiceInOneRequestKeepsOthersChanges(t *testing.T) {
	forEachSetup(t, false, func(t *testing.T, e *env) string {
		token := e.a.do(t, "/put?user=ada", "").token
		g1, n1 := e.gate("first")
		g2, n2 := e.gate("second")
		res := e.b.async("/commit-twice?k=1&k2=2", token, "X-Gate", n1, "X-Gate2", n2)
		loaded(t, g1, res)
		e.a.do(t, "/put?z=1", token)
		close(g1.release)
		loaded(t, g2, res)
		want := 4
		if e.round%2 == 1 {
			e.a.do(t, "/put?w=1", token)
			want++
		}
		close(g2.release)
		check(t, "B /commit-twice", <-res)
		v := session(t, e.truth, token)
		if len(v) != want || v["user"] != "ada" || v["z"] != "1" || v["k"] != "1" || v["k2"] != "2" || want == 5 && v["w"] != "1" {
			return fmt.Sprintf("the session holds %v", v)
		}
		return ""
	})
}

// MergeSession of the request's own token loads the session again, after
// a concurrent change, and keeps the data the request has: the save's
// base stays the first load, or the save would undo that change.
func TestMergeSessionOfTheOwnTokenKeepsOthersChanges(t *testing.T) {
	forEachSetup(t, false, func(t *testing.T, e *env) string {
		token := e.a.do(t, "/put?user=ada", "").token
		g, name := e.gate("b")
		res := e.b.async("/merge-own?y=2", token, "X-Gate", name)
		loaded(t, g, res)
		e.a.do(t, "/put?x=1", token)
		close(g.release)
		check(t, "B /merge-own", <-res)
		if v := session(t, e.truth, token); len(v) != 3 || v["x"] != "1" || v["y"] != "2" {
			return fmt.Sprintf("the session holds %v, want user=ada x=1 y=2", v)
		}
		return ""
	})
}
