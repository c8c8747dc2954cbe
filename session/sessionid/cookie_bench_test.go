package sessionid

import "testing"

// BenchmarkCookie is what reading a cookie costs on every request: its ID
// alone and ID with version.
func BenchmarkCookie(b *testing.B) {
	id := New()
	for _, c := range []struct{ name, value string }{{"id", id}, {"id+version", FormatCookie(id, 1<<51)}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, _, ok := ParseCookie(c.value); !ok {
					b.Fatal("refused")
				}
			}
		})
	}
}
