package session_test

import (
	"fmt"
	"iter"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/l1"
	"github.com/tierstore/tierstore/l2"
	"github.com/tierstore/tierstore/session"
)

// The merge, as a property: two requests of one session, each running a
// few operations between its load and its save, interleaved in each of
// the six orders their loads and saves can take, end with the session in
// the state of their changes applied one after the other in the order of
// their saves (last writer wins on a key), and a session either destroyed
// is never alive again.

// mergeOp is one operation of a request: put key=value, remove key, clear,
// or destroy (which ends the request's use of the session).
type mergeOp struct {
	kind       byte // 'p', 'r', 'c', 'd'
	key, value string
}

// mergeCase is two requests' operations and the order of their loads (L)
// and saves (S): order[i] is 0 or 1, the request whose next event it is.
type mergeCase struct {
	ops   [2][]mergeOp
	order [4]int
}

// orders are the six interleavings of L0 S0 and L1 S1 with each load
// before its save.
var orders = [][4]int{{0, 0, 1, 1}, {0, 1, 0, 1}, {0, 1, 1, 0}, {1, 0, 0, 1}, {1, 0, 1, 0}, {1, 1, 0, 0}}

// decodeMergeCase makes a case of any bytes, so that the fuzzer and the
// property loop share it.
func decodeMergeCase(data []byte) mergeCase {
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	var c mergeCase
	c.order = orders[int(next())%len(orders)]
	for r := range 2 {
		for range 1 + int(next())%3 {
			b := next()
			op := mergeOp{key: string(rune('a' + b%3))}
			switch (b / 3) % 8 {
			case 0, 1, 2:
				op.kind, op.value = 'p', fmt.Sprint("r", r, "-", next()%4)
			case 3, 4:
				op.kind = 'r'
			case 5, 6:
				op.kind = 'c'
			default:
				op.kind = 'd'
			}
			c.ops[r] = append(c.ops[r], op)
			if op.kind == 'd' {
				break
			}
		}
	}
	return c
}

func (c mergeCase) String() string {
	var b strings.Builder
	for r, ops := range c.ops {
		fmt.Fprintf(&b, "request %d:", r)
		for _, op := range ops {
			fmt.Fprintf(&b, " %c%s%s", op.kind, op.key, op.value)
		}
		b.WriteString("; ")
	}
	fmt.Fprintf(&b, "order %v", c.order)
	return b.String()
}

// changeSet is what a request changed, as the session layer records it.
type changeSet struct {
	put       map[string]string
	removed   map[string]bool
	destroyed bool
}

// model runs ops on the view a request loaded and returns its changes.
func model(view map[string]string, ops []mergeOp) changeSet {
	view = maps.Clone(view)
	cs := changeSet{put: map[string]string{}, removed: map[string]bool{}}
	for _, op := range ops {
		switch op.kind {
		case 'p':
			view[op.key], cs.put[op.key] = op.value, op.value
			delete(cs.removed, op.key)
		case 'r':
			if _, ok := view[op.key]; ok {
				delete(view, op.key)
				delete(cs.put, op.key)
				cs.removed[op.key] = true
			}
		case 'c': // Remove of every key it sees
			for k := range view {
				delete(cs.put, k)
				cs.removed[k] = true
			}
			view = map[string]string{}
		case 'd':
			cs.destroyed = true
			return cs
		}
	}
	return cs
}

func (cs changeSet) changes() bool {
	return len(cs.put) > 0 || len(cs.removed) > 0
}

func (cs changeSet) apply(s map[string]string) map[string]string {
	out := maps.Clone(s)
	maps.Copy(out, cs.put)
	for k := range cs.removed {
		delete(out, k)
	}
	return out
}

// mergeApp serves /ops?op=pa1&op=rb...: it runs the operations, then
// waits on held until released; and /dump, the session's values.
func mergeApp(t testing.TB, m *session.Manager, held chan chan struct{}) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ops", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		for _, op := range r.URL.Query()["op"] {
			var err error
			switch op[0] {
			case 'p':
				err = m.Put(ctx, op[1:2], op[2:])
			case 'r':
				err = m.Remove(ctx, op[1:2])
			case 'c':
				err = m.Clear(ctx)
			case 'd':
				err = m.Destroy(ctx)
			}
			if err != nil {
				t.Errorf("%s: %v", op, err)
			}
		}
		release := make(chan struct{})
		held <- release
		<-release
	})
	mux.HandleFunc("/dump", func(w http.ResponseWriter, r *http.Request) {
		for _, k := range m.Keys(r.Context()) {
			fmt.Fprintf(w, "%s=%s\n", k, m.GetString(r.Context(), k))
		}
	})
	return m.LoadAndSave(mux)
}

func dumpOf(s map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(s)) {
		fmt.Fprintf(&b, "%s=%s\n", k, s[k])
	}
	return b.String()
}

// runMergeCase runs c with request i served by apps[i] (two instances on
// one Store, or one), starting from a session holding a=0 and b=0. A
// request that loads after the other's save sends that save's cookie, as
// a browser would.
//
// truth reads the session where every instance will read it once their
// invalidations arrive (an instance may serve a destroyed session's copy
// until then).
func runMergeCase(t testing.TB, c mergeCase, apps [2]http.Handler, held [2]chan chan struct{}, truth http.Handler) {
	t.Helper()
	initial := map[string]string{"a": "0", "b": "0"}
	login := make(chan string, 1)
	go func() { _, set := serveCookie(apps[0], "/ops?op=pa0&op=pb0", ""); login <- set }()
	close(<-held[0])
	cookie := <-login

	type pending struct {
		release chan struct{}
		done    chan string // the cookie the response set
	}
	var (
		reqs      [2]pending
		views     [2]map[string]string
		state     = initial
		destroyed bool
		saves     []int
		lastSaved = cookie
	)
	loaded := [2]bool{}
	for _, r := range c.order {
		if !loaded[r] {
			loaded[r] = true
			views[r] = state
			if destroyed {
				views[r] = map[string]string{}
			}
			var q []string
			for _, op := range c.ops[r] {
				q = append(q, "op="+string(op.kind)+op.key+op.value)
			}
			done := make(chan string, 1)
			from := lastSaved
			go func() {
				_, set := serveCookie(apps[r], "/ops?"+strings.Join(q, "&"), from)
				done <- set
			}()
			reqs[r] = pending{<-held[r], done}
			if model(views[r], c.ops[r]).destroyed {
				destroyed = true // Destroy deletes at once, in the handler
			}
			continue
		}
		close(reqs[r].release)
		set := <-reqs[r].done
		cs := model(views[r], c.ops[r])
		if !cs.destroyed && cs.changes() && !destroyed {
			state = cs.apply(state)
			saves = append(saves, r)
		}
		if set != "" && !cs.destroyed {
			lastSaved = set
		}
	}
	got, _ := serveCookie(truth, "/dump", cookie)
	if destroyed {
		if got != "" {
			t.Fatalf("%v: the destroyed session is alive: %q", c, got)
		}
		return
	}
	want := dumpOf(state)
	for _, h := range []http.Handler{truth, apps[0], apps[1]} { // read-your-writes with the last cookie
		if got, _ = serveCookie(h, "/dump", lastSaved); got != want {
			t.Fatalf("%v: saves %v: session\n%s\nwant\n%s", c, saves, got, want)
		}
	}
}

func newMergeApps(t testing.TB, stores [2]tierstore.Store) ([2]http.Handler, [2]chan chan struct{}) {
	t.Helper()
	var apps [2]http.Handler
	var held [2]chan chan struct{}
	for i, s := range stores {
		m, err := session.New(session.Config{Store: s})
		if err != nil {
			t.Fatal(err)
		}
		held[i] = make(chan chan struct{})
		apps[i] = mergeApp(t, m, held[i])
	}
	return apps, held
}

func memoryStore(t testing.TB) tierstore.Store {
	s, err := l1.New(l1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// randomMergeCases yields n cases made of random bytes from seed.
func randomMergeCases(seed uint64, n int) iter.Seq[mergeCase] {
	return func(yield func(mergeCase) bool) {
		rng := rand.New(rand.NewPCG(seed, seed))
		for range n {
			data := make([]byte, 16)
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			if !yield(decodeMergeCase(data)) {
				return
			}
		}
	}
}

func TestMergeEndsInTheSerialOrderOfTheSaves(t *testing.T) {
	s := memoryStore(t)
	apps, held := newMergeApps(t, [2]tierstore.Store{s, s})
	for c := range randomMergeCases(12, 2000) {
		runMergeCase(t, c, apps, held, apps[0])
	}
}

func TestMergeOnTwoTieredInstances(t *testing.T) {
	a, b, c := pair(t, 0)
	apps, held := newMergeApps(t, [2]tierstore.Store{a.store, b.store})
	redis, err := l2.New(l2.Config{Redis: c, KeyPrefix: a.prefix})
	if err != nil {
		t.Fatal(err)
	}
	truth, _ := newMergeApps(t, [2]tierstore.Store{redis, redis})
	for c := range randomMergeCases(56, 200) {
		runMergeCase(t, c, apps, held, truth[0])
	}
}

func FuzzMerge(f *testing.F) {
	f.Add([]byte{0, 1, 0, 1, 9})
	f.Add([]byte{3, 2, 15, 0, 2, 21})
	s := memoryStore(f)
	apps, held := newMergeApps(f, [2]tierstore.Store{s, s})
	f.Fuzz(func(t *testing.T, data []byte) {
		runMergeCase(t, decodeMergeCase(data), apps, held, apps[0])
	})
}
