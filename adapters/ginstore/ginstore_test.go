package ginstore_test

import (
	"net/http"
	"testing"

	"github.com/gin-contrib/sessions"
	"github.com/gin-contrib/sessions/tester"
	"github.com/gin-gonic/gin"

	"github.com/tierstore/tierstore"
	"github.com/tierstore/tierstore/adapters/ginstore"
	"github.com/tierstore/tierstore/internal/testenv/sessionsuite"
	"github.com/tierstore/tierstore/internal/testenv/tieredpair"
	"github.com/tierstore/tierstore/l1"
)

func init() { gin.SetMode(gin.TestMode) }

// gin-contrib/sessions' own conformance tests, on a tiered store over a
// real redis-server.
func TestGinContribConformance(t *testing.T) {
	p := tieredpair.Start(t, "conformance:")
	newStore := func(*testing.T) sessions.Store {
		s := ginstore.New(p.A)
		// The tests serve plain HTTP and read the cookie attributes
		// they set, from gin-contrib's defaults.
		s.Options(sessions.Options{Path: "/", MaxAge: 3600})
		return s
	}
	t.Run("GetSet", func(t *testing.T) { tester.GetSet(t, newStore) })
	t.Run("DeleteKey", func(t *testing.T) { tester.DeleteKey(t, newStore) })
	t.Run("Flashes", func(t *testing.T) { tester.Flashes(t, newStore) })
	t.Run("Clear", func(t *testing.T) { tester.Clear(t, newStore) })
	t.Run("Options", func(t *testing.T) { tester.Options(t, newStore) })
	t.Run("Many", func(t *testing.T) { tester.Many(t, newStore) })
}

// app serves sessionsuite's routes with gin-contrib/sessions on store.
func app(_ testing.TB, store tierstore.Store) http.Handler {
	r := gin.New()
	r.Use(sessions.Sessions("sid", ginstore.New(store)))
	save := func(c *gin.Context, s sessions.Session) {
		if err := s.Save(); err != nil {
			c.String(http.StatusInternalServerError, err.Error())
		}
	}
	r.POST("/login", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Set("user", "ada")
		save(c, s)
	})
	r.GET("/read", func(c *gin.Context) {
		s := sessions.Default(c)
		str := func(k string) string { v, _ := s.Get(k).(string); return v }
		c.String(http.StatusOK, str("user")+"|"+str("a")+"|"+str("b"))
	})
	r.POST("/write", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Get("user") // load
		sessionsuite.RunHook(c.GetHeader(sessionsuite.Hook))
		s.Set(c.Query("key"), sessionsuite.Value)
		save(c, s)
	})
	r.POST("/logout", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Options(sessions.Options{Path: "/", MaxAge: -1})
		save(c, s)
	})
	return r
}

// Two instances on one redis-server, through gin's router: gorillastore's
// guarantees hold under gin-contrib/sessions.
func TestTwoInstances(t *testing.T) {
	sessionsuite.Run(t, sessionsuite.Config{App: app, FinalLogout: true, KeepsBoth: true})
}

// Ended reports a save that found its session logged out, through gin's
// Session interface.
func TestEndedThroughGinSession(t *testing.T) {
	store, err := l1.New(l1.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	gs := ginstore.New(store)
	r := gin.New()
	r.Use(sessions.Sessions("sid", gs))
	var ended []bool
	r.POST("/write", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Get("user")
		if c.Query("logout") != "" { // another request logs out meanwhile
			if err := gs.Delete(c, s.ID()); err != nil {
				t.Error(err)
			}
		}
		s.Set("n", len(ended)) // a change: a save of an unchanged session writes nothing, and finds nothing
		if err := s.Save(); err != nil {
			t.Error(err)
		}
		ended = append(ended, ginstore.Ended(s))
	})
	u := sessionsuite.NewJar()
	sessionsuite.Send(r, "POST", "/write", u, "")
	sessionsuite.Send(r, "POST", "/write", u, "")
	sessionsuite.Send(r, "POST", "/write?logout=1", u, "")
	if want := []bool{false, false, true}; len(ended) != 3 || ended[0] != want[0] || ended[1] != want[1] || ended[2] != want[2] {
		t.Fatalf("Ended after a new session, a save, a save after a logout: %v, want %v", ended, want)
	}
}
