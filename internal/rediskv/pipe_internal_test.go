package rediskv

import (
	"bufio"
	"context"
	"errors"
	"net"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tierstore/tierstore/internal/testenv/redistest"
)

// A Pipe whose loop the test runs: it sends the calls of one batch in
// order; after SCRIPT FLUSH each comes back NOSCRIPT, and the Pipe sends
// them again as EVAL in the same order.
func TestNoscriptResendsInOrder(t *testing.T) {
	srv := redistest.Start(t)
	client := NewConns().Client(&redis.Options{Addr: srv.Addr()}, nil)
	defer client.Close()
	p := newPipe(client, nil)
	defer p.disconnect()
	push := redis.NewScript(`return redis.call('RPUSH', KEYS[1], ARGV[1])`)
	srv.Do("SCRIPT", "FLUSH")
	b := batches.Get().(*batch)
	var answered atomic.Int32
	all := make(chan struct{})
	for _, c := range []Call{
		{Script: push, Keys: []string{"l"}, Args: []any{"a"}},
		{Args: []any{"RPUSH", "l", "-"}},
		{Script: push, Keys: []string{"l"}, Args: []any{"b"}},
		{Script: push, Keys: []string{"l"}, Args: []any{"c"}},
		{Args: []any{"RPUSH", "l", "-"}},
		{Script: push, Keys: []string{"l"}, Args: []any{"d"}},
	} {
		b.ops = append(b.ops, &op{call: c, reply: make(chan struct{}), done: func(*redis.Cmd) {
			if answered.Add(1) == 6 {
				close(all)
			}
		}})
	}
	ops := append([]*op(nil), b.ops...)
	p.send(b)
	for waiting := true; waiting; {
		select {
		case <-p.sess.retry:
			p.resend()
		case <-all:
			waiting = false
		}
	}
	for _, o := range ops {
		if err := o.cmd.Err(); err != nil {
			t.Errorf("%v: %v", o.call.Args, err)
		}
	}
	got, err := client.LRange(context.Background(), "l", 0, -1).Result()
	if want := []string{"-", "-", "a", "b", "c", "d"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("LRANGE l = %q, %v; want %q", got, err, want)
	}
}

// A reply the Pipe cannot parse breaks the connection: the call in flight
// fails, onLost runs, and the next call dials again.
func TestUnparseableReplyBreaks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var dials atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			dials.Add(1)
			go fakeRedis(c)
		}
	}()
	client := NewConns().Client(&redis.Options{Addr: ln.Addr().String(), MaxRetries: -1}, nil)
	defer client.Close()
	var lost atomic.Int32
	p := NewPipe(client, func(error) { lost.Add(1) })
	defer p.Close()
	ctx := context.Background()
	if s, err := p.Run(ctx, Call{Args: []any{"ECHO", "x"}}, func(*redis.Cmd) {}).Text(); s != "x" || err != nil {
		t.Fatalf("ECHO x = %q, %v", s, err)
	}
	if err := p.Run(ctx, Call{Args: []any{"GARBAGE"}}, func(*redis.Cmd) {}).Err(); err == nil || !Broken(err) {
		t.Fatalf("a call answered with garbage: %v, want a broken stream's error", err)
	}
	if lost.Load() != 1 {
		t.Fatalf("onLost called %d times, want 1", lost.Load())
	}
	if s, err := p.Run(ctx, Call{Args: []any{"ECHO", "y"}}, func(*redis.Cmd) {}).Text(); s != "y" || err != nil || dials.Load() != 2 {
		t.Fatalf("ECHO y = %q, %v after %d dials; want y on a second connection", s, err, dials.Load())
	}
}

// fakeRedis answers ECHO and PING with their argument, GARBAGE with bytes
// that are no reply, HELLO with nothing, CLIENT (the rest of go-redis's
// handshake) with OK, and anything else as an unknown command.
func fakeRedis(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		v, err := readReply(br)
		if err != nil {
			return
		}
		args, _ := v.([]any)
		name, _ := args[0].(string)
		var out string
		switch strings.ToUpper(name) {
		case "ECHO", "PING":
			arg, _ := args[len(args)-1].(string)
			out = string(appendBulk(nil, arg))
		case "GARBAGE":
			out = "?\r\n"
		case "HELLO":
			out = "*0\r\n"
		case "CLIENT", "SELECT", "AUTH":
			out = "+OK\r\n"
		default:
			out = "-ERR unknown command '" + name + "', with args beginning with: \r\n"
		}
		if _, err := c.Write([]byte(out)); err != nil {
			return
		}
	}
}

// A barrier that drain could not hand over (the session had broken) is
// never recycled as a batch, whose calls the reader would then drop.
func TestRefusedBarrierIsNotReused(t *testing.T) {
	srv := redistest.Start(t)
	client := NewConns().Client(&redis.Options{Addr: srv.Addr()}, nil)
	defer client.Close()
	p := newPipe(client, nil)
	defer p.disconnect()
	for range 20 {
		answered := make(chan struct{})
		b := batches.Get().(*batch)
		if b.barrier != nil {
			t.Fatal("a barrier came back from the pool as a batch")
		}
		b.ops = append(b.ops, &op{call: Call{Args: []any{"PING"}}, reply: make(chan struct{}), done: func(*redis.Cmd) { close(answered) }})
		p.send(b)
		<-answered
		p.sess.fail(errors.New("test: broken"))
		p.drain() // hands a barrier, or finds the session broken first
		if p.sess != nil {
			t.Fatal("drain left a broken session")
		}
	}
}
