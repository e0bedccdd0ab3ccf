package mqtt

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shopkit/relay/relay/backoff"
)

// Config is the broker connection (config [mqtt]).
type Config struct {
	Broker      string
	ClientID    string
	TopicPrefix string
	Username    string
	Password    string
	TLS         *tls.Config // nil: plain TCP unless the URL says ssl/tls
	// OnStoreError, if set, hears when a received message could not be stored (err) and when
	// messages are stored again after that (nil): the outbox's health.
	OnStoreError func(err error)
	// StoreFailPause is how long the client waits after a store failure before it reconnects
	// for the redelivery, and after the spool failed (Peek or Remove) before it tries again on
	// the same connection; default 5s.
	StoreFailPause time.Duration
	KeepAlive      time.Duration
	MaxReconnect   time.Duration
	// WriteTimeout is paho's: how long one packet's write to the socket may take, and how long
	// Publish waits for paho's writer to take a packet; default 10s. The moment a connection is
	// lost paho may still take a Publish and hold it this long before relay reconnects (the
	// drain checks for the loss between publishes, which makes that rare).
	WriteTimeout time.Duration
	// AckTimeout is how long the oldest message in flight (an event, the status) may wait for
	// the broker's PUBACK before the connection is made again; default 60s. A broker that
	// answers pings but has stopped acknowledging would otherwise stall the drain for good.
	AckTimeout time.Duration
}

// Handler takes what arrives on P/jobs and P/consent.
//
// SubmitJob is called on paho's single delivery goroutine, in arrival order; it must not block
// on disk: it validates and enqueues, and returns a wait function whose nil result means
// "durable, acknowledge". This keeps one customer's jobs in publish order while many jobs share
// one synced write.
type Handler interface {
	SubmitJob(ctx context.Context, payload []byte, redelivered bool) (wait func() error)
	HandleConsent(ctx context.Context, payload []byte) error
}

// Spool is the durable queue of outbound messages (events, inbound, consent events), drained in
// order; an item is removed only after the broker acknowledged it. PeekAfter returns up to n
// items with Seq > after, from the head on.
type Spool interface {
	PeekAfter(after uint64, n int) ([]Item, error)
	Remove(ctx context.Context, upto uint64) error
}

// Item is one spooled outbound message: Topic is relative to the prefix ("events", "inbound").
//
// A Spool returns every record it holds, also one it cannot decode: that one comes with Err set
// (SpooledItem does this). The client does not publish it; it logs it as an error, counts it
// (Client.Skipped) and removes it in order with its neighbours, so the messages behind it flow.
// A Spool that left such records out instead would stall the drain once a whole Peek of them sits
// at the head: Peek would return nothing while they stay there.
type Item struct {
	Seq     uint64
	Topic   string
	Payload []byte
	Err     error // the record could not be decoded: skip and remove it
}

// ErrBadItem is wrapped by every error about a spooled record that cannot be decoded.
var ErrBadItem = errors.New("mqtt: unreadable spool item")

// Client is relay's MQTT side: subscribe, acknowledge jobs after they are durable, drain the
// spool, keep the retained status.
//
// Each connection is a fresh paho client with automatic reconnection off; Run reconnects with
// backoff itself. That is deliberate: paho's own reconnect resends its in-flight publishes from
// its store while a publish that was blocked at the moment of the loss goes out first on the new
// connection, so events could overtake each other. With one client per connection, nothing is
// resent behind relay's back: after a loss the publisher starts again from the first item the
// spool still holds (at least once, always in order). The broker keeps the session (clean
// session off), so jobs published while the box was away are delivered on the next connection.
type Client struct {
	cfg     Config
	handler Handler
	spool   Spool
	log     *slog.Logger

	connected atomic.Bool
	wake      chan struct{} // spool has new items, or the status changed
	ctx       context.Context

	statusMu sync.Mutex
	status   []byte // latest status payload (retained)
	statusV  uint64 // version of status
	sentV    uint64 // version acknowledged by the broker on this connection

	acked   atomic.Int64
	skipped atomic.Int64 // unreadable spool items skipped (Item.Err)
	// skippedUpTo is the highest skipped seq already logged and counted, so a batch that is
	// peeked again after a failed publish does not count its bad items twice. Only the Run
	// goroutine (flush) touches it.
	skippedUpTo uint64
	// The drain (Run goroutine only). flying are the spooled items published on this connection
	// and not yet acknowledged, in spool order; after is the last seq published or skipped on it.
	// removeDue is the seq up to which the broker acknowledged items that are not removed yet
	// (0: none), dueSince how many of them; spoolFailing says the spool failed on the last try.
	flying       []inflight
	flyingBytes  int
	itemSize     int // the size of the last item peeked: how many more fit the window, about
	after        uint64
	removeDue    uint64
	dueSince     int
	spoolFailing bool
	onState      func(connected bool, reason string)

	// acks carries each received message, in arrival order, to the one goroutine that waits for
	// it to be stored and then acknowledges it: PUBACKs go out in the order the messages came
	// (MQTT 3.1.1 §4.6), and a message that could not be stored stops nothing behind it.
	acks      chan pendingAck
	storeFail chan error // a message could not be stored: drop the connection (see serve)
}

type pendingAck struct {
	m    paho.Message
	wait func() error
}

// Topic names (contract v1).
const (
	TopicJobs    = "jobs"
	TopicConsent = "consent"
	TopicEvents  = "events"
	TopicInbound = "inbound"
	TopicStatus  = "status"
)

// OfflineStatus is the last will: the broker publishes it when the box vanishes.
var OfflineStatus = []byte(`{"state":"offline"}`)

// The spool drain keeps up to window items published and not yet acknowledged, and tops the
// window up as PUBACKs come back instead of waiting for a whole batch: a broker that holds a
// PUBACK back would otherwise stall every batch. Mosquitto does by default (Nagle's algorithm
// keeps the last PUBACK of a burst until the box's delayed TCP ACK, up to 40 ms): waiting for
// batches of 128, the drain managed 2,200 events/s against it (relay/bench, BenchmarkIngest).
// The window is topped up once refill items fit (or it is empty), so a Peek reads many items,
// not one per PUBACK; acknowledged items are removed in runs of removeEvery (one durable write)
// and whenever nothing is in flight.
//
// The window is also bounded in bytes, so what is in flight fits the socket's buffers: a Publish
// does not wait behind a slow uplink (paho fails one it cannot hand to its writer within
// WriteTimeout, and the connection is made again), and a reconnect publishes little again.
// windowBytes per round trip is ample for a shop.
const (
	window      = 512
	refill      = 64
	removeEvery = 256
	windowBytes = 48 << 10
)

// inflight is one published spool item; tok is nil for an unreadable item, which is done as soon
// as everything before it is.
type inflight struct {
	seq  uint64
	tok  paho.Token
	size int       // bytes it takes in the connection's buffer, about
	at   time.Time // when it was published
}

// finalStatusWait bounds how long a stop waits to say goodbye to the broker.
const finalStatusWait = 2 * time.Second

// New returns a client; Run connects and serves. onState (may be nil) hears connection changes
// for the health roll-up.
func New(cfg Config, h Handler, spool Spool, log *slog.Logger, onState func(connected bool, reason string)) *Client {
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 30 * time.Second
	}
	if cfg.MaxReconnect <= 0 {
		cfg.MaxReconnect = 30 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = time.Minute
	}
	if cfg.StoreFailPause <= 0 {
		cfg.StoreFailPause = 5 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if onState == nil {
		onState = func(bool, string) {}
	}
	return &Client{cfg: cfg, handler: h, spool: spool, log: log.With("component", "mqtt"),
		wake: make(chan struct{}, 1), onState: onState,
		acks: make(chan pendingAck, 1024), storeFail: make(chan error, 1)}
}

func (c *Client) topic(t string) string { return c.cfg.TopicPrefix + "/" + t }

// Notify tells the publisher the spool has new items.
func (c *Client) Notify() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// SetStatus sets the retained status payload; it is published now if connected, else on connect.
func (c *Client) SetStatus(payload []byte) {
	c.statusMu.Lock()
	c.status = payload
	c.statusV++
	c.statusMu.Unlock()
	c.Notify()
}

// Connected reports whether the broker connection is up (connected and subscribed).
func (c *Client) Connected() bool { return c.connected.Load() }

// Acked counts jobs and consent records acknowledged to the broker.
func (c *Client) Acked() int64 { return c.acked.Load() }

// Skipped counts spooled records that could not be decoded and were dropped unpublished.
func (c *Client) Skipped() int64 { return c.skipped.Load() }

// Run connects (retrying with backoff until the broker answers), subscribes and publishes until
// ctx is cancelled. On the way out it publishes the final status (the caller sets it, e.g.
// shutting_down), then the offline status, and disconnects cleanly.
func (c *Client) Run(ctx context.Context) error {
	c.ctx = ctx
	ackStop, ackDone := make(chan struct{}), make(chan struct{})
	go c.acker(ackStop, ackDone)
	stopAcker := sync.OnceFunc(func() { close(ackStop); <-ackDone })
	defer stopAcker()
	failures := 0
	for {
		cl, lost, err := c.connect(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			failures++
			wait := backoff.Delay(failures-1, 250*time.Millisecond, c.cfg.MaxReconnect, rand.Float64())
			if failures == 1 || failures%10 == 0 {
				c.log.Warn("broker not reachable; retrying", "broker", c.cfg.Broker, "err", err, "failures", failures, "next_in", wait.Round(time.Millisecond))
			}
			c.onState(false, err.Error())
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
			continue
		}
		failures = 0
		c.log.Info("connected to the broker", "broker", c.cfg.Broker)
		c.connected.Store(true)
		c.onState(true, "")
		err = c.serve(ctx, cl, lost)
		c.connected.Store(false)
		if ctx.Err() != nil {
			stopAcker() // acknowledge what is stored while the connection is still up
			c.shutdown(cl)
			return nil
		}
		cl.Disconnect(0)
		c.settle(ctx)
		c.log.Warn("broker connection lost; reconnecting", "err", err)
		c.onState(false, err.Error())
	}
}

// connect makes one connection with a fresh paho client and subscribes. lost is closed when
// that connection is gone.
func (c *Client) connect(ctx context.Context) (paho.Client, <-chan struct{}, error) {
	lost := make(chan struct{})
	var once sync.Once
	var lostErr atomic.Value
	opts := paho.NewClientOptions().
		AddBroker(c.cfg.Broker).
		SetClientID(c.cfg.ClientID).
		SetCleanSession(false).
		SetAutoAckDisabled(true).
		SetOrderMatters(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetKeepAlive(c.cfg.KeepAlive).
		SetPingTimeout(10*time.Second).
		SetWriteTimeout(c.cfg.WriteTimeout).
		SetConnectTimeout(10*time.Second).
		SetWill(c.topic(TopicStatus), string(OfflineStatus), 1, true).
		SetDefaultPublishHandler(c.onMessage).
		SetCustomOpenConnectionFn(Dial).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			lostErr.Store(err)
			once.Do(func() { close(lost) })
		})
	if c.cfg.Username != "" {
		opts.SetUsername(c.cfg.Username).SetPassword(c.cfg.Password)
	}
	if c.cfg.TLS != nil {
		opts.SetTLSConfig(c.cfg.TLS)
	}
	cl := paho.NewClient(opts)
	if err := wait(ctx, cl.Connect()); err != nil {
		cl.Disconnect(0)
		return nil, nil, fmt.Errorf("connect %s: %w", c.cfg.Broker, err)
	}
	// Messages of a resumed session may arrive before the SUBACK: the default handler takes
	// them. On a brand-new session the broker keeps nothing until the subscription exists, so
	// the connection counts as up only after the SUBACK.
	subs := map[string]byte{c.topic(TopicJobs): 1, c.topic(TopicConsent): 1}
	if err := wait(ctx, cl.SubscribeMultiple(subs, nil)); err != nil {
		cl.Disconnect(0)
		return nil, nil, fmt.Errorf("subscribe: %w", err)
	}
	return cl, lost, nil
}

// wait waits for a paho token or ctx.
func wait(ctx context.Context, tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// onMessage runs on paho's delivery goroutine (OrderMatters), in arrival order. A job is only
// submitted here (validated and enqueued; the disk write is shared with other jobs); a consent
// record is applied here, before anything that arrives after it (a marketing job right after an
// opt_in must see the opt_in). Acknowledging is the acker's.
func (c *Client) onMessage(_ paho.Client, m paho.Message) {
	ctx := c.ctx
	var wait func() error
	switch m.Topic() {
	case c.topic(TopicJobs):
		wait = c.handler.SubmitJob(ctx, m.Payload(), m.Duplicate())
	case c.topic(TopicConsent):
		err := c.handler.HandleConsent(ctx, m.Payload())
		wait = func() error { return err }
	default:
		c.log.Warn("message on an unexpected topic acknowledged and ignored", "topic", m.Topic())
		wait = func() error { return nil }
	}
	select {
	case c.acks <- pendingAck{m, wait}:
	case <-ctx.Done(): // stopping: not acknowledged, redelivered after the next start
	}
}

// acker acknowledges messages in arrival order once they are stored. A message that could not
// be stored is not acknowledged; the broker keeps it in its (small) in-flight window and
// redelivers it only on a new connection, so the connection is dropped (serve) and made again
// after a backoff. Dedup by job id makes the redelivery of what was stored harmless.
func (c *Client) acker(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	failing := false
	handle := func(a pendingAck) {
		if err := a.wait(); err != nil {
			c.log.Error("message not stored; not acknowledging, reconnecting for redelivery", "topic", a.m.Topic(), "err", err)
			if !failing && c.cfg.OnStoreError != nil {
				c.cfg.OnStoreError(err)
			}
			failing = true
			select {
			case c.storeFail <- err:
			default:
			}
			return
		}
		if failing && c.cfg.OnStoreError != nil {
			c.cfg.OnStoreError(nil)
		}
		failing = false
		a.m.Ack()
		c.acked.Add(1)
	}
	for {
		select {
		case a := <-c.acks:
			handle(a)
		case <-stop:
			for { // what already arrived is finished, not dropped
				select {
				case a := <-c.acks:
					handle(a)
				default:
					return
				}
			}
		}
	}
}

// serve publishes the status and drains the spool until ctx ends or the connection is lost.
func (c *Client) serve(ctx context.Context, cl paho.Client, lost <-chan struct{}) error {
	c.statusMu.Lock()
	c.sentV = 0 // say the status again on every connection: the will may have replaced it
	c.statusMu.Unlock()
	// A new connection publishes from the first item the broker has not acknowledged.
	c.flying, c.flyingBytes, c.after = nil, 0, c.removeDue
	stuck := time.NewTimer(c.cfg.AckTimeout)
	defer stuck.Stop()
	for {
		acked, err := c.flush(ctx, cl, lost)
		var serr *spoolError
		if errors.As(err, &serr) {
			// The database, not the broker, failed: keep the connection (jobs are still
			// received and acknowledged; the status stays true), and try again after a pause.
			if !c.spoolFailing {
				c.log.Error("spool not readable or not writable; retrying, outbound messages wait", "err", serr.err)
			}
			c.spoolFailing = true
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-lost:
				return errors.New("connection lost")
			case <-time.After(c.cfg.StoreFailPause):
			}
			continue
		}
		if err != nil {
			return err
		}
		if c.spoolFailing {
			c.log.Info("spool works again")
			c.spoolFailing = false
		}
		var stalled <-chan time.Time
		if acked != nil {
			stuck.Reset(time.Until(c.flying[0].at.Add(c.cfg.AckTimeout)))
			stalled = stuck.C
		}
		select {
		case <-stalled:
			return fmt.Errorf("the broker has not acknowledged a message for %v; reconnecting", c.cfg.AckTimeout)
		case <-acked:
		case <-ctx.Done():
			return ctx.Err()
		case <-lost:
			return errors.New("connection lost")
		case err := <-c.storeFail:
			// Unacknowledged messages stay in the broker's in-flight window until the next
			// connection: make one, after a pause so a failing disk is not hammered.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(c.cfg.StoreFailPause):
			}
			return fmt.Errorf("a received message could not be stored (%v); reconnecting so the broker redelivers it", err)
		case <-c.wake:
		}
	}
}

// flush publishes the status if it changed, collects the PUBACKs that came back, removes what
// is acknowledged when a run of it is due, and tops up the window from the spool. acked is closed
// when the oldest item in flight is acknowledged; nil when nothing is in flight (the spool is
// drained until the next Notify).
func (c *Client) flush(ctx context.Context, cl paho.Client, lost <-chan struct{}) (acked <-chan struct{}, err error) {
	c.statusMu.Lock()
	status, v := c.status, c.statusV
	pending := status != nil && v != c.sentV
	c.statusMu.Unlock()
	if pending {
		sctx, cancel := context.WithTimeout(ctx, c.cfg.AckTimeout)
		err := await(sctx, lost, cl.Publish(c.topic(TopicStatus), 1, true, status))
		cancel()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, fmt.Errorf("status: the broker has not acknowledged it for %v; reconnecting", c.cfg.AckTimeout)
		}
		if err != nil {
			return nil, fmt.Errorf("status: %w", err)
		}
		c.statusMu.Lock()
		c.sentV = v
		c.statusMu.Unlock()
	}
	if c.spool == nil {
		return nil, nil
	}
	for {
		if err := c.collect(); err != nil {
			return nil, err
		}
		if c.removeDue != 0 && (len(c.flying) == 0 || c.dueSince >= removeEvery) {
			if err := c.remove(ctx); err != nil {
				return nil, err
			}
		}
		room := window - len(c.flying)
		if len(c.flying) > 0 && (room < refill || windowBytes-c.flyingBytes < windowBytes/4) {
			break
		}
		// Read about what fits in bytes (refill until an item's size is known), not every item
		// the window's count allows only to drop most of them again.
		fits := refill
		if c.itemSize > 0 {
			fits = (windowBytes-c.flyingBytes)/c.itemSize + 1
		}
		room = min(room, fits)
		items, err := c.spool.PeekAfter(c.after, room)
		if err != nil {
			return nil, &spoolError{err}
		}
		if len(items) == 0 {
			break
		}
		var bad []Item
		full := false
		for _, it := range items {
			select {
			case <-lost: // paho would hold each Publish for WriteTimeout
				return nil, errors.New("connection lost")
			default:
			}
			f := inflight{seq: it.Seq, size: packetSize(c.topic(it.Topic), it.Payload)}
			c.itemSize = f.size
			if len(c.flying) > 0 && c.flyingBytes+f.size > windowBytes {
				full = true
				break
			}
			if it.Err != nil {
				bad = append(bad, it)
			} else {
				f.tok, f.at = cl.Publish(c.topic(it.Topic), 1, false, it.Payload), time.Now()
				// A Publish paho could not hand to its writer within WriteTimeout (a broker that
				// stopped reading) fails here, unsent, while the next one may go out once the
				// broker reads again: stop, so nothing overtakes it. The connection ends; the
				// next one starts after the last acknowledged item.
				if done(f.tok) && f.tok.Error() != nil {
					c.reportSkipped(bad)
					return nil, f.tok.Error()
				}
			}
			c.flying = append(c.flying, f)
			c.flyingBytes += f.size
			c.after = it.Seq
		}
		c.reportSkipped(bad)
		if full {
			// Wait for the oldest publish in flight: collect drops the unreadable items in
			// front of it (they have none to wait for). If that empties the window, the item
			// that did not fit goes out alone.
			if err := c.collect(); err != nil {
				return nil, err
			}
			if len(c.flying) > 0 {
				break
			}
		}
	}
	if len(c.flying) == 0 {
		return nil, nil
	}
	return c.flying[0].tok.Done(), nil
}

// packetSize is about the bytes a QoS 1 PUBLISH of payload to topic takes on the wire.
func packetSize(topic string, payload []byte) int { return 9 + len(topic) + len(payload) }

// done reports whether tok has completed.
func done(tok paho.Token) bool {
	select {
	case <-tok.Done():
		return true
	default:
		return false
	}
}

// collect moves the acknowledged items at the front of the window to removeDue. A publish that
// failed ends the connection: its item and everything after it go out again on the next one.
func (c *Client) collect() error {
	n := 0
	for _, f := range c.flying {
		if f.tok != nil {
			select {
			case <-f.tok.Done():
			default:
				c.flying = c.flying[n:]
				return nil
			}
			if err := f.tok.Error(); err != nil {
				c.flying = c.flying[n:]
				return err
			}
		}
		c.removeDue = f.seq
		c.dueSince++
		c.flyingBytes -= f.size
		n++
	}
	c.flying = c.flying[:0]
	return nil
}

// remove removes what the broker acknowledged from the spool. It runs even when ctx was
// cancelled: what the broker has must not be published again on the next start. If it fails,
// removeDue stays, and the next connection starts after it all the same.
func (c *Client) remove(ctx context.Context) error {
	if err := c.spool.Remove(context.WithoutCancel(ctx), c.removeDue); err != nil {
		return &spoolError{err}
	}
	c.removeDue, c.dueSince = 0, 0
	return nil
}

// settle collects the PUBACKs already in and removes what they acknowledge, when a connection
// ends; a failure is logged (the spool keeps the items, removeDue keeps them from going out again
// while relay runs).
func (c *Client) settle(ctx context.Context) {
	_ = c.collect()
	if c.removeDue != 0 {
		if err := c.remove(ctx); err != nil {
			c.log.Warn("acknowledged messages not removed from the spool", "upto", c.removeDue, "err", err)
		}
	}
}

// reportSkipped logs unreadable spool items (one error line per batch, naming each seq) and
// counts them, once each even when their batch is peeked again.
func (c *Client) reportSkipped(bad []Item) {
	var seqs []uint64
	var first error
	for _, it := range bad {
		if it.Seq <= c.skippedUpTo {
			continue
		}
		c.skippedUpTo = it.Seq
		seqs = append(seqs, it.Seq)
		if first == nil {
			first = it.Err
		}
	}
	if len(seqs) == 0 {
		return
	}
	total := c.skipped.Add(int64(len(seqs)))
	c.log.Error("spooled MQTT messages unreadable; dropped without publishing, the ones behind them go on",
		"count", len(seqs), "seqs", seqs, "err", first, "skipped_total", total)
}

// spoolError is a failure of the spool (the database), as opposed to the broker connection.
type spoolError struct{ err error }

func (e *spoolError) Error() string { return "spool: " + e.err.Error() }
func (e *spoolError) Unwrap() error { return e.err }

// await waits for a QoS 1 publish to be acknowledged, the connection to be lost, or ctx.
func await(ctx context.Context, lost <-chan struct{}, tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-lost:
		return errors.New("connection lost before PUBACK")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// shutdown publishes what is pending, the final status and then the offline status, and
// disconnects cleanly (a clean disconnect does not fire the will, so relay says offline itself).
func (c *Client) shutdown(cl paho.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), finalStatusWait)
	defer cancel()
	never := make(chan struct{})
drain:
	for {
		acked, err := c.flush(ctx, cl, never)
		if err != nil {
			c.log.Warn("final publish failed; the spool keeps the rest for the next start", "err", err)
			break
		}
		if acked == nil {
			break
		}
		select {
		case <-acked:
		case <-ctx.Done():
			c.log.Warn("final publish not acknowledged in time; the spool keeps the rest for the next start", "in_flight", len(c.flying))
			break drain
		}
	}
	c.settle(ctx)
	if err := await(ctx, never, cl.Publish(c.topic(TopicStatus), 1, true, OfflineStatus)); err != nil {
		c.log.Warn("offline status not acknowledged", "err", err)
	}
	cl.Disconnect(500)
}

// EncodeItem and DecodeItem are the spool's record format: the topic and the payload.
func EncodeItem(topic string, payload []byte) []byte {
	b, _ := json.Marshal(struct {
		T string          `json:"t"`
		P json.RawMessage `json:"p"`
	}{topic, payload})
	return b
}

// DecodeItem reads what EncodeItem wrote. The topic must be a publishable topic name (a record
// naming a wildcard topic would make the broker drop the connection, again on every retry) and
// the payload a JSON object (contract v1). Errors wrap ErrBadItem.
func DecodeItem(b []byte) (topic string, payload []byte, err error) {
	var v struct {
		T string          `json:"t"`
		P json.RawMessage `json:"p"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrBadItem, err)
	}
	if err := checkTopic(v.T); err != nil {
		return "", nil, fmt.Errorf("%w: topic %q: %v", ErrBadItem, truncate(v.T, 64), err)
	}
	if len(v.P) == 0 || v.P[0] != '{' {
		return "", nil, fmt.Errorf("%w: payload is not a JSON object", ErrBadItem)
	}
	return v.T, v.P, nil
}

// SpooledItem decodes one spool record (EncodeItem's format) stored at seq. A record that
// cannot be decoded comes back with Err set, for the client to skip and remove: a Spool's Peek
// returns it rather than leaving it out.
func SpooledItem(seq uint64, record []byte) Item {
	topic, payload, err := DecodeItem(record)
	if err != nil {
		return Item{Seq: seq, Err: fmt.Errorf("seq %d: %w", seq, err)}
	}
	return Item{Seq: seq, Topic: topic, Payload: payload}
}

// checkTopic accepts a topic name (relative to the prefix) that a publish may use.
func checkTopic(t string) error {
	switch {
	case t == "":
		return errors.New("empty")
	case len(t) > 1024:
		return errors.New("too long")
	case !utf8.ValidString(t):
		return errors.New("not UTF-8")
	case strings.ContainsAny(t, "+#\x00"):
		return errors.New("contains a wildcard or NUL")
	case strings.HasPrefix(t, "/") || strings.HasSuffix(t, "/"):
		return errors.New("starts or ends with /")
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
