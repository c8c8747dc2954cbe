package session

import "time"

// EventKind says what happened to a session.
type EventKind uint8

// The events a Manager reports (Config.OnEvent).
const (
	// EventCreated: a new session was first saved (by a request's save,
	// or by SetUser for a request that had no session).
	EventCreated EventKind = iota + 1
	// EventRenewed: the session got a new ID (Renew, or SetUser of a
	// stored session); Previous is the old handle.
	EventRenewed
	// EventDestroyed: the session was ended by its own request (Destroy).
	EventDestroyed
	// EventRevoked: the session was ended by RevokeSession or RevokeUser.
	EventRevoked
	// EventEvicted: the session was ended by a login of its user beyond
	// Config.MaxSessionsPerUser, the oldest of the user's sessions.
	EventEvicted
)

var eventNames = [...]string{EventCreated: "created", EventRenewed: "renewed", EventDestroyed: "destroyed", EventRevoked: "revoked", EventEvicted: "evicted"}

// String is the event's name: created, renewed, destroyed, revoked or
// evicted.
func (k EventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return "unknown"
}

// Event is a change of one session, reported once, by the instance whose
// write made it, after that write succeeded. It names the session by its
// handle (as UserSessions lists it), never by its ID.
type Event struct {
	Kind EventKind
	// User is the user the session is bound to (SetUser), or "".
	User string
	// Handle names the session (its new one for EventRenewed).
	Handle string
	// Previous is the handle the session had before, for EventRenewed.
	Previous string
	// Time is when the Manager made the change (Config.Now).
	Time time.Time
}

// events collects a call's events, to be reported once it holds no lock.
type events []Event

func (m *Manager) add(ev *events, kind EventKind, user, handle, previous string) {
	if m.cfg.OnEvent != nil {
		*ev = append(*ev, Event{Kind: kind, User: user, Handle: handle, Previous: previous, Time: m.cfg.Now()})
	}
}

// emit reports ev to Config.OnEvent. Called after every lock is released,
// so that the hook may call the Manager.
func (m *Manager) emit(ev *events) {
	for _, e := range *ev {
		m.cfg.OnEvent(e)
	}
}
