package rediskv

import (
	"bufio"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// readReply reads each kind of RESP2 reply as go-redis's Cmd holds it
// (see also TestPipeRepliesAsGoRedis), and takes anything else for a
// broken stream.
func TestReadReply(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want any
		err  error
	}{
		{"+OK\r\n", "OK", nil},
		{"+\r\n", "", nil},
		{":-9223372036854775808\r\n", int64(math.MinInt64), nil},
		{":9223372036854775807\r\n", int64(math.MaxInt64), nil},
		{"$0\r\n\r\n", "", nil},
		{"$4\r\na\r\nb\r\n", "a\r\nb", nil},
		{"$-1\r\n", nil, redis.Nil},
		{"*-1\r\n", nil, redis.Nil},
		{"*0\r\n", []any{}, nil},
		{"-ERR no\r\n", nil, replyError("ERR no")},
		{"*4\r\n$-1\r\n*-1\r\n-ERR x\r\n*1\r\n:1\r\n", []any{nil, nil, replyError("ERR x"), []any{int64(1)}}, nil},
		{"+" + strings.Repeat("x", 100) + "\r\n", strings.Repeat("x", 100), nil}, // longer than the buffer
	} {
		v, err := readReply(bufio.NewReaderSize(strings.NewReader(tc.in), 16))
		if !reflect.DeepEqual(v, tc.want) || err != tc.err {
			t.Errorf("readReply(%q) = %#v, %v; want %#v, %v", tc.in, v, err, tc.want, tc.err)
		}
	}
	for _, in := range []string{
		"", "?x\r\n", "+OK\n", "\r\n", "$3\r\nab\r\n", "$2\r\nabcd", ":12a\r\n", ":\r\n", ":-\r\n",
		":9223372036854775808\r\n", ":99999999999999999999\r\n", "$-2\r\n", "*-2\r\n", "$600000000\r\n",
		"*2\r\n:1\r\n", "*1\r\n?\r\n", "*3000000000\r\n",
	} {
		if v, err := readReply(bufio.NewReaderSize(strings.NewReader(in), 16)); err == nil || isReply(err) || !Broken(err) {
			t.Errorf("readReply(%q) = %#v, %v; want a broken stream's error", in, v, err)
		}
	}
}
