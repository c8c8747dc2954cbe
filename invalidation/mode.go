package invalidation

import "fmt"

// Mode is how invalidations reach an instance (tiered.Config.Invalidation).
type Mode int

const (
	// PerKey, the default: Redis remembers which keys each instance read
	// and reports a change only to the instances that hold the key
	// (CLIENT TRACKING without BCAST). A write costs Redis work in
	// proportion to the instances that hold the key, not to the fleet;
	// Redis keeps a tracking table, measured on Redis 7.0 at about 100
	// bytes per key for its first follower and 40 to 70 for each further
	// one (bounded by tracking-table-max-keys, whose evictions are
	// reported as invalidations).
	PerKey Mode = iota
	// Broadcast: every change under the key prefix is reported to every
	// instance (CLIENT TRACKING BCAST). No tracking table in Redis, but
	// each write costs a message per instance: for small fleets.
	Broadcast
	// OwnWrites: Redis reports nothing; each write through a tiered
	// store publishes its key on a channel in the same atomic step. For a
	// Redis that refuses CLIENT TRACKING (some managed services) or has
	// none (miniredis): a change made any other way reaches an instance
	// only when its entry ends (L1TTL).
	OwnWrites
)

// String returns the mode's name: "per-key", "broadcast" or "own-writes".
func (m Mode) String() string {
	switch m {
	case PerKey:
		return "per-key"
	case Broadcast:
		return "broadcast"
	case OwnWrites:
		return "own-writes"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode returns the Mode that String names.
func ParseMode(s string) (Mode, error) {
	for m := PerKey; m <= OwnWrites; m++ {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("invalidation: unknown mode %q (per-key, broadcast or own-writes)", s)
}

// ModeIf returns OwnWrites if ownWrites, else the default, PerKey: for a
// configuration that knows only whether Redis can track (miniredis cannot).
func ModeIf(ownWrites bool) Mode {
	if ownWrites {
		return OwnWrites
	}
	return PerKey
}
