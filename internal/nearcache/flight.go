package nearcache

import "sync"

// Flight is one shared read of a key from the source of truth, under the
// Stamp current when it started (see stamp.go): the callers that miss the
// key under that Stamp wait for it, and its value lands in the cache only
// under it. Whoever starts a flight ends it exactly once, with Update or
// Cancel; until then Done is open.
type Flight struct {
	key    string
	stamp  Stamp
	shared bool          // in flights, so that other callers join it
	done   chan struct{} // closed when out is set
	out    Outcome
}

// Outcome is how a Flight ended. Value is shared by the cache and every
// waiter: none may modify it.
type Outcome struct {
	Value []byte
	Meta  Meta
	Err   error
	// Cached: the flight found a current entry that another flight
	// filled since the caller's lookup missed, and did not read the
	// source.
	Cached bool
	// StarterLeft: the read failed after the context of the caller that
	// started it ended, maybe because it ended; a waiter may try again.
	StarterLeft bool
}

// flightKey names a shared flight.
type flightKey struct {
	key   string
	stamp Stamp
}

type flights struct {
	mu sync.Mutex
	m  map[flightKey]*Flight
}

// Flight returns the flight of key under its current stamp: the one in
// progress, which the caller joins (start false), or a new one that the
// caller must send and end (start true). If serve is true and a current
// entry of key is cached (a flight under the same stamp filled it since
// the caller's Lookup missed), the flight returned has already ended with
// it, and start is false; such a hit is counted, not a second miss.
func (s *Cache) Flight(key string, serve bool) (f *Flight, start bool) {
	fk := flightKey{key, s.stamp(key)}
	s.flights.mu.Lock()
	if f := s.flights.m[fk]; f != nil {
		s.flights.mu.Unlock()
		return f, false
	}
	f = &Flight{key: key, stamp: fk.stamp, shared: true, done: make(chan struct{})}
	s.flights.m[fk] = f
	s.flights.mu.Unlock()
	if serve {
		if hit, m, _ := s.lookup(key, func(v []byte) error { f.out.Value = v; return nil }, false); hit {
			f.out.Meta, f.out.Cached = m, true
			s.end(f)
			return f, false
		}
	}
	return f, true
}

// Begin returns a new flight of key that no other caller joins: a read
// that must not share one begun earlier under the same stamp (a reader
// that knows of a newer version than the one a shared read returned).
func (s *Cache) Begin(key string) *Flight {
	return &Flight{key: key, stamp: s.stamp(key), done: make(chan struct{})}
}

// Update ends f with the value the source returned, and caches it (taking
// ownership of value) if fill is true and f's stamp is still current.
func (s *Cache) Update(f *Flight, value []byte, m Meta, fill bool) {
	f.out.Value, f.out.Meta = value, m
	if fill {
		s.fill(f.key, value, m, f.stamp, s.hashOf(f.key), 0)
	}
	s.end(f)
}

// Cancel ends f with err, caching nothing.
func (s *Cache) Cancel(f *Flight, err error, starterLeft bool) {
	f.out.Err, f.out.StarterLeft = err, starterLeft
	s.end(f)
}

func (s *Cache) end(f *Flight) {
	if f.shared {
		s.flights.mu.Lock()
		delete(s.flights.m, flightKey{f.key, f.stamp})
		s.flights.mu.Unlock()
	}
	close(f.done)
}

// Done is closed when f has ended.
func (f *Flight) Done() <-chan struct{} { return f.done }

// Outcome returns how f ended; call it once Done is closed.
func (f *Flight) Outcome() Outcome { return f.out }

// Key returns the key f reads.
func (f *Flight) Key() string { return f.key }
