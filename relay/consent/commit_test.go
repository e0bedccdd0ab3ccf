package consent

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// txStore is a Commit that stores the Write into the Policy's own Store (as the relay's one
// transaction does) and records what it was given; fail makes the next calls fail with
// nothing stored.
type txStore struct {
	t     *testing.T
	p     *Policy
	fail  bool
	calls []txCall
}

type txCall struct {
	wrote bool
	act   Action
}

var errTx = errors.New("injected commit failure")

func (s *txStore) commit(ctx context.Context, w *Write, act Action) error {
	if s.fail {
		return errTx
	}
	if w != nil {
		if err := s.p.cfg.Store.Set(ctx, w.Number, w.Record); err != nil {
			return err
		}
	}
	s.calls = append(s.calls, txCall{wrote: w != nil, act: act})
	return nil
}

// TestPolicy_Commit: every change goes through the Commit with its record and Action; a
// Commit that fails leaves nothing behind (so a redelivered request asks its question instead of
// hitting ErrPending), and the same call then does it all once.
func TestPolicy_Commit(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(p *Policy)
		call      func(p *Policy, c Commit) (Action, error)
		wantWrite bool
		wantEvent EventType
		wantReply bool
		wantConf  bool // the reply is the opt-out confirmation
		wantState State
	}{
		{name: "STOP", call: func(p *Policy, c Commit) (Action, error) { return p.HandleInbound(ctx, num, "Stop", t0, c) },
			wantWrite: true, wantEvent: EventOptedOut, wantReply: true, wantConf: true, wantState: StateOptedOut},
		{name: "START", call: func(p *Policy, c Commit) (Action, error) { return p.HandleInbound(ctx, num, "start", t0, c) },
			wantWrite: true, wantEvent: EventOptedIn, wantReply: true, wantState: StateOptedIn},
		{name: "HELP", call: func(p *Policy, c Commit) (Action, error) { return p.HandleInbound(ctx, num, "help", t0, c) },
			wantReply: true, wantState: StateNone},
		{name: "HELP when opted out",
			setup:     func(p *Policy) { must(t)(p.HandleInbound(ctx, num, "stop", t0, nil)) },
			call:      func(p *Policy, c Commit) (Action, error) { return p.HandleInbound(ctx, num, "hilfe", t0, c) },
			wantReply: true, wantConf: true, wantState: StateOptedOut},
		{name: "YES to an open question",
			setup: func(p *Policy) { must(t)(p.Request(ctx, num, t0, "web", "", "de", nil)) },
			call: func(p *Policy, c Commit) (Action, error) {
				return p.HandleInbound(ctx, num, "ja", t0.Add(time.Hour), c)
			},
			wantWrite: true, wantEvent: EventOptedIn, wantReply: true, wantState: StateOptedIn},
		{name: "request", call: func(p *Policy, c Commit) (Action, error) { return p.Request(ctx, num, t0, "web", "", "pl", c) },
			wantWrite: true, wantEvent: EventOptInRequested, wantReply: true, wantState: StatePending},
		{name: "P/consent request", call: func(p *Policy, c Commit) (Action, error) {
			return p.Record(ctx, Update{To: num, Consent: "request", At: t0, Source: "web"}, c)
		}, wantWrite: true, wantEvent: EventOptInRequested, wantReply: true, wantState: StatePending},
		{name: "request when opted in",
			setup:     func(p *Policy) { must(t)(p.HandleInbound(ctx, num, "start", t0, nil)) },
			call:      func(p *Policy, c Commit) (Action, error) { return p.Request(ctx, num, t0, "web", "", "pl", c) },
			wantEvent: EventOptedIn, wantState: StateOptedIn},
		{name: "P/consent opt_in", call: func(p *Policy, c Commit) (Action, error) {
			return p.Record(ctx, Update{To: num, Consent: "opt_in", At: t0, Source: "crm"}, c)
		}, wantWrite: true, wantEvent: EventOptedIn, wantState: StateOptedIn},
		{name: "P/consent opt_out", call: func(p *Policy, c Commit) (Action, error) {
			return p.Record(ctx, Update{To: num, Consent: "opt_out", At: t0}, c)
		}, wantWrite: true, wantEvent: EventOptedOut, wantState: StateOptedOut},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, st, c := newPolicy(t, nil)
			if tt.setup != nil {
				tt.setup(p)
			}
			before, _ := p.Get(ctx, num)
			sets := st.Sets()
			tx := &txStore{t: t, p: p, fail: true}

			// The commit fails: an error wrapping ErrStore and the commit's own, nothing kept.
			if _, err := tt.call(p, tx.commit); !errors.Is(err, ErrStore) || !errors.Is(err, errTx) {
				t.Fatalf("with a failing commit: err = %v, want ErrStore wrapping the commit's error", err)
			}
			if got := st.Sets(); got != sets {
				t.Fatalf("a failed commit wrote the store (%d sets, want %d)", got, sets)
			}
			if after, _ := p.Get(ctx, num); after.Status(c.Now()) != before.Status(c.Now()) || len(after.History) != len(before.History) {
				t.Fatalf("a failed commit changed the record: %+v, was %+v", after, before)
			}

			// The same call again: done once, in one commit.
			tx.fail = false
			a, err := tt.call(p, tx.commit)
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			if len(tx.calls) != 1 {
				t.Fatalf("commit called %d times, want 1", len(tx.calls))
			}
			got := tx.calls[0]
			if got.wrote != tt.wantWrite || got.act.Event != tt.wantEvent || (got.act.Reply != "") != tt.wantReply ||
				got.act.OptOutConfirmation != tt.wantConf {
				t.Errorf("commit got write=%v %+v; want write=%v event %q reply %v confirmation %v",
					got.wrote, got.act, tt.wantWrite, tt.wantEvent, tt.wantReply, tt.wantConf)
			}
			if a != got.act {
				t.Errorf("returned %+v, committed %+v", a, got.act)
			}
			rec, _ := p.Get(ctx, num)
			if s := rec.Status(c.Now()); s != tt.wantState {
				t.Errorf("state %q, want %q", s, tt.wantState)
			}
		})
	}
}

// A Write is the record as the Policy stores and reads it.
func TestPolicy_CommitWrite(t *testing.T) {
	p, st, _ := newPolicy(t, nil)
	var w *Write
	must(t)(p.HandleInbound(ctx, num, "STOP", t0, func(_ context.Context, got *Write, _ Action) error { w = got; return nil }))
	if w == nil || w.Number != num {
		t.Fatalf("write = %+v, want one for %s", w, num)
	}
	if st.Sets() != 0 {
		t.Fatal("the Policy wrote the store itself although a Commit was given")
	}
	var s storedRecord
	if err := json.Unmarshal(w.Record, &s); err != nil || s.V != 1 || s.State != StateOptedOut || !s.ByCustomer {
		t.Fatalf("write decodes to %+v, %v", s, err)
	}
	st.Put(num, w.Record)
	if d, _ := p.Allow(ctx, num, Transactional, &Proof{At: t0, Source: "x"}); d.Allowed || d.Code != CodeOptedOut {
		t.Fatalf("after storing the write: %+v, want opted out", d)
	}
}

// Forward and refusals commit nothing.
func TestPolicy_CommitNotCalled(t *testing.T) {
	p, _, _ := newPolicy(t, nil)
	called := 0
	c := func(context.Context, *Write, Action) error { called++; return nil }
	if a := must(t)(p.HandleInbound(ctx, num, "where is my order?", t0, c)); !a.Forward {
		t.Fatalf("text = %+v, want Forward", a)
	}
	if a := must(t)(p.HandleInbound(ctx, num, "yes", t0, c)); !a.Forward {
		t.Fatalf("YES without a question = %+v, want Forward", a)
	}
	must(t)(p.Request(ctx, num, t0, "web", "", "en", nil))
	if _, err := p.Request(ctx, num, t0, "web", "", "en", c); !errors.Is(err, ErrPending) {
		t.Fatalf("second request = %v, want ErrPending", err)
	}
	if called != 0 {
		t.Fatalf("commit called %d times, want 0", called)
	}
}

func TestPolicy_Keyword(t *testing.T) {
	p, _, _ := newPolicy(t, nil)
	for _, tt := range []struct {
		text string
		want Keyword
	}{{"STOP", KeywordStop}, {" стоп. ", KeywordStop}, {"Hilfe", KeywordHelp}, {"tak", KeywordYes}, {"please stop", KeywordNone}, {"", KeywordNone}} {
		if got := p.Keyword(tt.text); got != tt.want {
			t.Errorf("Keyword(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}
