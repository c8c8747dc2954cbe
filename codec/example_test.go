package codec_test

import (
	"context"
	"fmt"
	"time"

	"github.com/tierstore/tierstore/codec"
	"github.com/tierstore/tierstore/l1"
)

func ExampleTyped() {
	type Session struct {
		UserID int64
		Roles  []string
	}
	store, _ := l1.New(l1.Config{}) // or l2.New, tiered.New: any tierstore.Store
	defer store.Close()

	sessions := codec.Typed[Session]{Store: store} // msgpack unless Codec is set
	ctx := context.Background()
	_ = sessions.Set(ctx, "abc123", Session{UserID: 42, Roles: []string{"admin"}}, time.Now().Add(time.Hour))
	s, err := sessions.Get(ctx, "abc123")
	fmt.Println(s.UserID, s.Roles, err)
	// Output: 42 [admin] <nil>
}
