package mqtt_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shopkit/relay/relay/mqtt"
	"github.com/shopkit/relay/relay/mqtt/mqtttest"
)

const waitFor = 20 * time.Second // a guard against hanging, not a timing assumption

// handler records jobs; decide says whether a job is stored (nil) or not.
type handler struct {
	mu      sync.Mutex
	jobs    []string
	consent []string
	decide  func(payload string) error
	seen    chan string
}

func newHandler(decide func(string) error) *handler {
	return &handler{decide: decide, seen: make(chan string, 1000)}
}

func (h *handler) SubmitJob(_ context.Context, p []byte, _ bool) func() error {
	h.mu.Lock()
	h.jobs = append(h.jobs, string(p))
	h.mu.Unlock()
	err := h.decide(string(p))
	return func() error { h.seen <- string(p); return err }
}

func (h *handler) HandleConsent(_ context.Context, p []byte) error {
	h.mu.Lock()
	h.consent = append(h.consent, string(p))
	h.mu.Unlock()
	h.seen <- "consent:" + string(p)
	return nil
}

// memSpool is an in-memory Spool (the durable one is tested in relay/store).
type memSpool struct {
	mu    sync.Mutex
	items []mqtt.Item
	next  uint64
}

func (s *memSpool) add(topic, payload string) {
	s.mu.Lock()
	s.next++
	s.items = append(s.items, mqtt.Item{Seq: s.next, Topic: topic, Payload: []byte(payload)})
	s.mu.Unlock()
}

func (s *memSpool) PeekAfter(after uint64, n int) ([]mqtt.Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []mqtt.Item
	for _, it := range s.items {
		if it.Seq > after && len(out) < n {
			out = append(out, it)
		}
	}
	return out, nil
}

func (s *memSpool) Remove(_ context.Context, upto uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.items) > 0 && s.items[0].Seq <= upto {
		s.items = s.items[1:]
	}
	return nil
}

func (s *memSpool) len() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.items) }

// observer is the shop backend's side: a plain paho client.
type observer struct {
	c   paho.Client
	got chan string
}

func newObserver(t *testing.T, url, id string, topics ...string) *observer {
	t.Helper()
	o := &observer{got: make(chan string, 10000)}
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(false).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(100 * time.Millisecond).
		SetMaxReconnectInterval(200 * time.Millisecond).SetOrderMatters(true)
	opts.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { o.got <- m.Topic() + " " + string(m.Payload()) })
	opts.SetOnConnectHandler(func(c paho.Client) {
		for _, tp := range topics {
			c.Subscribe(tp, 1, nil)
		}
	})
	o.c = paho.NewClient(opts)
	tok := o.c.Connect()
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("observer connect: %v", tok.Error())
	}
	// The on-connect handler's subscriptions are not waited for: a message published before
	// the broker has them would miss the observer (a flake: the first event "lost"). Subscribe
	// again here and wait for each SUBACK (subscribing twice is harmless).
	for _, tp := range topics {
		if st := o.c.Subscribe(tp, 1, nil); !st.WaitTimeout(waitFor) || st.Error() != nil {
			t.Fatalf("observer subscribe %s: %v", tp, st.Error())
		}
	}
	t.Cleanup(func() { o.c.Disconnect(100) })
	return o
}

func (o *observer) publish(t *testing.T, topic, payload string) {
	t.Helper()
	tok := o.c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
}

func (o *observer) next(t *testing.T) string {
	t.Helper()
	select {
	case m := <-o.got:
		return m
	case <-time.After(waitFor):
		t.Fatal("observer: nothing arrived")
		return ""
	}
}

// skipTo reads until want arrives, allowing only repeats of skip before it.
func (o *observer) skipTo(t *testing.T, want, skip string) {
	t.Helper()
	for {
		got := o.next(t)
		if got == want {
			return
		}
		if got != skip {
			t.Fatalf("got %q, want %q (or a repeat of %q)", got, want, skip)
		}
	}
}

func startClient(t *testing.T, url, id string, h mqtt.Handler, sp mqtt.Spool) (*mqtt.Client, func()) {
	t.Helper()
	return startClientWith(t, mqtt.Config{Broker: url, ClientID: id, TopicPrefix: "shop", MaxReconnect: 200 * time.Millisecond}, h, sp)
}

// startClientWith runs a client on cfg until it has connected; the returned func stops it.
func startClientWith(t *testing.T, cfg mqtt.Config, h mqtt.Handler, sp mqtt.Spool) (*mqtt.Client, func()) {
	t.Helper()
	states := make(chan bool, 100)
	log := slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := mqtt.New(cfg, h, sp, log, func(up bool, _ string) { states <- up })
	stop := runClient(t, c)
	waitUp(t, states)
	return c, stop
}

// runClient runs c until the returned func (or the end of the test) stops it, and checks that
// Run returns nil then.
func runClient(t *testing.T, c *mqtt.Client) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(waitFor):
			t.Error("Run did not return after cancel")
		}
	})
	t.Cleanup(stop)
	return stop
}

// waitUp waits until states (a client's onState) says connected.
func waitUp(t *testing.T, states <-chan bool) {
	t.Helper()
	deadline := time.After(waitFor) // once: failed attempts keep coming
	for up := false; !up; {
		select {
		case up = <-states:
		case <-deadline:
			t.Fatal("relay client did not connect")
		}
	}
}

func waitSeen(t *testing.T, h *handler, want string) {
	t.Helper()
	for {
		select {
		case got := <-h.seen:
			if got == want {
				return
			}
		case <-time.After(waitFor):
			t.Fatalf("handler never saw %q", want)
		}
	}
}

// tWriter sends log lines to the test's log, shown when a test fails.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// eventually polls cond until it holds; the deadline only guards against a hang.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(waitFor)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("never happened: %s", what)
		}
	}
}

func waitAcked(t *testing.T, c *mqtt.Client, n int64) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d jobs acknowledged", n), func() bool { return c.Acked() >= n })
}

func TestClient_AckOnlyAfterDurable(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	shop := newObserver(t, b.URL(), "shop-backend")
	failing := newHandler(func(p string) error {
		if p == `{"id":"j2"}` {
			return errors.New("disk full")
		}
		return nil
	})
	c, stop := startClient(t, b.URL(), "relay-box", failing, nil)
	shop.publish(t, "shop/jobs", `{"id":"j1"}`)
	shop.publish(t, "shop/jobs", `{"id":"j2"}`)
	waitSeen(t, failing, `{"id":"j2"}`)
	waitAcked(t, c, 1)
	stop()

	// The same box starts again: the broker redelivers what was not acknowledged (j2), and only
	// that, and delivers what was published while the box was away (j3), in order.
	shop.publish(t, "shop/jobs", `{"id":"j3"}`)
	ok := newHandler(func(string) error { return nil })
	c2, stop2 := startClient(t, b.URL(), "relay-box", ok, nil)
	defer stop2()
	waitSeen(t, ok, `{"id":"j3"}`)
	waitAcked(t, c2, 2)
	ok.mu.Lock()
	got := slices.Clone(ok.jobs)
	ok.mu.Unlock()
	if want := []string{`{"id":"j2"}`, `{"id":"j3"}`}; !slices.Equal(got, want) {
		t.Errorf("after restart got %v, want %v", got, want)
	}
}

// A job that could not be stored is not acknowledged, and the broker would keep it in its
// in-flight window until the next connection: the client reconnects by itself, the broker
// redelivers, and once the store works again the job is acknowledged — no restart needed.
func TestClient_StoreFailureRedelivered(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	shop := newObserver(t, b.URL(), "shop-backend")
	var mu sync.Mutex
	failures := 0
	h := newHandler(func(p string) error {
		mu.Lock()
		defer mu.Unlock()
		if p == `{"id":"j1"}` && failures < 2 {
			failures++
			return errors.New("disk full")
		}
		return nil
	})
	var storeErrs []string
	states := make(chan bool, 100)
	c := mqtt.New(mqtt.Config{Broker: b.URL(), ClientID: "relay-box", TopicPrefix: "shop", MaxReconnect: 200 * time.Millisecond,
		StoreFailPause: 50 * time.Millisecond, OnStoreError: func(err error) {
			mu.Lock()
			storeErrs = append(storeErrs, fmt.Sprint(err))
			mu.Unlock()
		}}, h, nil, nil, func(up bool, _ string) { states <- up })
	defer runClient(t, c)()
	waitUp(t, states)
	shop.publish(t, "shop/jobs", `{"id":"j1"}`)
	shop.publish(t, "shop/jobs", `{"id":"j2"}`)
	waitAcked(t, c, 2)
	mu.Lock()
	defer mu.Unlock()
	if failures != 2 {
		t.Errorf("j1 failed %d times, want 2 (then stored on a redelivery)", failures)
	}
	// j2 is stored between j1's failures, so health may go degraded → ok more than once; it
	// must start with the failure and end recovered.
	if len(storeErrs) < 2 || storeErrs[0] != "disk full" || storeErrs[len(storeErrs)-1] != "<nil>" {
		t.Errorf("OnStoreError heard %q, want the failure first and the recovery last", storeErrs)
	}
}

func TestClient_ConsentRouted(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	shop := newObserver(t, b.URL(), "shop-backend")
	h := newHandler(func(string) error { return nil })
	_, stop := startClient(t, b.URL(), "relay-box", h, nil)
	defer stop()
	shop.publish(t, "shop/consent", `{"to":"+4915112345678","consent":"opt_in"}`)
	waitSeen(t, h, `consent:{"to":"+4915112345678","consent":"opt_in"}`)
}

func TestClient_SpoolInOrderAcrossBrokerRestart(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	shop := newObserver(t, b.URL(), "shop-events", "shop/events", "shop/inbound")
	sp := &memSpool{}
	for i := range 50 {
		sp.add("events", fmt.Sprintf(`{"n":%d}`, i))
	}
	c, stop := startClient(t, b.URL(), "relay-box", newHandler(func(string) error { return nil }), sp)
	defer stop()
	for i := range 50 {
		if got, want := shop.next(t), fmt.Sprintf(`shop/events {"n":%d}`, i); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	b.Stop()
	for i := 50; i < 100; i++ {
		sp.add("inbound", fmt.Sprintf(`{"n":%d}`, i))
	}
	c.Notify()
	b.StartAgain()
	// The broker may redeliver to the observer what it had not seen acknowledged before the
	// restart (QoS 1 is at least once); the new items must follow, all of them, in order.
	seen := map[string]bool{}
	for i := range 50 {
		seen[fmt.Sprintf(`shop/events {"n":%d}`, i)] = true
	}
	for i := 50; i < 100; i++ {
		got := shop.next(t)
		for seen[got] {
			got = shop.next(t)
		}
		if want := fmt.Sprintf(`shop/inbound {"n":%d}`, i); got != want {
			t.Fatalf("after broker restart got %q, want %q", got, want)
		}
	}
	eventually(t, "the spool is empty once the broker acknowledged everything", func() bool { return sp.len() == 0 })
}

func TestClient_StatusRetainedWillAndCleanStop(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	proxy := mqtttest.NewProxy(t, b.Addr())
	c, stop := startClient(t, proxy.URL(), "relay-box", newHandler(func(string) error { return nil }), nil)
	c.SetStatus([]byte(`{"state":"online"}`))
	shop := newObserver(t, b.URL(), "shop-status", "shop/status")
	if got := shop.next(t); got != `shop/status {"state":"online"}` {
		t.Fatalf("retained status = %q", got)
	}
	// The network drops under the box: the broker publishes the last will, and when the box is
	// back it says online again. (QoS 1 is at least once: a status may arrive twice.)
	proxy.Cut()
	shop.skipTo(t, `shop/status {"state":"offline"}`, `shop/status {"state":"online"}`)
	shop.skipTo(t, `shop/status {"state":"online"}`, `shop/status {"state":"offline"}`)
	c.SetStatus([]byte(`{"state":"shutting_down"}`))
	stop()
	shop.skipTo(t, `shop/status {"state":"shutting_down"}`, `shop/status {"state":"online"}`)
	shop.skipTo(t, `shop/status {"state":"offline"}`, `shop/status {"state":"shutting_down"}`)
}

func TestItem_RoundTrip(t *testing.T) {
	b := mqtt.EncodeItem("events", []byte(`{"id":"x"}`))
	topic, p, err := mqtt.DecodeItem(b)
	if err != nil || topic != "events" || string(p) != `{"id":"x"}` {
		t.Fatalf("got %q %q %v", topic, p, err)
	}
}

func TestSpooledItem(t *testing.T) {
	tests := []struct {
		name, record   string
		topic, payload string // want; "" topic: unreadable
	}{
		{"event", `{"t":"events","p":{"id":"x"}}`, "events", `{"id":"x"}`},
		{"sub-topic", `{"t":"a/b","p":{}}`, "a/b", `{}`},
		{"unknown fields ignored", `{"t":"inbound","p":{"k":1},"v":2}`, "inbound", `{"k":1}`},
		{"not json", `garbage`, "", ""},
		{"empty", ``, "", ""},
		{"truncated", `{"t":"events","p":{"id"`, "", ""},
		{"no topic", `{"p":{}}`, "", ""},
		{"empty topic", `{"t":"","p":{}}`, "", ""},
		{"topic wrong type", `{"t":1,"p":{}}`, "", ""},
		{"wildcard +", `{"t":"events/+","p":{}}`, "", ""},
		{"wildcard #", `{"t":"#","p":{}}`, "", ""},
		{"NUL in topic", `{"t":"ev\u0000","p":{}}`, "", ""},
		{"leading slash", `{"t":"/events","p":{}}`, "", ""},
		{"no payload", `{"t":"events"}`, "", ""},
		{"null payload", `{"t":"events","p":null}`, "", ""},
		{"array payload", `{"t":"events","p":[1]}`, "", ""},
		{"string payload", `{"t":"events","p":"x"}`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it := mqtt.SpooledItem(7, []byte(tt.record))
			if it.Seq != 7 {
				t.Errorf("Seq = %d, want 7", it.Seq)
			}
			if tt.topic == "" {
				if it.Err == nil || !errors.Is(it.Err, mqtt.ErrBadItem) || !strings.Contains(it.Err.Error(), "seq 7") {
					t.Errorf("got %+v, want Err wrapping ErrBadItem and naming seq 7", it)
				}
				return
			}
			if it.Err != nil || it.Topic != tt.topic || string(it.Payload) != tt.payload {
				t.Errorf("got topic %q payload %q err %v; want %q %q", it.Topic, it.Payload, it.Err, tt.topic, tt.payload)
			}
		})
	}
}

func FuzzDecodeItem(f *testing.F) {
	f.Add(mqtt.EncodeItem("events", []byte(`{"id":"x"}`)))
	f.Add([]byte(`{"t":"events/#","p":{}}`))
	f.Add([]byte(`garbage`))
	f.Add([]byte(`{"t":"inbound","p":null}`))
	f.Add([]byte(`{"t":"a","p":{ "k" : [1, 2] }}`))
	f.Fuzz(func(t *testing.T, record []byte) {
		topic, payload, err := mqtt.DecodeItem(record)
		if err != nil {
			if !errors.Is(err, mqtt.ErrBadItem) {
				t.Fatalf("error does not wrap ErrBadItem: %v", err)
			}
			return
		}
		// What decodes is publishable and survives a round trip.
		if topic == "" || strings.ContainsAny(topic, "+#\x00") || len(payload) == 0 || payload[0] != '{' {
			t.Fatalf("accepted topic %q payload %q", topic, payload)
		}
		t2, p2, err := mqtt.DecodeItem(mqtt.EncodeItem(topic, payload))
		var want bytes.Buffer
		_ = json.Compact(&want, payload) // EncodeItem stores the payload compacted
		if err != nil || t2 != topic || string(p2) != want.String() {
			t.Fatalf("round trip: %q %q %v", t2, p2, err)
		}
	})
}
