package consent

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shopkit/relay/relay/consent/consenttest"
)

const num = "+4915112345678"

var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

type clock struct{ now time.Time }

func (c *clock) Now() time.Time      { return c.now }
func (c *clock) Add(d time.Duration) { c.now = c.now.Add(d) }
func newPolicy(t *testing.T, mod func(*Config)) (*Policy, *consenttest.Store, *clock) {
	t.Helper()
	st := &consenttest.Store{}
	c := &clock{now: t0}
	cfg := Config{Store: st, Shop: "Kaffee Müller", Now: c.Now}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p, st, c
}

var ctx = context.Background()

func must(t *testing.T) func(Action, error) Action {
	return func(a Action, err error) Action {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
}

func TestPolicy_Allow(t *testing.T) {
	proof := &Proof{At: t0.Add(-time.Hour), Source: "checkout", Proof: "form-v3"}
	setups := map[string]func(*testing.T, *Policy){
		"none": func(*testing.T, *Policy) {},
		"job proof": func(t *testing.T, p *Policy) {
			if err := p.RecordProof(ctx, num, *proof); err != nil {
				t.Fatal(err)
			}
		},
		"opt_in record": func(t *testing.T, p *Policy) {
			must(t)(p.Record(ctx, Update{To: num, Consent: "opt_in", At: t0, Source: "crm"}, nil))
		},
		"START": func(t *testing.T, p *Policy) { must(t)(p.HandleInbound(ctx, num, "start", t0, nil)) },
		"STOP":  func(t *testing.T, p *Policy) { must(t)(p.HandleInbound(ctx, num, "STOP", t0, nil)) },
		"opt_out record": func(t *testing.T, p *Policy) {
			must(t)(p.Record(ctx, Update{To: num, Consent: "opt_out", At: t0}, nil))
		},
		"job proof then STOP": func(t *testing.T, p *Policy) {
			if err := p.RecordProof(ctx, num, *proof); err != nil {
				t.Fatal(err)
			}
			must(t)(p.HandleInbound(ctx, num, "стоп", t0, nil))
		},
		"pending": func(t *testing.T, p *Policy) { must(t)(p.Request(ctx, num, t0, "web", "", "en", nil)) },
		"double opt-in": func(t *testing.T, p *Policy) {
			must(t)(p.Request(ctx, num, t0, "web", "", "de", nil))
			must(t)(p.HandleInbound(ctx, num, "Ja", t0.Add(time.Hour), nil))
		},
	}
	tests := []struct {
		setup       string
		kind        Kind
		proof       *Proof
		noConsentOK bool
		want        Decision
	}{
		{"none", Transactional, nil, false, Decision{Code: CodeNoConsent}},
		{"none", Transactional, nil, true, Decision{Allowed: true, Code: CodeConsentNotNeeded}},
		{"none", Transactional, proof, false, Decision{Allowed: true, Code: CodeJobProof, Recorded: true}},
		{"none", Marketing, nil, true, Decision{Code: CodeNoOptIn}},
		{"none", Marketing, proof, true, Decision{Code: CodeNoOptIn}},
		{"job proof", Transactional, nil, false, Decision{Allowed: true, Code: CodeConsent}},
		{"job proof", Marketing, nil, false, Decision{Code: CodeNoOptIn}},
		{"opt_in record", Transactional, nil, false, Decision{Allowed: true, Code: CodeConsent}},
		{"opt_in record", Marketing, nil, false, Decision{Allowed: true, Code: CodeConsent}},
		{"START", Marketing, nil, false, Decision{Allowed: true, Code: CodeConsent}},
		{"STOP", Transactional, proof, true, Decision{Code: CodeOptedOut}},
		{"STOP", Marketing, nil, true, Decision{Code: CodeOptedOut}},
		{"opt_out record", Transactional, proof, true, Decision{Code: CodeOptedOut}},
		{"job proof then STOP", Transactional, proof, true, Decision{Code: CodeOptedOut}},
		{"pending", Transactional, nil, false, Decision{Code: CodeNoConsent}},
		{"pending", Marketing, nil, false, Decision{Code: CodeNoOptIn}},
		{"double opt-in", Marketing, nil, false, Decision{Allowed: true, Code: CodeConsent}},
	}
	for _, tt := range tests {
		name := tt.setup + "/" + string(tt.kind)
		t.Run(name, func(t *testing.T) {
			p, _, _ := newPolicy(t, func(c *Config) { c.TransactionalWithoutConsent = tt.noConsentOK })
			setups[tt.setup](t, p)
			got, err := p.Allow(ctx, num, tt.kind, tt.proof)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Allow = %+v, want %+v", got, tt.want)
			}
			if got.Recorded { // the proof now stands on its own
				if again, _ := p.Allow(ctx, num, tt.kind, nil); !again.Allowed {
					t.Errorf("recorded proof not kept: %+v", again)
				}
			}
		})
	}
}

func TestPolicy_AllowErrors(t *testing.T) {
	p, st, _ := newPolicy(t, nil)
	tests := []struct {
		name   string
		number string
		kind   Kind
		proof  *Proof
		want   error
		field  string
	}{
		{"bad number", "015112345678", Transactional, nil, ErrInvalid, "to"},
		{"bad kind", num, "spam", nil, ErrInvalid, "kind"},
		{"proof without at", num, Transactional, &Proof{Source: "x"}, ErrInvalid, "consent.at"},
		{"proof without source", num, Transactional, &Proof{At: t0}, ErrInvalid, "consent.source"},
		{"proof from the future", num, Transactional, &Proof{At: t0.Add(time.Hour), Source: "x"}, ErrInvalid, "consent.at"},
		{"proof with control chars", num, Transactional, &Proof{At: t0, Source: "x\x00"}, ErrInvalid, "consent.source"},
	}
	for _, tt := range tests {
		d, err := p.Allow(ctx, tt.number, tt.kind, tt.proof)
		var fe *FieldError
		if !errors.Is(err, tt.want) || !errors.As(err, &fe) || fe.Field != tt.field || d.Allowed {
			t.Errorf("%s: Allow = %+v, %v; want %v on %s", tt.name, d, err, tt.want, tt.field)
		}
	}

	st.FailGet(true)
	if d, err := p.Allow(ctx, num, Transactional, nil); !errors.Is(err, ErrStore) || !errors.Is(err, consenttest.ErrInjected) || d.Allowed {
		t.Errorf("failing Get: %+v, %v", d, err)
	}
	st.FailGet(false)
	st.FailSet(true)
	if d, err := p.Allow(ctx, num, Transactional, &Proof{At: t0, Source: "checkout"}); !errors.Is(err, ErrStore) || d.Allowed {
		t.Errorf("failing Set while recording a proof: %+v, %v", d, err)
	}
	st.FailSet(false)
	if d, _ := p.Allow(ctx, num, Transactional, nil); d.Allowed {
		t.Errorf("a proof whose Set failed was kept: %+v", d)
	}
}

func TestPolicy_Corrupt(t *testing.T) {
	p, st, _ := newPolicy(t, nil)
	st.Put(num, []byte("{not json"))
	if d, err := p.Allow(ctx, num, Transactional, &Proof{At: t0, Source: "checkout"}); !errors.Is(err, ErrCorrupt) || d.Allowed {
		t.Fatalf("Allow on corrupt = %+v, %v", d, err)
	}
	if _, err := p.Record(ctx, Update{To: num, Consent: "opt_in", At: t0, Source: "crm"}, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("opt_in on corrupt = %v, want ErrCorrupt", err)
	}
	if _, err := p.Request(ctx, num, t0, "web", "", "en", nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("request on corrupt = %v, want ErrCorrupt", err)
	}
	if _, err := p.HandleInbound(ctx, num, "help", t0, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("HELP on corrupt = %v, want ErrCorrupt", err)
	}
	a := must(t)(p.HandleInbound(ctx, num, "STOP", t0, nil))
	if a.Event != EventOptedOut || a.Reply == "" {
		t.Fatalf("STOP on corrupt = %+v", a)
	}
	if d, err := p.Allow(ctx, num, Transactional, nil); err != nil || d.Code != CodeOptedOut {
		t.Fatalf("after STOP: %+v, %v", d, err)
	}
	st.Put(num, []byte(`{"v":1,"number":"+4900000000"}`)) // someone else's record under this key
	if _, err := p.Allow(ctx, num, Transactional, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("record for another number: %v", err)
	}
}

func TestPolicy_HandleInbound(t *testing.T) {
	type step struct {
		text      string
		wantKw    Keyword
		wantFwd   bool
		wantEvent EventType
		wantLang  string
		wantReply string // substring
	}
	tests := []struct {
		name  string
		setup func(*testing.T, *Policy)
		steps []step
	}{
		{name: "stop start in russian", steps: []step{
			{"Стоп!", KeywordStop, false, EventOptedOut, "ru", "вы отписались"},
			{"стоп", KeywordStop, false, "", "ru", "СТАРТ"}, // already out: confirm again, no event
			{"помощь", KeywordHelp, false, "", "ru", "вы отписались"},
			{"СТАРТ", KeywordStart, false, EventOptedIn, "ru", "вы подписаны"},
			{"помощь", KeywordHelp, false, "", "ru", "уведомления о заказах"},
		}},
		{name: "shared word answered in known language", steps: []step{
			{"Abmelden", KeywordStop, false, EventOptedOut, "de", "abgemeldet"},
			{"start", KeywordStart, false, EventOptedIn, "de", "Sie erhalten"},
			{"STOP", KeywordStop, false, EventOptedOut, "de", "abgemeldet"},
		}},
		{name: "shared word, unknown customer, english", steps: []step{
			{"stop", KeywordStop, false, EventOptedOut, "en", "unsubscribed"},
		}},
		{name: "yes without question is text", steps: []step{
			{"yes", KeywordNone, true, "", "", ""},
			{"да", KeywordNone, true, "", "", ""},
		}},
		{name: "ordinary text", steps: []step{
			{"Where is my parcel? stop", KeywordNone, true, "", "", ""},
			{"", KeywordNone, true, "", "", ""},
		}},
		{name: "help with contact", steps: []step{
			{"Hilfe", KeywordHelp, false, "", "de", "Kaffee Müller: Wir senden Ihnen"},
			{"hilfe", KeywordHelp, false, "", "de", "\nsupport@kaffee.example"},
		}},
		{name: "yes confirms pending in polish", setup: func(t *testing.T, p *Policy) {
			must(t)(p.Request(ctx, num, t0, "web", "form-1", "pl", nil))
		}, steps: []step{
			{"Tak!", KeywordYes, false, EventOptedIn, "pl", "zapisano Cię"},
			{"tak", KeywordNone, true, "", "", ""}, // the question is answered
		}},
		{name: "stop answers a pending question", setup: func(t *testing.T, p *Policy) {
			must(t)(p.Request(ctx, num, t0, "web", "", "en", nil))
		}, steps: []step{
			{"STOP", KeywordStop, false, EventOptedOut, "en", "unsubscribed"},
			{"yes", KeywordNone, true, "", "", ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, _ := newPolicy(t, func(c *Config) { c.HelpContact = "support@kaffee.example" })
			if tt.setup != nil {
				tt.setup(t, p)
			}
			for i, s := range tt.steps {
				a := must(t)(p.HandleInbound(ctx, num, s.text, t0.Add(time.Duration(i+1)*time.Minute), nil))
				if a.Keyword != s.wantKw || a.Forward != s.wantFwd || a.Event != s.wantEvent || a.Lang != s.wantLang || !strings.Contains(a.Reply, s.wantReply) {
					t.Errorf("step %d %q: got %+v, want kw %q fwd %v event %q lang %q reply ~%q", i, s.text, a, s.wantKw, s.wantFwd, s.wantEvent, s.wantLang, s.wantReply)
				}
				if a.Reply != "" && !strings.Contains(a.Reply, "Kaffee Müller") {
					t.Errorf("step %d: reply does not name the shop: %q", i, a.Reply)
				}
			}
		})
	}
}

func TestPolicy_Request(t *testing.T) {
	p, st, c := newPolicy(t, func(c *Config) { c.OptInTimeout = 24 * time.Hour })
	a := must(t)(p.Request(ctx, num, t0, "web", "form-2", "ru", nil))
	if a.Event != EventOptInRequested || a.Lang != "ru" || !strings.Contains(a.Reply, "Kaffee Müller хочет") || !strings.Contains(a.Reply, "ДА") {
		t.Fatalf("Request = %+v", a)
	}
	rec, _ := p.Get(ctx, num)
	if rec.Status(c.Now()) != StatePending {
		t.Fatalf("status %q, want pending", rec.Status(c.Now()))
	}
	if _, err := p.Request(ctx, num, t0, "web", "", "ru", nil); !errors.Is(err, ErrPending) {
		t.Fatalf("second request = %v, want ErrPending", err)
	}
	// A job's proof records transactional consent but leaves the question open.
	if err := p.RecordProof(ctx, num, Proof{At: t0, Source: "checkout"}); err != nil {
		t.Fatal(err)
	}
	c.Add(24*time.Hour + time.Second)
	if a := must(t)(p.HandleInbound(ctx, num, "да", c.Now(), nil)); !a.Forward {
		t.Fatalf("YES after expiry = %+v, want Forward", a)
	}
	if d, _ := p.Allow(ctx, num, Marketing, nil); d.Allowed {
		t.Fatal("marketing allowed after an expired question")
	}
	a = must(t)(p.Request(ctx, num, c.Now(), "web", "", "xx", nil)) // unknown lang → the customer's known one
	if a.Lang != "ru" || a.Reply == "" {
		t.Fatalf("re-request = %+v", a)
	}
	a = must(t)(p.HandleInbound(ctx, num, "ДА", c.Now().Add(time.Hour), nil))
	if a.Event != EventOptedIn {
		t.Fatalf("YES = %+v", a)
	}
	rec, _ = p.Get(ctx, num)
	if rec.State != StateOptedIn || !rec.Explicit || rec.Source != "web" || rec.Pending != nil {
		t.Fatalf("record after YES = %+v", rec)
	}
	if a := must(t)(p.Request(ctx, num, c.Now(), "web", "", "ru", nil)); a.Reply != "" || a.Event != EventOptedIn {
		t.Fatalf("request when opted in = %+v", a)
	}
	must(t)(p.HandleInbound(ctx, num, "stop", c.Now(), nil))
	if _, err := p.Request(ctx, num, c.Now(), "web", "", "ru", nil); !errors.Is(err, ErrOptedOut) {
		t.Fatalf("request after STOP = %v, want ErrOptedOut", err)
	}
	st.FailSet(true)
	if _, err := p.Request(ctx, "+48601234567", c.Now(), "web", "", "pl", nil); !errors.Is(err, ErrStore) {
		t.Fatalf("request with failing store = %v", err)
	}
	if _, err := p.HandleInbound(ctx, "+48601234567", "stop", c.Now(), nil); !errors.Is(err, ErrStore) {
		t.Fatalf("STOP with failing store = %v (the caller must not ack the message)", err)
	}
}

func TestPolicy_Record(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(*testing.T, *Policy)
		u         Update
		wantEvent EventType
		wantErr   error
		wantField string
		wantState State
	}{
		{name: "opt_in", u: Update{To: num, Consent: "opt_in", At: t0, Source: "crm"}, wantEvent: EventOptedIn, wantState: StateOptedIn},
		{name: "opt_in without at uses now", u: Update{To: num, Consent: "opt_in", Source: "crm"}, wantEvent: EventOptedIn, wantState: StateOptedIn},
		{name: "opt_out", u: Update{To: num, Consent: "opt_out", At: t0}, wantEvent: EventOptedOut, wantState: StateOptedOut},
		{name: "request", u: Update{To: num, Consent: "request", At: t0, Source: "web"}, wantEvent: EventOptInRequested, wantState: StateNone},
		{name: "opt_in needs source", u: Update{To: num, Consent: "opt_in", At: t0}, wantErr: ErrInvalid, wantField: "source"},
		{name: "bad consent", u: Update{To: num, Consent: "maybe"}, wantErr: ErrInvalid, wantField: "consent"},
		{name: "bad to", u: Update{To: "+0123", Consent: "opt_out"}, wantErr: ErrInvalid, wantField: "to"},
		{name: "future at", u: Update{To: num, Consent: "opt_out", At: t0.Add(time.Hour)}, wantErr: ErrInvalid, wantField: "at"},
		{name: "huge proof", u: Update{To: num, Consent: "opt_in", Source: "x", Proof: strings.Repeat("p", 300)}, wantErr: ErrInvalid, wantField: "proof"},
		{name: "shop cannot lift a customer's STOP",
			setup: func(t *testing.T, p *Policy) { must(t)(p.HandleInbound(ctx, num, "stop", t0.Add(-time.Hour), nil)) },
			u:     Update{To: num, Consent: "opt_in", At: t0, Source: "crm"}, wantErr: ErrOptedOut, wantState: StateOptedOut},
		{name: "later shop opt_in lifts a shop opt_out",
			setup: func(t *testing.T, p *Policy) {
				must(t)(p.Record(ctx, Update{To: num, Consent: "opt_out", At: t0.Add(-time.Hour)}, nil))
			},
			u: Update{To: num, Consent: "opt_in", At: t0, Source: "crm"}, wantEvent: EventOptedIn, wantState: StateOptedIn},
		{name: "stale opt_in",
			setup: func(t *testing.T, p *Policy) {
				must(t)(p.Record(ctx, Update{To: num, Consent: "opt_out", At: t0}, nil))
			},
			u: Update{To: num, Consent: "opt_in", At: t0.Add(-time.Hour), Source: "crm"}, wantErr: ErrStale, wantState: StateOptedOut},
		{name: "stale opt_out",
			setup: func(t *testing.T, p *Policy) { must(t)(p.HandleInbound(ctx, num, "start", t0, nil)) },
			u:     Update{To: num, Consent: "opt_out", At: t0.Add(-time.Hour)}, wantErr: ErrStale, wantState: StateOptedIn},
		{name: "opt_out wins a tie",
			setup: func(t *testing.T, p *Policy) { must(t)(p.HandleInbound(ctx, num, "start", t0, nil)) },
			u:     Update{To: num, Consent: "opt_out", At: t0}, wantEvent: EventOptedOut, wantState: StateOptedOut},
		{name: "request to opted out",
			setup: func(t *testing.T, p *Policy) {
				must(t)(p.Record(ctx, Update{To: num, Consent: "opt_out", At: t0}, nil))
			},
			u: Update{To: num, Consent: "request", At: t0, Source: "web"}, wantErr: ErrOptedOut, wantState: StateOptedOut},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, _ := newPolicy(t, nil)
			if tt.setup != nil {
				tt.setup(t, p)
			}
			a, err := p.Record(ctx, tt.u, nil)
			if tt.wantErr != nil {
				var fe *FieldError
				if !errors.Is(err, tt.wantErr) || tt.wantField != "" && (!errors.As(err, &fe) || fe.Field != tt.wantField) {
					t.Fatalf("Record = %+v, %v; want %v on %q", a, err, tt.wantErr, tt.wantField)
				}
			} else if err != nil || a.Event != tt.wantEvent {
				t.Fatalf("Record = %+v, %v; want event %q", a, err, tt.wantEvent)
			}
			if tt.wantField == "" {
				if rec, _ := p.Get(ctx, num); rec.State != tt.wantState {
					t.Fatalf("state %q, want %q", rec.State, tt.wantState)
				}
			}
		})
	}
}

func TestPolicy_HistoryIsShort(t *testing.T) {
	p, _, _ := newPolicy(t, nil)
	for i := range 30 {
		kw := "stop"
		if i%2 == 1 {
			kw = "start"
		}
		must(t)(p.HandleInbound(ctx, num, kw, t0.Add(time.Duration(i)*time.Minute), nil))
	}
	rec, _ := p.Get(ctx, num)
	if len(rec.History) != historyEntries || !rec.History[historyEntries-1].At.Equal(t0.Add(29*time.Minute)) {
		t.Fatalf("history = %+v", rec.History)
	}
}

// TestDefaultReplies: every text names the shop, and each keyword it tells the customer to
// send is a keyword of that language with the meaning the text gives it.
func TestDefaultReplies(t *testing.T) {
	p, _, _ := newPolicy(t, nil)
	kws := DefaultKeywords()
	upper := regexp.MustCompile(`\p{Lu}{2,}`)
	for lang, r := range DefaultReplies() {
		for name, text := range r.fields() {
			if !strings.Contains(text, "{shop}") {
				t.Errorf("%s.%s does not name the shop", lang, name)
			}
			for _, w := range upper.FindAllString(text, -1) {
				kw, langs := p.match.Match(w)
				if kw == KeywordNone || !containsLang(langs, lang) {
					t.Errorf("%s.%s tells the customer to send %q, not a %s keyword", lang, name, w, lang)
				}
			}
		}
		for _, k := range []Keyword{KeywordStop, KeywordStart, KeywordHelp, KeywordYes} {
			if len(kws[k][lang]) == 0 {
				t.Errorf("no %s keyword in %s", k, lang)
			}
		}
	}
}

func TestNew(t *testing.T) {
	st := &consenttest.Store{}
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no store", Config{Shop: "s"}},
		{"no shop", Config{Store: st}},
		{"reply without shop", Config{Store: st, Shop: "s", Replies: map[string]Replies{"en": {Help: "Call us"}}}},
		{"new language without all texts", Config{Store: st, Shop: "s", Replies: map[string]Replies{"fr": {Help: "{shop}: aide"}}}},
		{"default lang without texts", Config{Store: st, Shop: "s", DefaultLang: "fr"}},
		{"bad keywords", Config{Store: st, Shop: "s", Keywords: Keywords{KeywordStop: {"en": {"?"}}}}},
		{"negative timeout", Config{Store: st, Shop: "s", OptInTimeout: -time.Second}},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: New = %v, want ErrConfig", tt.name, err)
		}
	}
	p, err := New(Config{Store: st, Shop: "S", Replies: map[string]Replies{"en": {Help: "{shop}: call 123"}}})
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := p.HandleInbound(ctx, num, "help", t0, nil); a.Reply != "S: call 123" {
		t.Errorf("overridden help = %q", a.Reply)
	}
	if a, _ := p.HandleInbound(ctx, num, "stop", t0, nil); !strings.HasPrefix(a.Reply, "S: you are unsubscribed") {
		t.Errorf("default kept beside an override: %q", a.Reply)
	}
}
