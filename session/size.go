package session

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/codec"
)

// A session is saved as one value, its encoded record, and a Store refuses
// a value above its limit (tierstore.ErrTooLarge). Put refuses a value that
// would take the session over Config.MaxBytes, so that the error reaches
// the code that can do something about it, instead of failing the save
// after the handler (a 500 for the client, and the request's other changes
// lost).
//
// Encoding the whole session on every Put would cost what saving it does.
// With the codecs of package codec the Manager instead computes the size:
// a record is a fixed part (the deadline) and a map of the values, whose
// encoded size is a header that depends on the number of entries plus
// each entry's own size. The request keeps the sum and moves it by the
// entry a Put replaces (see state.size); a session read from the Store
// comes with its size, added up once when it was decoded (record.size).
// Other codecs are asked, at each Put, for the encoding of the whole
// session.

// valueLimiter is a Store that reports its largest value (l2.Store does).
type valueLimiter interface{ MaxValueBytes() int }

// sizing is how a Manager knows the encoded size of a session.
type sizing int

const (
	sizeByEncoding sizing = iota // ask the codec: any codec
	sizeMsgpack                  // computed: codec.MsgpackCodec
	sizeJSON                     // computed: codec.JSONCodec
)

func sizingOf(c codec.Codec) sizing {
	switch c.(type) {
	case codec.MsgpackCodec:
		return sizeMsgpack
	case codec.JSONCodec:
		return sizeJSON
	}
	return sizeByEncoding
}

// maxBytesOf is Config.MaxBytes, or its default for store.
func maxBytesOf(cfg Config) int {
	if cfg.MaxBytes > 0 {
		return cfg.MaxBytes
	}
	if s, ok := cfg.Store.(valueLimiter); ok && s.MaxValueBytes() > 0 {
		return s.MaxValueBytes()
	}
	return tierstore.DefaultMaxValueBytes
}

// emptySize is the encoded size of a record without values, less its
// values' map header: the part of every session that Put does not change.
// The deadline is encoded at the size of any date in this millennium (a
// msgpack int64 is 9 bytes whatever its value, a JSON one 19 digits from
// 2001 to 2286).
func (m *Manager) emptySize() (int, error) {
	b, err := m.codec.Marshal(record{Deadline: time.Now().Add(m.cfg.Lifetime).UnixNano(), Values: map[string][]byte{}})
	if err != nil {
		return 0, fmt.Errorf("session: the codec cannot encode a session: %w", err)
	}
	return len(b) - m.mapHeaderSize(0), nil
}

// metaSize is what md adds to the stored size of a record: its encoding
// (exact for both codecs: the record's field count stays under
// msgpack's 16 of a fixmap, and JSON adds a comma and the field), asked
// of the codec, which costs a Marshal only for a session with a user or
// labels.
func (m *Manager) metaSize(md *meta) int {
	if md == nil {
		return 0
	}
	sized := *md
	sized.Saved = time.Now().UnixNano() // as a save will write it (JSON: 19 digits)
	b, err := m.codec.Marshal(record{Meta: &sized})
	if err != nil {
		return 0 // the save will fail with the codec's error
	}
	return len(b) - m.emptyLen
}

// sessionSize is the stored size of a record of values without meta,
// computed: the Manager's sizing must not be sizeByEncoding.
func (m *Manager) sessionSize(values map[string][]byte) int {
	n := m.baseSize + m.overhead + m.mapHeaderSize(len(values))
	for k, v := range values {
		n += m.entrySize(k, v)
	}
	return n
}

// mapHeaderSize is the encoded size of a map of n values, less the
// entries themselves.
func (m *Manager) mapHeaderSize(n int) int {
	if m.sizing == sizeJSON {
		return 2 + max(n-1, 0) // braces, commas
	}
	switch {
	case n < 16:
		return 1 // fixmap
	case n <= 0xffff:
		return 3 // map 16
	}
	return 5 // map 32
}

// entrySize is the encoded size of key and its value in the values map.
func (m *Manager) entrySize(key string, value []byte) int {
	if m.sizing == sizeJSON {
		k, _ := json.Marshal(key) // never fails: a string
		if value == nil {
			return len(k) + len(":null")
		}
		return len(k) + len(`:""`) + base64.StdEncoding.EncodedLen(len(value))
	}
	n := len(key)
	switch {
	case n < 32:
		n++ // fixstr
	case n < 256:
		n += 2 // str 8
	case n <= 0xffff:
		n += 3 // str 16
	default:
		n += 5 // str 32
	}
	if value == nil {
		return n + 1 // nil
	}
	n += len(value)
	switch {
	case len(value) < 256:
		return n + 2 // bin 8
	case len(value) <= 0xffff:
		return n + 3 // bin 16
	}
	return n + 5 // bin 32
}

// tooLarge is Put's error for a session that would be size bytes. It
// names the key prefix, no key, value or session ID.
func (m *Manager) tooLarge(size int) error {
	return fmt.Errorf("session: put under prefix %q: the session would be %d bytes encoded, over its limit of %d (Config.MaxBytes): %w",
		m.cfg.KeyPrefix, size, m.maxBytes, tierstore.ErrTooLarge)
}

// putWithinLimit sets key to value in st if the session stays within
// MaxBytes, and otherwise changes nothing and returns the error Put
// returns. st.mu must be held.
func (m *Manager) putWithinLimit(st *state, key string, value []byte) error {
	if m.sizing == sizeByEncoding {
		st.own()
		old, had := st.values[key]
		st.values[key] = value
		deadline := st.deadline
		if deadline.IsZero() { // a new session: its deadline is set when it is saved
			deadline = m.cfg.Now().Add(m.cfg.Lifetime)
		}
		data, err := m.codec.Marshal(record{Deadline: deadline.UnixNano(), Values: st.values, Meta: st.meta})
		if err == nil && len(data)+m.overhead > m.maxBytes {
			err = m.tooLarge(len(data) + m.overhead)
		}
		if err != nil {
			if had {
				st.values[key] = old
			} else {
				delete(st.values, key)
			}
			return err
		}
		return nil
	}
	if !st.sized {
		st.size, st.sized = m.sessionSize(st.values)+m.metaSize(st.meta), true
	}
	size := st.size + m.entrySize(key, value)
	if old, had := st.values[key]; had {
		size -= m.entrySize(key, old)
	} else {
		size += m.mapHeaderSize(len(st.values)+1) - m.mapHeaderSize(len(st.values))
	}
	if size > m.maxBytes {
		return m.tooLarge(size)
	}
	st.own()
	st.values[key], st.size = value, size
	return nil
}
