package tiered

import "context"

// Tracer sees the store's calls that cross the network (see
// Store.SetTracer); contrib/otel makes spans of them. Hits never reach
// it: they cross nothing.
type Tracer interface {
	// Start is called when op goes to Redis, with the caller's ctx: "get"
	// (a miss's read, once per shared read, by the caller that sends it),
	// "set", "delete", "set_if", "delete_if" or "touch". The returned
	// func is called once, with the outcome: nil, or the error the caller
	// gets (tierstore.ErrNotFound for a read of an absent key, an
	// ErrConflict for a conditional write that lost). A read's outcome
	// comes on the read connection's goroutine, so end must be quick.
	Start(ctx context.Context, op string) (end func(err error))
}

type tracerBox struct{ t Tracer }

// SetTracer makes t see the store's calls to Redis from now on,
// replacing the Tracer set before; nil removes it. Without one (the
// default) tracing costs one atomic load per miss or write, and nothing
// on a hit.
func (s *Store) SetTracer(t Tracer) {
	if t == nil {
		s.tracer.Store(nil)
		return
	}
	s.tracer.Store(&tracerBox{t})
}

// trace starts op with the Tracer; nil without one.
func (s *Store) trace(ctx context.Context, op string) func(error) {
	if b := s.tracer.Load(); b != nil {
		return b.t.Start(ctx, op)
	}
	return nil
}

// endTrace calls end, if there is one, with err.
func endTrace(end func(error), err error) {
	if end != nil {
		end(err)
	}
}
