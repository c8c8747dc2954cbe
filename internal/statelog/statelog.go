// Package statelog records a store's state changes (live gained or lost,
// gaps, refusals, reconnects) through log/slog, at most one record per
// event per interval, so that a flapping Redis cannot flood the log: the
// next record of an event says how many were left out. It is never used
// on the hit path, and never given a key, session ID or value.
package statelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultEvery is the default interval between two records of one event.
const DefaultEvery = time.Second

// Logger is a rate-limited slog.Logger. A nil *Logger records nothing.
type Logger struct {
	l     *slog.Logger
	every time.Duration

	mu     sync.Mutex
	events map[string]*event
}

type event struct {
	last    time.Time
	skipped int
}

// New returns a Logger writing to l with the attributes attrs on every
// record, or nil (silent) if l is nil. every <= 0 means DefaultEvery.
func New(l *slog.Logger, every time.Duration, attrs ...any) *Logger {
	if l == nil {
		return nil
	}
	if every <= 0 {
		every = DefaultEvery
	}
	return &Logger{l: l.With(attrs...), every: every, events: map[string]*event{}}
}

// With returns a Logger that adds attrs, with its own rate limits.
func (g *Logger) With(attrs ...any) *Logger {
	if g == nil {
		return nil
	}
	return &Logger{l: g.l.With(attrs...), every: g.every, events: map[string]*event{}}
}

// Info records msg at level Info, unless msg was recorded less than the
// interval ago.
func (g *Logger) Info(msg string, attrs ...any) { g.log(slog.LevelInfo, msg, attrs) }

// Warn records msg at level Warn, rate-limited as Info.
func (g *Logger) Warn(msg string, attrs ...any) { g.log(slog.LevelWarn, msg, attrs) }

// Error records msg at level Error, rate-limited as Info.
func (g *Logger) Error(msg string, attrs ...any) { g.log(slog.LevelError, msg, attrs) }

func (g *Logger) log(level slog.Level, msg string, attrs []any) {
	if g == nil {
		return
	}
	now := time.Now()
	g.mu.Lock()
	e := g.events[msg]
	if e == nil {
		e = &event{}
		g.events[msg] = e
	}
	if !e.last.IsZero() && now.Sub(e.last) < g.every {
		e.skipped++
		g.mu.Unlock()
		return
	}
	skipped := e.skipped
	e.last, e.skipped = now, 0
	g.mu.Unlock()
	if skipped > 0 {
		attrs = append(attrs, "suppressed", skipped)
	}
	g.l.Log(context.Background(), level, "tierstore: "+msg, attrs...)
}
