package modem

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Port is what the engine needs from a serial port. OpenSerial returns one whose errors are
// already translated (ErrTimeout, ErrPortGone); tests may pass any io.ReadWriteCloser.
type Port interface {
	io.ReadWriteCloser
}

// Engine runs AT commands over one port: one command at a time, a fixed deadline per command
// that no URC can extend, unsolicited result codes recognised at any moment (also between the
// lines of a reply) and delivered on URCs(), never mistaken for a reply.
//
// The engine owns one reader goroutine. When the port fails (unplug) the pending command fails
// at once with ErrPortGone, Done() is closed and Err() says why; the engine cannot be reused.
type Engine struct {
	port Port
	log  *slog.Logger
	urcs chan URC

	cmdMu sync.Mutex // one command at a time

	mu      sync.Mutex // guards cur and err
	cur     *pending
	err     error
	done    chan struct{}
	readerW sync.WaitGroup

	urcSeq   atomic.Int64 // URCs seen so far
	dropped  atomic.Int64 // URCs dropped because nobody read URCs()
	noise    atomic.Int64 // lines dropped as garbage or stray results
	commands atomic.Int64
}

// pending is the command in flight.
type pending struct {
	cmd      string   // as written, without CR
	echoes   []string // lines that are echoes of what we wrote
	prefixes []string // reply prefixes that belong to this command, e.g. "+CSQ:"
	lines    []string
	prompt   chan struct{} // closed when "> " arrives; nil when not expected
	final    chan error    // receives the final result (nil for OK)
	finished bool
}

// URCBuffer is how many URCs the engine holds for a slow consumer; beyond it they are dropped
// and counted (the modem's periodic storage drain recovers lost +CMTI).
const URCBuffer = 256

// NewEngine starts an engine on p. logger may be nil.
func NewEngine(p Port, logger *slog.Logger) *Engine {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{port: p, log: logger, urcs: make(chan URC, URCBuffer), done: make(chan struct{})}
	e.readerW.Add(1)
	go e.reader()
	return e
}

// URCs delivers unsolicited result codes in arrival order. It is never closed; select on Done.
func (e *Engine) URCs() <-chan URC { return e.urcs }

// Done is closed when the engine stops (port failure or Close).
func (e *Engine) Done() <-chan struct{} { return e.done }

// Err is why the engine stopped (ErrPortGone, ErrClosed), or nil while it runs.
func (e *Engine) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// Stats returns counters for health and tests: commands run, URCs dropped, noise lines dropped.
func (e *Engine) Stats() (commands, droppedURCs, noise int64) {
	return e.commands.Load(), e.dropped.Load(), e.noise.Load()
}

// Close closes the port and waits for the reader to stop. The pending command fails with ErrClosed.
func (e *Engine) Close() error {
	e.stop(ErrClosed)
	err := e.port.Close()
	e.readerW.Wait()
	return err
}

func (e *Engine) stop(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return
	}
	e.err = err
	close(e.done)
	if p := e.cur; p != nil && !p.finished {
		p.finished = true
		p.final <- err
	}
}

// Exec runs one command and returns its intermediate lines. prefixes name the reply lines that
// belong to the command (e.g. "+CREG:") so that a URC with the same prefix is told apart where
// the form allows; lines without a URC shape (IMEI digits, PDU hex) always belong to it.
// The deadline is fixed at timeout from the call; URCs do not extend it.
func (e *Engine) Exec(ctx context.Context, cmd string, timeout time.Duration, prefixes ...string) ([]string, error) {
	return e.exec(ctx, cmd, "", timeout, prefixes)
}

// ExecPDU runs a command that answers with the "> " prompt (AT+CMGS=<n>, AT+CMGW=<n>), then
// writes pdu (hex) and Ctrl-Z, and returns the intermediate lines. One deadline covers it all.
// When it fails after the PDU may have reached the modem (timeout, port gone, cancellation,
// close) the *CommandError has PDUWritten set and matches ErrOutcomeUnknown; a failure before
// that (no prompt, an error or a stray OK instead of it, a write that failed short of the
// Ctrl-Z) and an error answer after it (+CMS ERROR) do not.
func (e *Engine) ExecPDU(ctx context.Context, cmd, pdu string, timeout time.Duration, prefixes ...string) ([]string, error) {
	if pdu == "" {
		return nil, ErrInvalidInput
	}
	return e.exec(ctx, cmd, pdu, timeout, prefixes)
}

func (e *Engine) exec(ctx context.Context, cmd, pdu string, timeout time.Duration, prefixes []string) ([]string, error) {
	e.cmdMu.Lock()
	defer e.cmdMu.Unlock()
	if err := e.Err(); err != nil {
		return nil, &CommandError{Command: cmd, Err: err}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	p := &pending{cmd: cmd, echoes: []string{cmd}, prefixes: prefixes, final: make(chan error, 1)}
	if pdu != "" {
		p.prompt = make(chan struct{})
		p.echoes = append(p.echoes, pdu)
	}
	e.mu.Lock()
	e.cur = p
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.cur = nil
		e.mu.Unlock()
	}()
	e.commands.Add(1)

	// written: the PDU and its Ctrl-Z may have reached the modem, which may then act on it
	// (send the SMS) whatever happens to the command afterwards.
	written := false
	fail := func(err error) ([]string, error) {
		e.finish(p)
		return nil, &CommandError{Command: cmd, Err: err, PDUWritten: written}
	}
	if _, err := e.write(ctx, timer.C, cmd+"\r"); err != nil {
		return fail(err)
	}
	if pdu != "" {
		select {
		case <-p.prompt:
		case err := <-p.final: // e.g. +CMS ERROR instead of the prompt
			if err == nil { // a final OK without a prompt: a stray answer, the PDU was never asked for
				e.cancelPrompt()
				return fail(fmt.Errorf("%w: final result before the > prompt", ErrBadResponse))
			}
			return e.result(p, err, false)
		case <-timer.C:
			e.cancelPrompt()
			return fail(ErrTimeout)
		case <-ctx.Done():
			e.cancelPrompt()
			return fail(ctx.Err())
		}
		var err error
		if written, err = e.write(ctx, timer.C, pdu+"\x1a"); err != nil {
			return fail(err)
		}
	}
	select {
	case err := <-p.final:
		return e.result(p, err, written)
	case <-timer.C:
		return fail(ErrTimeout)
	case <-ctx.Done():
		return fail(ctx.Err())
	}
}

// cancelPrompt sends ESC, which aborts a pending PDU entry on every modem we know.
// It is written without waiting: the port has no write timeout and the command already failed.
func (e *Engine) cancelPrompt() { go func() { _, _ = e.port.Write([]byte{0x1b}) }() }

func (e *Engine) finish(p *pending) {
	e.mu.Lock()
	p.finished = true
	e.mu.Unlock()
}

// result turns the final result into the command's answer. A final error that is not the
// modem's own answer (the port went away, the engine was closed) after the PDU was written
// leaves the outcome unknown.
func (e *Engine) result(p *pending, err error, written bool) ([]string, error) {
	e.mu.Lock()
	lines := p.lines
	e.mu.Unlock()
	if err == nil {
		return lines, nil
	}
	var re *ResultError
	if errors.As(err, &re) {
		return lines, err
	}
	return lines, &CommandError{Command: p.cmd, Err: err, PDUWritten: written}
}

// write writes s; go.bug.st/serial has no write timeout, so a wedged write(2) is abandoned at the
// deadline (the goroutine ends when the kernel gives up or the port is closed; serialPort makes
// sure a write that starts after the close goes nowhere). reached reports whether all of s may
// have gone to the port: the write completed, or it was abandoned still running; a write that
// failed short of its last byte did not reach it.
func (e *Engine) write(ctx context.Context, deadline <-chan time.Time, s string) (reached bool, err error) {
	type res struct {
		n   int
		err error
	}
	done := make(chan res, 1)
	go func() {
		n, err := e.port.Write([]byte(s))
		done <- res{n, err}
	}()
	var abandon error
	select {
	case r := <-done:
		return e.wrote(r.n, r.err, s)
	case <-deadline:
		abandon = ErrTimeout
	case <-ctx.Done():
		abandon = ctx.Err()
	case <-e.done:
		abandon = e.Err()
	}
	select {
	case r := <-done: // it ended meanwhile: a failure of its own says more
		if r.err != nil {
			return e.wrote(r.n, r.err, s)
		}
	default: // still running: it may yet complete
	}
	return true, abandon
}

func (e *Engine) wrote(n int, err error, s string) (reached bool, _ error) {
	if err == nil {
		return true, nil
	}
	if errors.Is(err, ErrPortGone) || errors.Is(err, ErrClosed) {
		e.stop(err)
	}
	return n >= len(s), err
}

// reader reads the port until it fails and feeds what arrives to the line splitter.
func (e *Engine) reader() {
	defer e.readerW.Done()
	buf := make([]byte, 4096)
	var st readState
	for {
		n, err := e.port.Read(buf)
		if err != nil {
			if errors.Is(err, ErrTimeout) {
				continue
			}
			if !errors.Is(err, ErrClosed) && !errors.Is(err, ErrPortGone) {
				e.log.Warn("modem read failed", "err", err)
			}
			e.stop(ErrPortGone)
			return
		}
		e.feed(buf[:n], &st)
	}
}

// readState is the line splitter's state between reads.
type readState struct {
	line []byte
	cont *URC // a +CDS/+CMT URC waiting for its PDU line
}

// feed splits bytes into lines (CR, LF or both end a line) and routes each one; the "> "
// prompt, which has no line end, is recognised when a PDU command waits for it.
func (e *Engine) feed(b []byte, st *readState) {
	for _, c := range b {
		if c == '\r' || c == '\n' {
			if len(st.line) > 0 {
				st.cont = e.route(st.line, st.cont)
				st.line = st.line[:0]
			}
			continue
		}
		st.line = append(st.line, c)
	}
	if len(st.line) > 0 && st.line[0] == '>' && len(bytes.TrimSpace(st.line[1:])) == 0 {
		if e.promptArrived() {
			st.line = st.line[:0]
		}
	}
	if len(st.line) > 4096 { // no modem line is this long: noise
		e.noise.Add(1)
		st.line = st.line[:0]
	}
}

func (e *Engine) promptArrived() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.cur
	if p == nil || p.prompt == nil || p.finished {
		return false
	}
	select {
	case <-p.prompt:
		return false
	default:
		close(p.prompt)
		return true
	}
}

// route decides what one line is: echo, final result, reply line, URC or noise.
func (e *Engine) route(raw []byte, cont *URC) *URC {
	if !printable(raw) {
		e.noise.Add(1)
		return cont
	}
	line := strings.TrimSpace(string(raw))
	if line == "" {
		return cont
	}
	if line == ">" && e.promptArrived() { // prompt followed by a line end (or a URC)
		return cont
	}
	if cont != nil {
		if isHex(line) {
			cont.Data = line
			e.emit(*cont)
			return nil
		}
		e.emit(*cont) // PDU line missing: deliver what we have
		cont = nil
	}
	e.mu.Lock()
	p := e.cur
	if p != nil && p.finished {
		p = nil
	}
	if p != nil {
		for _, echo := range p.echoes {
			if line == echo {
				e.mu.Unlock()
				return nil
			}
		}
		if final, kind, code := parseFinal(line); final {
			p.finished = true
			var err error
			if kind != 0 {
				err = &ResultError{Command: p.cmd, Kind: kind, Code: code, Text: line}
			}
			p.final <- err
			e.mu.Unlock()
			return nil
		}
		if p.owns(line) {
			p.lines = append(p.lines, line)
			e.mu.Unlock()
			return nil
		}
	}
	e.mu.Unlock()
	if kind, ok := classifyURC(line); ok {
		u := URC{Kind: kind, Line: line}
		if kind.needsPDU() {
			return &u
		}
		e.emit(u)
		return nil
	}
	if p != nil {
		e.mu.Lock()
		p.lines = append(p.lines, line)
		e.mu.Unlock()
		return nil
	}
	// A line with no command pending: a late answer to a timed-out command or noise.
	e.noise.Add(1)
	e.log.Debug("modem: stray line", "line", line)
	return nil
}

// owns reports whether a line with a URC shape is in fact this command's reply.
func (p *pending) owns(line string) bool {
	for _, pre := range p.prefixes {
		if strings.HasPrefix(line, pre) {
			switch pre {
			case "+CREG:", "+CEREG:", "+CGREG:", "+C5GREG:":
				return isSolicitedReg(line)
			}
			return true
		}
	}
	return false
}

// URCSeq is the sequence number of the last URC received: a caller that has just (re)initialised
// the modem can ignore boot announcements that arrived before that point.
func (e *Engine) URCSeq() int64 { return e.urcSeq.Load() }

func (e *Engine) emit(u URC) {
	u.Seq = e.urcSeq.Add(1)
	select {
	case e.urcs <- u:
	default:
		e.dropped.Add(1)
	}
}
