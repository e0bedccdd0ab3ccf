package mqtt_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopkit/relay/buffer"
	"github.com/shopkit/relay/relay/mqtt"
	"github.com/shopkit/relay/relay/mqtt/mqtttest"
)

// badgerSpool is the durable spool the way relay/store adapts it: a real buffer.Spool in Badger,
// every record returned by Peek (an unreadable one with Item.Err set, via mqtt.SpooledItem).
type badgerSpool struct {
	sp         *buffer.Spool
	failRemove atomic.Int32 // Remove fails this many more times
	removes    atomic.Int32
}

func (s *badgerSpool) Peek(n int) ([]mqtt.Item, error) {
	items, err := s.sp.Peek(n)
	if err != nil {
		return nil, err
	}
	out := make([]mqtt.Item, 0, len(items))
	for _, it := range items {
		out = append(out, mqtt.SpooledItem(it.Seq, it.Data))
	}
	return out, nil
}

func (s *badgerSpool) Remove(ctx context.Context, upto uint64) error {
	s.removes.Add(1)
	if s.failRemove.Add(-1) >= 0 {
		return errors.New("disk hiccup")
	}
	return s.sp.Remove(ctx, upto)
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
	return &badgerSpool{sp: b.Spool("mqtt")}
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
// ones and at its tail. Every good message reaches the broker, in order; each bad one is logged
// by seq and counted once, never published; the spool ends empty. A failing Remove makes the
// client peek a batch again: its bad records are not counted twice.
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
	c := mqtt.New(mqtt.Config{Broker: b.URL(), ClientID: "relay-box", TopicPrefix: "shop", MaxReconnect: 50 * time.Millisecond},
		newHandler(func(string) error { return nil }), sp, slog.New(logs), func(up bool, _ string) { states <- up })
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	defer func() { cancel(); <-done }()

	// At least once: a batch whose Remove failed is published again; apart from such repeats,
	// the good messages arrive exactly in spool order.
	next := 0
	for next < good {
		got := shop.next(t)
		want := func(i int) string {
			topic := "shop/events"
			if i%2 == 1 {
				topic = "shop/inbound"
			}
			return fmt.Sprintf(`%s {"n":%d}`, topic, i)
		}
		switch {
		case got == want(next):
			next++
		case isEarlier(got, next):
			// a repeat of an earlier good message (at least once)
		default:
			t.Fatalf("got %q, want %q (or a repeat of an earlier one)", got, want(next))
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
	// Nothing unreadable reached the broker: after the last good message only a later good one
	// could arrive, and there is none.
	select {
	case m := <-shop.got:
		if !isEarlier(m, good) {
			t.Errorf("unexpected message after the drain: %q", m)
		}
	default:
	}
}

// isEarlier reports whether m is one of the good messages before index next.
func isEarlier(m string, next int) bool {
	var topic string
	var n int
	if _, err := fmt.Sscanf(m, "%s {\"n\":%d}", &topic, &n); err != nil {
		return false
	}
	want := "shop/events"
	if n%2 == 1 {
		want = "shop/inbound"
	}
	return topic == want && n >= 0 && n < next
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
