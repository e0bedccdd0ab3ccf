package signalbridge

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// ClientOptions configures a Client. The zero value is usable.
type ClientOptions struct {
	// Logger receives protocol warnings; nil discards. A "component" attribute is added.
	Logger *slog.Logger
	// MaxLineBytes caps one incoming line (default DefaultMaxLineBytes). A longer line is
	// discarded and logged; the connection stays usable, and a reply lost that way ends at
	// its caller's context deadline.
	MaxLineBytes int
	// CallTimeout bounds a call whose context has no deadline (0: no bound). Calls never
	// hang forever on a wedged daemon when this is set.
	CallTimeout time.Duration
	// OnEvent receives incoming events (after SubscribeReceive) in arrival order, from one
	// goroutine owned by the Client. It may block without stalling replies: events queue up
	// in memory meanwhile, up to EventQueueHigh (see there). It must not call Close.
	OnEvent func(Event)
	// EventQueueHigh bounds the events waiting for OnEvent (default DefaultEventQueueHigh).
	// When that many wait, the Client pauses receiving: it unsubscribes the subscription made
	// with SubscribeReceive, so that signal-cli stops pulling messages and they wait on the
	// Signal server. Events already on the wire are still queued (never dropped), so the
	// queue can overshoot the mark by what signal-cli wrote before the unsubscribe took effect.
	EventQueueHigh int
	// EventQueueLow: once the queue has drained to this many, the Client subscribes again
	// (default EventQueueHigh/2).
	EventQueueLow int

	// Set by the Supervisor.
	onReply       func(method string, err error)
	onSend        func([]SendResult)
	onChallengeOK func()
	events        *eventQueue // a queue shared across connections; nil: the Client owns one
}

// Client is one JSON-RPC connection to signal-cli (Unix socket, TCP or stdio). It is safe for
// concurrent use: calls are pipelined and replies matched by id in any order. A Client does not
// reconnect; when the connection breaks Done is closed and every call fails. Use Supervisor
// for a connection that comes back.
type Client struct {
	rwc     io.ReadWriteCloser
	log     *slog.Logger
	maxLine int
	opts    ClientOptions

	wmu sync.Mutex // serializes writes: one request line at a time

	dlMu    sync.Mutex // guards wgen/wactive (see write)
	wgen    uint64
	wactive uint64

	mu      sync.Mutex
	pending map[uint64]chan reply
	closed  bool
	err     error // why the connection ended

	nextID atomic.Uint64
	done   chan struct{} // closed when the connection is gone
	wg     sync.WaitGroup

	q    *eventQueue // nil without OnEvent
	ownQ bool        // q is this Client's: drained by its goroutine, closed with it
	flow flowState
}

type reply struct {
	result json.RawMessage
	err    *wireError
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// Dial connects to a signal-cli daemon: network "unix" (address = socket path) or "tcp"
// (host:port). The context bounds the connect only.
func Dial(ctx context.Context, network, address string, opts ClientOptions) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, fmt.Errorf("signalbridge: dial %s %s: %w", network, address, err)
	}
	return NewClient(conn, opts), nil
}

// NewClient runs the protocol over an established connection (for example the stdin/stdout
// pipes of `signal-cli jsonRpc`). The Client owns rwc and closes it.
func NewClient(rwc io.ReadWriteCloser, opts ClientOptions) *Client {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	max := opts.MaxLineBytes
	if max <= 0 {
		max = DefaultMaxLineBytes
	}
	c := &Client{
		rwc:     rwc,
		log:     log.With("component", "signalbridge.client"),
		maxLine: max,
		opts:    opts,
		pending: make(map[uint64]chan reply),
		done:    make(chan struct{}),
	}
	c.flow.init()
	c.q = opts.events
	if c.q == nil && opts.OnEvent != nil {
		c.q, c.ownQ = newEventQueue(opts.OnEvent, opts.EventQueueHigh, opts.EventQueueLow), true
	}
	c.wg.Add(1)
	go c.readLoop()
	if c.ownQ {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.q.run()
		}()
	}
	if c.q != nil {
		c.wg.Add(1)
		go c.flowLoop()
	}
	return c
}

// Done is closed when the connection has ended (Close, EOF, read error).
func (c *Client) Done() <-chan struct{} { return c.done }

// Err tells why the connection ended (wrapping ErrClosed or ErrConnectionLost); nil while open.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the connection and waits for the Client's goroutines. Calls in flight fail with
// ErrOutcomeUnknown; queued events are still handed to OnEvent first (unless the queue belongs
// to a Supervisor, which hands them over across restarts).
func (c *Client) Close() error {
	c.shutdown(ErrClosed)
	c.wg.Wait()
	return nil
}

func (c *Client) shutdown(cause error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.err = cause
	c.mu.Unlock()
	_ = c.rwc.Close()
}

// Call sends one request and waits for its reply, or for ctx to end. params is marshalled to
// a JSON object (nil leaves it out); result, if non-nil, receives the decoded result.
//
// Errors: *RPCError for an error reply; *CallError when there was no reply — with Written
// false the request never left (safe to retry), with Written true the outcome is unknown
// (errors.Is(err, ErrOutcomeUnknown)) and the cause is the context error or ErrConnectionLost.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	raw, err := c.call(ctx, method, params)
	if err != nil {
		return err
	}
	if result != nil {
		if err := json.Unmarshal(raw, result); err != nil {
			return fmt.Errorf("signalbridge: %s: decode result: %w", method, err)
		}
	}
	return nil
}

func (c *Client) call(ctx context.Context, method string, params any) (json.RawMessage, error) {
	if c.opts.CallTimeout > 0 {
		if _, has := ctx.Deadline(); !has {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, c.opts.CallTimeout)
			defer cancel()
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, &CallError{Method: method, Err: err}
	}
	id := c.nextID.Add(1)
	bp := bufPool.Get().(*[]byte)
	line, err := appendRequest((*bp)[:0], method, id, params)
	if err != nil {
		*bp = line[:0]
		bufPool.Put(bp)
		return nil, fmt.Errorf("signalbridge: %s: encode request: %w", method, err)
	}

	// Register the waiter before writing (reference pitfall 7.2).
	ch := make(chan reply, 1)
	c.mu.Lock()
	if c.closed {
		cause := c.err
		c.mu.Unlock()
		bufPool.Put(bp)
		return nil, &CallError{Method: method, Err: cause}
	}
	c.pending[id] = ch
	c.mu.Unlock()

	n, werr := c.write(ctx, line)
	*bp = line[:0]
	bufPool.Put(bp)
	if werr != nil {
		c.forget(id)
		// A partial line corrupts the framing; a blocked write means a daemon that stopped
		// reading. Either way this connection is done.
		c.shutdown(fmt.Errorf("%w: write: %v", ErrConnectionLost, werr))
		if errors.Is(werr, context.Canceled) || errors.Is(werr, context.DeadlineExceeded) {
			return nil, &CallError{Method: method, Written: n > 0, Err: werr}
		}
		return nil, &CallError{Method: method, Written: n > 0, Err: fmt.Errorf("%w: %v", ErrConnectionLost, werr)}
	}

	select {
	case r := <-ch:
		return c.finish(method, r)
	case <-ctx.Done():
		c.forget(id)
		select { // the reply may have raced the deadline
		case r := <-ch:
			return c.finish(method, r)
		default:
		}
		return nil, &CallError{Method: method, Written: true, Err: ctx.Err()}
	case <-c.done:
		select {
		case r := <-ch:
			return c.finish(method, r)
		default:
		}
		c.forget(id)
		return nil, &CallError{Method: method, Written: true, Err: c.Err()}
	}
}

func (c *Client) finish(method string, r reply) (json.RawMessage, error) {
	var err error
	if r.err != nil {
		err = &RPCError{Method: method, Code: r.err.Code, Message: r.err.Message, Data: r.err.Data}
	}
	if hook := c.opts.onReply; hook != nil {
		hook(method, err)
	}
	return r.result, err
}

func (c *Client) forget(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// pendingCount is for tests: calls waiting for a reply.
func (c *Client) pendingCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

type deadliner interface{ SetWriteDeadline(time.Time) error }

// write sends one line. The write deadline follows ctx when the transport supports it; a
// cancellation interrupts a blocked write by moving the deadline into the past. The
// generation check keeps a late cancellation from hitting the next caller's write.
func (c *Client) write(ctx context.Context, line []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if dl, ok := c.rwc.(deadliner); ok {
		d, _ := ctx.Deadline() // zero: no deadline
		_ = dl.SetWriteDeadline(d)
		if ctx.Done() != nil {
			c.dlMu.Lock()
			c.wgen++
			gen := c.wgen
			c.wactive = gen
			c.dlMu.Unlock()
			stop := context.AfterFunc(ctx, func() {
				c.dlMu.Lock()
				if c.wactive == gen {
					_ = dl.SetWriteDeadline(time.Unix(1, 0))
				}
				c.dlMu.Unlock()
			})
			defer func() {
				stop()
				c.dlMu.Lock()
				c.wactive = 0
				c.dlMu.Unlock()
			}()
		}
	}
	n, err := c.rwc.Write(line)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		} else if _, has := ctx.Deadline(); has && errors.Is(err, os.ErrDeadlineExceeded) {
			err = context.DeadlineExceeded // the socket deadline fired a moment before ctx's timer
		}
	}
	return n, err
}

func (c *Client) readLoop() {
	defer c.wg.Done()
	br := bufio.NewReaderSize(c.rwc, 64<<10)
	var long []byte
	var cause error
	for {
		line, err := readLine(br, c.maxLine, &long)
		if errors.Is(err, errLineTooLong) {
			c.log.Warn("discarded oversized line from signal-cli", "max_bytes", c.maxLine)
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				cause = fmt.Errorf("%w: EOF", ErrConnectionLost)
			} else {
				cause = fmt.Errorf("%w: %v", ErrConnectionLost, err)
			}
			break
		}
		c.handleLine(line)
	}
	c.shutdown(cause)
	close(c.done)
	if c.ownQ {
		c.q.close() // hand over what is queued, then stop
	}
}

func (c *Client) handleLine(line []byte) {
	f, err := decodeLine(line)
	if err != nil {
		c.log.Warn("ignored line from signal-cli", "err", err)
		return
	}
	switch f.kind {
	case frameResponse, frameBatch:
		for i := range f.msgs {
			c.deliver(&f.msgs[i])
		}
	case frameNotification:
		if c.q == nil {
			return
		}
		m := &f.msgs[0]
		ev, err := decodeNotification(m.Method, m.Params)
		if err != nil {
			c.log.Warn("undecodable notification from signal-cli", "method", m.Method, "err", err)
			return
		}
		if ev != nil {
			c.q.push(ev) // never blocks, never drops; flowLoop pauses receiving when it fills
		}
	}
}

func (c *Client) deliver(m *wireMessage) {
	id, ok := parseID(m.ID)
	if !ok {
		// id:null errors answer a line the server could not parse; nothing to match.
		if m.Error != nil {
			c.log.Warn("unmatched error from signal-cli", "code", m.Error.Code, "message", m.Error.Message)
		} else {
			c.log.Warn("reply with an id we never sent", "id", string(m.ID))
		}
		return
	}
	c.mu.Lock()
	ch, found := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if !found {
		return // the caller gave up (deadline) already
	}
	ch <- reply{result: m.Result, err: m.Error}
}
