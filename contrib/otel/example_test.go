package tierstoreotel_test

import (
	"log"

	"github.com/redis/go-redis/v9"

	tierstoreotel "github.com/tierstore/tierstore/contrib/otel"
	"github.com/tierstore/tierstore/session"
	"github.com/tierstore/tierstore/tiered"
)

// A store and its session manager with metrics and spans, on the global
// MeterProvider and TracerProvider (set them up with the SDK first).
func ExampleInstrumentMetrics() {
	store, err := tiered.New(tiered.Config{Redis: redis.NewClient(&redis.Options{Addr: "localhost:6379"})})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	sessions, err := session.New(session.Config{Store: store})
	if err != nil {
		log.Fatal(err)
	}
	for _, err := range []error{
		tierstoreotel.InstrumentMetrics(store, tierstoreotel.WithStoreName("sessions")),
		tierstoreotel.InstrumentSessionMetrics(sessions, tierstoreotel.WithStoreName("sessions")),
		tierstoreotel.InstrumentTracing(store, tierstoreotel.WithStoreName("sessions")),
		tierstoreotel.InstrumentSessionTracing(sessions, tierstoreotel.WithStoreName("sessions")),
	} {
		if err != nil {
			log.Fatal(err)
		}
	}
}
