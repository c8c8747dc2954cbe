package rediskv

import (
	"errors"
	"testing"

	"github.com/tierstore/tierstore"
)

func TestCheckVersionRefusesServersOlderThan70(t *testing.T) {
	for version, ok := range map[string]bool{
		"6.2.14": false, "6.0.0": false, "7.0.0": true, "7.0.15": true, "7.2.4": true, "8.0.0": true, "10.1": true, "": true,
	} {
		err := checkVersion("# Server\r\nredis_version:" + version + "\r\nredis_mode:standalone\r\n")
		if (err == nil) != ok || (err != nil && !errors.Is(err, tierstore.ErrRefused)) {
			t.Errorf("redis_version %q: %v, want accepted=%v (refusals wrap ErrRefused)", version, err, ok)
		}
	}
}
