package rediskv

import (
	"strconv"
	"testing"
	"time"
)

func TestPXAT(t *testing.T) {
	if arg, past := pxat(time.Time{}); arg != "0" || past {
		t.Fatalf("pxat(zero) = %q, %v; want \"0\", false", arg, past)
	}
	future := time.Now().Add(time.Hour)
	if arg, past := pxat(future); arg != strconv.FormatInt(future.UnixMilli(), 10) || past {
		t.Fatalf("pxat(in an hour) = %q, %v; want %d, false", arg, past, future.UnixMilli())
	}
	for _, e := range []time.Time{time.Now().Add(-time.Millisecond), time.Unix(0, 0), time.Unix(-5, 0)} {
		if _, past := pxat(e); !past {
			t.Errorf("pxat(%v) is not past", e)
		}
	}
}
