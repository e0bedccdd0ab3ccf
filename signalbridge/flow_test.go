package signalbridge_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shopkit/relay/signalbridge"
	"github.com/shopkit/relay/signalbridge/signaltest"
)

// blockingHandler records TextMessage texts in order; it blocks every call until release.
type blockingHandler struct {
	release chan struct{}
	got     chan string
}

func newBlockingHandler(n int) *blockingHandler {
	return &blockingHandler{release: make(chan struct{}), got: make(chan string, n+16)}
}

func (h *blockingHandler) handle(e signalbridge.Event) {
	<-h.release
	if m, ok := e.(*signalbridge.TextMessage); ok {
		h.got <- m.Text
	}
}

// nextWithin returns a next func for expectInOrder that waits for the handler's texts and gives
// up once d has passed in all.
func (h *blockingHandler) nextWithin(t testing.TB, d time.Duration) func() (string, bool) {
	timeout := time.NewTimer(d)
	t.Cleanup(func() { timeout.Stop() })
	return func() (string, bool) {
		select {
		case s := <-h.got:
			return s, true
		case <-timeout.C:
			return "", false
		}
	}
}

// expectInOrder reads n texts "m0".."m{n-1}" and fails on anything else (a loss, a duplicate or
// a reordering). next blocks for the next text or reports that none came.
func expectInOrder(t *testing.T, n int, next func() (string, bool)) {
	t.Helper()
	for i := 0; i < n; i++ {
		s, ok := next()
		if !ok {
			t.Fatalf("only %d of %d messages arrived", i, n)
		}
		if want := fmt.Sprintf("m%d", i); s != want {
			t.Fatalf("message %d is %q, want %q (lost, duplicated or reordered)", i, s, want)
		}
	}
}

// letTimePass advances the bubble's fake clock by d (every other goroutine is blocked meanwhile).
func letTimePass(d time.Duration) { <-time.After(d) }

// TestClient_backpressure runs the client against the in-process fake over a pipe inside a
// synctest bubble. The fake pulls one message per fake millisecond, so the client's reaction to
// each message (and its unsubscribe) completes before the next one: the bound is exact.
func TestClient_backpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const high, low, n = 20, 10, 300
		logs := &syncBuffer{}
		f := signaltest.New(signaltest.Config{Accounts: []string{acct}, DeliveryInterval: time.Millisecond})
		srv, cli := net.Pipe()
		served := make(chan struct{})
		go func() { defer close(served); f.ServeConn(srv) }()
		h := newBlockingHandler(n)
		c := signalbridge.NewClient(cli, signalbridge.ClientOptions{OnEvent: h.handle,
			EventQueueHigh: high, EventQueueLow: low,
			Logger: slog.New(slog.NewTextHandler(logs, nil))})
		defer func() {
			c.Close()
			f.Close()
			<-served
		}()
		ctx := context.Background()
		if _, err := c.SubscribeReceive(ctx, acct); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			f.InjectText(acct, alice, "", fmt.Sprintf("m%d", i))
		}
		letTimePass(time.Second) // far longer than delivering all n would take unpaused
		synctest.Wait()

		st := c.EventStats()
		// The handler holds one event; high more filled the queue; nothing came after the
		// unsubscribe reply.
		if !st.Paused || st.Pauses != 1 || st.Queued != high || st.MaxQueued != high {
			t.Fatalf("while the handler is blocked: %+v, want paused once with %d queued", st, high)
		}
		if got := f.Requests("unsubscribeReceive"); got != 1 {
			t.Errorf("unsubscribeReceive sent %d times, want 1", got)
		}
		if got := f.Subscribers(); got != 0 {
			t.Errorf("fake has %d subscribers while paused, want 0", got)
		}
		if got, want := f.Backlog(), n-high-1; got != want {
			t.Errorf("fake holds %d messages, want %d (the rest wait on the server)", got, want)
		}
		backlog := f.Backlog()
		letTimePass(time.Minute)
		if f.Backlog() != backlog {
			t.Fatalf("the fake delivered while unsubscribed")
		}

		close(h.release)
		expectInOrder(t, n, func() (string, bool) { return <-h.got, true })
		letTimePass(time.Second)
		synctest.Wait()
		select {
		case s := <-h.got:
			t.Fatalf("extra message %q after all %d", s, n)
		default:
		}
		st = c.EventStats()
		if st.Paused || st.Queued != 0 || st.Delivered != n || st.MaxQueued > high {
			t.Errorf("after release: %+v", st)
		}
		if f.Subscribers() != 1 || f.Backlog() != 0 {
			t.Errorf("after release: %d subscribers, %d held; want 1, 0", f.Subscribers(), f.Backlog())
		}
		if got := f.Requests("subscribeReceive"); got != int(st.Pauses)+1 {
			t.Errorf("subscribeReceive sent %d times for %d pauses", got, st.Pauses)
		}
		// Logged on change only: one line per pause and per resume.
		out := logs.String()
		if p, r := strings.Count(out, "incoming paused"), strings.Count(out, "incoming resumed"); p != int(st.Pauses) || r != int(st.Pauses) {
			t.Errorf("logged %d pauses and %d resumes for %d pauses:\n%s", p, r, st.Pauses, out)
		}
	})
}

// TestClient_backpressure_socket is the same over a real Unix socket at full speed: the
// overshoot is then what the fake wrote before the unsubscribe reached it, bounded but not exact.
func TestClient_backpressure_socket(t *testing.T) {
	checkNoLeaks(t)
	const high, low, n = 50, 10, 3000
	h := newBlockingHandler(n)
	f, c, _ := startFake(t, signaltest.Config{Accounts: []string{acct}},
		signalbridge.ClientOptions{OnEvent: h.handle, EventQueueHigh: high, EventQueueLow: low})
	ctx := ctxTimeout(t, 30*time.Second)
	if _, err := c.SubscribeReceive(ctx, acct); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		f.InjectText(acct, alice, "", fmt.Sprintf("m%d", i))
	}
	waitFor(t, 20*time.Second, "paused with messages held at the fake", func() bool {
		return c.EventStats().Paused && f.Subscribers() == 0 && f.Backlog() > 0
	})
	st := c.EventStats()
	t.Logf("paused: %+v, %d held at the fake (overshoot %d)", st, f.Backlog(), st.MaxQueued-high)
	if st.MaxQueued >= n/2 {
		t.Errorf("queue grew to %d of %d messages: not bounded", st.MaxQueued, n)
	}
	close(h.release)
	expectInOrder(t, n, h.nextWithin(t, 20*time.Second))
	waitFor(t, 10*time.Second, "resumed", func() bool { return !c.EventStats().Paused && f.Subscribers() == 1 })
	if st := c.EventStats(); st.Delivered != n {
		t.Errorf("delivered %d, want %d", st.Delivered, n)
	}
}

// TestClient_SubscribeReceive_whileFull: an explicit subscribe while the queue is still full is
// paused again at once; UnsubscribeReceive of the paused subscription ends the wish to resume.
func TestClient_SubscribeReceive_whileFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const high, n = 5, 30
		f := signaltest.New(signaltest.Config{Accounts: []string{acct}, DeliveryInterval: time.Millisecond})
		srv, cli := net.Pipe()
		served := make(chan struct{})
		go func() { defer close(served); f.ServeConn(srv) }()
		h := newBlockingHandler(n)
		c := signalbridge.NewClient(cli, signalbridge.ClientOptions{OnEvent: h.handle, EventQueueHigh: high})
		defer func() {
			c.Close()
			f.Close()
			<-served
		}()
		ctx := context.Background()
		id, err := c.SubscribeReceive(ctx, acct)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			f.InjectText(acct, alice, "", fmt.Sprintf("m%d", i))
		}
		letTimePass(time.Second)
		if f.Subscribers() != 0 || !c.EventStats().Paused {
			t.Fatalf("not paused: %d subscribers, %+v", f.Subscribers(), c.EventStats())
		}
		// The caller subscribes again by hand: flow control pauses it again at once.
		id2, err := c.SubscribeReceive(ctx, acct)
		if err != nil {
			t.Fatal(err)
		}
		letTimePass(time.Second)
		synctest.Wait()
		if f.Subscribers() != 0 || f.Requests("unsubscribeReceive") != 2 {
			t.Fatalf("a subscribe while full was not paused again: %d subscribers, %d unsubscribes",
				f.Subscribers(), f.Requests("unsubscribeReceive"))
		}
		// Unsubscribing the (paused) subscription: no call needed, and no resume later.
		if err := c.UnsubscribeReceive(ctx, acct, id2); err != nil {
			t.Fatalf("UnsubscribeReceive of the paused subscription: %v", err)
		}
		if id2 == id {
			t.Fatalf("subscription ids repeat: %d", id)
		}
		close(h.release)
		letTimePass(time.Second)
		synctest.Wait()
		if f.Subscribers() != 0 {
			t.Fatalf("resumed after UnsubscribeReceive: %d subscribers", f.Subscribers())
		}
		if got := c.EventStats(); got.Paused || got.Queued != 0 {
			t.Errorf("after drain: %+v", got)
		}
	})
}

// TestSupervisor_backpressureAcrossReconnect: the connection to signal-cli breaks while
// receiving is paused; the new connection must not subscribe while the queue is still full,
// and after the handler catches up every message arrives once, in order.
func TestSupervisor_backpressureAcrossReconnect(t *testing.T) {
	checkNoLeaks(t)
	const high, low, n = 10, 4, 2000
	f := signaltest.New(signaltest.Config{Accounts: []string{acct}})
	sock := filepath.Join(shortDir(t), "s")
	if err := f.ListenUnix(sock); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	h := newBlockingHandler(n)
	r := runSupervisor(t, signalbridge.SupervisorConfig{Network: "unix", Address: sock, Account: acct,
		OnEvent: h.handle, EventQueueHigh: high, EventQueueLow: low, ProbeInterval: time.Hour})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(h.release) }) }) // runs before Run is stopped: Run hands over everything first
	waitState(t, r.sup, 10*time.Second, signalbridge.StateUp, nil)
	for i := 0; i < n; i++ {
		f.InjectText(acct, alice, "", fmt.Sprintf("m%d", i))
	}
	waitFor(t, 10*time.Second, "paused", func() bool {
		return r.sup.Health().Incoming.Paused && f.Subscribers() == 0 && f.Backlog() > 0
	})
	subs := f.Requests("subscribeReceive")

	f.DropConnections() // like a restart of signal-cli: the connection breaks
	waitState(t, r.sup, 10*time.Second, signalbridge.StateUp, func(h signalbridge.Health) bool { return h.Restarts >= 1 })
	waitFor(t, 10*time.Second, "the deferral logged", func() bool {
		return strings.Contains(r.logs.String(), "incoming stays paused on the new connection")
	})
	if got := f.Subscribers(); got != 0 {
		t.Fatalf("the new connection subscribed while the queue is full (%d subscribers)", got)
	}
	if got := f.Requests("subscribeReceive"); got != subs {
		t.Fatalf("subscribeReceive sent on the new connection while full (%d, before %d)", got, subs)
	}
	if h := r.sup.Health(); !h.Incoming.Paused || h.Incoming.Queued < high || h.Incoming.MaxQueued >= n/2 {
		t.Fatalf("health while paused: %+v", h.Incoming)
	} else {
		t.Logf("paused: %+v (overshoot %d over a socket at full speed)", h.Incoming, h.Incoming.MaxQueued-high)
	}

	once.Do(func() { close(h.release) })
	expectInOrder(t, n, h.nextWithin(t, 20*time.Second))
	waitFor(t, 10*time.Second, "resumed on the new connection", func() bool {
		return !r.sup.Health().Incoming.Paused && f.Subscribers() == 1 && f.Backlog() == 0
	})
	if h := r.sup.Health(); h.Incoming.MaxQueued >= n/2 || h.Incoming.Delivered != n {
		t.Errorf("health after catching up: %+v", h.Incoming)
	}
}
