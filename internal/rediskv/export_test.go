package rediskv

// OnWritten makes p call fn, on its goroutine, after each batch it has
// written, with the number of calls in it. Call it before any call.
func OnWritten(p *Pipe, fn func(calls int)) { p.written = fn }
