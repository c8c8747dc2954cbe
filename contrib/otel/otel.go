// Package tierstoreotel instruments a tiered.Store and a session.Manager
// with OpenTelemetry: metrics read from the store's own counters
// (observable instruments whose callback reads Stats() once per
// collection, so the request path pays nothing for them), the heartbeat
// proof lag as a histogram, and opt-in spans of what crosses the network
// (misses, writes, conditional saves and their merges), never of hits.
// docs/operations.md lists the instruments.
package tierstoreotel

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the meters and tracers.
const ScopeName = "github.com/tierstore/tierstore/contrib/otel"

// DefaultStoreName is the tierstore.store.name of instruments made
// without WithStoreName.
const DefaultStoreName = "default"

// StoreNameKey is the one attribute that tells stores apart. Never a
// key, a session ID, an instance ID or an error string: attributes are
// billed per unique value, and the resource (service.instance.id) tells
// instances apart.
const StoreNameKey = attribute.Key("tierstore.store.name")

// Option configures the instrumentation.
type Option func(*config)

type config struct {
	mp   metric.MeterProvider
	tp   trace.TracerProvider
	name string
}

// WithMeterProvider sets the MeterProvider. Default: the global one
// (otel.GetMeterProvider).
func WithMeterProvider(mp metric.MeterProvider) Option { return func(c *config) { c.mp = mp } }

// WithTracerProvider sets the TracerProvider of InstrumentTracing and
// InstrumentSessionTracing. Default: the global one (otel.GetTracerProvider).
func WithTracerProvider(tp trace.TracerProvider) Option { return func(c *config) { c.tp = tp } }

// WithStoreName sets the tierstore.store.name attribute. Default
// DefaultStoreName.
func WithStoreName(name string) Option { return func(c *config) { c.name = name } }

func resolve(opts []Option) config {
	c := config{name: DefaultStoreName}
	for _, opt := range opts {
		opt(&c)
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	return c
}

// attrs returns the attribute set of the store name and kv.
func (c config) attrs(kv ...attribute.KeyValue) attribute.Set {
	return attribute.NewSet(append([]attribute.KeyValue{StoreNameKey.String(c.name)}, kv...)...)
}
