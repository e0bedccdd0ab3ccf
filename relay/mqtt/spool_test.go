package mqtt_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopkit/relay/buffer"
	"github.com/shopkit/relay/relay/mqtt"
	"github.com/shopkit/relay/relay/mqtt/mqtttest"
	"github.com/shopkit/relay/relay/store"
)

// badgerSpool is relay/store's spool (the client's real one) over a real buffer in Badger, with
// a Remove that can be made to fail and a hook on the first Peek.
type badgerSpool struct {
	st         *store.Store
	sp         *buffer.Spool // the same spool, for appending raw (also unreadable) records
	failRemove atomic.Int32  // Remove fails this many more times
	removes    atomic.Int32
	onPeek     func() // called once, on the first Peek, before it returns
	peeks      atomic.Int32
	peeked     atomic.Int64 // items returned by all Peeks
}

func (s *badgerSpool) PeekAfter(after uint64, n int) ([]mqtt.Item, error) {
	if s.peeks.Add(1) == 1 && s.onPeek != nil {
		defer s.onPeek()
	}
	items, err := s.st.PeekAfter(after, n)
	s.peeked.Add(int64(len(items)))
	return items, err
}

func (s *badgerSpool) Remove(ctx context.Context, upto uint64) error {
	s.removes.Add(1)
	if s.failRemove.Add(-1) >= 0 {
		return errors.New("disk hiccup")
	}
	return s.st.Remove(ctx, upto)
}

func openSpool(t *testing.T) *badgerSpool {
	t.Helper()
	b, err := buffer.Open(t.TempDir(), buffer.Options{MinFreeSpace: -1, TrimInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close buffer: %v", err)
		}
	})
	return &badgerSpool{st: store.New(b, nil), sp: b.Spool("mqtt")} // store's spool "mqtt" (see its doc)
}

// errorLog keeps the error records a client logs (and passes everything to the test log).
type errorLog struct {
	slog.Handler
	mu   *sync.Mutex
	seqs *[]uint64 // the "seqs" of every error record
	n    *int      // number of error records
}

func newErrorLog(t *testing.T) errorLog {
	return errorLog{Handler: slog.NewTextHandler(tWriter{t}, nil), mu: &sync.Mutex{}, seqs: new([]uint64), n: new(int)}
}

func (h errorLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.mu.Lock()
		*h.n++
		r.Attrs(func(a slog.Attr) bool {
			if s, ok := a.Value.Any().([]uint64); ok && a.Key == "seqs" {
				*h.seqs = append(*h.seqs, s...)
			}
			return true
		})
		h.mu.Unlock()
	}
	return h.Handler.Handle(ctx, r)
}

func (h errorLog) WithAttrs(as []slog.Attr) slog.Handler {
	h.Handler = h.Handler.WithAttrs(as)
	return h
}

func (h errorLog) logged() (seqs []uint64, records int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(*h.seqs), *h.n
}

// Records nobody can decode — not JSON, a wildcard or empty topic, a payload that is not an
// object — sit in the durable spool at its head (more than two whole batches), among good
// ones and at its tail. Every good message reaches the broker once, in order; each bad one is logged
// by seq and counted once, never published; the spool ends empty. A failing Remove makes the
// client try again on the same connection: nothing is published twice, no bad record is
// counted twice.
func TestClient_SpoolSkipsUnreadable(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	shop := newObserver(t, b.URL(), "shop-events", "shop/events", "shop/inbound")
	sp := openSpool(t)
	ctx := context.Background()
	garbage := [][]byte{
		[]byte("garbage"),
		[]byte(`{"t":"events/#","p":{"id":"wild"}}`),
		[]byte(`{"t":"","p":{"id":"notopic"}}`),
		[]byte(`{"t":"events","p":"a string"}`),
		[]byte(`{"t":"events"}`),
		[]byte(`{"t":"events\u0000x","p":{}}`),
		{0xff, 0xfe, 0x00},
	}
	var bad []uint64
	appendBad := func(i int) {
		seq, err := sp.sp.Append(ctx, garbage[i%len(garbage)])
		if err != nil {
			t.Fatal(err)
		}
		bad = append(bad, seq)
	}
	appendGood := func(i int) {
		topic := mqtt.TopicEvents
		if i%2 == 1 {
			topic = mqtt.TopicInbound
		}
		if _, err := sp.sp.Append(ctx, mqtt.EncodeItem(topic, fmt.Appendf(nil, `{"n":%d}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 300 { // more than two Peek batches of nothing but unreadable records
		appendBad(i)
	}
	const good = 200
	for i := range good {
		appendGood(i)
		if i%7 == 3 {
			appendBad(i)
		}
	}
	for i := range 5 {
		appendBad(i)
	}
	sp.failRemove.Store(2) // the first two batches are peeked (and their bad records seen) twice

	logs := newErrorLog(t)
	states := make(chan bool, 100)
	c := mqtt.New(mqtt.Config{Broker: b.URL(), ClientID: "relay-box", TopicPrefix: "shop", MaxReconnect: 50 * time.Millisecond,
		StoreFailPause: 10 * time.Millisecond},
		newHandler(func(string) error { return nil }), sp, slog.New(logs), func(up bool, _ string) { states <- up })
	defer runClient(t, c)()

	// The good messages arrive exactly once each, in spool order: a Remove that failed is
	// retried before the spool is peeked again.
	for i := range good {
		topic := "shop/events"
		if i%2 == 1 {
			topic = "shop/inbound"
		}
		if got, want := shop.next(t), fmt.Sprintf(`%s {"n":%d}`, topic, i); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	eventually(t, "the spool is empty", func() bool { return sp.sp.Len() == 0 })
	if got, want := c.Skipped(), int64(len(bad)); got != want {
		t.Errorf("Skipped() = %d, want %d (each unreadable record once)", got, want)
	}
	seqs, records := logs.logged()
	if !slices.Equal(seqs, bad) {
		t.Errorf("error logs named seqs %v,\nwant %v", seqs, bad)
	}
	if records == 0 || records > len(bad)/10 {
		t.Errorf("%d error records for %d unreadable items; want one per batch", records, len(bad))
	}
	if sp.removes.Load() < 3 {
		t.Errorf("Remove called %d times; the failure path was not taken", sp.removes.Load())
	}
	// A spool failure is the database's, not the broker's: the connection stayed up.
	if up := <-states; !up || len(states) != 0 {
		t.Errorf("connection state changed after the first connect (%d more changes)", len(states))
	}
	// Nothing unreadable (and nothing twice) reached the broker.
	select {
	case m := <-shop.got:
		t.Errorf("unexpected message after the drain: %q", m)
	default:
	}
}

// A spool made only of unreadable records is emptied; nothing is published.
func TestClient_SpoolAllUnreadable(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	sp := openSpool(t)
	for range 1000 {
		if _, err := sp.sp.Append(context.Background(), []byte("not a record")); err != nil {
			t.Fatal(err)
		}
	}
	c, stop := startClient(t, b.URL(), "relay-box", newHandler(func(string) error { return nil }), sp)
	defer stop()
	eventually(t, "the spool is empty", func() bool { return sp.sp.Len() == 0 })
	if got := c.Skipped(); got != 1000 {
		t.Errorf("Skipped() = %d, want 1000", got)
	}
}

// The connection drops after a batch was peeked and before anything in it was acknowledged:
// on the next connection the same batch is published again, and its unreadable records are
// neither logged nor counted a second time.
func TestClient_SpoolSkippedOnceAcrossReconnect(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	proxy := mqtttest.NewProxy(t, b.Addr())
	shop := newObserver(t, b.URL(), "shop-events", "shop/events")
	sp := openSpool(t)
	ctx := context.Background()
	for _, rec := range [][]byte{[]byte("bad 1"), mqtt.EncodeItem("events", []byte(`{"n":0}`)), []byte(`{"t":"#","p":{}}`),
		mqtt.EncodeItem("events", []byte(`{"n":1}`))} {
		if _, err := sp.sp.Append(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	// The first Peek happens right after the first connect; the proxy is cut before the batch
	// is published, so no PUBACK for it can come on that connection.
	sp.onPeek = proxy.Cut
	logs := newErrorLog(t)
	c := mqtt.New(mqtt.Config{Broker: proxy.URL(), ClientID: "relay-box", TopicPrefix: "shop", MaxReconnect: 50 * time.Millisecond},
		newHandler(func(string) error { return nil }), sp, slog.New(logs), nil)
	defer runClient(t, c)()
	for i := range 2 {
		if got, want := shop.next(t), fmt.Sprintf(`shop/events {"n":%d}`, i); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	eventually(t, "the spool is empty", func() bool { return sp.sp.Len() == 0 })
	if n := sp.peeks.Load(); n < 2 {
		t.Fatalf("the spool was peeked %d times; the batch was not peeked again after the cut", n)
	}
	if got := c.Skipped(); got != 2 {
		t.Errorf("Skipped() = %d, want 2", got)
	}
	if seqs, _ := logs.logged(); !slices.Equal(seqs, []uint64{1, 3}) {
		t.Errorf("error logs named seqs %v, want [1 3] once each", seqs)
	}
}

// Thousands of spooled events go out through the window in order, across a connection cut in
// the middle: after the cut the drain starts again after the last acknowledged item, so the
// shop may see a few again (at least once) but never a gap or one out of order. Acknowledged
// items are removed in runs, not one durable write per event.
func TestClient_SpoolDrainsManyInOrder(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	proxy := mqtttest.NewProxy(t, b.Addr())
	shop := newObserver(t, b.URL(), "shop-events", "shop/events")
	sp := openSpool(t)
	const n = 5000
	for i := range n {
		if _, err := sp.sp.Append(context.Background(), mqtt.EncodeItem("events", fmt.Appendf(nil, `{"n":%d}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	// A Publish that races the cut is held by paho for WriteTimeout before the reconnect: 1 s
	// here, not the default 10 s, only to keep the test short.
	_, stop := startClientWith(t, mqtt.Config{Broker: proxy.URL(), ClientID: "relay-box", TopicPrefix: "shop",
		MaxReconnect: 200 * time.Millisecond, WriteTimeout: time.Second}, newHandler(func(string) error { return nil }), sp)
	defer stop()
	highest, again := -1, 0
	for highest < n-1 {
		var i int
		if _, err := fmt.Sscanf(shop.next(t), `shop/events {"n":%d}`, &i); err != nil {
			t.Fatal(err)
		}
		switch {
		case i == highest+1:
			highest = i
		case i <= highest:
			again++
		default:
			t.Fatalf("event %d after %d: a gap", i, highest)
		}
		if highest == n/3 && i == highest {
			proxy.Cut()
		}
	}
	eventually(t, "the spool is empty", func() bool { return sp.sp.Len() == 0 })
	t.Logf("%d events, %d seen again after the cut, %d Remove calls", n, again, sp.removes.Load())
	if r := sp.removes.Load(); r > n/100 {
		t.Errorf("%d Remove calls for %d events; want runs of them", r, n)
	}
}

// A broker that stops reading for a few seconds, as over a stalled uplink, with far more to
// send than the socket takes: the connection stays up through the stall (what is in flight is
// bounded in bytes), and afterwards every event arrives in order.
func TestClient_SpoolStalledBrokerKeepsOrder(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	proxy := mqtttest.NewProxy(t, b.Addr())
	shop := newObserver(t, b.URL(), "shop-events", "shop/events")
	sp := &memSpool{}
	c, stop := startClient(t, proxy.URL(), "relay-box", newHandler(func(string) error { return nil }), sp)
	defer stop()
	// Far more than the kernel buffers between the client and the paused proxy take, in fewer
	// publishes than the window's item count.
	const n = 600
	pad := strings.Repeat("x", 32<<10)
	proxy.Pause()
	for i := range n {
		sp.add("events", fmt.Sprintf(`{"n":%d,"pad":%q}`, i, pad))
	}
	c.Notify()
	// The stall is a real socket's, so it is timed.
	const stall = 3 * time.Second
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for end := time.After(stall); ; {
		if !c.Connected() {
			t.Fatalf("the connection dropped during a %v stall of the broker", stall)
		}
		select {
		case <-tick.C:
			continue
		case <-end:
		}
		break
	}
	proxy.Resume()
	highest := -1
	for highest < n-1 {
		var i int
		if _, err := fmt.Sscanf(shop.next(t), `shop/events {"n":%d`, &i); err != nil {
			t.Fatal(err)
		}
		if i > highest+1 {
			t.Fatalf("event %d after %d: out of order", i, highest)
		}
		highest = max(highest, i)
	}
}

// An unreadable record at the head, then more than the window's bytes of good events: the
// window fills behind the unreadable one (which has no publish to wait for). Every event goes
// out once, in order, and the spool ends empty.
func TestClient_SpoolUnreadableBeforeFullWindow(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	shop := newObserver(t, b.URL(), "shop-events", "shop/events")
	sp := openSpool(t)
	ctx := context.Background()
	pad := strings.Repeat("x", 20<<10)
	const n = 5 // ~100 KB: the window (48 KiB) fills twice
	if _, err := sp.sp.Append(ctx, []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := sp.sp.Append(ctx, mqtt.EncodeItem("events", fmt.Appendf(nil, `{"n":%d,"pad":%q}`, i, pad))); err != nil {
			t.Fatal(err)
		}
	}
	c, stop := startClient(t, b.URL(), "relay-box", newHandler(func(string) error { return nil }), sp)
	defer stop()
	for i := range n {
		var got int
		if _, err := fmt.Sscanf(shop.next(t), `shop/events {"n":%d`, &got); err != nil || got != i {
			t.Fatalf("event %d (%v), want %d", got, err, i)
		}
	}
	eventually(t, "the spool is empty", func() bool { return sp.sp.Len() == 0 })
	if got := c.Skipped(); got != 1 {
		t.Errorf("Skipped() = %d, want 1", got)
	}
}

// Events of a few KiB each: the window holds only a few dozen of them in bytes, and each refill
// reads about what fits from the spool, not the window's item count (a Badger read of each
// item only to drop it again).
func TestClient_SpoolPeeksWhatFits(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	shop := newObserver(t, b.URL(), "shop-events", "shop/events")
	sp := openSpool(t)
	pad := strings.Repeat("x", 2<<10)
	const n = 300
	for i := range n {
		if _, err := sp.sp.Append(context.Background(), mqtt.EncodeItem("events", fmt.Appendf(nil, `{"n":%d,"pad":%q}`, i, pad))); err != nil {
			t.Fatal(err)
		}
	}
	_, stop := startClient(t, b.URL(), "relay-box", newHandler(func(string) error { return nil }), sp)
	defer stop()
	for i := range n {
		var got int
		if _, err := fmt.Sscanf(shop.next(t), `shop/events {"n":%d`, &got); err != nil || got != i {
			t.Fatalf("event %d (%v), want %d", got, err, i)
		}
	}
	eventually(t, "the spool is empty", func() bool { return sp.sp.Len() == 0 })
	if got := sp.peeked.Load(); got > 2*n {
		t.Errorf("%d items read from the spool to publish %d; want at most %d", got, n, 2*n)
	} else {
		t.Logf("%d items read from the spool to publish %d", got, n)
	}
}
