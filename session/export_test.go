package session

import "context"

// IndexLen is the number of sessions user's index lists, pruned or not,
// as m's Store serves it (tests only).
func IndexLen(m *Manager, ctx context.Context, user string) (int, error) {
	vs, err := m.versioned()
	if err != nil {
		return 0, err
	}
	ix, _, err := m.readIndex(ctx, vs, user)
	return len(ix.Sessions), err
}
