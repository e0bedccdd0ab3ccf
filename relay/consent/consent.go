package consent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/shopkit/relay/relay/redact"
)

// Store keeps one record per number. Keys are E.164 numbers ("+4915112345678"); the store is
// expected to be a namespace of its own. Get returns ok false for a number never seen. Set must
// be durable when it returns nil.
type Store interface {
	Get(key string) (val []byte, ok bool, err error)
	Set(ctx context.Context, key string, val []byte) error
}

// Kind is a job's kind (contract v1).
type Kind string

const (
	Transactional Kind = "transactional"
	Marketing     Kind = "marketing"
)

// State is a number's consent state.
type State string

const (
	StateNone      State = ""          // nothing recorded
	StateOptedIn   State = "opted_in"  // see Record.Explicit for marketing
	StateOptedOut  State = "opted_out" // nothing but the opt-out confirmation
	StatePending   State = "pending"   // only from Record.Status: a double opt-in question awaits YES
	historyEntries       = 8
)

// EventType is a consent event of contract v1.
type EventType string

const (
	EventOptedIn        EventType = "opted_in"
	EventOptedOut       EventType = "opted_out"
	EventOptInRequested EventType = "optin_requested"
)

// Decision codes: the reason in a suppressed event's error.code, or why a send was allowed.
const (
	CodeOptedOut         = "opted_out"          // denied: the number opted out
	CodeNoConsent        = "no_consent"         // denied: transactional, nothing recorded, consent required
	CodeNoOptIn          = "no_opt_in"          // denied: marketing without an explicit opt-in
	CodeConsent          = "consent"            // allowed: recorded consent
	CodeJobProof         = "job_proof"          // allowed: the job's proof, now recorded
	CodeConsentNotNeeded = "consent_not_needed" // allowed: transactional with require_consent off
)

// Proof is a job's "consent" object: when and where the customer agreed.
type Proof struct {
	At     time.Time `json:"at"`
	Source string    `json:"source"`
	Proof  string    `json:"proof,omitempty"`
}

// Update is a P/consent record (contract v1; Lang is an optional extension naming the
// language of the double opt-in question).
type Update struct {
	To      string    `json:"to"`
	Consent string    `json:"consent"` // opt_in, opt_out or request
	At      time.Time `json:"at"`
	Source  string    `json:"source"`
	Proof   string    `json:"proof,omitempty"`
	Lang    string    `json:"lang,omitempty"`
}

// Record is what is stored per number.
type Record struct {
	Number string    `json:"number"`
	State  State     `json:"state"` // StateNone, StateOptedIn or StateOptedOut
	At     time.Time `json:"at"`    // when the state came into force (the customer's or the shop's time)
	Source string    `json:"source,omitempty"`
	Proof  string    `json:"proof,omitempty"`
	// Explicit: the opt-in came from a P/consent opt_in, the START keyword or a confirmed
	// double opt-in, and covers marketing. A job's proof gives a non-explicit opt-in.
	Explicit bool `json:"explicit,omitempty"`
	// ByCustomer: the opt-out came from the customer's own keyword; only the customer lifts it.
	ByCustomer bool     `json:"by_customer,omitempty"`
	Lang       string   `json:"lang,omitempty"` // the customer's language, as last seen
	Pending    *Pending `json:"pending,omitempty"`
	History    []Change `json:"history,omitempty"` // the last few changes, newest last
}

// Pending is an outstanding double opt-in question.
type Pending struct {
	At     time.Time `json:"at"`    // the shop's request time
	Until  time.Time `json:"until"` // YES after this is ordinary text
	Source string    `json:"source,omitempty"`
	Proof  string    `json:"proof,omitempty"`
	Lang   string    `json:"lang,omitempty"`
}

// Change is one history entry.
type Change struct {
	At     time.Time `json:"at"`
	State  State     `json:"state"`
	Source string    `json:"source,omitempty"`
}

// Status is the state to show staff at now: StatePending when a double opt-in question is
// outstanding and nothing stronger is in force.
func (r Record) Status(now time.Time) State {
	if r.State == StateNone && r.Pending != nil && now.Before(r.Pending.Until) {
		return StatePending
	}
	return r.State
}

// Decision is Allow's answer. The zero Decision refuses.
type Decision struct {
	Allowed  bool
	Code     string // one of the Code constants
	Recorded bool   // the job's proof was stored as the number's consent
}

// Action is what the relay must do after an inbound message, a P/consent record or a request.
type Action struct {
	Keyword Keyword   // the keyword recognised (KeywordNone otherwise)
	Forward bool      // not a keyword: publish the message on P/inbound
	Reply   string    // send this to the customer now, outside Allow (it is the one exception); "" for none
	Lang    string    // Reply's language
	Event   EventType // publish this consent event; "" for none
	// OptOutConfirmation: Reply is the opt-out confirmation (STOP, or HELP from an opted-out
	// number), the one message an opted-out number still receives. Any other Reply must be
	// suppressed if the number is opted out when it is sent.
	OptOutConfirmation bool
}

// Write is a changed consent record, encoded: what the Policy would store under Number.
type Write struct {
	Number string
	Record []byte
}

// Commit stores a change in one transaction with what it causes: w (nil when the number's
// record did not change) and what act asks of the caller — the reply to queue, the event to
// publish, the journal line — all of it or none, durably when it returns nil. The Policy calls
// it in place of Store.Set, with the number's changes serialised (a STOP cannot slip between
// the decision and the commit), at most once per call, and never for Forward. When it fails,
// nothing of the change was kept and the Policy returns its error wrapped in ErrStore: the same
// call may simply be made again (a redelivered P/consent request asks its question then, it
// does not find a question "already pending" that was never queued).
//
// A nil Commit stores the record with Store.Set and leaves the Action to the caller, who then
// acts on it in transactions of its own.
type Commit func(ctx context.Context, w *Write, act Action) error

// Config configures a Policy. The zero value of every field but Store and Shop is usable.
type Config struct {
	Store Store  // required
	Shop  string // required: named in every reply
	// TransactionalWithoutConsent lets transactional jobs go to numbers with no recorded
	// consent (not to opted-out ones). It is relay.toml's policy.require_consent inverted, so
	// that the zero Config is the careful one.
	TransactionalWithoutConsent bool
	DefaultLang                 string             // reply language when none is known; "" means "en"
	OptInTimeout                time.Duration      // how long a double opt-in question stays open; 0 means 72h
	HelpContact                 string             // added on its own line to the help text, e.g. "support@shop.example"
	Keywords                    Keywords           // nil means DefaultKeywords()
	Replies                     map[string]Replies // per language, over DefaultReplies(); a partial entry keeps the defaults for empty fields
	Now                         func() time.Time   // nil means time.Now
	Logger                      *slog.Logger       // nil discards
	MaxFutureSkew               time.Duration      // an "at" further ahead of Now is refused; 0 means 5 minutes
}

// Policy applies consent rules over a Store. It is safe for concurrent use: changes to one
// number are serialised.
type Policy struct {
	cfg     Config
	match   *Matcher
	replies map[string]Replies
	log     *slog.Logger
	seed    maphash.Seed
	locks   [64]sync.Mutex
}

var e164Re = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// maxFieldBytes caps source, proof and other free strings stored per record.
const maxFieldBytes = 256

// New checks cfg and returns a Policy.
func New(cfg Config) (*Policy, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: no store", ErrConfig)
	}
	if strings.TrimSpace(cfg.Shop) == "" || strings.ContainsAny(cfg.Shop, "\n\r") {
		return nil, fmt.Errorf("%w: shop name %q: want one line of text", ErrConfig, cfg.Shop)
	}
	if cfg.DefaultLang == "" {
		cfg.DefaultLang = "en"
	}
	if cfg.OptInTimeout == 0 {
		cfg.OptInTimeout = 72 * time.Hour
	}
	if cfg.OptInTimeout < 0 {
		return nil, fmt.Errorf("%w: optin timeout %v", ErrConfig, cfg.OptInTimeout)
	}
	if cfg.MaxFutureSkew <= 0 {
		cfg.MaxFutureSkew = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Keywords == nil {
		cfg.Keywords = DefaultKeywords()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := NewMatcher(cfg.Keywords)
	if err != nil {
		return nil, err
	}
	replies := DefaultReplies()
	for lang, r := range cfg.Replies {
		if !langOK(lang) {
			return nil, fmt.Errorf("%w: replies: language %q: want two letters a-z", ErrConfig, lang)
		}
		merged := replies[lang]
		for _, f := range []struct {
			dst *string
			src string
		}{
			{&merged.OptedOut, r.OptedOut}, {&merged.OptedIn, r.OptedIn}, {&merged.Help, r.Help}, {&merged.Request, r.Request},
		} {
			if f.src != "" {
				*f.dst = f.src
			}
		}
		replies[lang] = merged
	}
	for lang, r := range replies {
		for name, text := range r.fields() {
			switch {
			case text == "":
				return nil, fmt.Errorf("%w: replies.%s.%s is empty and has no built-in default", ErrConfig, lang, name)
			case !strings.Contains(text, "{shop}"):
				return nil, fmt.Errorf("%w: replies.%s.%s must name the shop with {shop}", ErrConfig, lang, name)
			}
		}
	}
	if _, ok := replies[cfg.DefaultLang]; !ok {
		return nil, fmt.Errorf("%w: default lang %q has no reply texts", ErrConfig, cfg.DefaultLang)
	}
	return &Policy{cfg: cfg, match: m, replies: replies, log: cfg.Logger.With("component", "consent"), seed: maphash.MakeSeed()}, nil
}

// Get returns the stored record of a number (a zero Record with Number set if none).
func (p *Policy) Get(ctx context.Context, number string) (Record, error) {
	if err := checkNumber("to", number); err != nil {
		return Record{}, err
	}
	return p.load(number)
}

// Allow decides whether a job of kind may be sent to number now. Call it right before every
// send attempt (consent can change while a job waits), not for the replies in an Action. Rules:
//   - an opted-out number gets nothing (CodeOptedOut), whatever the job says;
//   - marketing needs an explicit opt-in: P/consent opt_in, START, or a confirmed double opt-in
//     (CodeNoOptIn otherwise); a job's proof does not make one;
//   - transactional needs any opt-in; a valid job proof is recorded as one (Recorded true,
//     CodeJobProof); without either it is refused (CodeNoConsent) unless
//     TransactionalWithoutConsent is set.
//
// An error (bad input, store failure, corrupt record) comes with a refusing Decision.
func (p *Policy) Allow(ctx context.Context, number string, kind Kind, proof *Proof) (Decision, error) {
	if err := checkNumber("to", number); err != nil {
		return Decision{}, err
	}
	if kind != Transactional && kind != Marketing {
		return Decision{}, &FieldError{Field: "kind", Reason: fmt.Sprintf("%q: want transactional or marketing", kind)}
	}
	if proof != nil && kind == Transactional {
		if err := p.checkProof(*proof); err != nil {
			return Decision{}, err
		}
	}
	unlock := p.lock(number)
	defer unlock()
	rec, err := p.load(number)
	if err != nil {
		return Decision{}, err
	}
	switch {
	case rec.State == StateOptedOut:
		return Decision{Code: CodeOptedOut}, nil
	case kind == Marketing && rec.State == StateOptedIn && rec.Explicit:
		return Decision{Allowed: true, Code: CodeConsent}, nil
	case kind == Marketing:
		return Decision{Code: CodeNoOptIn}, nil
	case rec.State == StateOptedIn:
		return Decision{Allowed: true, Code: CodeConsent}, nil
	case proof != nil:
		p.setState(&rec, StateOptedIn, proof.At, proof.Source, proof.Proof, "job_proof")
		if err := p.save(ctx, rec); err != nil {
			return Decision{}, err
		}
		return Decision{Allowed: true, Code: CodeJobProof, Recorded: true}, nil
	case p.cfg.TransactionalWithoutConsent:
		return Decision{Allowed: true, Code: CodeConsentNotNeeded}, nil
	}
	return Decision{Code: CodeNoConsent}, nil
}

// RecordProof stores a job's consent proof as the number's (non-explicit) opt-in. It changes
// nothing for an opted-out or already opted-in number: a job cannot override a STOP.
func (p *Policy) RecordProof(ctx context.Context, number string, proof Proof) error {
	if err := checkNumber("to", number); err != nil {
		return err
	}
	if err := p.checkProof(proof); err != nil {
		return err
	}
	unlock := p.lock(number)
	defer unlock()
	rec, err := p.load(number)
	if err != nil {
		return err
	}
	if rec.State != StateNone {
		return nil
	}
	p.setState(&rec, StateOptedIn, proof.At, proof.Source, proof.Proof, "job_proof")
	return p.save(ctx, rec)
}

// Record applies a P/consent record:
//   - opt_in: explicit opt-in (covers marketing) → EventOptedIn. Refused with ErrOptedOut when
//     the customer opted out by keyword, and with ErrStale when older than a shop-recorded
//     opt-out in force.
//   - opt_out: opted out at once → EventOptedOut (no message to the customer). ErrStale when
//     older than an opt-in in force.
//   - request: as Request.
//
// Malformed records fail with a *FieldError naming the field. The change is stored through
// commit (see Commit; nil: Store.Set) together with the event.
func (p *Policy) Record(ctx context.Context, u Update, commit Commit) (Action, error) {
	now := p.cfg.Now()
	if err := checkNumber("to", u.To); err != nil {
		return Action{}, err
	}
	if u.At.IsZero() {
		u.At = now
	}
	if u.At.After(now.Add(p.cfg.MaxFutureSkew)) {
		return Action{}, &FieldError{Field: "at", Reason: "is in the future"}
	}
	if err := checkText("source", u.Source); err != nil {
		return Action{}, err
	}
	if err := checkText("proof", u.Proof); err != nil {
		return Action{}, err
	}
	switch u.Consent {
	case "request":
		return p.Request(ctx, u.To, u.At, u.Source, u.Proof, u.Lang, commit)
	case "opt_in":
		if strings.TrimSpace(u.Source) == "" {
			return Action{}, &FieldError{Field: "source", Reason: "an opt_in needs the source of the consent"}
		}
	case "opt_out":
	default:
		return Action{}, &FieldError{Field: "consent", Reason: fmt.Sprintf("%q: want opt_in, opt_out or request", clip(u.Consent))}
	}
	unlock := p.lock(u.To)
	defer unlock()
	rec, err := p.load(u.To)
	if err != nil && !(errors.Is(err, ErrCorrupt) && u.Consent == "opt_out") {
		return Action{}, err
	}
	if u.Consent == "opt_out" {
		if rec.State == StateOptedIn && rec.At.After(u.At) {
			return Action{}, fmt.Errorf("%w: opt_out at %s, opted in at %s", ErrStale, u.At.Format(time.RFC3339), rec.At.Format(time.RFC3339))
		}
		byCustomer := rec.State == StateOptedOut && rec.ByCustomer
		p.setState(&rec, StateOptedOut, u.At, u.Source, u.Proof, "consent_record")
		rec.ByCustomer = byCustomer
		return p.commit(ctx, commit, u.To, &rec, Action{Event: EventOptedOut})
	}
	if rec.State == StateOptedOut {
		if rec.ByCustomer {
			return Action{}, fmt.Errorf("%w: the customer opted out by keyword; only their START lifts it", ErrOptedOut)
		}
		if rec.At.After(u.At) {
			return Action{}, fmt.Errorf("%w: opt_in at %s, opted out at %s", ErrStale, u.At.Format(time.RFC3339), rec.At.Format(time.RFC3339))
		}
	}
	p.setState(&rec, StateOptedIn, u.At, u.Source, u.Proof, "consent_record")
	rec.Explicit = true
	return p.commit(ctx, commit, u.To, &rec, Action{Event: EventOptedIn})
}

// Request starts double opt-in: it returns the question to send (Reply, in lang, else the
// default language) and EventOptInRequested. A YES before now+OptInTimeout makes an explicit
// opt-in. An explicitly opted-in number is not asked again (EventOptedIn, no Reply). Errors:
// ErrOptedOut (never ask an opted-out number), ErrPending (a question is still open). The open
// question is stored through commit (see Commit) with the question and the event, so a failed
// commit leaves no question open and the same request can be made again.
func (p *Policy) Request(ctx context.Context, number string, at time.Time, source, proof, lang string, commit Commit) (Action, error) {
	if err := checkNumber("to", number); err != nil {
		return Action{}, err
	}
	if err := checkText("source", source); err != nil {
		return Action{}, err
	}
	if err := checkText("proof", proof); err != nil {
		return Action{}, err
	}
	now := p.cfg.Now()
	if at.IsZero() {
		at = now
	}
	unlock := p.lock(number)
	defer unlock()
	rec, err := p.load(number)
	if err != nil {
		return Action{}, err
	}
	switch {
	case rec.State == StateOptedOut:
		return Action{}, ErrOptedOut
	case rec.State == StateOptedIn && rec.Explicit:
		return p.commit(ctx, commit, number, nil, Action{Event: EventOptedIn})
	case rec.Pending != nil && now.Before(rec.Pending.Until):
		return Action{}, fmt.Errorf("%w until %s", ErrPending, rec.Pending.Until.Format(time.RFC3339))
	}
	lang = p.replyLang(lang, rec.Lang)
	rec.Pending = &Pending{At: at, Until: now.Add(p.cfg.OptInTimeout), Source: source, Proof: proof, Lang: lang}
	rec.Lang = lang
	rec.History = appendHistory(rec.History, Change{At: at, State: StatePending, Source: "request"})
	act, err := p.commit(ctx, commit, number, &rec,
		Action{Reply: p.text(lang, func(r Replies) string { return r.Request }), Lang: lang, Event: EventOptInRequested})
	if err != nil {
		return Action{}, err
	}
	p.log.Info("double opt-in requested", "to", redact.Number(number), "lang", lang, "until", rec.Pending.Until)
	return act, nil
}

// HandleInbound reads a customer's message (Signal or SMS). A keyword is applied at once and
// answered in the keyword's language (or the customer's known language when the word is
// shared, like STOP):
//   - STOP: opted out, EventOptedOut (when it changed), Reply the opt-out confirmation;
//   - START: explicit opt-in, EventOptedIn, Reply the confirmation;
//   - HELP: Reply the help text (an opted-out number gets the opt-out confirmation instead);
//   - YES: only while a double opt-in is pending: explicit opt-in, EventOptedIn, Reply the
//     confirmation. Otherwise YES is ordinary text.
//
// Anything else is Forward. Keywords must be the whole message (see Normalize). Every keyword's
// change and reply go through commit (see Commit), also HELP's reply (with no record change).
func (p *Policy) HandleInbound(ctx context.Context, from, text string, at time.Time, commit Commit) (Action, error) {
	if err := checkNumber("from", from); err != nil {
		return Action{}, err
	}
	kw, langs := p.match.Match(text)
	if kw == KeywordNone {
		return Action{Forward: true}, nil
	}
	if at.IsZero() {
		at = p.cfg.Now()
	}
	unlock := p.lock(from)
	defer unlock()
	rec, err := p.load(from)
	corrupt := errors.Is(err, ErrCorrupt)
	if err != nil && !(corrupt && (kw == KeywordStop || kw == KeywordStart)) {
		return Action{}, err
	}
	lang := p.pickLang(langs, rec.Lang)
	act := Action{Keyword: kw, Lang: lang}
	source := "keyword"
	proofText := clip(strings.TrimSpace(text))
	switch kw {
	case KeywordStop:
		if rec.State != StateOptedOut || !rec.ByCustomer || corrupt {
			p.setState(&rec, StateOptedOut, at, source, proofText, source)
			act.Event = EventOptedOut
		} else if at.After(rec.At) {
			rec.At, rec.Proof = at, proofText // the customer said it again: the latest word counts
		}
		rec.ByCustomer = true
		act.Reply = p.text(lang, func(r Replies) string { return r.OptedOut })
		act.OptOutConfirmation = true
	case KeywordStart:
		if rec.State != StateOptedIn || !rec.Explicit || corrupt {
			p.setState(&rec, StateOptedIn, at, source, proofText, source)
			act.Event = EventOptedIn
		} else if at.After(rec.At) {
			rec.At, rec.Source, rec.Proof = at, source, proofText
		}
		rec.Explicit = true
		act.Reply = p.text(lang, func(r Replies) string { return r.OptedIn })
	case KeywordHelp:
		if rec.State == StateOptedOut {
			act.Reply = p.text(lang, func(r Replies) string { return r.OptedOut })
			act.OptOutConfirmation = true
		} else {
			act.Reply = p.text(lang, func(r Replies) string { return r.Help })
			if p.cfg.HelpContact != "" {
				act.Reply += "\n" + p.cfg.HelpContact
			}
		}
		return p.commit(ctx, commit, from, nil, act) // no record change; the reply still goes with the number's lock held
	case KeywordYes:
		pend := rec.Pending
		if pend == nil || !at.Before(pend.Until) || rec.State == StateOptedOut {
			return Action{Forward: true}, nil
		}
		p.setState(&rec, StateOptedIn, at, pend.Source, pend.Proof, "double_opt_in")
		rec.Explicit = true
		act = Action{Keyword: kw, Lang: lang, Event: EventOptedIn, Reply: p.text(lang, func(r Replies) string { return r.OptedIn })}
	}
	rec.Lang = act.Lang
	act, err = p.commit(ctx, commit, from, &rec, act)
	if err != nil {
		return Action{}, err
	}
	if act.Event != "" {
		p.log.Info("consent changed by keyword", "to", redact.Number(from), "keyword", kw, "event", act.Event, "lang", act.Lang)
	}
	return act, nil
}

// Keyword reports which keyword text is (KeywordNone for ordinary text), without a number: for
// a message whose sender is not known by number.
func (p *Policy) Keyword(text string) Keyword {
	kw, _ := p.match.Match(text)
	return kw
}

// commit stores rec (nil: unchanged) with act through c, or with Store.Set when c is nil.
// It runs with the number's lock held.
func (p *Policy) commit(ctx context.Context, c Commit, number string, rec *Record, act Action) (Action, error) {
	if c == nil {
		if rec != nil {
			if err := p.save(ctx, *rec); err != nil {
				return Action{}, err
			}
		}
		return act, nil
	}
	var w *Write
	if rec != nil {
		b, err := encode(*rec)
		if err != nil {
			return Action{}, err
		}
		w = &Write{Number: rec.Number, Record: b}
	}
	if err := c(ctx, w, act); err != nil {
		return Action{}, fmt.Errorf("%w: commit %s: %w", ErrStore, redact.Number(number), err)
	}
	return act, nil
}

// setState moves rec to state, clearing what the new state overrides, and keeps history short.
func (p *Policy) setState(rec *Record, state State, at time.Time, source, proof, how string) {
	rec.State, rec.At, rec.Source, rec.Proof = state, at, source, proof
	rec.Explicit, rec.ByCustomer = false, false
	if how != "job_proof" {
		rec.Pending = nil // an opt-out or explicit opt-in answers an open question; a job's proof does not
	}
	rec.History = appendHistory(rec.History, Change{At: at, State: state, Source: how})
}

func appendHistory(h []Change, c Change) []Change {
	h = append(h, c)
	if len(h) > historyEntries {
		h = append(h[:0:0], h[len(h)-historyEntries:]...)
	}
	return h
}

// pickLang chooses the reply language for a keyword found in langs: the customer's known
// language if the word belongs to it, else the default language if it does, else en, else
// the first; then it must have texts.
func (p *Policy) pickLang(langs []string, known string) string {
	for _, l := range []string{known, p.cfg.DefaultLang, "en"} {
		if l != "" && containsLang(langs, l) {
			return p.replyLang(l, "")
		}
	}
	if len(langs) > 0 {
		return p.replyLang(langs[0], known)
	}
	return p.replyLang(known, "")
}

// replyLang returns the first of lang, known, the default that has reply texts.
func (p *Policy) replyLang(lang, known string) string {
	for _, l := range []string{lang, known} {
		if _, ok := p.replies[l]; ok {
			return l
		}
	}
	return p.cfg.DefaultLang
}

func (p *Policy) text(lang string, pick func(Replies) string) string {
	return fill(pick(p.replies[lang]), p.cfg.Shop)
}

func containsLang(langs []string, l string) bool {
	for _, x := range langs {
		if x == l {
			return true
		}
	}
	return false
}

// CheckProof validates a job's consent proof by the same rules Allow applies, so that intake can
// reject a bad proof (naming the field) instead of accepting a job that can never be sent.
func (p *Policy) CheckProof(pr Proof) error { return p.checkProof(pr) }

func (p *Policy) checkProof(pr Proof) error {
	switch {
	case pr.At.IsZero():
		return &FieldError{Field: "consent.at", Reason: "is required"}
	case pr.At.After(p.cfg.Now().Add(p.cfg.MaxFutureSkew)):
		return &FieldError{Field: "consent.at", Reason: "is in the future"}
	case strings.TrimSpace(pr.Source) == "":
		return &FieldError{Field: "consent.source", Reason: "is required"}
	}
	if err := checkText("consent.source", pr.Source); err != nil {
		return err
	}
	return checkText("consent.proof", pr.Proof)
}

func checkNumber(field, n string) error {
	if !e164Re.MatchString(n) {
		return &FieldError{Field: field, Reason: fmt.Sprintf("%q is not an E.164 number", clip(n))}
	}
	return nil
}

func checkText(field, s string) error {
	if len(s) > maxFieldBytes {
		return &FieldError{Field: field, Reason: fmt.Sprintf("%d bytes, over the %d-byte limit", len(s), maxFieldBytes)}
	}
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return &FieldError{Field: field, Reason: "has control characters or is not UTF-8"}
	}
	return nil
}

func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// lock serialises read-modify-write of one number.
func (p *Policy) lock(number string) func() {
	m := &p.locks[maphash.String(p.seed, number)%uint64(len(p.locks))]
	m.Lock()
	return m.Unlock
}

// storedRecord is the on-disk form; V lets a later version migrate.
type storedRecord struct {
	V int `json:"v"`
	Record
}

func (p *Policy) load(number string) (Record, error) {
	b, ok, err := p.cfg.Store.Get(number)
	if err != nil {
		return Record{Number: number}, fmt.Errorf("%w: get %s: %w", ErrStore, redact.Number(number), err)
	}
	if !ok {
		return Record{Number: number}, nil
	}
	var s storedRecord
	if err := json.Unmarshal(b, &s); err != nil || s.V != 1 || s.Number != number {
		p.log.Error("corrupt consent record", "to", redact.Number(number), "err", err)
		return Record{Number: number}, fmt.Errorf("%w: %s", ErrCorrupt, redact.Number(number))
	}
	return s.Record, nil
}

func encode(rec Record) ([]byte, error) {
	b, err := json.Marshal(storedRecord{V: 1, Record: rec})
	if err != nil {
		return nil, fmt.Errorf("%w: encode: %w", ErrStore, err)
	}
	return b, nil
}

func (p *Policy) save(ctx context.Context, rec Record) error {
	b, err := encode(rec)
	if err != nil {
		return err
	}
	if err := p.cfg.Store.Set(ctx, rec.Number, b); err != nil {
		return fmt.Errorf("%w: set %s: %w", ErrStore, redact.Number(rec.Number), err)
	}
	return nil
}
