package session

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/tierstore/tierstore"
)

// Stats counts a Manager's sessions and saves, all cumulative. Exported
// as metrics by contrib/otel and contrib/prometheus.
type Stats struct {
	Created   uint64 // new sessions saved for the first time
	Renewed   uint64 // sessions given a new ID (Renew)
	Destroyed uint64 // sessions ended by Destroy
	// Saves counts the sessions written (new or changed), Merges the
	// concurrent changes merged in: each time a conditional save or a
	// Renew found that another request had saved the session since it
	// was loaded, and applied this request's changes again on top.
	Saves, Merges uint64
	// SaveFailures counts the requests whose session could not be saved
	// (or its idle deadline extended), by class (indexed by
	// FailureClass); a session found logged out is no failure.
	SaveFailures [NumFailureClasses]uint64
}

// FailureClass is the class of a failed save, by the error it wraps.
type FailureClass uint8

// The classes of Stats.SaveFailures.
const (
	FailureUnavailable FailureClass = iota // tierstore.ErrUnavailable: the Store did not answer
	FailureRefused                         // tierstore.ErrRefused: the Store refused the write
	FailureConflict                        // tierstore.ErrConflict: concurrent saves kept winning
	FailureTooLarge                        // tierstore.ErrTooLarge: the session grew past the Store's limit
	FailureOther                           // anything else (an encoding error, a caller that left)

	// NumFailureClasses is the number of classes: the length of
	// Stats.SaveFailures.
	NumFailureClasses
)

var failureClassNames = [NumFailureClasses]string{"unavailable", "refused", "conflict", "too_large", "other"}

// String returns the class's name, a metric attribute value:
// "unavailable", "refused", "conflict", "too_large" or "other".
func (c FailureClass) String() string {
	if c < NumFailureClasses {
		return failureClassNames[c]
	}
	return "unknown"
}

func failureClassOf(err error) FailureClass {
	switch {
	case errors.Is(err, tierstore.ErrUnavailable):
		return FailureUnavailable
	case errors.Is(err, tierstore.ErrRefused):
		return FailureRefused
	case errors.Is(err, tierstore.ErrConflict):
		return FailureConflict
	case errors.Is(err, tierstore.ErrTooLarge):
		return FailureTooLarge
	}
	return FailureOther
}

// counters are a Manager's Stats as they are counted: off the load path,
// a few per save.
type counters struct {
	created, renewed, destroyed, saves, merges atomic.Uint64
	saveFailures                               [NumFailureClasses]atomic.Uint64
}

// Stats returns the counters.
func (m *Manager) Stats() Stats {
	c := &m.counters
	st := Stats{
		Created: c.created.Load(), Renewed: c.renewed.Load(), Destroyed: c.destroyed.Load(),
		Saves: c.saves.Load(), Merges: c.merges.Load(),
	}
	for i := range c.saveFailures {
		st.SaveFailures[i] = c.saveFailures[i].Load()
	}
	return st
}

// Tracer sees the Manager's saves, which cross the network (see
// Manager.SetTracer). contrib/otel makes spans of them.
type Tracer interface {
	// Start is called when op begins, with the request's ctx: "save"
	// (a changed session written, conditionally with a
	// tierstore.Versioned Store) or "merge" (one re-application of the
	// request's changes to what another request saved, inside a save or
	// a Renew). It returns the ctx the operation carries on (the Store's
	// calls receive it) and a func that is called once with its outcome.
	Start(ctx context.Context, op string) (context.Context, func(err error))
}

type tracerBox struct{ t Tracer }

// SetTracer makes t see the Manager's saves and merges from now on,
// replacing the Tracer set before; nil removes it. Without one (the
// default) tracing costs one atomic load per save.
func (m *Manager) SetTracer(t Tracer) {
	if t == nil {
		m.tracer.Store(nil)
		return
	}
	m.tracer.Store(&tracerBox{t})
}

// trace starts op with the Tracer, if any; end ends it (end is nil
// without a Tracer).
func (m *Manager) trace(ctx context.Context, op string) (context.Context, func(error)) {
	if b := m.tracer.Load(); b != nil {
		return b.t.Start(ctx, op)
	}
	return ctx, nil
}

// endTrace calls end, if there is one, with err.
func endTrace(end func(error), err error) {
	if end != nil {
		end(err)
	}
}
