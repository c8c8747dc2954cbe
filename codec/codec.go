// Package codec turns Go values into the bytes a tierstore.Store keeps:
// msgpack by default, JSON as the alternative, and a typed helper so an
// application can keep a struct in any Store without writing encode/decode.
package codec

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Codec encodes and decodes values. Implementations must be safe for
// concurrent use. Unmarshal must not retain data after it returns.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// The codecs are values of zero-size types, not interface variables: a
// dependency that assigns to codec.Msgpack, codec.JSON or codec.Default
// can only store the same codec again, never swap in another
// implementation for every user of the package.

// Msgpack is the default codec (github.com/vmihailenco/msgpack/v5). Structs
// are encoded as maps keyed by field name (or the `msgpack` tag), so fields
// may be added and removed between releases; time.Time keeps its instant
// and nanoseconds but not its location. Decoded into an interface value,
// integers come back as int64 (or uint64), floats as float64, arrays as
// []any and maps as map[string]any.
var Msgpack MsgpackCodec

// JSON is the encoding/json codec: larger and slower than msgpack, but
// readable with redis-cli.
var JSON JSONCodec

// Default is the codec used when none is configured: Msgpack.
var Default MsgpackCodec

// MsgpackCodec is the type of Msgpack and Default.
type MsgpackCodec struct{}

// JSONCodec is the type of JSON.
type JSONCodec struct{}

// Marshal encodes v as msgpack.
func (MsgpackCodec) Marshal(v any) ([]byte, error) {
	b, err := msgpack.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("codec: msgpack encode %T: %w", v, err)
	}
	return b, nil
}

// Unmarshal decodes msgpack data into v, which must be a non-nil pointer.
// Malformed data, including trailing bytes, is an error, never a panic.
func (MsgpackCodec) Unmarshal(data []byte, v any) (err error) {
	// msgpack v5.4.1 panics on some malformed input (a nil where a
	// struct-typed field such as time.Time is expected; FuzzMsgpackDecode
	// covers it). Corrupt bytes must be an error, never a crash.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("codec: msgpack decode into %T: malformed input: %v", v, r)
		}
	}()
	// Headers must not declare more than the input holds: see checkMsgpack.
	n, err := checkMsgpack(data)
	if err != nil {
		return fmt.Errorf("codec: msgpack decode into %T: %w", v, err)
	}
	if n < len(data) {
		return fmt.Errorf("codec: msgpack decode into %T: %d trailing bytes", v, len(data)-n)
	}
	r := bytes.NewReader(data)
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	dec.Reset(r) // a *bytes.Reader is read directly, without extra buffering
	dec.UseLooseInterfaceDecoding(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("codec: msgpack decode into %T: %w", v, err)
	}
	// Trailing bytes mean the value is not what was written: refuse it
	// rather than return a reading of some prefix of it.
	if r.Len() > 0 {
		return fmt.Errorf("codec: msgpack decode into %T: %d trailing bytes", v, r.Len())
	}
	return nil
}

// Marshal encodes v as JSON.
func (JSONCodec) Marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("codec: json encode %T: %w", v, err)
	}
	return b, nil
}

// Unmarshal decodes JSON data into v; trailing data is an error.
func (JSONCodec) Unmarshal(data []byte, v any) error {
	// json.Unmarshal checks the whole input first, trailing bytes
	// included, before it stores anything in v.
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("codec: json decode into %T: %w", v, err)
	}
	return nil
}
