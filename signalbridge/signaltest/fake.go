package signaltest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Result types a script can give a recipient (the whole enum of 0.13.19, reference 3.3).
const (
	Success             = "SUCCESS"
	RateLimitFailure    = "RATE_LIMIT_FAILURE"
	NetworkFailure      = "NETWORK_FAILURE"
	UnregisteredFailure = "UNREGISTERED_FAILURE"
	InvalidPreKey       = "INVALID_PRE_KEY_FAILURE"
	IdentityFailure     = "IDENTITY_FAILURE"
)

// Outcome scripts what a send to one recipient yields.
type Outcome struct {
	Type string // one of the constants above; "" means Success
	// NullUUID writes recipientAddress.uuid as null (UNREGISTERED_FAILURE after a failed lookup).
	NullUUID bool
	// Token and RetryAfterSeconds make a RATE_LIMIT_FAILURE a proof-required (captcha)
	// challenge; 0.13.19 writes retryAfterSeconds only together with a token.
	Token             string
	RetryAfterSeconds int64
}

// Config describes the fake daemon. The zero value is a multi-account daemon with no accounts,
// in manual receive mode, that answers version "0.13.19".
type Config struct {
	// Accounts are the registered accounts (multi-account mode, no -a).
	Accounts []string
	// SingleAccount puts the fake in single-account mode (-a ACC); it must be in Accounts.
	SingleAccount string
	// ReceiveMode: "manual" (default), "on-start" or "on-connection".
	ReceiveMode string
	// Offline makes register, startLink and submitRateLimitChallenge fail as the real one does
	// without network (-3), startLink after about 0.6 s.
	Offline bool
	// Version reported by "version" (default "0.13.19").
	Version string
	// DeliveryReceiptAfter / ReadReceiptAfter: when > 0, each successful send is followed by a
	// delivery / read receipt from the recipient after that delay.
	DeliveryReceiptAfter time.Duration
	ReadReceiptAfter     time.Duration
	// VerificationCode accepted by verify after register (default "123456").
	VerificationCode string
	// Logger (nil discards).
	Logger *slog.Logger
	// Now is the clock for timestamps (default time.Now).
	Now func() time.Time
	// DeliveryInterval paces the receive loop: the time it takes to pull the next message from
	// the Signal server after one was delivered (0: as fast as the socket takes them). Inside a
	// testing/synctest bubble it makes delivery deterministic: the client reacts to each
	// message before the next one comes.
	DeliveryInterval time.Duration
}

// Sent records one send the fake handled (normalized recipient).
type Sent struct {
	Account, Recipient, Text string
	Attachments              []string
	Timestamp                int64
	Type                     string
}

// Fake is an in-process signal-cli daemon speaking the JSON-RPC line protocol of 0.13.19 on any
// number of listeners and connections. It is safe for concurrent use.
type Fake struct {
	cfg Config
	log *slog.Logger

	mu         sync.Mutex
	accounts   []string
	outcomes   map[string]Outcome
	delays     map[string]time.Duration
	closeOn    map[string]bool
	hang       bool
	hangAfter  int64 // -1: never
	answered   int64
	conns      map[*fconn]struct{}
	listeners  []net.Listener
	lastTS     map[string]int64
	sent       []Sent
	queued     map[string][][]byte // inner objects on the "Signal server", by account, in order
	calls      map[string]int      // requests per method
	connSeq    uint64
	profiles   map[string]map[string]string
	pendingReg map[string]bool
	linkURI    string
	challenges map[string]string // token -> account
	closed     bool

	subIDs  atomic.Int64 // one counter for the whole process (reference 1.5)
	wg      sync.WaitGroup
	closing chan struct{}

	// recvMu is held while a message is passed to the receivers and while a subscription is
	// removed (see receiveLoop). Lock order: recvMu before mu.
	recvMu    sync.Mutex
	recvWake  chan struct{}
	recvStart sync.Once
}

type fconn struct {
	rwc  io.ReadWriteCloser
	wmu  sync.Mutex
	subs map[int64]string // subscription id -> account filter ("" = all); guarded by Fake.mu
	auto bool             // automatically subscribed (on-start / on-connection): plain form 4.1a
	seq  uint64           // connection order, for a stable delivery order
	once sync.Once
}

func (c *fconn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.rwc.Write(b)
	return err
}

func (c *fconn) close() { c.once.Do(func() { _ = c.rwc.Close() }) }

// New returns a fake daemon; it serves nothing until Serve, ListenUnix, ListenTCP or ServeConn.
func New(cfg Config) *Fake {
	if cfg.Version == "" {
		cfg.Version = "0.13.19"
	}
	if cfg.ReceiveMode == "" {
		cfg.ReceiveMode = "manual"
	}
	if cfg.VerificationCode == "" {
		cfg.VerificationCode = "123456"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Fake{
		cfg: cfg, log: log.With("component", "signaltest.fake"),
		accounts: slices.Clone(cfg.Accounts), outcomes: map[string]Outcome{}, delays: map[string]time.Duration{},
		closeOn: map[string]bool{}, hangAfter: -1, conns: map[*fconn]struct{}{}, lastTS: map[string]int64{},
		queued: map[string][][]byte{}, profiles: map[string]map[string]string{}, pendingReg: map[string]bool{},
		challenges: map[string]string{}, closing: make(chan struct{}), calls: map[string]int{},
		recvWake: make(chan struct{}, 1),
	}
}

// ---- scripting and faults ----

// SetOutcome scripts the result of sends to recipient (E.164 as normalized, or uuid).
func (f *Fake) SetOutcome(recipient string, o Outcome) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o.Type == "" {
		o.Type = Success
	}
	f.outcomes[recipient] = o
}

// SetDelay delays every reply to method by d (replies then come out of order).
func (f *Fake) SetDelay(method string, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delays[method] = d
}

// CloseOn makes the fake close a connection as soon as it has read a request for method,
// without replying (the client's request was written; its outcome is unknown).
func (f *Fake) CloseOn(method string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closeOn[method] = on
}

// SetHang makes the fake stop (or resume) answering: requests are read and never answered,
// connections stay open, like a wedged JVM.
func (f *Fake) SetHang(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hang = on
}

// HangAfter makes the fake hang after it has answered n more requests.
func (f *Fake) HangAfter(n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hangAfter = f.answered + n
}

// DropConnections closes every client connection now (listeners stay).
func (f *Fake) DropConnections() {
	f.mu.Lock()
	cs := make([]*fconn, 0, len(f.conns))
	for c := range f.conns {
		cs = append(cs, c)
	}
	f.mu.Unlock()
	for _, c := range cs {
		c.close()
	}
}

// AddAccount registers an account (as verify or finishLink would).
func (f *Fake) AddAccount(acc string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Contains(f.accounts, acc) {
		f.accounts = append(f.accounts, acc)
	}
}

// Sent returns the sends handled so far.
func (f *Fake) Sent() []Sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

// Profile returns the last updateProfile params of an account.
func (f *Fake) Profile(account string) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.profiles[account]
}

// Subscribers counts active subscriptions (all connections).
func (f *Fake) Subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for c := range f.conns {
		n += len(c.subs)
	}
	return n
}

// Requests counts the requests for method the fake has read (answered or not).
func (f *Fake) Requests(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

// ---- serving ----

// ListenUnix serves on a new Unix socket at path. Like the real daemon it fails when the path
// exists (a stale socket: "Address already in use").
func (f *Fake) ListenUnix(path string) error {
	l, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	f.Serve(l)
	return nil
}

// ListenTCP serves on addr ("127.0.0.1:0" for a free port) and returns the bound address.
func (f *Fake) ListenTCP(addr string) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	f.Serve(l)
	return l.Addr().String(), nil
}

// Serve accepts connections on l until Close.
func (f *Fake) Serve(l net.Listener) {
	f.acceptLoop(l, func(conn net.Conn) { f.ServeConn(conn) })
}

// acceptLoop hands every connection accepted on l to serve, each in its own goroutine, until
// Close closes l; Close waits for the loop and for every serve.
func (f *Fake) acceptLoop(l net.Listener, serve func(net.Conn)) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		_ = l.Close()
		return
	}
	f.listeners = append(f.listeners, l)
	f.wg.Add(1)
	f.mu.Unlock()
	go func() {
		defer f.wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				serve(conn)
			}()
		}
	}()
}

// ServeConn runs the protocol on one connection (e.g. stdin/stdout for `jsonRpc`) until EOF or
// Close. In-flight replies are written before it returns, as the real one does on half-close.
func (f *Fake) ServeConn(rwc io.ReadWriteCloser) {
	c := &fconn{rwc: rwc, subs: map[int64]string{}}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		c.close()
		return
	}
	f.connSeq++
	c.seq = f.connSeq
	f.conns[c] = struct{}{}
	f.recvStart.Do(func() {
		f.wg.Add(1)
		go f.receiveLoop()
	})
	f.mu.Unlock()
	var inflight sync.WaitGroup
	defer func() {
		inflight.Wait()
		f.mu.Lock()
		delete(f.conns, c)
		f.mu.Unlock()
		c.close()
	}()
	if f.cfg.ReceiveMode != "manual" {
		f.mu.Lock()
		f.subIDs.Add(1) // the automatic subscription uses up an id
		c.auto = true
		f.mu.Unlock()
		f.kickReceive() // on-connection: messages that waited for a connection
	}
	sc := bufio.NewScanner(rwc)
	sc.Buffer(make([]byte, 0, 64<<10), 256<<20) // the real one has no limit
	sc.Split(splitJavaLines)
	for sc.Scan() {
		line := sc.Bytes()
		if !utf8.Valid(line) {
			// MalformedInputException ends the read loop; the connection is closed (reference 1.2).
			f.log.Debug("invalid UTF-8, closing connection")
			c.close()
			return
		}
		line = bytes.Clone(line)
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			f.handleLine(c, line)
		}()
	}
}

// splitJavaLines ends a line at \n, \r\n or a lone \r, like BufferedReader.readLine.
func splitJavaLines(data []byte, atEOF bool) (int, []byte, error) {
	for i, b := range data {
		switch b {
		case '\n':
			return i + 1, data[:i], nil
		case '\r':
			if i+1 < len(data) {
				if data[i+1] == '\n' {
					return i + 2, data[:i], nil
				}
				return i + 1, data[:i], nil
			}
			if atEOF {
				return i + 1, data[:i], nil
			}
			return 0, nil, nil // need one more byte to tell \r from \r\n
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// Close stops listening (the socket file is removed), closes every connection and waits.
func (f *Fake) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	close(f.closing)
	ls := f.listeners
	f.mu.Unlock()
	for _, l := range ls {
		_ = l.Close()
	}
	f.DropConnections()
	f.wg.Wait()
	return nil
}

// handleLine answers one request line (or batch) on c.
func (f *Fake) handleLine(c *fconn, line []byte) {
	out := f.process(c, line)
	if out == nil {
		return
	}
	f.mu.Lock()
	hung := f.hang || (f.hangAfter >= 0 && f.answered >= f.hangAfter)
	if !hung {
		f.answered++
	}
	f.mu.Unlock()
	if hung {
		return
	}
	_ = c.write(append(out, '\n'))
	f.kickReceive() // e.g. messages that waited for this subscribeReceive
}

var errCloseConn = errors.New("close connection")

func (f *Fake) process(c *fconn, line []byte) []byte {
	if len(bytes.TrimSpace(line)) == 0 {
		return replyLine(nil, nil, newErr(codeParse, "Empty input line"))
	}
	v, err := firstValue(line)
	if err != nil {
		return replyLine(nil, nil, newErr(codeParse, "%s", jacksonParseMessage(bytes.TrimSpace(line))))
	}
	switch v[0] {
	case '{':
		return f.request(c, v)
	case '[':
		var elems []json.RawMessage
		_ = json.Unmarshal(v, &elems)
		if len(elems) == 0 {
			return replyLine(nil, nil, newErr(codeInvalidRequest, "invalid request"))
		}
		replies := make([][]byte, len(elems))
		var wg sync.WaitGroup
		for i, e := range elems {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if e[0] != '{' {
					replies[i] = replyLine(nil, nil, newErr(codeInvalidRequest, "unexpected type: %s", jsonType(e)))
					return
				}
				replies[i] = f.request(c, e)
			}()
		}
		wg.Wait()
		var parts [][]byte
		for _, r := range replies {
			if r != nil {
				parts = append(parts, r)
			}
		}
		if len(parts) == 0 {
			return nil // a batch of notifications gets no reply at all
		}
		// Replies of a batch come in any order; reverse them so clients cannot rely on order.
		slices.Reverse(parts)
		return append(append([]byte{'['}, bytes.Join(parts, []byte{','})...), ']')
	}
	return replyLine(nil, nil, newErr(codeInvalidRequest, "unexpected type: %s", jsonType(v)))
}

var allowedTop = map[string]bool{"jsonrpc": true, "method": true, "params": true, "id": true}

// request handles one request object and returns its reply, or nil for a notification.
func (f *Fake) request(c *fconn, raw json.RawMessage) []byte {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return replyLine(nil, nil, newErr(codeInvalidRequest, "%v", err))
	}
	_, isResult := m["result"]
	if _, isError := m["error"]; isResult || isError {
		// A response to the server: ignored, whatever else the object holds (checked on 0.13.19).
		f.log.Debug("ignoring a response from the client")
		return nil
	}
	id, hasID := m["id"]
	if hasID && (id[0] == '{' || id[0] == '[') {
		// Checked on 0.13.19: Jackson rejects the whole request and the id cannot be echoed.
		return replyLine(nil, nil, newErr(codeInvalidRequest, "Problem deserializing property 'id' (expected type: [simple type, class com.fasterxml.jackson.databind.node.ValueNode]; actual type: `com.fasterxml.jackson.databind.node.%sNode`)", strings.Title(strings.ToLower(jsonType(id)))))
	}
	echo := id
	if !hasID {
		echo = nil
	}
	for k := range m {
		if !allowedTop[k] {
			// Checked on 0.13.19: the id is echoed for this one.
			return replyLine(echo, nil, newErr(codeInvalidRequest,
				"Unrecognized field \"%s\" (class org.asamk.signal.jsonrpc.JsonRpcRequest), not marked as ignorable (4 known properties: \"method\", \"id\", \"jsonrpc\", \"params\"])", k))
		}
	}
	if p, ok := m["params"]; ok && p[0] != '{' && p[0] != '[' && string(p) != "null" {
		// params must be a JSON container (checked on 0.13.19; the id is echoed).
		return replyLine(echo, nil, newErr(codeInvalidRequest, "Problem deserializing property 'params' (expected type: [simple type, class com.fasterxml.jackson.databind.node.ContainerNode<java.lang.Object>]; actual type: `com.fasterxml.jackson.databind.node.%sNode`)", strings.Title(strings.ToLower(jsonType(p)))))
	}
	var version, method string
	if v, ok := m["jsonrpc"]; ok {
		_ = json.Unmarshal(v, &version)
	}
	if version != "2.0" {
		return f.maybe(hasID, id, newErr(codeInvalidRequest, "only jsonrpc version 2.0 is supported"))
	}
	if v, ok := m["method"]; ok {
		if json.Unmarshal(v, &method) != nil && string(v) != "null" {
			return replyLine(nil, nil, newErr(codeInvalidRequest, "Cannot deserialize value of type `java.lang.String` from %s", jsonType(v)))
		}
	}
	if method == "" {
		return f.maybe(hasID, id, newErr(codeInvalidRequest, "method field must be set"))
	}
	f.mu.Lock()
	f.calls[method]++
	closeIt := f.closeOn[method]
	delay := f.delays[method]
	f.mu.Unlock()
	if closeIt {
		c.close()
		return nil
	}
	result, e := f.dispatch(c, method, m["params"])
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-f.closing:
			return nil
		}
	}
	if !hasID {
		return nil // notifications get no reply, errors included
	}
	return replyLine(id, result, e)
}

func (f *Fake) maybe(hasID bool, id json.RawMessage, e *rpcErr) []byte {
	if !hasID {
		return nil
	}
	return replyLine(id, nil, e)
}

// ---- identities ----

// UUIDFor is the ACI the fake gives a number (stable, derived from it).
func UUIDFor(number string) string {
	h := sha256.Sum256([]byte(number))
	return fmt.Sprintf("%x-%x-4%x-8%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])[:36]
}

func (f *Fake) nextTimestamp(account string) int64 {
	ts := f.cfg.Now().UnixMilli()
	if last := f.lastTS[account]; ts <= last {
		ts = last + 1 // the daemon waits 1 ms on a clash: unique per account
	}
	f.lastTS[account] = ts
	return ts
}
