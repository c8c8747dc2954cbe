package tierstoreotel_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tierstore/tierstore"
	tierstoreotel "github.com/tierstore/tierstore/contrib/otel"
	"github.com/tierstore/tierstore/internal/testenv/metricsrun"
	"github.com/tierstore/tierstore/internal/testenv/redistest"
	"github.com/tierstore/tierstore/session"
)

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

// Misses and writes make spans, hits none; a read of an absent key and a
// lost conditional write are results, not errors.
func TestSpansForWhatCrossesTheNetwork(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	s := metricsrun.NewStore(t, srv, "t:")
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	if err := tierstoreotel.InstrumentTracing(s, tierstoreotel.WithTracerProvider(tp)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "absent"); !errors.Is(err, tierstore.ErrNotFound) {
		t.Fatal(err)
	}
	v, err := s.SetIf(ctx, "k", []byte("v"), time.Time{}, tierstore.NoVersion)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetIf(ctx, "k", []byte("w"), time.Time{}, v+1); !errors.Is(err, tierstore.ErrConflict) {
		t.Fatalf("SetIf with a wrong version: %v", err)
	}
	redistest.Eventually(t, "k is an L1 hit", func() bool {
		hits := s.Stats().L1.Hits
		_, _ = s.Get(ctx, "k")
		return s.Stats().L1.Hits > hits
	})
	spans := len(rec.Ended())
	for range 5 {
		if _, err := s.Get(ctx, "k"); err != nil {
			t.Fatal(err)
		}
	}
	if got := rec.Ended(); len(got) != spans {
		t.Fatalf("hits made spans: %v", names(got[spans:]))
	}
	ended := rec.Ended()
	want := []struct{ name, result string }{{"tierstore.get", "miss"}, {"tierstore.set_if", ""}, {"tierstore.set_if", "conflict"}}
	for i, w := range want {
		sp := ended[i]
		result := ""
		for _, a := range sp.Attributes() {
			if a.Key == "tierstore.result" {
				result = a.Value.AsString()
			}
		}
		if sp.Name() != w.name || result != w.result || sp.Status().Code != 0 || sp.SpanKind().String() != "client" {
			t.Errorf("span %d: %s result %q status %v kind %v, want %s %q, unset, client", i, sp.Name(), result, sp.Status(), sp.SpanKind(), w.name, w.result)
		}
	}
}

// A session's life, counted and traced: created, saved, a concurrent
// change merged, renewed, destroyed, and a save that fails while Redis is
// down; each merge span a child of a save span, and each of the store's
// conditional writes a child of a save or of the request.
func TestSessionMetricsAndSpans(t *testing.T) {
	srv := redistest.Start(t)
	s := metricsrun.NewStore(t, srv, "t:")
	m, err := session.New(session.Config{Store: s, Cookie: session.Cookie{AllowInsecure: true}})
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	for _, err := range []error{
		tierstoreotel.InstrumentTracing(s, tierstoreotel.WithTracerProvider(tp)),
		tierstoreotel.InstrumentSessionTracing(m, tierstoreotel.WithTracerProvider(tp)),
		tierstoreotel.InstrumentSessionMetrics(m, tierstoreotel.WithMeterProvider(mp)),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	held, release := make(chan struct{}), make(chan struct{})
	h := m.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		switch r.URL.Path {
		case "/put":
			err = m.Put(ctx, r.URL.Query().Get("k"), "v")
		case "/held":
			err = m.Put(ctx, "held", "v")
			close(held)
			<-release
		case "/renew":
			err = m.Renew(ctx)
		case "/destroy":
			err = m.Destroy(ctx)
		}
		if err != nil {
			t.Error(err)
		}
	}))
	var cookie string
	do := func(path string) int {
		r := httptest.NewRequest("GET", path, nil)
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if c := w.Result().Cookies(); len(c) > 0 {
			cookie = c[0].Name + "=" + c[0].Value // empty: deleted
		}
		return w.Code
	}
	do("/put?k=a") // created
	done := make(chan struct{})
	go func() {
		defer close(done)
		do("/held") // loads, waits, then saves after the next one: a merge
	}()
	<-held
	do("/put?k=b")
	close(release)
	<-done
	do("/renew")
	do("/destroy")
	srv.Kill()
	redistest.Eventually(t, "the store is not live", func() bool { return !s.Live() })
	if code := do("/put?k=c"); code != http.StatusServiceUnavailable {
		t.Fatalf("a save with Redis down answered %d", code)
	}

	got, _ := points(t, reader)
	const store = "tierstore.store.name=default"
	for k, want := range map[string]float64{
		"tierstore.session.created{" + store + "}":                                         1, // the one after Destroy fails
		"tierstore.session.renewed{" + store + "}":                                         1,
		"tierstore.session.destroyed{" + store + "}":                                       1,
		"tierstore.session.saves{" + store + "}":                                           4,
		"tierstore.session.merges{" + store + "}":                                          1,
		"tierstore.session.save_failures{tierstore.error.class=unavailable," + store + "}": 1,
		"tierstore.session.save_failures{tierstore.error.class=conflict," + store + "}":    0,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}

	byID := map[string]sdktrace.ReadOnlySpan{}
	for _, sp := range rec.Ended() {
		byID[sp.SpanContext().SpanID().String()] = sp
	}
	parent := func(sp sdktrace.ReadOnlySpan) string {
		if p, ok := byID[sp.Parent().SpanID().String()]; ok {
			return p.Name()
		}
		return ""
	}
	count := map[string]int{}
	for _, sp := range rec.Ended() {
		count[sp.Name()]++
		switch sp.Name() {
		case "tierstore.session.merge", "tierstore.set_if":
			if p := parent(sp); p != "tierstore.session.save" {
				t.Errorf("%s's parent is %q, want the save", sp.Name(), p)
			}
		}
	}
	if count["tierstore.session.merge"] != 1 || count["tierstore.session.save"] != 5 {
		t.Errorf("spans %v: want one merge and five saves (four written, one failed)", count)
	}
}
