// Command quickstart is the README's quick start: a tiered store on Redis,
// one value written and read back, and HTTP sessions on the same store.
//
//	go run ./examples/quickstart -redis 127.0.0.1:6379
//
// Then open http://127.0.0.1:8080/ and reload: the visit count lives in
// the session, in Redis, served from memory on repeat requests.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore/session"
	"github.com/tierstore/tierstore/tiered"
)

func main() {
	addr := flag.String("redis", "127.0.0.1:6379", "Redis address")
	listen := flag.String("listen", "127.0.0.1:8080", "HTTP listen address")
	flag.Parse()

	// ContextTimeoutEnabled makes go-redis honour your contexts' deadlines.
	rdb := redis.NewClient(&redis.Options{Addr: *addr, ContextTimeoutEnabled: true})
	defer rdb.Close()
	store, err := tiered.New(tiered.Config{Redis: rdb, KeyPrefix: "quickstart:"})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// Optional: serve from memory from the first request on.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := store.WaitLive(ctx); err != nil {
		log.Fatalf("redis at %s: %v", *addr, err)
	}

	// The Store itself: bytes under a key, until an absolute expiry.
	if err := store.Set(ctx, "greeting", []byte("hello"), time.Now().Add(time.Hour)); err != nil {
		log.Fatal(err) // Redis + invalidation, atomically; nothing cached on failure
	}
	v, err := store.Get(ctx, "greeting") // memory when fresh, else Redis
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("greeting = %s\n", v)

	// HTTP sessions on the same store.
	sessions, err := session.New(session.Config{
		Store:       store,
		IdleTimeout: 30 * time.Minute,
		// Plain HTTP for the example; behind TLS leave it false.
		Cookie: session.Cookie{AllowInsecure: true},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		visits := sessions.GetInt(r.Context(), "visits") + 1
		if err := sessions.Put(r.Context(), "visits", visits); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "visit %d\n", visits)
	})
	fmt.Printf("listening on http://%s/\n", *listen)
	log.Fatal(http.ListenAndServe(*listen, sessions.LoadAndSave(mux)))
}
