package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopkit/relay/relay/redact"
)

// ErrIntakeStopped is returned for jobs that arrive after intake was stopped (power shutdown):
// they are not acknowledged, so the broker keeps them for the next start.
var ErrIntakeStopped = errors.New("intake stopped: the box is shutting down")

// ConsentKeeper is the consent policy with its store: it decides (Consent; a job's own consent
// proof is given with each decision and recorded by it), applies records from the shop, and
// reads customers' keywords.
type ConsentKeeper interface {
	Consent
	// CheckProof validates a job's consent proof (a *FieldError names the bad field).
	CheckProof(p ConsentProof) error
	// Apply records a P/consent record. A *FieldError means the record is invalid: it is
	// acknowledged and counted, never retried (a poison record must not hold a broker slot).
	// The change is stored through commit with what it causes (see ConsentCommit).
	Apply(ctx context.Context, r ConsentRecord, commit ConsentCommit) (ConsentChange, error)
	// Inbound reads a customer's message: a keyword's change and reply are stored through
	// commit; ordinary text (Keyword false) commits nothing.
	Inbound(ctx context.Context, from, text string, at time.Time, commit ConsentCommit) (KeywordAction, error)
	// IsKeyword reports whether text is a keyword, for a message whose sender's number is not
	// known.
	IsKeyword(text string) bool
}

// ConsentCommit stores a consent change in one transaction with what it causes: w, the number's
// new record (nil when it did not change), and ch's event, journal line and reply — all or
// none. The keeper calls it with the number's changes serialised, at most once per call; when
// it fails, nothing of the change is kept and the same record or message can be handled again.
type ConsentCommit func(ctx context.Context, w *ConsentWrite, ch ConsentChange) error

// ConsentRecord is a P/consent payload (contract v1).
type ConsentRecord struct {
	To      string    `json:"to"`
	Consent string    `json:"consent"` // opt_in, opt_out, request
	At      time.Time `json:"at"`
	Source  string    `json:"source"`
	Proof   string    `json:"proof,omitempty"`
	Lang    string    `json:"lang,omitempty"`
}

// ConsentChange is what a consent change causes: the event to publish ("" when nothing
// changed) and a message to send the customer (a keyword's answer, the double opt-in
// question), if any.
type ConsentChange struct {
	Event EventType
	Reply string
	// OptOutConfirmation: Reply confirms an opt-out (STOP, or HELP from an opted-out number),
	// the one message an opted-out number still receives.
	OptOutConfirmation bool
}

// KeywordAction is what a customer's message meant: Keyword false means it is ordinary text
// for P/inbound; otherwise the change was committed (ConsentCommit).
type KeywordAction struct {
	Keyword bool
	ConsentChange
}

// Intake turns MQTT payloads into durable outbox entries and events. HandleJob returning nil
// means "acknowledge to the broker": the job is on disk, or it was rejected with a durable
// rejected event (a poison message must not loop). An error means "do not acknowledge".
type Intake struct {
	outbox   Outbox
	events   EventSink
	render   Renderer
	consent  ConsentKeeper
	defaults JobDefaults
	now      func() time.Time
	log      *slog.Logger
	accepted func() // tells the dispatcher a job may be due

	// dupUnanswered holds ids whose duplicate event could not be stored: the message was not
	// acknowledged, and its redelivery (DUP flag set) must still be answered. In memory and
	// bounded: after a restart such a redelivery is acknowledged without the event.
	dupMu         sync.Mutex
	dupUnanswered map[string]bool

	stopped      atomic.Bool
	unidentified atomic.Int64 // rejected payloads without a readable id (logged and counted)
	sysSeq       atomic.Int64
}

// IntakeDeps are the parts an Intake uses.
type IntakeDeps struct {
	Outbox     Outbox
	Events     EventSink
	Renderer   Renderer
	Consent    ConsentKeeper
	Logger     *slog.Logger
	Now        func() time.Time
	OnAccepted func()
}

// NewIntake returns an Intake.
func NewIntake(def JobDefaults, deps IntakeDeps) *Intake {
	in := &Intake{outbox: deps.Outbox, events: deps.Events, render: deps.Renderer, consent: deps.Consent,
		defaults: def, now: deps.Now, log: orDiscard(deps.Logger).With("component", "intake"), accepted: deps.OnAccepted}
	if in.now == nil {
		in.now = time.Now
	}
	if in.accepted == nil {
		in.accepted = func() {}
	}
	return in
}

// Stop makes every later HandleJob and HandleConsent return ErrIntakeStopped.
func (in *Intake) Stop() { in.stopped.Store(true) }

// Unidentified counts rejected payloads whose id could not be read.
func (in *Intake) Unidentified() int64 { return in.unidentified.Load() }

// HandleJob takes one P/jobs payload and waits until it is durable (or rejected).
func (in *Intake) HandleJob(ctx context.Context, payload []byte) error {
	return in.SubmitJob(ctx, payload, false)()
}

// SubmitJob validates and renders a P/jobs payload and enqueues it, without waiting for the
// disk; the returned wait reports when the job is durable (nil: acknowledge). Called in arrival
// order, it stores jobs in arrival order.
//
// redelivered is the broker's DUP flag: the broker is sending again a message whose
// acknowledgement it never received (relay stored it, then the connection or relay went away
// before the PUBACK). When such a job is already stored, it is acknowledged without a duplicate
// event: the backend published it once.
func (in *Intake) SubmitJob(ctx context.Context, payload []byte, redelivered bool) (wait func() error) {
	if in.stopped.Load() {
		return func() error { return ErrIntakeStopped }
	}
	now := in.now()
	j, num, err := decodeJob(payload, now, in.defaults)
	if err != nil {
		return func() error { return in.reject(ctx, now, err) }
	}
	if j.Consent != nil {
		if err := in.consent.CheckProof(*j.Consent); err != nil {
			fe := jobFieldError(err, j.ID, "consent")
			return func() error { return in.reject(ctx, now, fe) }
		}
	}
	body, err := in.render.Render(j)
	if err != nil {
		// A Renderer names the field with a *FieldError; anything else is the template's fault.
		fe := jobFieldError(err, j.ID, "template")
		return func() error { return in.reject(ctx, now, fe) }
	}
	evs := []Event{{ID: j.ID, Event: EventAccepted, At: ts(now), To: j.To}}
	if j.NotBefore.After(now) {
		evs = append(evs, Event{ID: j.ID, Event: EventDeferred, At: ts(now), To: j.To, NextAttemptAt: tsp(j.NotBefore),
			Error: &EventError{Code: "scheduled", Detail: "waiting for not_before"}})
	}
	stored := in.outbox.Submit(ctx, Stored{Job: j, Body: body, Mobile: num.Mobile}, evs...)
	return func() error {
		dup, err := stored()
		if err != nil {
			return fmt.Errorf("storing job %s: %w", j.ID, err)
		}
		if dup && redelivered && !in.dupPending(j.ID, false) {
			in.log.Debug("redelivered job already stored; acknowledged again", "id", j.ID)
			return nil
		}
		if dup {
			if err := in.events.Publish(ctx, duplicateEvent(j.ID, j.To, now, "")); err != nil {
				in.dupPending(j.ID, true)
				return err
			}
			in.dupPending(j.ID, false)
			return nil
		}
		in.accepted()
		return nil
	}
}

func (in *Intake) reject(ctx context.Context, now time.Time, err error) error {
	var fe *FieldError
	if !errors.As(err, &fe) {
		fe = &FieldError{Code: CodeInvalid, Detail: err.Error()}
	}
	if fe.ID == "" {
		in.unidentified.Add(1)
		in.log.Warn("rejected a payload without a readable id", "code", fe.Code, "field", fe.Field, "detail", fe.Detail)
		return nil
	}
	seen, err := in.outbox.Seen(fe.ID)
	if err != nil {
		// Not acknowledged: the broker redelivers it, as for a job that could not be stored.
		return fmt.Errorf("looking up job id %s: %w", fe.ID, err)
	}
	if seen {
		in.log.Info("invalid copy of an accepted job answered duplicate", "id", fe.ID, "field", fe.Field, "code", fe.Code)
		return in.events.Publish(ctx, duplicateEvent(fe.ID, "", now,
			"; this copy was also invalid ("+fe.Error()+")"))
	}
	in.log.Info("rejected job", "id", fe.ID, "field", fe.Field, "code", fe.Code)
	return in.events.Publish(ctx, Event{ID: fe.ID, Event: EventRejected, At: ts(now),
		Error: &EventError{Code: fe.Code, Field: fe.Field, Detail: fe.Detail}})
}

// jobFieldError is err as a *FieldError of job id: a copy of the one err wraps, or an invalid
// field (field) explained by err.
func jobFieldError(err error, id, field string) *FieldError {
	fe := &FieldError{Field: field, Code: CodeInvalid, Detail: err.Error()}
	var wrapped *FieldError
	if errors.As(err, &wrapped) {
		c := *wrapped
		fe = &c
	}
	fe.ID = id
	return fe
}

// dupPending reports whether id's duplicate event is still owed, and records whether it is
// owed from now on.
func (in *Intake) dupPending(id string, owed bool) bool {
	in.dupMu.Lock()
	defer in.dupMu.Unlock()
	was := in.dupUnanswered[id]
	switch {
	case owed && in.dupUnanswered == nil:
		in.dupUnanswered = map[string]bool{}
		fallthrough
	case owed:
		if len(in.dupUnanswered) >= 1024 {
			clear(in.dupUnanswered)
		}
		in.dupUnanswered[id] = true
	default:
		delete(in.dupUnanswered, id)
	}
	return was
}

// duplicateEvent answers a job whose id was accepted within the dedup window.
func duplicateEvent(id, to string, now time.Time, more string) Event {
	return Event{ID: id, Event: EventDuplicate, At: ts(now), To: to,
		Error: &EventError{Code: CodeDuplicate, Detail: "a job with this id was accepted within the dedup window; not sent again" + more}}
}

// HandleConsent takes one P/consent payload.
func (in *Intake) HandleConsent(ctx context.Context, payload []byte) error {
	if in.stopped.Load() {
		return ErrIntakeStopped
	}
	now := in.now()
	r, err := DecodeConsentRecord(payload, now)
	if err != nil {
		// A consent record has no id to answer to: log, count, acknowledge.
		in.rejectConsent("", err)
		return nil
	}
	// The change, its event, its journal line and the double opt-in question commit together:
	// a failure leaves nothing (the record is not acknowledged, and its redelivery asks the
	// question instead of finding one "already pending" that was never queued).
	_, err = in.consent.Apply(ctx, r, func(ctx context.Context, w *ConsentWrite, ch ConsentChange) error {
		fx := Effects{Consent: w}
		if ch.Event != "" {
			fx.Events = []Event{{Event: ch.Event, At: ts(now), To: r.To, Source: r.Source}}
			fx.Journal = []JournalEntry{{At: now, To: r.To, Event: ch.Event, Code: "consent_record",
				Detail: "P/consent " + r.Consent + " from " + r.Source}}
		}
		return in.System(ctx, Reply{To: r.To, Text: ch.Reply, OptOutConfirmation: ch.OptOutConfirmation}, fx)
	})
	var fe *FieldError
	if errors.As(err, &fe) {
		in.rejectConsent(r.To, fe)
		return nil
	}
	if err != nil {
		return fmt.Errorf("applying consent for %s: %w", redact.Number(r.To), err)
	}
	return nil
}

// rejectConsent logs and counts an invalid P/consent record, naming the field (to is "" when
// the number was not read).
func (in *Intake) rejectConsent(to string, err error) {
	in.unidentified.Add(1)
	fe := &FieldError{Code: CodeInvalid, Detail: err.Error()}
	errors.As(err, &fe)
	attrs := []any{"field", fe.Field, "code", fe.Code, "detail", fe.Detail}
	if to != "" {
		attrs = append(attrs, "to", redact.Number(to))
	}
	in.log.Warn("rejected a consent record", attrs...)
}

// Reply is one of the box's own messages to a customer (a keyword's answer, the double opt-in
// question). The zero Reply (no Text) is no message.
type Reply struct {
	To   string
	Text string
	Via  Channel // ChannelSMS answers on SMS; "" is Signal first
	// OptOutConfirmation marks the opt-out confirmation, the one message an opted-out number
	// still receives; any other reply is suppressed at send time if the number is opted out.
	OptOutConfirmation bool
}

// System queues r (when it has Text) as a job of the box's own — it bypasses recorded consent
// and quiet hours — and stores fx with it in one transaction (all or none). With no Text it
// stores fx alone.
func (in *Intake) System(ctx context.Context, r Reply, fx Effects) error {
	if r.Text == "" {
		if err := in.outbox.Apply(ctx, nil, fx); err != nil {
			return fmt.Errorf("storing a consent change of %s: %w", redact.Number(r.To), err)
		}
		return nil
	}
	num, err := ParseNumber(r.To)
	if err != nil {
		return err
	}
	now := in.now()
	id := "relay-" + strconv.FormatInt(now.UnixNano(), 36) + "-" + strconv.FormatInt(in.sysSeq.Add(1), 36)
	j := Job{ID: id, To: num.E164, Text: r.Text, Kind: KindTransactional, Priority: PriorityHigh,
		ExpiresAt: now.Add(in.defaults.Expiry), Fallback: FallbackNone, Delivery: AtLeastOnce}
	if r.Via == ChannelSMS {
		j.Fallback = FallbackSMS
	}
	st := Stored{Job: j, Body: r.Text, Mobile: num.Mobile, Via: r.Via, System: true, OptOutConfirmation: r.OptOutConfirmation}
	if err := in.outbox.Apply(ctx, &st, fx); err != nil {
		return fmt.Errorf("queueing a reply to %s: %w", redact.Number(r.To), err)
	}
	in.accepted()
	return nil
}
