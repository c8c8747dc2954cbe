package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/tierstore/tierstore/internal/testenv/redistest"
)

func TestWalkthroughOnMiniredis(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), "", "127.0.0.1:0", "127.0.0.1:0", false, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "not from memory") {
		t.Errorf("B's second read was not an L1 hit:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "device 2: GET B                          instance B: not logged in") {
		t.Fatalf("walk-through did not end with device 2 logged out:\n%s", out.String())
	}
}

func TestWalkthroughOnRealRedis(t *testing.T) {
	srv := redistest.Start(t)
	var out bytes.Buffer
	if err := run(context.Background(), srv.Addr(), "127.0.0.1:0", "127.0.0.1:0", false, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
}
