package store_test

import (
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

	"github.com/shopkit/relay/buffer"
	"github.com/shopkit/relay/relay"
	"github.com/shopkit/relay/relay/consent"
	"github.com/shopkit/relay/relay/mqtt"
	"github.com/shopkit/relay/relay/store"
)

const bob = "+4915187654321"

// stored is everything a consent change can leave in the database.
type stored struct {
	state   map[string]consent.State // per number
	spool   []string                 // "events <event> <to>" or "inbound <from>|<from_uuid>|<text>"
	depth   int                      // outbox jobs
	journal []string                 // "<kind> <to> <outcome>"
}

func (s stored) String() string {
	return fmt.Sprintf("state %v, spool %q, %d jobs, journal %q", s.state, s.spool, s.depth, s.journal)
}

// snapshot reads what the database holds (the spool is peeked, not removed).
func snapshot(t *testing.T, st *store.Store, b *buffer.Store, numbers ...string) stored {
	t.Helper()
	pol, err := consent.New(consent.Config{Store: st.Consent(), Shop: "reader"})
	if err != nil {
		t.Fatal(err)
	}
	var s stored
	s.state = map[string]consent.State{}
	for _, n := range numbers {
		rec, err := pol.Get(context.Background(), n)
		if err != nil {
			t.Fatal(err)
		}
		s.state[n] = rec.Status(time.Now())
	}
	items, err := st.PeekAfter(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		switch it.Topic {
		case mqtt.TopicEvents:
			var e relay.Event
			if err := json.Unmarshal(it.Payload, &e); err != nil {
				t.Fatal(err)
			}
			s.spool = append(s.spool, "events "+string(e.Event)+" "+e.To)
		case mqtt.TopicInbound:
			var in relay.Inbound
			if err := json.Unmarshal(it.Payload, &in); err != nil {
				t.Fatal(err)
			}
			s.spool = append(s.spool, "inbound "+in.From+"|"+in.FromUUID+"|"+in.Text)
		}
	}
	s.depth = st.Depth()
	err = b.Journal().Range(time.Time{}, time.Now().Add(time.Hour), func(e buffer.Entry) bool {
		s.journal = append(s.journal, strings.TrimSpace(e.Kind+" "+e.To+" "+e.Outcome))
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (s stored) equal(o stored) bool {
	if len(s.state) != len(o.state) {
		return false
	}
	for k, v := range s.state {
		if o.state[k] != v {
			return false
		}
	}
	return slices.Equal(s.spool, o.spool) && s.depth == o.depth && slices.Equal(s.journal, o.journal)
}

var errInjected = errors.New("injected commit failure")

// TestResponder_KeywordOneTransaction: a keyword's consent change, its event, its journal line
// and its reply are stored together. A commit that fails (injected at the store, or a real
// failure of the buffer: a cancelled context, a reply id the outbox already holds) leaves none of
// them; handling the message again stores each exactly once.
func TestResponder_KeywordOneTransaction(t *testing.T) {
	type failure int
	const (
		hook failure = iota
		cancelled
	)
	tests := []struct {
		name    string
		setup   func(t *testing.T, r *rig)
		msg     relay.Message
		fail    failure
		want    stored // after the retry
		sendsTo string // run the dispatcher: the reply goes to this number ("" for an SMS reply: not run)
	}{
		{name: "STOP on Signal", msg: relay.Message{From: alice, Text: "STOP", Channel: relay.ChannelSignal},
			want: stored{state: map[string]consent.State{alice: consent.StateOptedOut},
				spool: []string{"events opted_out " + alice}, depth: 1, journal: []string{"opted_out " + alice + " keyword"}},
			sendsTo: alice},
		{name: "STOP on SMS, a real failure (context cancelled)", fail: cancelled,
			msg: relay.Message{From: alice, Text: "stopp", Channel: relay.ChannelSMS},
			want: stored{state: map[string]consent.State{alice: consent.StateOptedOut},
				spool: []string{"events opted_out " + alice}, depth: 1, journal: []string{"opted_out " + alice + " keyword"}}},
		{name: "START", msg: relay.Message{From: alice, Text: "Start", Channel: relay.ChannelSignal},
			want: stored{state: map[string]consent.State{alice: consent.StateOptedIn},
				spool: []string{"events opted_in " + alice}, depth: 1, journal: []string{"opted_in " + alice + " keyword"}}},
		{name: "HELP (no change: the reply and the journal line)", msg: relay.Message{From: alice, Text: "hilfe", Channel: relay.ChannelSignal},
			want: stored{state: map[string]consent.State{alice: consent.StateNone}, depth: 1, journal: []string{alice + " keyword"}}},
		{name: "YES to a double opt-in question",
			setup: func(t *testing.T, r *rig) {
				if err := r.intake.HandleConsent(context.Background(), []byte(`{"to":"`+alice+`","consent":"request","source":"web"}`)); err != nil {
					t.Fatal(err)
				}
			},
			msg: relay.Message{From: alice, Text: "ja", Channel: relay.ChannelSignal},
			want: stored{state: map[string]consent.State{alice: consent.StateOptedIn},
				spool: []string{"events optin_requested " + alice, "events opted_in " + alice}, depth: 2,
				journal: []string{"optin_requested " + alice + " consent_record", "opted_in " + alice + " keyword"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, t.TempDir(), &fakeSignal{outcome: map[string][]relay.SendOutcome{}})
			defer r.close(t)
			ctx := context.Background()
			if tt.setup != nil {
				tt.setup(t, r)
			}
			before := snapshot(t, r.st, r.b, alice)
			failCtx := ctx
			switch tt.fail {
			case hook:
				store.SetApplyHook(r.st, func() error { return errInjected })
			case cancelled:
				c, cancel := context.WithCancel(ctx)
				cancel()
				failCtx = c
			}
			if err := r.resp.HandleMessage(failCtx, tt.msg); err == nil {
				t.Fatal("HandleMessage with a failing commit = nil; the message would be taken as handled")
			}
			if got := snapshot(t, r.st, r.b, alice); !got.equal(before) {
				t.Fatalf("a failed commit left something:\n got %v\nwant %v", got, before)
			}
			store.SetApplyHook(r.st, nil)
			if err := r.resp.HandleMessage(ctx, tt.msg); err != nil {
				t.Fatalf("handled again: %v", err)
			}
			if got := snapshot(t, r.st, r.b, alice); !got.equal(tt.want) {
				t.Fatalf("after handling it again:\n got %v\nwant %v", got, tt.want)
			}
			if tt.sendsTo == "" {
				return
			}
			stop := runDispatcher(t, r.disp)
			eventually(t, "the reply is sent", func() bool { return r.st.Depth() == 0 })
			stop()
			sends := r.signal.sends()
			if len(sends) != 1 || !strings.HasPrefix(sends[0], tt.sendsTo+"|") {
				t.Fatalf("sends %q, want one reply to %s", sends, tt.sendsTo)
			}
		})
	}
}

// A reply whose id the outbox already holds is a Duplicate Put: the buffer stores none of its
// extras, so the STOP's record and event are not stored either, and the error says so.
func TestResponder_KeywordDuplicateReplyStoresNothing(t *testing.T) {
	dir := t.TempDir()
	frozen := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return frozen }
	cfg := relay.DispatcherConfig{Concurrency: 1, RetryMin: time.Second, RetryMax: time.Minute}
	r := newRigClock(t, dir, &fakeSignal{outcome: map[string][]relay.SendOutcome{}}, nil, cfg, now)
	ctx := context.Background()
	if err := r.resp.HandleMessage(ctx, relay.Message{From: alice, Text: "HELP", Channel: relay.ChannelSignal, At: frozen}); err != nil {
		t.Fatal(err)
	}
	r.close(t)
	// A new process with the same clock numbers its first reply as the last one did.
	r = newRigClock(t, dir, &fakeSignal{outcome: map[string][]relay.SendOutcome{}}, nil, cfg, now)
	defer r.close(t)
	before := snapshot(t, r.st, r.b, alice)
	err := r.resp.HandleMessage(ctx, relay.Message{From: alice, Text: "STOP", Channel: relay.ChannelSignal, At: frozen})
	if !errors.Is(err, store.ErrDuplicateReply) {
		t.Fatalf("STOP with a colliding reply id = %v, want ErrDuplicateReply", err)
	}
	if got := snapshot(t, r.st, r.b, alice); !got.equal(before) {
		t.Fatalf("a duplicate reply left something:\n got %v\nwant %v", got, before)
	}
}

// TestIntake_ConsentRecordOneTransaction: a P/consent record's change, its event, its journal
// line and (for request) the question commit together. The failed delivery is not acknowledged
// and leaves nothing; its redelivery does all of it once (request: it asks the question rather
// than finding it "already pending"); a further copy changes nothing.
func TestIntake_ConsentRecordOneTransaction(t *testing.T) {
	tests := []struct {
		name  string
		rec   string
		want  stored
		again stored // after a third copy; zero: same as want
	}{
		{name: "request", rec: `{"to":"` + alice + `","consent":"request","source":"web","lang":"pl"}`,
			want: stored{state: map[string]consent.State{alice: consent.StatePending}, spool: []string{"events optin_requested " + alice},
				depth: 1, journal: []string{"optin_requested " + alice + " consent_record"}}},
		{name: "opt_in", rec: `{"to":"` + alice + `","consent":"opt_in","source":"crm"}`,
			want: stored{state: map[string]consent.State{alice: consent.StateOptedIn}, spool: []string{"events opted_in " + alice},
				journal: []string{"opted_in " + alice + " consent_record"}},
			// A copy of an opt_in applies again (same state, a new event): the policy's rule, kept.
			again: stored{state: map[string]consent.State{alice: consent.StateOptedIn},
				spool:   []string{"events opted_in " + alice, "events opted_in " + alice},
				journal: []string{"opted_in " + alice + " consent_record", "opted_in " + alice + " consent_record"}}},
		{name: "opt_out", rec: `{"to":"` + alice + `","consent":"opt_out","source":"crm"}`,
			want: stored{state: map[string]consent.State{alice: consent.StateOptedOut}, spool: []string{"events opted_out " + alice},
				journal: []string{"opted_out " + alice + " consent_record"}},
			again: stored{state: map[string]consent.State{alice: consent.StateOptedOut},
				spool:   []string{"events opted_out " + alice, "events opted_out " + alice},
				journal: []string{"opted_out " + alice + " consent_record", "opted_out " + alice + " consent_record"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, t.TempDir(), &fakeSignal{outcome: map[string][]relay.SendOutcome{}})
			defer r.close(t)
			ctx := context.Background()
			before := snapshot(t, r.st, r.b, alice)
			store.SetApplyHook(r.st, func() error { return errInjected })
			if err := r.intake.HandleConsent(ctx, []byte(tt.rec)); !errors.Is(err, errInjected) {
				t.Fatalf("HandleConsent with a failing commit = %v, want the failure (not acknowledged)", err)
			}
			if got := snapshot(t, r.st, r.b, alice); !got.equal(before) {
				t.Fatalf("a failed commit left something:\n got %v\nwant %v", got, before)
			}
			store.SetApplyHook(r.st, nil)
			if err := r.intake.HandleConsent(ctx, []byte(tt.rec)); err != nil {
				t.Fatalf("redelivery: %v", err)
			}
			if got := snapshot(t, r.st, r.b, alice); !got.equal(tt.want) {
				t.Fatalf("after the redelivery:\n got %v\nwant %v", got, tt.want)
			}
			if err := r.intake.HandleConsent(ctx, []byte(tt.rec)); err != nil {
				t.Fatalf("third copy: %v", err)
			}
			want := tt.want
			if tt.again.state != nil {
				want = tt.again
			}
			if got := snapshot(t, r.st, r.b, alice); !got.equal(want) {
				t.Fatalf("after a third copy:\n got %v\nwant %v", got, want)
			}
		})
	}
}

// uuidSignal is fakeSignal that reports the recipient's Signal account uuid, as signal-cli's
// send results do.
type uuidSignal struct {
	*fakeSignal
	uuids map[string]string
}

func (s uuidSignal) Send(ctx context.Context, to, text string) relay.SendResult {
	res := s.fakeSignal.Send(ctx, to, text)
	res.UUID = s.uuids[to]
	return res
}

const aliceUUID = "2b9e6c1a-4f0d-4c8e-9a57-1d3b5e7f9a01"

// A Signal send remembers the recipient's uuid with its Ack; a send without one remembers nothing.
func TestDispatcher_RemembersRecipientUUID(t *testing.T) {
	sig := uuidSignal{fakeSignal: &fakeSignal{outcome: map[string][]relay.SendOutcome{}}, uuids: map[string]string{alice: aliceUUID}}
	r := newRigWith(t, t.TempDir(), sig, nil, relay.DispatcherConfig{Concurrency: 2, RetryMin: time.Second, RetryMax: time.Minute})
	defer r.close(t)
	ctx := context.Background()
	stop := runDispatcher(t, r.disp)
	for _, j := range [][]byte{job("a1", alice, ""), job("b1", bob, "")} {
		if err := r.intake.HandleJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "both sent", func() bool { return len(sig.sends()) == 2 && r.st.Depth() == 0 })
	stop()
	if n, ok, err := r.st.Recipient(aliceUUID); err != nil || !ok || n != alice {
		t.Errorf("Recipient(alice's uuid) = %q, %v, %v; want %s", n, ok, err, alice)
	}
	if n, ok, err := r.st.Recipient(strings.ToUpper(aliceUUID)); err != nil || !ok || n != alice {
		t.Errorf("Recipient(upper case) = %q, %v, %v; want %s", n, ok, err, alice)
	}
	if n, ok, err := r.st.Recipient("0f0e0d0c-0000-4000-8000-000000000000"); err != nil || ok {
		t.Errorf("Recipient(never sent to) = %q, %v, %v; want not found", n, ok, err)
	}
}

// logLines keeps what a logger writes.
type logLines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *logLines) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestResponder_HandleMessageUUID: a sender known only by uuid is known by the number our sends
// to that uuid remembered; a keyword from a uuid we never sent to goes to P/inbound with the
// uuid, logged (masked) and counted; the number wins when both are given.
func TestResponder_HandleMessageUUID(t *testing.T) {
	const stranger = "9d8c7b6a-5f4e-4d3c-8b2a-190807060504"
	tests := []struct {
		name    string
		msg     relay.Message
		want    stored
		unknown int64
	}{
		{name: "known uuid STOP", msg: relay.Message{FromUUID: aliceUUID, Text: "STOP"},
			want: stored{state: map[string]consent.State{alice: consent.StateOptedOut, bob: consent.StateNone},
				spool: []string{"events opted_out " + alice}, depth: 1, journal: []string{"opted_out " + alice + " keyword"}}},
		{name: "known uuid in upper case", msg: relay.Message{FromUUID: strings.ToUpper(aliceUUID), Text: "стоп"},
			want: stored{state: map[string]consent.State{alice: consent.StateOptedOut, bob: consent.StateNone},
				spool: []string{"events opted_out " + alice}, depth: 1, journal: []string{"opted_out " + alice + " keyword"}}},
		{name: "unknown uuid STOP", msg: relay.Message{FromUUID: stranger, Text: "STOP"}, unknown: 1,
			want: stored{state: map[string]consent.State{alice: consent.StateNone, bob: consent.StateNone},
				spool: []string{"inbound |" + stranger + "|STOP"}}},
		{name: "number and uuid: the number wins", msg: relay.Message{From: bob, FromUUID: aliceUUID, Text: "stop"},
			want: stored{state: map[string]consent.State{alice: consent.StateNone, bob: consent.StateOptedOut},
				spool: []string{"events opted_out " + bob}, depth: 1, journal: []string{"opted_out " + bob + " keyword"}}},
		{name: "known uuid, ordinary text", msg: relay.Message{FromUUID: aliceUUID, Text: "where is my parcel?"},
			want: stored{state: map[string]consent.State{alice: consent.StateNone, bob: consent.StateNone},
				spool: []string{"inbound " + alice + "|" + aliceUUID + "|where is my parcel?"}}},
		{name: "unknown uuid, ordinary text", msg: relay.Message{FromUUID: stranger, Text: "hello"},
			want: stored{state: map[string]consent.State{alice: consent.StateNone, bob: consent.StateNone},
				spool: []string{"inbound |" + stranger + "|hello"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := buffer.Open(t.TempDir(), buffer.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := b.Close(); err != nil {
					t.Fatal(err)
				}
			}()
			st := store.New(b, nil)
			pol, err := consent.New(consent.Config{Store: st.Consent(), Shop: "Blumenladen"})
			if err != nil {
				t.Fatal(err)
			}
			ck := relay.ConsentPolicy(pol)
			logs := &logLines{}
			log := slog.New(slog.NewTextHandler(logs, nil))
			in := relay.NewIntake(relay.JobDefaults{Lang: "de", Expiry: 24 * time.Hour}, relay.IntakeDeps{Outbox: st, Events: st, Consent: ck})
			resp := relay.NewResponder(in, ck, st, st, st, log, nil)
			ctx := context.Background()
			// What a Signal send's Ack remembers (Effects.Recipient).
			if err := st.Commit(ctx, relay.Effects{Recipient: &relay.SignalRecipient{Number: alice, UUID: aliceUUID}}); err != nil {
				t.Fatal(err)
			}
			m := tt.msg
			m.Channel, m.At, m.SignalTimestamp = relay.ChannelSignal, time.Now(), 1763740800999
			if err := resp.HandleMessage(ctx, m); err != nil {
				t.Fatal(err)
			}
			if got := snapshot(t, st, b, alice, bob); !got.equal(tt.want) {
				t.Errorf("stored:\n got %v\nwant %v", got, tt.want)
			}
			if got := resp.UnknownUUIDKeywords(); got != tt.unknown {
				t.Errorf("UnknownUUIDKeywords() = %d, want %d", got, tt.unknown)
			}
			out := logs.String()
			if tt.unknown > 0 && !strings.Contains(out, "uuid=****0504") {
				t.Errorf("no masked warning for the unknown uuid: %q", out)
			}
			if strings.Contains(out, stranger) || strings.Contains(out, aliceUUID) || strings.Contains(out, "15112345678") {
				t.Errorf("a log shows a whole uuid or number: %q", out)
			}
		})
	}
}
