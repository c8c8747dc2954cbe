package check

import (
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
)

// local is a worker in this process.
type local struct{ w *worker }

func startLocal(l load) (member, error) {
	w, err := startWorker(l)
	if err != nil {
		return nil, err
	}
	w.run()
	return local{w}, nil
}

func (m local) probe(ctx context.Context) error { return m.w.probe(ctx) }
func (m local) setSlow(slow bool) error         { m.w.slow.Store(slow); return nil }
func (m local) pauseReads(p bool) error         { m.w.paused.Store(p); return nil }
func (m local) writeCold() error                { m.w.writeCold(); return nil }
func (m local) readFill(on bool) error          { m.w.readFill(on); return nil }
func (m local) state() (instState, error)       { return m.w.state(), nil }
func (m local) count() (int64, error)           { return m.w.count.Load(), nil }
func (m local) close()                          { m.w.close() }
func (m local) setOutside(on bool) error        { m.w.outside.Store(on); return nil }
func (m local) holdWrites(hold bool) error      { m.w.holdWrites(hold); return nil }
func (m local) deletedAll(start, end int64) error {
	m.w.deletedAll(start, end)
	return nil
}
func (m local) finish() (map[int][]Op, []Read, error) {
	ops, reads := m.w.finish()
	return ops, reads, nil
}

// The worker protocol: gob-encoded requests on the worker's stdin, one
// response each on its stdout. The first request carries the load.
type request struct {
	Kind       string // start, probe, slow, pause, cold, fill, state, count, outside, hold, deleted, finish
	Load       load
	Flag       bool
	Start, End int64
}

type response struct {
	Err   string
	State instState
	Count int64
	Ops   map[int][]Op
	Reads []Read
}

// process is a worker in another OS process.
type process struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	enc *gob.Encoder
	dec *gob.Decoder
	in  io.Closer
}

func startProcess(cmd *exec.Cmd, l load) (member, error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, enc: gob.NewEncoder(stdin), dec: gob.NewDecoder(stdout), in: stdin}
	if _, err := p.call(request{Kind: "start", Load: l}); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *process) call(req request) (response, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var resp response
	if err := p.enc.Encode(req); err != nil {
		return resp, fmt.Errorf("worker %s: %w", req.Kind, err)
	}
	if err := p.dec.Decode(&resp); err != nil {
		return resp, fmt.Errorf("worker %s: %w", req.Kind, err)
	}
	if resp.Err != "" {
		return resp, errors.New(resp.Err)
	}
	return resp, nil
}

func (p *process) probe(context.Context) error { _, err := p.call(request{Kind: "probe"}); return err }
func (p *process) setSlow(slow bool) error {
	_, err := p.call(request{Kind: "slow", Flag: slow})
	return err
}
func (p *process) pauseReads(pause bool) error {
	_, err := p.call(request{Kind: "pause", Flag: pause})
	return err
}
func (p *process) writeCold() error { _, err := p.call(request{Kind: "cold"}); return err }
func (p *process) readFill(on bool) error {
	_, err := p.call(request{Kind: "fill", Flag: on})
	return err
}
func (p *process) setOutside(on bool) error {
	_, err := p.call(request{Kind: "outside", Flag: on})
	return err
}
func (p *process) holdWrites(hold bool) error {
	_, err := p.call(request{Kind: "hold", Flag: hold})
	return err
}
func (p *process) deletedAll(start, end int64) error {
	_, err := p.call(request{Kind: "deleted", Start: start, End: end})
	return err
}
func (p *process) state() (instState, error) {
	r, err := p.call(request{Kind: "state"})
	return r.State, err
}
func (p *process) count() (int64, error) {
	r, err := p.call(request{Kind: "count"})
	return r.Count, err
}
func (p *process) finish() (map[int][]Op, []Read, error) {
	r, err := p.call(request{Kind: "finish"})
	return r.Ops, r.Reads, err
}

func (p *process) close() {
	p.in.Close()
	_ = p.cmd.Wait()
}

// ServeWorker runs one instance for a checker in another process, speaking
// the worker protocol on r and w (the process's stdin and stdout) until the
// checker asks it to finish. The check command's worker mode calls it.
func ServeWorker(ctx context.Context, r io.Reader, w io.Writer) error {
	dec, enc := gob.NewDecoder(r), gob.NewEncoder(w)
	var req request
	if err := dec.Decode(&req); err != nil || req.Kind != "start" {
		return fmt.Errorf("check worker: expected a start request: %v", err)
	}
	wk, err := startWorker(req.Load)
	if err != nil {
		_ = enc.Encode(response{Err: err.Error()})
		return err
	}
	defer wk.close()
	wk.run()
	if err := enc.Encode(response{}); err != nil {
		return err
	}
	for {
		var req request
		if err := dec.Decode(&req); err != nil {
			wk.finish()
			return err
		}
		var resp response
		switch req.Kind {
		case "probe":
			if err := wk.probe(ctx); err != nil {
				resp.Err = err.Error()
			}
		case "slow":
			wk.slow.Store(req.Flag)
		case "pause":
			wk.paused.Store(req.Flag)
		case "cold":
			wk.writeCold()
		case "fill":
			wk.readFill(req.Flag)
		case "outside":
			wk.outside.Store(req.Flag)
		case "hold":
			wk.holdWrites(req.Flag)
		case "deleted":
			wk.deletedAll(req.Start, req.End)
		case "state":
			resp.State = wk.state()
		case "count":
			resp.Count = wk.count.Load()
		case "finish":
			resp.Ops, resp.Reads = wk.finish()
			return enc.Encode(resp)
		default:
			resp.Err = "unknown request " + req.Kind
		}
		if err := enc.Encode(resp); err != nil {
			return err
		}
	}
}
