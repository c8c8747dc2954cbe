package nearcache

import "reflect"

// SetBacklog returns how many writes (fills, deletes, waits) ristretto
// holds in its set buffer, not applied yet: each fill there keeps its
// entry and value alive outside MaxBytes. It reads ristretto's
// unexported setBuf channel; -1 if a ristretto version has none.
func (s *Cache) SetBacklog() int {
	f := reflect.ValueOf(s.cache).Elem().FieldByName("setBuf")
	if !f.IsValid() || f.Kind() != reflect.Chan {
		return -1
	}
	return f.Len()
}
