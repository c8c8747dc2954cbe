package tiered

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore/internal/testenv/redistest"
)

// BenchmarkSessionOutage is the latency of session requests (the session
// middleware over a tiered store, each request reading its session with a
// 1 s deadline; 8 clients sending 100 requests a second each, on
// schedule, over 64 sessions held in L1), from the moment Redis becomes
// unreachable and for outageFor: killed (dials refused) or black-holed (dials
// and requests never answered), with go-redis's default timeouts (dial
// 5 s, read 3 s) and the default HealthCheckInterval (1 s); without
// failing fast (as before it), failing fast, and failing fast with a
// 30 s fail-safe. It reports the requests' p50, p99 and max, the share
// answered 200 (requests still not sent when the outage ends count as
// failed, having waited until then), and how long after the repair the
// store was Live again
// and a request answered 200. One scenario per iteration: run it with
// -benchtime 1x (see docs/benchmarks.md).
func BenchmarkSessionOutage(b *testing.B) {
	const outageFor = 10 * time.Second
	modes := []struct {
		name     string
		fast     bool
		failSafe time.Duration
	}{
		{"before", false, 0},
		{"fail-fast", true, 0},
		{"fail-fast+fail-safe", true, 30 * time.Second},
	}
	for _, fault := range []string{"killed", "black-holed"} {
		for _, m := range modes {
			b.Run(fault+"/"+m.name, func(b *testing.B) {
				failFast = m.fast
				defer func() { failFast = true }()
				for b.Loop() {
					outageScenario(b, fault, m.failSafe, outageFor)
				}
			})
		}
	}
}

// The load of BenchmarkSessionOutage: clients, each sending a request
// every interval (800 requests a second).
const (
	clients  = 8
	interval = 10 * time.Millisecond
)

func outageScenario(b *testing.B, fault string, failSafe, outageFor time.Duration) {
	srv := redistest.Start(b)
	proxy := redistest.NewProxy(b, srv.Addr())
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr()})
	defer rdb.Close()
	s := newStore(b, rdb, Config{FailSafe: failSafe, HealthCheckInterval: time.Second})
	h := sessionHandler(b, s)
	cookies := make([]string, 64)
	for i := range cookies {
		_, _, cookies[i] = request(h, fmt.Sprintf("/put?v=%d", i), "")
	}
	for range 3 { // after the saves' reports, each is an L1 hit
		for _, c := range cookies {
			request(h, "/get", c)
		}
	}
	switch fault {
	case "killed":
		srv.Kill()
	default:
		proxy.BlackHole()
	}
	var mu sync.Mutex
	var took []time.Duration
	ok := 0
	start := time.Now()
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			var mine []time.Duration
			mineOK := 0
			// Each client sends a request every interval, on schedule:
			// one that waited is late, and the next starts late too, so
			// each request's time is counted from when it was due (no
			// coordinated omission).
			// Requests still not sent when the outage ends are counted
			// as failed, having waited until then (a lower bound).
			end := start.Add(outageFor)
			for i := 0; time.Duration(i)*interval < outageFor; i++ {
				due := start.Add(time.Duration(i)*interval + time.Duration(w)*interval/clients)
				if time.Now().After(end) {
					mine = append(mine, end.Sub(due))
					continue
				}
				time.Sleep(time.Until(due))
				if timedRequest(h, cookies[(i*clients+w)%len(cookies)]) == http.StatusOK {
					mineOK++
				}
				mine = append(mine, time.Since(due))
			}
			mu.Lock()
			took, ok = append(took, mine...), ok+mineOK
			mu.Unlock()
		})
	}
	wg.Wait()
	repaired := time.Now()
	switch fault {
	case "killed":
		srv.Restart()
	default:
		proxy.Heal()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.WaitLive(ctx); err != nil {
		b.Fatal(err)
	}
	live := time.Since(repaired)
	for timedRequest(h, cookies[0]) != http.StatusOK {
	}
	answered := time.Since(repaired)
	slices.Sort(took)
	q := func(p float64) float64 { return float64(took[int(p*float64(len(took)-1))]) / 1e6 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
	b.ReportMetric(100*float64(ok)/float64(len(took)), "ok-%")
	b.ReportMetric(float64(live)/1e6, "live-after-ms")
	b.ReportMetric(float64(answered)/1e6, "ok-after-ms")
}

// timedRequest reads the session of cookie with a 1 s deadline, and
// returns the status.
func timedRequest(h http.Handler, cookie string) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, "GET", "/get", nil)
	req.AddCookie(&http.Cookie{Name: "session", Value: cookie})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}
