package redisproc

import "slices"

// AddRestartArgs adds `--name value…` arguments to those the server was
// started with, for its next starts (Restart): for what a restart would
// otherwise lose, such as an ACL user (`--user name rules…`, which no
// append-only file keeps), so that it is there from the first connection
// the restarted server accepts, as with an ACL file. The running server
// is not changed. Arguments already present, in the same order, are not
// added again. Not safe to call during a Restart.
func (s *Server) AddRestartArgs(extra ...string) {
	for i := range s.args {
		if i+len(extra) <= len(s.args) && slices.Equal(s.args[i:i+len(extra)], extra) {
			return
		}
	}
	s.args = append(slices.Clip(s.args), extra...)
}
