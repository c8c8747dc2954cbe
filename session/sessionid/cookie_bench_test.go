package session

import "testing"

// BenchmarkCookie is what reading a cookie costs on every request: its ID
// alone (a cookie of before versions) and ID with version.
func BenchmarkCookie(b *testing.B) {
	id := NewID()
	for _, c := range []struct{ name, value string }{{"id", id}, {"id+version", formatCookie(id, 1<<51)}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, _, ok := parseCookie(c.value); !ok {
					b.Fatal("refused")
				}
			}
		})
	}
}
