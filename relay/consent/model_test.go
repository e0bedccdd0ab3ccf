package consent

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/shopkit/relay/relay/consent/consenttest"
)

// model is the reference: the rules of doc.go written as plainly as possible.
type model struct {
	state      State
	explicit   bool
	byCustomer bool
	at         time.Time
	pendUntil  time.Time // zero: no question open
}

func (m *model) pending(now time.Time) bool { return !m.pendUntil.IsZero() && now.Before(m.pendUntil) }

var (
	stopWords  = []string{"STOP", "stop!", " Stopp ", "СТОП", "стоп.", "Отписаться", "unsubscribe", "Rezygnuję", "ABMELDEN", "opt-out"}
	startWords = []string{"START", "start", "Старт!", "ANMELDEN", "subscribe", "zapisz"}
	helpWords  = []string{"help", "HILFE", "Помощь?", "pomoc"}
	yesWords   = []string{"yes", "YES!", "Да", "tak", "Ja."}
	otherWords = []string{"where is my parcel", "stop the delivery please", "thanks", "", "🙏", "yes please"}
)

// TestPolicy_RandomAgainstModel drives thousands of random consent changes and send decisions
// and compares every answer with the reference model. The property the shop cares about is
// counted separately: zero allows to an opted-out or unconsented number.
func TestPolicy_RandomAgainstModel(t *testing.T) {
	seeds := 3
	ops := 4000
	if testing.Short() {
		seeds, ops = 1, 2000
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { runModel(t, uint64(seed), ops) })
	}
}

func runModel(t *testing.T, seed uint64, ops int) {
	rng := rand.New(rand.NewPCG(seed, 99))
	const timeout = 24 * time.Hour
	noConsentOK := seed%2 == 1
	st := &consenttest.Store{}
	c := &clock{now: t0}
	p, err := New(Config{Store: st, Shop: "Shop", Now: c.Now, OptInTimeout: timeout, TransactionalWithoutConsent: noConsentOK})
	if err != nil {
		t.Fatal(err)
	}
	// Many numbers, so that some stay unconsented and some are never stopped.
	var numbers []string
	for i := range 10 {
		numbers = append(numbers, fmt.Sprintf("+49151123456%02d", i), fmt.Sprintf("+791612345%02d", i), fmt.Sprintf("+486012345%02d", i))
	}
	models := map[string]*model{}
	for _, n := range numbers {
		models[n] = &model{}
	}
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	var allowed, denied, badAllows int
	codes := map[string]int{}

	for i := range ops {
		c.Add(time.Duration(rng.IntN(6*3600)) * time.Second)
		now := c.Now()
		n := pick(numbers)
		m := models[n]
		failSet := rng.IntN(50) == 0
		st.FailSet(failSet)
		past := now.Add(-time.Duration(rng.IntN(4*3600)) * time.Second)
		where := func() string { return fmt.Sprintf("op %d on %s (model %+v)", i, n, *m) }

		switch op := rng.IntN(9); op {
		case 0: // shop opt_in
			src := pick([]string{"crm", "crm", ""})
			_, err := p.Record(ctx, Update{To: n, Consent: "opt_in", At: past, Source: src}, nil)
			var want error
			switch {
			case src == "":
				want = ErrInvalid
			case m.state == StateOptedOut && m.byCustomer:
				want = ErrOptedOut
			case m.state == StateOptedOut && m.at.After(past):
				want = ErrStale
			case failSet:
				want = ErrStore
			}
			checkErr(t, where(), err, want)
			if want == nil {
				*m = model{state: StateOptedIn, explicit: true, at: past}
			}
		case 1: // shop opt_out
			_, err := p.Record(ctx, Update{To: n, Consent: "opt_out", At: past}, nil)
			var want error
			switch {
			case m.state == StateOptedIn && m.at.After(past):
				want = ErrStale
			case failSet:
				want = ErrStore
			}
			checkErr(t, where(), err, want)
			if want == nil {
				*m = model{state: StateOptedOut, byCustomer: m.state == StateOptedOut && m.byCustomer, at: past}
			}
		case 2: // double opt-in request
			a, err := p.Request(ctx, n, past, "web", "", pick([]string{"en", "ru", "pl", "de", ""}), nil)
			var want error
			switch {
			case m.state == StateOptedOut:
				want = ErrOptedOut
			case m.state == StateOptedIn && m.explicit:
			case m.pending(now):
				want = ErrPending
			case failSet:
				want = ErrStore
			}
			checkErr(t, where(), err, want)
			if want == nil && !(m.state == StateOptedIn && m.explicit) {
				if a.Event != EventOptInRequested || a.Reply == "" {
					t.Fatalf("%s: request = %+v", where(), a)
				}
				m.pendUntil = now.Add(timeout)
			}
		case 3: // a job's proof recorded at intake
			err := p.RecordProof(ctx, n, Proof{At: past, Source: "checkout"})
			var want error
			if m.state == StateNone && failSet {
				want = ErrStore
			}
			checkErr(t, where(), err, want)
			if m.state == StateNone && want == nil {
				m.state, m.at = StateOptedIn, past
			}
		case 4, 5: // customer keywords and chatter
			var text string
			var kw Keyword
			switch rng.IntN(10) {
			case 0:
				text, kw = pick(stopWords), KeywordStop
			case 1, 2:
				text, kw = pick(startWords), KeywordStart
			case 3:
				text, kw = pick(helpWords), KeywordHelp
			case 4, 5, 6:
				text, kw = pick(yesWords), KeywordYes
			default:
				text, kw = pick(otherWords), KeywordNone
			}
			a, err := p.HandleInbound(ctx, n, text, now, nil)
			yesOK := kw == KeywordYes && m.pending(now) && m.state != StateOptedOut
			writes := kw == KeywordStop || kw == KeywordStart || yesOK
			if writes && failSet {
				checkErr(t, where(), err, ErrStore)
				break
			}
			checkErr(t, where(), err, nil)
			wantFwd := kw == KeywordNone || kw == KeywordYes && !yesOK
			if a.Forward != wantFwd || (!wantFwd && a.Reply == "") {
				t.Fatalf("%s: %q → %+v", where(), text, a)
			}
			switch {
			case kw == KeywordStop:
				if wantEv := m.state != StateOptedOut || !m.byCustomer; (a.Event == EventOptedOut) != wantEv {
					t.Fatalf("%s: STOP event %q, want change=%v", where(), a.Event, wantEv)
				}
				*m = model{state: StateOptedOut, byCustomer: true, at: latest(m, StateOptedOut, now)}
			case kw == KeywordStart:
				*m = model{state: StateOptedIn, explicit: true, at: latest(m, StateOptedIn, now)}
			case yesOK:
				*m = model{state: StateOptedIn, explicit: true, at: now}
			case kw == KeywordHelp && m.state == StateOptedOut:
				if a.Reply != p.text(a.Lang, func(r Replies) string { return r.OptedOut }) {
					t.Fatalf("%s: HELP to an opted-out number got %q", where(), a.Reply)
				}
			}
		default: // a send decision
			kind := pick([]string{string(Transactional), string(Transactional), string(Marketing)})
			var proof *Proof
			if rng.IntN(3) == 0 {
				proof = &Proof{At: past, Source: "checkout", Proof: "form-v3"}
			}
			d, err := p.Allow(ctx, n, Kind(kind), proof)
			var want Decision
			var wantErr error
			switch {
			case m.state == StateOptedOut:
				want = Decision{Code: CodeOptedOut}
			case Kind(kind) == Marketing && m.state == StateOptedIn && m.explicit:
				want = Decision{Allowed: true, Code: CodeConsent}
			case Kind(kind) == Marketing:
				want = Decision{Code: CodeNoOptIn}
			case m.state == StateOptedIn:
				want = Decision{Allowed: true, Code: CodeConsent}
			case proof != nil && failSet:
				wantErr = ErrStore
			case proof != nil:
				want = Decision{Allowed: true, Code: CodeJobProof, Recorded: true}
				m.state, m.at = StateOptedIn, past
			case noConsentOK:
				want = Decision{Allowed: true, Code: CodeConsentNotNeeded}
			default:
				want = Decision{Code: CodeNoConsent}
			}
			checkErr(t, where(), err, wantErr)
			if d != want {
				t.Fatalf("%s: Allow(%s, proof %v) = %+v, want %+v", where(), kind, proof != nil, d, want)
			}
			// The safety property, stated without the model's help beyond its state:
			consented := m.state == StateOptedIn && (Kind(kind) == Transactional || m.explicit) ||
				Kind(kind) == Transactional && noConsentOK && m.state != StateOptedOut
			if d.Allowed {
				allowed++
				if !consented {
					badAllows++
				}
			} else {
				denied++
				codes[d.Code]++
			}
		}
	}
	st.FailSet(false)
	if badAllows != 0 {
		t.Fatalf("%d allows to opted-out or unconsented numbers", badAllows)
	}
	// The run must have exercised both answers and every refusal, or it proves nothing.
	want := []string{CodeOptedOut, CodeNoOptIn}
	if !noConsentOK {
		want = append(want, CodeNoConsent)
	}
	for _, code := range want {
		if codes[code] == 0 {
			t.Errorf("no %s refusal in %d ops", code, ops)
		}
	}
	if allowed == 0 || denied == 0 {
		t.Errorf("allowed %d, denied %d", allowed, denied)
	}
	t.Logf("%d ops: %d allowed, %d denied %v", ops, allowed, denied, codes)
}

// latest is the time a repeated keyword leaves in force: a customer repeating what is already
// in force never moves the time back.
func latest(m *model, s State, now time.Time) time.Time {
	if m.state == s && m.at.After(now) {
		return m.at
	}
	return now
}

func checkErr(t *testing.T, where string, got, want error) {
	t.Helper()
	if want == nil && got != nil || want != nil && !errors.Is(got, want) {
		t.Fatalf("%s: err = %v, want %v", where, got, want)
	}
}

// TestPolicy_Concurrent races keywords, records and decisions on a few numbers (for -race and
// the per-number lock), then checks that a final STOP holds against every later decision.
func TestPolicy_Concurrent(t *testing.T) {
	p, _, _ := newPolicy(t, nil)
	numbers := []string{"+4915112345601", "+4915112345602", "+4915112345603"}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for range 300 {
				n := numbers[rng.IntN(len(numbers))]
				switch rng.IntN(5) {
				case 0:
					_, _ = p.HandleInbound(ctx, n, "stop", t0, nil)
				case 1:
					_, _ = p.HandleInbound(ctx, n, "start", t0, nil)
				case 2:
					_, _ = p.Record(ctx, Update{To: n, Consent: "request", Source: "web"}, nil)
				case 3:
					_ = p.RecordProof(ctx, n, Proof{At: t0, Source: "checkout"})
				default:
					_, _ = p.Allow(ctx, n, Transactional, &Proof{At: t0, Source: "checkout"})
				}
			}
		})
	}
	wg.Wait()
	for _, n := range numbers {
		must(t)(p.HandleInbound(ctx, n, "STOP", t0, nil))
		for _, k := range []Kind{Transactional, Marketing} {
			if d, err := p.Allow(ctx, n, k, &Proof{At: t0, Source: "checkout"}); err != nil || d.Allowed {
				t.Fatalf("after STOP: Allow(%s) = %+v, %v", k, d, err)
			}
		}
	}
}
