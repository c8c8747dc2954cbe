package tierstoreotel

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/session"
	"github.com/tierstore/tierstore/tiered"
)

// InstrumentTracing makes spans of s's calls that cross the network:
// "tierstore.get" (a miss's read of Redis, once per shared read),
// "tierstore.set", "tierstore.delete", "tierstore.set_if",
// "tierstore.delete_if" and "tierstore.touch", of kind client, with
// db.system.name "redis", tierstore.store.name and, for a read of an
// absent key or a conditional write that lost, tierstore.result "miss" or
// "conflict" (neither is an error). Hits make no span. Spans are opt-in:
// without this call the store pays one atomic load per miss or write.
// A later call replaces the earlier one (tiered.Store.SetTracer).
func InstrumentTracing(s *tiered.Store, opts ...Option) error {
	if s == nil {
		return errors.New("tierstoreotel: InstrumentTracing of a nil Store")
	}
	c := resolve(opts)
	s.SetTracer(storeTracer{tracer: c.tp.Tracer(ScopeName), start: []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system.name", "redis"), StoreNameKey.String(c.name)),
	}})
	return nil
}

type storeTracer struct {
	tracer trace.Tracer
	start  []trace.SpanStartOption
}

func (t storeTracer) Start(ctx context.Context, op string) func(error) {
	_, span := t.tracer.Start(ctx, "tierstore."+op, t.start...)
	return func(err error) { end(span, err) }
}

// end ends span with err's outcome. The error's text names the key
// prefix and a hash of the key, never the key itself.
func end(span trace.Span, err error) {
	switch {
	case err == nil:
	case errors.Is(err, tierstore.ErrNotFound):
		span.SetAttributes(attribute.String("tierstore.result", "miss"))
	case errors.Is(err, tierstore.ErrConflict):
		span.SetAttributes(attribute.String("tierstore.result", "conflict"))
	default:
		span.RecordError(err)
		span.SetStatus(codes.Error, "")
	}
	span.End()
}

// InstrumentSessionTracing makes spans of m's saves ("tierstore.session.save",
// the parent of the store's spans of the save) and of each merge of a
// concurrent request's changes ("tierstore.session.merge", a child of
// the save or of the request's span for a Renew), with
// tierstore.store.name. A later call replaces the earlier one
// (session.Manager.SetTracer).
func InstrumentSessionTracing(m *session.Manager, opts ...Option) error {
	if m == nil {
		return errors.New("tierstoreotel: InstrumentSessionTracing of a nil Manager")
	}
	c := resolve(opts)
	m.SetTracer(sessionTracer{tracer: c.tp.Tracer(ScopeName), start: []trace.SpanStartOption{
		trace.WithAttributes(StoreNameKey.String(c.name)),
	}})
	return nil
}

type sessionTracer struct {
	tracer trace.Tracer
	start  []trace.SpanStartOption
}

func (t sessionTracer) Start(ctx context.Context, op string) (context.Context, func(error)) {
	ctx, span := t.tracer.Start(ctx, "tierstore.session."+op, t.start...)
	return ctx, func(err error) { end(span, err) }
}
