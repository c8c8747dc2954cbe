package statelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A flapping cause is recorded once per interval, and the next record
// says how many were left out; another message has its own limit.
func TestRecordsAreRateLimitedPerMessage(t *testing.T) {
	var buf bytes.Buffer
	g := New(slog.New(slog.NewTextHandler(&buf, nil)), time.Hour, "prefix", "p:")
	for range 5 {
		g.Warn("not live", "reason", "x")
	}
	g.Info("live")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `msg="tierstore: not live"`) || !strings.Contains(lines[0], "prefix=p:") || !strings.Contains(lines[1], `msg="tierstore: live"`) {
		t.Fatalf("records:\n%s\nwant one of each message", buf.String())
	}
	g.events["not live"].last = time.Now().Add(-2 * time.Hour) // the interval has passed
	buf.Reset()
	g.Warn("not live", "reason", "y")
	if out := buf.String(); !strings.Contains(out, "suppressed=4") || !strings.Contains(out, "reason=y") {
		t.Fatalf("record after the interval: %q, want the 4 left out counted", out)
	}
}

// A nil Logger (no slog.Logger configured) records nothing, and With on
// it stays nil.
func TestNilLoggerIsSilent(t *testing.T) {
	g := New(nil, 0)
	if g != nil || g.With("node", "a") != nil {
		t.Fatal("New(nil) is not the nil Logger")
	}
	g.Error("refused") // must not panic
}
