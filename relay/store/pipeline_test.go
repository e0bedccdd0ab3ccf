package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopkit/relay/buffer"
	"github.com/shopkit/relay/relay"
	"github.com/shopkit/relay/relay/consent"
	"github.com/shopkit/relay/relay/store"
	"github.com/shopkit/relay/relay/template"
)

// fakeSignal answers sends with scripted outcomes per recipient (Sent by default) and records
// what was sent, in order.
type fakeSignal struct {
	mu      sync.Mutex
	sent    []string // "to|text"
	outcome map[string][]relay.SendOutcome
	ts      int64
}

func (f *fakeSignal) Send(_ context.Context, to, text string) relay.SendResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := relay.OutcomeSent
	if q := f.outcome[to]; len(q) > 0 {
		o, f.outcome[to] = q[0], q[1:]
	}
	if o != relay.OutcomeSent {
		return relay.SendResult{Outcome: o, Detail: o.String()}
	}
	f.ts++
	f.sent = append(f.sent, to+"|"+text)
	return relay.SendResult{Outcome: relay.OutcomeSent, Timestamp: 1763740800000 + f.ts}
}

func (f *fakeSignal) Trust(context.Context, string) error { return nil }

func (f *fakeSignal) sends() []string { f.mu.Lock(); defer f.mu.Unlock(); return slices.Clone(f.sent) }

type rig struct {
	st     *store.Store
	b      *buffer.Store
	intake *relay.Intake
	disp   *relay.Dispatcher
	resp   *relay.Responder
	signal *fakeSignal
}

func newRig(t *testing.T, dir string, sig *fakeSignal) *rig {
	t.Helper()
	return newRigWith(t, dir, sig, nil, relay.DispatcherConfig{Concurrency: 4, RetryMin: time.Second, RetryMax: time.Minute})
}

// newRigWith is newRig with a modem (sms may be nil) and a dispatcher policy.
func newRigWith(t *testing.T, dir string, sig relay.Signal, sms relay.SMS, cfg relay.DispatcherConfig) *rig {
	t.Helper()
	return newRigClock(t, dir, sig, sms, cfg, nil)
}

// newRigClock is newRigWith with the pipeline's clock (nil: time.Now).
func newRigClock(t *testing.T, dir string, sig relay.Signal, sms relay.SMS, cfg relay.DispatcherConfig, now func() time.Time) *rig {
	t.Helper()
	b, err := buffer.Open(dir, buffer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(b, nil)
	pol, err := consent.New(consent.Config{Store: st.Consent(), Shop: "Blumenladen"})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := template.New(template.Config{Shop: "Blumenladen", DefaultLang: "de"})
	if err != nil {
		t.Fatal(err)
	}
	ck := relay.ConsentPolicy(pol)
	r := &rig{st: st, b: b}
	r.signal, _ = sig.(*fakeSignal)
	deps := relay.DispatcherDeps{Outbox: st, Signal: sig, Consent: ck, Now: now}
	if sms != nil {
		deps.SMS = sms
	}
	r.disp = relay.NewDispatcher(cfg, deps)
	r.intake = relay.NewIntake(relay.JobDefaults{Lang: "de", Expiry: 24 * time.Hour},
		relay.IntakeDeps{Outbox: st, Events: st, Renderer: relay.TemplateRenderer(tr), Consent: ck, OnAccepted: r.disp.Kick, Now: now})
	r.resp = relay.NewResponder(r.intake, ck, st, st, st, nil, now)
	return r
}

func (r *rig) close(t *testing.T) {
	if err := r.b.Close(); err != nil {
		t.Fatal(err)
	}
}

// events drains the MQTT spool: "id event" for jobs, "to event" for consent events.
func (r *rig) events(t *testing.T) []string {
	t.Helper()
	items, err := r.st.PeekAfter(0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, it := range items {
		var e relay.Event
		if err := json.Unmarshal(it.Payload, &e); err != nil {
			t.Fatal(err)
		}
		who := e.ID
		if who == "" {
			who = e.To
		}
		out = append(out, who+" "+string(e.Event))
	}
	if len(items) > 0 {
		if err := r.st.Remove(context.Background(), items[len(items)-1].Seq); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

const alice = "+4915112345678"

func job(id, to, extra string) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"to":%q,"template":"order_shipped","vars":{"order":"1042","carrier":"DHL","url":"https://t.example/1"},"consent":{"at":"2026-11-20T12:00:00Z","source":"checkout"}%s}`, id, to, extra))
}

// runDispatcher runs d until the returned stop is called; stop waits for Run to return and
// fails the test if it returned an error.
func runDispatcher(t *testing.T, d *relay.Dispatcher) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	return func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("dispatcher Run: %v", err)
		}
	}
}

// eventually polls cond until it holds; the deadline only guards against a hang. (The
// outbox is real Badger doing real I/O, so these tests run in real time, not in a synctest
// bubble; the dispatcher is kicked by every accepted job, so nothing waits for a poll.)
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(20 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("never happened: %s", what)
		}
	}
}

func TestPipeline_AcceptSendReceiptDuplicate(t *testing.T) {
	sig := &fakeSignal{outcome: map[string][]relay.SendOutcome{}}
	r := newRig(t, t.TempDir(), sig)
	defer r.close(t)
	ctx := context.Background()
	stop := runDispatcher(t, r.disp)

	for _, id := range []string{"a1", "a2", "a3"} {
		if err := r.intake.HandleJob(ctx, job(id, alice, "")); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "three sends", func() bool { return len(sig.sends()) >= 3 })
	eventually(t, "three sent events", func() bool { return r.st.SpoolLen() >= 6 })
	if err := r.intake.HandleJob(ctx, job("a1", alice, "")); err != nil {
		t.Fatal(err)
	}
	if err := r.intake.HandleJob(ctx, []byte(`{"id":"bad","to":"+4915112345678","template":"order_shipped","vars":{"order":"1"}}`)); err != nil {
		t.Fatal(err)
	}
	if got := len(sig.sends()); got != 3 {
		t.Fatalf("sent %d messages, want 3: %v", got, sig.sends())
	}
	for _, s := range sig.sends() {
		if want := alice + "|"; !strings.HasPrefix(s, want) || !strings.Contains(s, "1042") || !strings.Contains(s, "Blumenladen") {
			t.Errorf("send %q does not carry the order and the shop", s)
		}
	}
	// Receipts for the second send: delivered, then read, each once.
	if err := r.resp.HandleReceipt(ctx, relay.Receipt{From: alice, Timestamps: []int64{1763740800002}, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := r.resp.HandleReceipt(ctx, relay.Receipt{Read: true, From: alice, Timestamps: []int64{1763740800002, 99}, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := r.resp.HandleReceipt(ctx, relay.Receipt{Read: true, From: alice, Timestamps: []int64{1763740800002}, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	got := r.events(t)
	want := []string{"a1 accepted", "a2 accepted", "a3 accepted", "a1 sent", "a2 sent", "a3 sent",
		"a1 duplicate", "bad rejected", "a2 delivered", "a2 read"}
	if !sameEvents(got, want) {
		t.Errorf("events\n got %v\nwant %v", got, want)
	}
	stop()
}

func TestPipeline_StopKeywordSuppressesQueuedJobs(t *testing.T) {
	sig := &fakeSignal{outcome: map[string][]relay.SendOutcome{}}
	r := newRig(t, t.TempDir(), sig)
	defer r.close(t)
	ctx := context.Background()
	if err := r.intake.HandleJob(ctx, job("b1", alice, "")); err != nil {
		t.Fatal(err)
	}
	if err := r.resp.HandleMessage(ctx, relay.Message{From: alice, Text: "Stopp!", At: time.Now(), Channel: relay.ChannelSignal}); err != nil {
		t.Fatal(err)
	}
	stop := runDispatcher(t, r.disp)
	eventually(t, "the queued job is suppressed", func() bool {
		o, _, ok, _ := r.b.Outcome("b1")
		return ok && o == "suppressed"
	})
	eventually(t, "the confirmation is sent", func() bool { return len(sig.sends()) == 1 })
	stop()
	sends := sig.sends()
	// Only the opt-out confirmation reaches the customer; the queued order is suppressed.
	if len(sends) != 1 || !strings.Contains(sends[0], "Blumenladen") {
		t.Fatalf("sends = %v, want only the opt-out confirmation", sends)
	}
	got := r.events(t)
	want := []string{"b1 accepted", alice + " opted_out", "b1 suppressed"}
	if !sameEvents(got, want) {
		t.Errorf("events\n got %v\nwant %v", got, want)
	}
}

func TestPipeline_UnknownOutcomeAfterCrash(t *testing.T) {
	for _, tc := range []struct {
		delivery string
		resent   bool
		last     string
	}{
		{"at_least_once", true, "sent"},
		{"at_most_once", false, "unknown"},
	} {
		t.Run(tc.delivery, func(t *testing.T) {
			dir := t.TempDir()
			sig := &fakeSignal{outcome: map[string][]relay.SendOutcome{}}
			r := newRig(t, dir, sig)
			ctx := context.Background()
			if err := r.intake.HandleJob(ctx, job("c1", alice, `,"delivery":"`+tc.delivery+`"`)); err != nil {
				t.Fatal(err)
			}
			// A send starts (marked durably), and the box dies before the reply.
			leased, err := r.st.Lease(ctx, 1, time.Now())
			if err != nil || len(leased) != 1 {
				t.Fatalf("lease: %v %v", leased, err)
			}
			if err := r.st.MarkSending(ctx, "c1"); err != nil {
				t.Fatal(err)
			}
			r.close(t)

			r = newRig(t, dir, sig)
			defer r.close(t)
			stop := runDispatcher(t, r.disp)
			eventually(t, "the job is finished", func() bool {
				o, _, ok, _ := r.b.Outcome("c1")
				return ok && o == tc.last
			})
			stop()
			if got := len(sig.sends()) == 1; got != tc.resent {
				t.Errorf("resent = %v, want %v", got, tc.resent)
			}
			ev := r.events(t)
			if len(ev) == 0 || ev[len(ev)-1] != "c1 "+tc.last {
				t.Errorf("events %v, want the last to be c1 %s", ev, tc.last)
			}
		})
	}
}

// sameEvents compares two event lists as multisets whose per-job order must agree.
func sameEvents(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		return false
	}
	perJob := func(list []string) map[string][]string {
		m := map[string][]string{}
		for _, e := range list {
			var id, ev string
			fmt.Sscan(e, &id, &ev)
			m[id] = append(m[id], ev)
		}
		return m
	}
	pg, pw := perJob(got), perJob(want)
	for id := range pw {
		if !slices.Equal(pg[id], pw[id]) {
			return false
		}
	}
	return true
}
