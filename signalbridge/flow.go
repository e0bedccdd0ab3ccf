package signalbridge

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Flow control of the incoming stream (reviewer finding R6).
//
// The reader never blocks (replies must keep flowing, and OnEvent may itself call the Client),
// so the event queue is bounded at the source instead: with --receive-mode=manual a message is
// only pulled from the Signal server while a subscription is open. When the queue fills,
// flowLoop unsubscribes; when it has drained, it subscribes again. signal-cli removes the
// subscription under the same lock under which it passes a message to the subscribers
// (ManagerImpl.removeReceiveHandler / passReceivedMessageToHandlers in 0.13.19), so every
// notification of that subscription precedes the unsubscribe reply on the wire; the reader
// queues those too (the bounded overshoot).
//
// One caveat of the real daemon, from its source (ReceiveHelper, 0.13.19): a message that the
// receive thread has already acknowledged to the server but not yet passed to the subscribers
// when the last subscription ends is passed to nobody and deleted. So each pause can lose the
// one message in flight at that instant, as closing the connection can. Hysteresis
// (EventQueueLow) keeps pauses rare: one per EventQueueHigh-EventQueueLow events at most.

// flowRetry is the wait before a failed subscribe/unsubscribe for flow control is tried again.
const flowRetry = time.Second

// flowCallTimeout bounds one subscribe/unsubscribe for flow control when the Client has no
// CallTimeout.
const flowCallTimeout = 30 * time.Second

type flowState struct {
	sem  chan struct{} // capacity 1: one subscribe/unsubscribe at a time (caller's or flowLoop's)
	kick chan struct{} // capacity 1: the wish changed

	mu      sync.Mutex
	want    bool   // SubscribeReceive was called and not undone by UnsubscribeReceive
	account string // what it was called with
	active  bool   // a subscription is open at signal-cli
	id      int64
	failing bool // the last flow call failed (logged once per streak)
}

func (f *flowState) init() {
	f.sem = make(chan struct{}, 1)
	f.kick = make(chan struct{}, 1)
}

func (c *Client) kickFlow() {
	select {
	case c.flow.kick <- struct{}{}:
	default:
	}
}

func (c *Client) acquireFlow(ctx context.Context, method string) error {
	select {
	case c.flow.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return &CallError{Method: method, Err: ctx.Err()}
	case <-c.done:
		return &CallError{Method: method, Err: c.Err()}
	}
}

func (c *Client) releaseFlow() { <-c.flow.sem }

func (c *Client) subscribe(ctx context.Context, account string) (int64, error) {
	var id int64
	err := c.Call(ctx, "subscribeReceive", struct {
		Account string `json:"account,omitempty"`
	}{account}, &id)
	return id, err
}

func (c *Client) unsubscribe(ctx context.Context, account string, id int64) error {
	return c.Call(ctx, "unsubscribeReceive", struct {
		Account      string `json:"account,omitempty"`
		Subscription int64  `json:"subscription"`
	}{account, id}, nil)
}

// SubscribeReceive starts the incoming stream on this connection (daemon started with
// --receive-mode=manual); events go to ClientOptions.OnEvent. account "" covers all accounts.
// It returns the subscription id (one counter for the whole daemon).
//
// With OnEvent set, the Client keeps the stream within the event queue's bounds from then on:
// it unsubscribes while the queue is full and subscribes again (with a new id) once it has
// drained. EventStats tells whether receiving is paused.
func (c *Client) SubscribeReceive(ctx context.Context, account string) (int64, error) {
	if err := c.acquireFlow(ctx, "subscribeReceive"); err != nil {
		return 0, err
	}
	defer c.releaseFlow()
	id, err := c.subscribe(ctx, account)
	if err != nil {
		return 0, err
	}
	c.flow.mu.Lock()
	c.flow.want, c.flow.account, c.flow.active, c.flow.id = true, account, true, id
	c.flow.mu.Unlock()
	c.kickFlow() // a queue that is already full pauses it again at once
	return id, nil
}

// startReceiving is SubscribeReceive for a new connection of the Supervisor: while the shared
// queue is still full it does not subscribe (subscribed false) and leaves that to flowLoop,
// which subscribes once the queue has drained.
func (c *Client) startReceiving(ctx context.Context, account string) (subscribed bool, err error) {
	if c.q != nil {
		if paused, _ := c.q.state(); paused {
			c.flow.mu.Lock()
			c.flow.want, c.flow.account, c.flow.active = true, account, false
			c.flow.mu.Unlock()
			c.kickFlow()
			return false, nil
		}
	}
	if _, err := c.SubscribeReceive(ctx, account); err != nil {
		return false, err
	}
	return true, nil
}

// UnsubscribeReceive ends a subscription of this connection. Ending the subscription made with
// SubscribeReceive also ends flow control's wish to receive: it is not resumed.
func (c *Client) UnsubscribeReceive(ctx context.Context, account string, id int64) error {
	if err := c.acquireFlow(ctx, "unsubscribeReceive"); err != nil {
		return err
	}
	defer c.releaseFlow()
	c.flow.mu.Lock()
	mine := c.flow.want && c.flow.id == id
	open := c.flow.active
	if mine {
		c.flow.want, c.flow.active = false, false
	}
	c.flow.mu.Unlock()
	if mine && !open {
		// Flow control had already unsubscribed it (paused): the caller's wish is met.
		return nil
	}
	return c.unsubscribe(ctx, account, id)
}

// EventStats reports the incoming event queue (the zero value without OnEvent).
func (c *Client) EventStats() EventStats {
	if c.q == nil {
		return EventStats{}
	}
	return c.q.Stats()
}

// flowLoop makes the subscription follow the queue: unsubscribed while it is full, subscribed
// otherwise (when SubscribeReceive asked for one).
func (c *Client) flowLoop() {
	defer c.wg.Done()
	var retry <-chan time.Time
	for {
		paused, changed := c.q.state()
		if c.reconcile(paused) {
			retry = nil
		} else {
			retry = time.After(flowRetry)
		}
		select {
		case <-changed:
		case <-c.flow.kick:
		case <-retry:
		case <-c.done:
			return
		}
	}
}

// reconcile subscribes or unsubscribes once if the subscription does not match paused. It
// reports false when that failed (flowLoop tries again).
func (c *Client) reconcile(paused bool) bool {
	d := flowCallTimeout
	if c.opts.CallTimeout > 0 {
		d = c.opts.CallTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	c.flow.mu.Lock()
	need := c.flow.want && c.flow.active == paused
	c.flow.mu.Unlock()
	if !need {
		return true
	}
	if c.acquireFlow(ctx, "flow control") != nil {
		return false
	}
	defer c.releaseFlow()
	c.flow.mu.Lock()
	want, active, account, id := c.flow.want, c.flow.active, c.flow.account, c.flow.id
	c.flow.mu.Unlock()
	var err error
	switch {
	case want && paused && active:
		err = c.unsubscribe(ctx, account, id)
		var rpc *RPCError
		if errors.As(err, &rpc) && rpc.Code == -1 {
			err = nil // "Unknown subscription id": already gone (e.g. a failed write ended it)
		}
		if err == nil {
			c.flow.mu.Lock()
			c.flow.active = false
			c.flow.mu.Unlock()
			st := c.q.Stats()
			c.log.Warn("incoming paused: the event handler is behind; new messages wait at signal-cli",
				"queued", st.Queued, "high", c.q.high, "low", c.q.low)
		}
	case want && !paused && !active:
		var nid int64
		nid, err = c.subscribe(ctx, account)
		if err == nil {
			c.flow.mu.Lock()
			c.flow.active, c.flow.id = true, nid
			c.flow.mu.Unlock()
			c.log.Info("incoming resumed", "queued", c.q.Stats().Queued)
		}
	}
	c.flow.mu.Lock()
	first := err != nil && !c.flow.failing
	c.flow.failing = err != nil
	c.flow.mu.Unlock()
	if first {
		select {
		case <-c.done: // the connection ended: the Supervisor reports that
		default:
			c.log.Warn("incoming flow control failed; retrying", "err", err)
		}
	}
	return err == nil
}
