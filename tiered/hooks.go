package tiered

import "context"

// hooks let tests see (and hold) a read or a write at the points where
// races happen. They run on the production path, on the goroutine that
// reaches that point (for a read's reply, the read connection's): holding
// one holds what a slow network would.
type hooks struct {
	beforeL2Read    func(ctx context.Context, key string) // a flight's read is about to be sent, with the starter's ctx
	afterL2Read     func(key string)                      // Redis answered a read; L1 is not filled yet
	afterL2Write    func(key string)                      // Redis applied a write; L1 is not settled yet
	afterFlightJoin func(key string)                      // a miss joined or started its flight
	afterRefresh    func(key string)                      // a refresh (see Store.refresh) landed
}

// hooksOf returns the hooks of s: none outside tests, whose
// export_test.go keeps them beside the Store rather than in it.
var hooksOf = func(*Store) *hooks { return nil }
