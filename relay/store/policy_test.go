package store_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shopkit/relay/buffer"
	"github.com/shopkit/relay/relay"
)

// settableClock is the pipeline's injected clock.
type settableClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settableClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *settableClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// A deferral (quiet hours) is not an attempt: the job's first real send is attempt 1, and the
// outbox keeps Attempts at 0 while it waits.
func TestDispatcher_DeferIsNotAnAttempt(t *testing.T) {
	clk := &settableClock{t: time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC)}
	sig := &fakeSignal{outcome: map[string][]relay.SendOutcome{}}
	r := newRigClock(t, t.TempDir(), sig, nil, relay.DispatcherConfig{Concurrency: 2, RetryMin: time.Second, RetryMax: time.Minute,
		PollEvery: 10 * time.Millisecond, Quiet: relay.QuietHours{Start: 21 * time.Hour, End: 8 * time.Hour, Location: time.UTC}}, clk.Now)
	defer r.close(t)
	ctx := context.Background()
	stop := runDispatcher(t, r.disp)
	if err := r.intake.HandleJob(ctx, job("q1", alice, `,"expires_at":"2026-11-23T00:00:00Z"`)); err != nil {
		t.Fatal(err)
	}
	var waiting buffer.Message
	eventually(t, "the job is deferred", func() bool {
		found := false
		_ = r.b.Each(func(m buffer.Message) bool {
			if m.ID == "q1" && m.LastError == "quiet_hours" && m.LeaseDeadline.IsZero() {
				waiting, found = m, true
			}
			return true
		})
		return found
	})
	if waiting.Attempts != 0 {
		t.Errorf("deferred job has Attempts %d, want 0", waiting.Attempts)
	}
	if want := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC); !waiting.NextAttempt.Equal(want) {
		t.Errorf("due at %v, want %v", waiting.NextAttempt, want)
	}
	clk.Set(time.Date(2026, 11, 22, 8, 1, 0, 0, time.UTC))
	r.disp.Kick()
	eventually(t, "the job is sent after quiet hours", func() bool {
		o, _, ok, _ := r.b.Outcome("q1")
		return ok && o == "sent"
	})
	stop()
	items, err := r.st.PeekAfter(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range items {
		var e relay.Event
		if err := json.Unmarshal(it.Payload, &e); err != nil {
			t.Fatal(err)
		}
		got = append(got, string(e.Event)+"/"+string(rune('0'+e.Attempt)))
	}
	if want := []string{"accepted/0", "deferred/0", "sent/1"}; !slices.Equal(got, want) {
		t.Errorf("events (event/attempt) %v, want %v", got, want)
	}
}

// An opted-out number receives nothing but the opt-out confirmation: the box's other replies
// (HELP, the START confirmation) queued before a STOP are suppressed at send time; every
// opt-out confirmation is sent.
func TestDispatcher_SystemRepliesAfterOptOut(t *testing.T) {
	for _, tc := range []struct {
		name     string
		keywords []string
		want     []string // outcome of each queued reply, in queue order
	}{
		{"help alone", []string{"HELP"}, []string{"sent"}},
		{"help then stop", []string{"HELP", "STOP"}, []string{"suppressed", "sent"}},
		{"stop then help", []string{"STOP", "HELP"}, []string{"sent", "sent"}}, // HELP after STOP is answered with the confirmation
		{"stop then start", []string{"STOP", "START"}, []string{"sent", "sent"}},
		{"stop start stop", []string{"STOP", "START", "STOP"}, []string{"sent", "suppressed", "sent"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sig := &fakeSignal{outcome: map[string][]relay.SendOutcome{}}
			r := newRig(t, t.TempDir(), sig)
			defer r.close(t)
			ctx := context.Background()
			for _, kw := range tc.keywords {
				if err := r.resp.HandleMessage(ctx, relay.Message{From: alice, Text: kw, At: time.Now(), Channel: relay.ChannelSignal}); err != nil {
					t.Fatal(err)
				}
			}
			var ids []string
			_ = r.b.Each(func(m buffer.Message) bool { ids = append(ids, m.ID); return true })
			if len(ids) != len(tc.want) {
				t.Fatalf("%d replies queued, want %d", len(ids), len(tc.want))
			}
			stop := runDispatcher(t, r.disp)
			eventually(t, "every reply is finished", func() bool { return r.b.Depth() == 0 })
			stop()
			var got []string
			for _, id := range ids {
				o, _, _, err := r.b.Outcome(id)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, o)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("outcomes %v, want %v", got, tc.want)
			}
			if n := len(sig.sends()); n != count(tc.want, "sent") {
				t.Errorf("%d sends, want %d", n, count(tc.want, "sent"))
			}
		})
	}
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// Records written before System replies had a kind read as they did then (exempt from the
// opt-out check); new records say which reply they are.
func TestStore_SystemKindEncoding(t *testing.T) {
	b, st := openStore(t)
	ctx := context.Background()
	legacy := `{"job":{"id":"old","to":"+4915112345678","text":"Abgemeldet."},"body":"Abgemeldet.","system":true}`
	if _, err := b.Put(ctx, buffer.Message{ID: "old", To: "+4915112345678", Payload: []byte(legacy)}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []relay.Stored{
		{Job: relay.Job{ID: "conf", To: "+4915112345679"}, System: true, OptOutConfirmation: true},
		{Job: relay.Job{ID: "help", To: "+4915112345670"}, System: true},
		{Job: relay.Job{ID: "order", To: "+4915112345671"}},
	} {
		if _, err := st.Submit(ctx, s)(); err != nil {
			t.Fatal(err)
		}
	}
	leased, err := st.Lease(ctx, 10, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]bool{}
	for _, s := range leased {
		got[s.Job.ID] = [2]bool{s.System, s.OptOutConfirmation}
	}
	want := map[string][2]bool{"old": {true, true}, "conf": {true, true}, "help": {true, false}, "order": {false, false}}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: System, OptOutConfirmation = %v, want %v", id, got[id], w)
		}
	}
}
