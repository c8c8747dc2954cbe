package tierstoreprom_test

import (
	"log"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	tierstoreprom "github.com/tierstore/tierstore/contrib/prometheus"
	"github.com/tierstore/tierstore/session"
	"github.com/tierstore/tierstore/tiered"
)

// A store and its session manager scraped on /metrics.
func ExampleNewCollector() {
	store, err := tiered.New(tiered.Config{Redis: redis.NewClient(&redis.Options{Addr: "localhost:6379"})})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	sessions, err := session.New(session.Config{Store: store})
	if err != nil {
		log.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		tierstoreprom.NewCollector(store, tierstoreprom.WithStoreName("sessions")),
		tierstoreprom.NewSessionCollector(sessions, tierstoreprom.WithStoreName("sessions")),
	)
	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
}
