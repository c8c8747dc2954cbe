package rediskv

import (
	"bufio"
	"context"
	"encoding"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"
)

// The Pipe speaks RESP2 itself (see Pipe): what follows is the least of it
// that the Pipe needs, and reads replies into the values go-redis's Cmd
// holds, so that its accessors (Slice, Int64, Text...) and the callers'
// parsers see no difference.

// replyError is an error reply from Redis. Like go-redis's, it satisfies
// redis.Error, so that redis.HasErrorPrefix and Wrap recognise it.
type replyError string

func (e replyError) Error() string { return string(e) }
func (replyError) RedisError()     {}

var _ redis.Error = replyError("")

// isReply reports whether err, from readReply, is Redis's answer (an error
// reply or a null) rather than a broken stream.
func isReply(err error) bool {
	_, ok := err.(replyError)
	return ok || err == redis.Nil
}

// maxBulk bounds a bulk string's announced length: Redis's default
// proto-max-bulk-len. A longer one is taken for a corrupt stream.
const maxBulk = 512 << 20

// readReply reads one reply: a simple or bulk string as a string, an
// integer as an int64, an array as []any whose null elements are nil and
// whose error elements are replyErrors; a null (bulk or array) as redis.Nil
// and an error reply as a replyError, both as the error. Any other error
// means the stream can no longer be read.
func readReply(br *bufio.Reader) (any, error) {
	line, err := readLine(br)
	if err != nil {
		return nil, err
	}
	switch line[0] {
	case '+':
		if string(line[1:]) == "OK" {
			return "OK", nil
		}
		return string(line[1:]), nil
	case '-':
		return nil, replyError(line[1:])
	case ':':
		return parseInt(line)
	case '$':
		n, err := parseInt(line)
		switch {
		case err != nil:
			return nil, err
		case n == -1:
			return nil, redis.Nil
		case n < 0 || n > maxBulk:
			return nil, fmt.Errorf("rediskv: invalid reply: %.100q", line)
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(br, b); err != nil {
			return nil, err
		}
		if b[n] != '\r' || b[n+1] != '\n' {
			return nil, fmt.Errorf("rediskv: invalid reply: bulk string of %d bytes not ended by CRLF", n)
		}
		// b is never written again: the string shares it, as go-redis's do.
		return unsafe.String(unsafe.SliceData(b), n), nil
	case '*':
		n, err := parseInt(line)
		switch {
		case err != nil:
			return nil, err
		case n == -1:
			return nil, redis.Nil
		case n < 0:
			return nil, fmt.Errorf("rediskv: invalid reply: %.100q", line)
		}
		// Grown as the elements arrive: a corrupt count allocates nothing.
		vals := make([]any, 0, min(n, 64))
		for range n {
			v, err := readReply(br)
			switch {
			case err == redis.Nil:
				v = nil
			case isReply(err):
				v = err
			case err != nil:
				return nil, err
			}
			vals = append(vals, v)
		}
		return vals, nil
	}
	return nil, fmt.Errorf("rediskv: invalid reply: %.100q", line)
}

// readLine returns the next line without its CRLF (at least one byte),
// valid until the next read from br.
func readLine(br *bufio.Reader) ([]byte, error) {
	b, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		long := append([]byte(nil), b...)
		b, err = br.ReadBytes('\n')
		b = append(long, b...)
	}
	if err != nil {
		return nil, err
	}
	if len(b) < 3 || b[len(b)-2] != '\r' {
		return nil, fmt.Errorf("rediskv: invalid reply: %.100q", b)
	}
	return b[:len(b)-2], nil
}

// parseInt parses the number after a line's type byte.
func parseInt(line []byte) (int64, error) {
	b := line[1:]
	neg := len(b) > 1 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, fmt.Errorf("rediskv: invalid reply: %.100q", line)
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("rediskv: invalid reply: %.100q", line)
		}
		n = n*10 + uint64(c-'0')
	}
	switch {
	case neg && n <= 1<<63:
		return -int64(n), nil
	case !neg && n < 1<<63:
		return int64(n), nil
	}
	return 0, fmt.Errorf("rediskv: invalid reply: %.100q", line)
}

// appendCall appends c as one command: Args, or the script as EVALSHA (EVAL
// with its source if eval, or if the script has no hash).
func appendCall(buf []byte, c *Call, eval bool) ([]byte, error) {
	if c.Script == nil {
		if len(c.Args) == 0 {
			return buf, errors.New("rediskv: a call without a command")
		}
		buf = appendLen(buf, '*', len(c.Args))
		return appendArgs(buf, c.Args)
	}
	buf = appendLen(buf, '*', 3+len(c.Keys)+len(c.Args))
	if hash := c.Script.Hash(); !eval && hash != "" {
		buf = appendBulk(buf, "EVALSHA")
		buf = appendBulk(buf, hash)
	} else {
		buf = appendBulk(buf, "EVAL")
		buf = appendBulk(buf, scriptSource(c.Script))
	}
	buf = appendBulkInt(buf, int64(len(c.Keys)))
	for _, k := range c.Keys {
		buf = appendBulk(buf, k)
	}
	return appendArgs(buf, c.Args)
}

// appendArgs appends args as bulk strings, as go-redis writes them
// (proto.Writer.WriteArg), for the types a Call carries.
func appendArgs(buf []byte, args []any) ([]byte, error) {
	for _, a := range args {
		switch v := a.(type) {
		case string:
			buf = appendBulk(buf, v)
		case []byte:
			buf = appendBulk(buf, v)
		case nil:
			buf = appendBulk(buf, "")
		case int:
			buf = appendBulkInt(buf, int64(v))
		case int8:
			buf = appendBulkInt(buf, int64(v))
		case int16:
			buf = appendBulkInt(buf, int64(v))
		case int32:
			buf = appendBulkInt(buf, int64(v))
		case int64:
			buf = appendBulkInt(buf, v)
		case uint:
			buf = appendBulkUint(buf, uint64(v))
		case uint8:
			buf = appendBulkUint(buf, uint64(v))
		case uint16:
			buf = appendBulkUint(buf, uint64(v))
		case uint32:
			buf = appendBulkUint(buf, uint64(v))
		case uint64:
			buf = appendBulkUint(buf, v)
		case float32:
			buf = appendBulkFloat(buf, float64(v))
		case float64:
			buf = appendBulkFloat(buf, v)
		case bool:
			if v {
				buf = appendBulk(buf, "1")
			} else {
				buf = appendBulk(buf, "0")
			}
		case time.Duration:
			buf = appendBulkInt(buf, v.Nanoseconds())
		case time.Time:
			buf = appendBulk(buf, v.Format(time.RFC3339Nano))
		case encoding.BinaryMarshaler:
			b, err := v.MarshalBinary()
			if err != nil {
				return buf, err
			}
			buf = appendBulk(buf, b)
		default:
			return buf, fmt.Errorf("rediskv: can't marshal %T", v)
		}
	}
	return buf, nil
}

func appendLen(buf []byte, kind byte, n int) []byte {
	buf = append(buf, kind)
	buf = strconv.AppendInt(buf, int64(n), 10)
	return append(buf, '\r', '\n')
}

func appendBulk[T string | []byte](buf []byte, s T) []byte {
	buf = appendLen(buf, '$', len(s))
	buf = append(buf, s...)
	return append(buf, '\r', '\n')
}

func appendBulkInt(buf []byte, n int64) []byte {
	var d [20]byte
	return appendBulk(buf, strconv.AppendInt(d[:0], n, 10))
}

func appendBulkUint(buf []byte, n uint64) []byte {
	var d [20]byte
	return appendBulk(buf, strconv.AppendUint(d[:0], n, 10))
}

func appendBulkFloat(buf []byte, f float64) []byte {
	var d [32]byte
	return appendBulk(buf, strconv.AppendFloat(d[:0], f, 'f', -1, 64))
}

// sources caches scriptSource's answers.
var sources sync.Map // *redis.Script → string

// scriptSource returns a script's source, which go-redis keeps to itself
// but hands to a Scripter's Eval.
func scriptSource(s *redis.Script) string {
	if src, ok := sources.Load(s); ok {
		return src.(string)
	}
	var c sourceCatcher
	s.Eval(context.Background(), &c, nil)
	sources.Store(s, c.src)
	return c.src
}

// sourceCatcher is a Scripter that records the source it is asked to run.
type sourceCatcher struct{ src string }

func (c *sourceCatcher) Eval(ctx context.Context, script string, _ []string, _ ...any) *redis.Cmd {
	c.src = script
	return redis.NewCmd(ctx)
}

func (c *sourceCatcher) EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return c.Eval(ctx, script, keys, args...)
}

func (*sourceCatcher) EvalSha(ctx context.Context, _ string, _ []string, _ ...any) *redis.Cmd {
	return redis.NewCmd(ctx)
}

func (*sourceCatcher) EvalShaRO(ctx context.Context, _ string, _ []string, _ ...any) *redis.Cmd {
	return redis.NewCmd(ctx)
}

func (*sourceCatcher) ScriptExists(ctx context.Context, _ ...string) *redis.BoolSliceCmd {
	return redis.NewBoolSliceCmd(ctx)
}

func (*sourceCatcher) ScriptLoad(ctx context.Context, _ string) *redis.StringCmd {
	return redis.NewStringCmd(ctx)
}
