package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/shopkit/relay/buffer"
	"github.com/shopkit/relay/relay"
	"github.com/shopkit/relay/relay/consent"
	"github.com/shopkit/relay/relay/store"
	"github.com/shopkit/relay/relay/template"
)

// hangingSignal answers nothing until the call's context ends (a hung signal-cli), and counts
// sends that overlap for one recipient.
type hangingSignal struct {
	mu      sync.Mutex
	active  map[string]int
	overlap int
	calls   int
}

func (h *hangingSignal) Send(ctx context.Context, to, _ string) relay.SendResult {
	h.mu.Lock()
	h.calls++
	h.active[to]++
	if h.active[to] > 1 {
		h.overlap++
	}
	h.mu.Unlock()
	<-ctx.Done()
	h.mu.Lock()
	h.active[to]--
	h.mu.Unlock()
	return relay.SendResult{Outcome: relay.OutcomeUnknown, Detail: "no reply: " + ctx.Err().Error()}
}

func (h *hangingSignal) Trust(context.Context, string) error { return nil }

// A send that hangs must be cut off before its lease ends: otherwise the outbox hands the job to
// a second worker, which sends it again while the first send is still in flight.
func TestDispatcher_SendNeverOutlivesItsLease(t *testing.T) {
	b, err := buffer.Open(t.TempDir(), buffer.Options{LeaseTimeout: 600 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	st := store.New(b, nil)
	pol, err := consent.New(consent.Config{Store: st.Consent(), Shop: "Blumenladen"})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := template.New(template.Config{Shop: "Blumenladen"})
	if err != nil {
		t.Fatal(err)
	}
	sig := &hangingSignal{active: map[string]int{}}
	ck := relay.ConsentPolicy(pol)
	disp := relay.NewDispatcher(relay.DispatcherConfig{Concurrency: 4, RetryMin: 100 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		LeaseMargin: 200 * time.Millisecond, PollEvery: 50 * time.Millisecond},
		relay.DispatcherDeps{Outbox: st, Signal: sig, Consent: ck})
	in := relay.NewIntake(relay.JobDefaults{Lang: "en", Expiry: time.Hour},
		relay.IntakeDeps{Outbox: st, Events: st, Renderer: relay.TemplateRenderer(tr), Consent: ck, OnAccepted: disp.Kick})
	stop := runDispatcher(t, disp)
	if err := in.HandleJob(context.Background(), job("h1", alice, "")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "three attempts", func() bool { sig.mu.Lock(); defer sig.mu.Unlock(); return sig.calls >= 3 })
	stop()
	if sig.overlap != 0 {
		t.Errorf("%d sends overlapped another send of the same job", sig.overlap)
	}
}
