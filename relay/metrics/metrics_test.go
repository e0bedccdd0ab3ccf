package metrics

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/shopkit/relay/buffer"
	"github.com/shopkit/relay/relay"
)

// serve starts h on a free loopback port and returns the base URL; the server is shut down
// (and Serve's result checked) when the test ends.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve after cancel = %v, want nil", err)
		}
	})
	return "http://" + srv.Addr().String()
}

// scrape GETs /metrics and parses the text exposition format.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// value finds the sample of family name whose labels include the given name=value pairs.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// fakeWorld is observed state the test changes between scrapes.
type fakeWorld struct {
	mu          sync.Mutex
	depth       int
	oldest      time.Duration
	quarantined string
	summary     relay.Summary
	connected   bool
	spool       int
	skipped     int64
	signal      SignalReading
	modem       ModemReading
	onBattery   bool
	unident     int64
	unknownUUID int64
}

func (w *fakeWorld) Depth() int { w.mu.Lock(); defer w.mu.Unlock(); return w.depth }
func (w *fakeWorld) OldestAge(time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.oldest
}

func (w *fakeWorld) set(f func(w *fakeWorld)) { w.mu.Lock(); defer w.mu.Unlock(); f(w) }

func (w *fakeWorld) sources() Sources {
	get := func(f func() any) any { w.mu.Lock(); defer w.mu.Unlock(); return f() }
	return Sources{
		Outbox:         w,
		Quarantined:    func() string { return get(func() any { return w.quarantined }).(string) },
		Health:         func() relay.Summary { return get(func() any { return w.summary }).(relay.Summary) },
		MQTTConnected:  func() bool { return get(func() any { return w.connected }).(bool) },
		SpoolDepth:     func() int { return get(func() any { return w.spool }).(int) },
		SpoolSkipped:   func() int64 { return get(func() any { return w.skipped }).(int64) },
		Signal:         func() SignalReading { return get(func() any { return w.signal }).(SignalReading) },
		Modem:          func() ModemReading { return get(func() any { return w.modem }).(ModemReading) },
		OnBattery:      func() bool { return get(func() any { return w.onBattery }).(bool) },
		Unidentified:   func() int64 { return get(func() any { return w.unident }).(int64) },
		UnknownSenders: func() int64 { return get(func() any { return w.unknownUUID }).(int64) },
	}
}

type sample struct {
	name   string
	labels []string
	want   float64
}

func check(t *testing.T, fams map[string]*dto.MetricFamily, want []sample) {
	t.Helper()
	for _, s := range want {
		got, ok := value(fams, s.name, s.labels...)
		if !ok {
			t.Errorf("%s%v: absent, want %v", s.name, s.labels, s.want)
			continue
		}
		if got != s.want {
			t.Errorf("%s%v = %v, want %v", s.name, s.labels, got, s.want)
		}
	}
}

func TestMetrics_ScrapeFollowsObservedState(t *testing.T) {
	w := &fakeWorld{
		summary: relay.Summary{Overall: relay.Online, Components: map[relay.Component]relay.ComponentHealth{
			relay.ComponentMQTT: {State: relay.StateOK}, relay.ComponentSignal: {State: relay.StateStarting}}},
		connected: true,
		signal:    SignalReading{State: "starting"},
		modem:     ModemReading{State: "starting"},
	}
	base := serve(t, New(nil, w.sources(), nil).Handler())

	fams := scrape(t, base)
	check(t, fams, []sample{
		{"relay_outbox_depth", nil, 0},
		{"relay_outbox_oldest_age_seconds", nil, 0},
		{"relay_outbox_quarantined", nil, 0},
		{"relay_state", []string{"state", "online"}, 1},
		{"relay_state", []string{"state", "degraded"}, 0},
		{"relay_component_state", []string{"component", "signal"}, 1},
		{"relay_component_state", []string{"component", "mqtt"}, 0},
		{"relay_mqtt_connected", nil, 1},
		{"relay_mqtt_spool_depth", nil, 0},
		{"relay_signal_state", []string{"state", "starting"}, 1},
		{"relay_signal_state", []string{"state", "up"}, 0},
		{"relay_signal_restarts_total", nil, 0},
		{"relay_modem_state", []string{"state", "starting"}, 1},
		{"relay_modem_registered", nil, 0},
		{"relay_on_battery", nil, 0},
		{"relay_payloads_unidentified_total", nil, 0},
		{"relay_keywords_unknown_sender_total", nil, 0},
	})
	if _, ok := value(fams, "relay_modem_signal_dbm"); ok {
		t.Error("relay_modem_signal_dbm present while the modem does not know the signal")
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("no Go collector (go_goroutines)")
	}
	if _, ok := fams["process_resident_memory_bytes"]; !ok {
		t.Error("no process collector (process_resident_memory_bytes)")
	}

	w.set(func(w *fakeWorld) {
		w.depth, w.oldest = 42, 90*time.Second
		w.quarantined = "/var/lib/relay/outbox.corrupt-20261121T000000Z"
		w.summary = relay.Summary{Overall: relay.OnBattery, Components: map[relay.Component]relay.ComponentHealth{
			relay.ComponentMQTT: {State: relay.StateDegraded}, relay.ComponentSignal: {State: relay.StateStaffNeeded},
			relay.Component("ups"): {State: relay.StateOK}}}
		w.connected, w.spool, w.skipped = false, 7, 2
		w.signal = SignalReading{State: "captcha_required", Restarts: 3}
		w.modem = ModemReading{State: "ready", Registered: true, SignalKnown: true, SignalDBm: -71}
		w.onBattery, w.unident, w.unknownUUID = true, 5, 2
	})
	fams = scrape(t, base)
	check(t, fams, []sample{
		{"relay_outbox_depth", nil, 42},
		{"relay_outbox_oldest_age_seconds", nil, 90},
		{"relay_outbox_quarantined", nil, 1},
		{"relay_state", []string{"state", "online"}, 0},
		{"relay_state", []string{"state", "on_battery"}, 1},
		{"relay_component_state", []string{"component", "signal"}, 3},
		{"relay_component_state", []string{"component", "mqtt"}, 2},
		{"relay_component_state", []string{"component", "ups"}, 0},
		{"relay_mqtt_connected", nil, 0},
		{"relay_mqtt_spool_depth", nil, 7},
		{"relay_mqtt_spool_skipped_total", nil, 2},
		{"relay_signal_state", []string{"state", "starting"}, 0},
		{"relay_signal_state", []string{"state", "captcha_required"}, 1},
		{"relay_signal_restarts_total", nil, 3},
		{"relay_modem_state", []string{"state", "ready"}, 1},
		{"relay_modem_registered", nil, 1},
		{"relay_modem_signal_dbm", nil, -71},
		{"relay_on_battery", nil, 1},
		{"relay_payloads_unidentified_total", nil, 5},
		{"relay_keywords_unknown_sender_total", nil, 2},
	})

	// A state this package does not list still shows, as the current one.
	w.set(func(w *fakeWorld) { w.signal.State = "hibernating" })
	check(t, scrape(t, base), []sample{
		{"relay_signal_state", []string{"state", "hibernating"}, 1},
		{"relay_signal_state", []string{"state", "captcha_required"}, 0},
	})
}

func TestMetrics_NilSourcesLeaveMetricsOut(t *testing.T) {
	base := serve(t, New(nil, Sources{}, nil).Handler())
	fams := scrape(t, base)
	for name := range fams {
		if strings.HasPrefix(name, "relay_") && name != "relay_on_battery" {
			t.Errorf("%s exported without a source", name)
		}
	}
	check(t, fams, []sample{{"relay_on_battery", nil, 0}}) // no UPS: mains assumed
}

// fakeSink and fakeOutbox stand in for relay/store: they fail when told to.
type fakeSink struct{ fail atomic.Bool }

func (f *fakeSink) Publish(context.Context, relay.Event) error {
	if f.fail.Load() {
		return errors.New("disk full")
	}
	return nil
}

func (f *fakeSink) PublishInbound(context.Context, relay.Inbound) error {
	return f.Publish(context.Background(), relay.Event{})
}

// fakeOutbox answers Submit with dup/err, fails its state changes with err, and expires the
// jobs in expire (calling fx twice for the first, as a retried transaction would).
type fakeOutbox struct {
	relay.Outbox // nil: Lease and the rest are not called
	dup          bool
	err          error
	expire       []relay.Stored
}

func (f *fakeOutbox) Submit(context.Context, relay.Stored, ...relay.Event) func() (bool, error) {
	return func() (bool, error) { return f.dup, f.err }
}

func (f *fakeOutbox) Ack(context.Context, string, relay.EventType, relay.Effects) error { return f.err }

func (f *fakeOutbox) Retry(context.Context, string, time.Time, string, relay.Effects) error {
	return f.err
}

func (f *fakeOutbox) Defer(context.Context, string, time.Time, string, relay.Effects) error {
	return f.err
}

func (f *fakeOutbox) Expire(_ context.Context, _ time.Time, fx func(relay.Stored) relay.Effects) ([]relay.Stored, error) {
	for i, s := range f.expire {
		if i == 0 {
			fx(s)
		}
		fx(s)
	}
	return f.expire, f.err
}

type fakeSent struct {
	relay.SentIndex
	err error
}

func (f *fakeSent) Commit(context.Context, relay.Effects) error { return f.err }

func fxOf(types ...relay.EventType) relay.Effects {
	var fx relay.Effects
	for _, t := range types {
		fx.Events = append(fx.Events, relay.Event{Event: t})
	}
	return fx
}

func TestEvents_CountsWhatWasStored(t *testing.T) {
	ev := NewEvents()
	base := serve(t, New(ev, Sources{}, nil).Handler())
	fams := scrape(t, base)
	for _, e := range contractEvents {
		check(t, fams, []sample{{"relay_events_total", []string{"event", string(e)}, 0}})
	}
	check(t, fams, []sample{
		{"relay_jobs_total", []string{"result", "accepted"}, 0},
		{"relay_inbound_total", []string{"channel", "sms"}, 0},
	})

	ctx := context.Background()
	sink := &fakeSink{}
	s := ev.Sink(sink)
	out := &fakeOutbox{}
	o := ev.Outbox(out)
	sent := &fakeSent{}
	si := ev.SentIndex(sent)
	accepted := relay.Event{Event: relay.EventAccepted}
	deferred := relay.Event{Event: relay.EventDeferred}
	now := time.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// Intake: two jobs accepted (one scheduled), one duplicate at the outbox, a system reply
	// (no events).
	if _, err := o.Submit(ctx, relay.Stored{}, accepted)(); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Submit(ctx, relay.Stored{}, accepted, deferred)(); err != nil {
		t.Fatal(err)
	}
	out.dup = true
	if dup, _ := o.Submit(ctx, relay.Stored{}, accepted)(); !dup {
		t.Fatal("the wrapper lost the duplicate answer")
	}
	out.dup = false
	_, _ = o.Submit(ctx, relay.Stored{})()

	// Dispatcher: state changes with their effects.
	must(o.Ack(ctx, "j1", relay.EventSent, fxOf(relay.EventSent)))
	must(o.Ack(ctx, "j2", relay.EventFailed, fxOf(relay.EventFailed)))
	must(o.Ack(ctx, "j3", relay.EventSuppressed, fxOf(relay.EventSuppressed)))
	must(o.Ack(ctx, "j4", relay.EventUnknown, fxOf(relay.EventUnknown)))
	must(o.Retry(ctx, "j5", now, "transient", fxOf(relay.EventRetrying)))
	must(o.Retry(ctx, "j5", now, "transient", fxOf(relay.EventRetrying)))
	must(o.Defer(ctx, "j6", now, "quiet_hours", fxOf(relay.EventDeferred)))
	out.expire = []relay.Stored{{Job: relay.Job{ID: "x1"}}, {Job: relay.Job{ID: "x2"}}}
	if got, err := o.Expire(ctx, now, func(relay.Stored) relay.Effects { return fxOf(relay.EventExpired) }); err != nil || len(got) != 2 {
		t.Fatalf("Expire through the wrapper = %v, %v", got, err)
	}
	out.expire = nil

	// Responder: a receipt's events commit with the sent record.
	must(si.Commit(ctx, fxOf(relay.EventDelivered, relay.EventRead)))

	// Intake and responder events through the sink.
	for _, e := range []relay.EventType{relay.EventDuplicate, relay.EventRejected, relay.EventRejected,
		relay.EventOptedOut, relay.EventType("brand_new")} {
		must(s.Publish(ctx, relay.Event{Event: e}))
	}
	must(s.PublishInbound(ctx, relay.Inbound{Channel: relay.ChannelSignal}))

	// Nothing that failed to store is counted.
	sink.fail.Store(true)
	out.err = errors.New("disk full")
	sent.err = errors.New("disk full")
	if _, err := o.Submit(ctx, relay.Stored{}, accepted)(); err == nil {
		t.Fatal("Submit: the wrapper lost the error")
	}
	for name, err := range map[string]error{
		"Publish":        s.Publish(ctx, relay.Event{Event: relay.EventSent}),
		"PublishInbound": s.PublishInbound(ctx, relay.Inbound{Channel: relay.ChannelSignal}),
		"Ack":            o.Ack(ctx, "j7", relay.EventSent, fxOf(relay.EventSent)),
		"Retry":          o.Retry(ctx, "j7", now, "x", fxOf(relay.EventRetrying)),
		"Defer":          o.Defer(ctx, "j7", now, "x", fxOf(relay.EventDeferred)),
		"Commit":         si.Commit(ctx, fxOf(relay.EventDelivered)),
	} {
		if err == nil {
			t.Errorf("%s: the wrapper lost the error", name)
		}
	}
	// Expire failing after removing one job: that one's events were stored with it.
	out.expire = []relay.Stored{{Job: relay.Job{ID: "x3"}}}
	if _, err := o.Expire(ctx, now, func(relay.Stored) relay.Effects { return fxOf(relay.EventExpired) }); err == nil {
		t.Error("Expire: the wrapper lost the error")
	}

	check(t, scrape(t, base), []sample{
		{"relay_jobs_total", []string{"result", "accepted"}, 2},
		{"relay_jobs_total", []string{"result", "duplicate"}, 1},
		{"relay_jobs_total", []string{"result", "rejected"}, 2},
		{"relay_events_total", []string{"event", "accepted"}, 2},
		{"relay_events_total", []string{"event", "deferred"}, 2},
		{"relay_events_total", []string{"event", "duplicate"}, 1},
		{"relay_events_total", []string{"event", "rejected"}, 2},
		{"relay_events_total", []string{"event", "sent"}, 1},
		{"relay_events_total", []string{"event", "failed"}, 1},
		{"relay_events_total", []string{"event", "expired"}, 3},
		{"relay_events_total", []string{"event", "unknown"}, 1},
		{"relay_events_total", []string{"event", "suppressed"}, 1},
		{"relay_events_total", []string{"event", "retrying"}, 2},
		{"relay_events_total", []string{"event", "delivered"}, 1},
		{"relay_events_total", []string{"event", "read"}, 1},
		{"relay_events_total", []string{"event", "opted_out"}, 1},
		{"relay_events_total", []string{"event", "opted_in"}, 0},
		{"relay_events_total", []string{"event", "brand_new"}, 1},
		{"relay_inbound_total", []string{"channel", "signal"}, 1},
	})
}

type indexedOutbox struct {
	fakeOutbox
	seen map[string]bool
}

func (f *indexedOutbox) Seen(id string) (bool, error) { return f.seen[id], nil }

// TestEvents_OutboxForwardsSeen: the intake asks its outbox Seen(id); the counting wrapper
// answers with next's answer.
func TestEvents_OutboxForwardsSeen(t *testing.T) {
	ev := NewEvents()
	w := ev.Outbox(&indexedOutbox{seen: map[string]bool{"a": true}})
	if got, _ := w.Seen("a"); !got {
		t.Error("Seen(a) = false through the wrapper, want true")
	}
	if got, _ := w.Seen("b"); got {
		t.Error("Seen(b) = true through the wrapper, want false")
	}
}

// TestMetrics_QuarantinedOutbox opens a real outbox whose database was damaged (as buffer's
// own failure tests do) and reads the gauge and the queue figures from it.
func TestMetrics_QuarantinedOutbox(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	b, err := buffer.Open(dir, buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sources := func(b *buffer.Store) Sources { return Sources{Outbox: b, Quarantined: b.Quarantined} }
	base := serve(t, New(nil, sources(b), nil).Handler())
	check(t, scrape(t, base), []sample{{"relay_outbox_quarantined", nil, 0}, {"relay_outbox_depth", nil, 0}})
	if _, err := b.Put(context.Background(), buffer.Message{ID: "a", To: "+4915112345678", AcceptedAt: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	fams := scrape(t, base)
	check(t, fams, []sample{{"relay_outbox_depth", nil, 1}})
	if age, _ := value(fams, "relay_outbox_oldest_age_seconds"); age < 60 || age > 3600 {
		t.Errorf("relay_outbox_oldest_age_seconds = %v, want about 60", age)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	if err := os.WriteFile(filepath.Join(dir, "MANIFEST"), bytes.Repeat([]byte("scribble"), 64), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err = buffer.Open(dir, buffer.Options{})
	if err != nil {
		t.Fatalf("Open after corruption: %v", err)
	}
	defer b.Close()
	if b.Quarantined() == "" {
		t.Fatal("the damaged database was not moved aside; the test cannot check the gauge")
	}
	base = serve(t, New(nil, sources(b), nil).Handler())
	check(t, scrape(t, base), []sample{{"relay_outbox_quarantined", nil, 1}, {"relay_outbox_depth", nil, 0}})
}

func TestMetrics_EveryRelayMetricHasHelpAndNoGlobalRegistry(t *testing.T) {
	w := &fakeWorld{modem: ModemReading{SignalKnown: true}}
	m := New(NewEvents(), w.sources(), nil)
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "relay_") {
			continue
		}
		names = append(names, f.GetName())
		if len(f.GetHelp()) < 20 {
			t.Errorf("%s: HELP %q says too little", f.GetName(), f.GetHelp())
		}
	}
	for _, want := range []string{"relay_outbox_depth", "relay_outbox_oldest_age_seconds", "relay_outbox_quarantined",
		"relay_jobs_total", "relay_events_total", "relay_signal_state", "relay_signal_restarts_total", "relay_mqtt_connected",
		"relay_mqtt_spool_depth", "relay_modem_signal_dbm", "relay_modem_registered", "relay_on_battery"} {
		if !slices.Contains(names, want) {
			t.Errorf("%s missing; have %v", want, names)
		}
	}
	global, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range global {
		if strings.HasPrefix(f.GetName(), "relay_") {
			t.Errorf("%s registered in the global default registry", f.GetName())
		}
	}
}

func TestListen_PortTaken(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	addr := held.Addr().String()
	srv, err := Listen(addr, nil)
	if err == nil {
		srv.Close()
		t.Fatal("Listen on a taken port succeeded")
	}
	var le *ListenError
	if !errors.As(err, &le) || le.Addr != addr {
		t.Fatalf("err = %v (%T), want *ListenError for %s", err, err, addr)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("err = %v, want it to wrap EADDRINUSE", err)
	}
	for _, want := range []string{addr, "metrics.listen", "address already in use", "another process"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestListen_BadAddress(t *testing.T) {
	_, err := Listen("256.0.0.1:1", nil)
	var le *ListenError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "256.0.0.1:1") {
		t.Fatalf("err = %v, want a *ListenError naming the address", err)
	}
}

func TestListen_EmptyAddressIsOff(t *testing.T) {
	srv, err := Listen("", nil)
	if srv != nil || err != nil {
		t.Fatalf("Listen(\"\") = %v, %v; want nil, nil", srv, err)
	}
	if err := srv.Serve(context.Background(), http.NotFoundHandler()); err != nil { // returns at once
		t.Errorf("nil Serve = %v", err)
	}
	if err := srv.Close(); err != nil || srv.Addr() != nil {
		t.Errorf("nil Close = %v, Addr = %v", err, srv.Addr())
	}
}

// TestServer_Serve_ShutdownWaitsForScrape cancels Serve while a scrape is in the handler: the
// scrape completes, Serve returns nil, and the port is free again.
func TestServer_Serve_ShutdownWaitsForScrape(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		<-release
		_, _ = w.Write([]byte("relay_x 1\n"))
	})
	srv, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, h) }()

	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		got <- resp.Status + " " + b.String()
	}()
	<-entered
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Serve returned %v with a scrape in flight", err)
	default:
	}
	close(release)
	if g := <-got; g != "200 OK relay_x 1\n" {
		t.Errorf("scrape during shutdown = %q, want 200 and the body", g)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve = %v, want nil after a clean shutdown", err)
	}
	again, err := Listen(addr, nil)
	if err != nil {
		t.Fatalf("the port was not released: %v", err)
	}
	_ = again.Close()
}

func TestServer_Serve_ListenerFails(t *testing.T) {
	srv, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = srv.ln.Close() // the listener dies under the server
	err = srv.Serve(context.Background(), http.NotFoundHandler())
	if !errors.Is(err, ErrServe) {
		t.Fatalf("Serve = %v, want ErrServe", err)
	}
}

// TestServer_Close_BeforeServe is the start-up that fails after Listen: the port is free again.
func TestServer_Close_BeforeServe(t *testing.T) {
	srv, err := Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr().String()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Listen(addr, nil)
	if err != nil {
		t.Fatalf("the port was not released: %v", err)
	}
	_ = again.Close()
}

func TestServer_Routes(t *testing.T) {
	base := serve(t, New(nil, Sources{}, nil).Handler())
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/", 200},
		{"GET", "/metrics", 200},
		{"GET", "/nope", 404},
		{"POST", "/metrics", 405},
	} {
		req, _ := http.NewRequest(tt.method, base+tt.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
		}
	}
}
