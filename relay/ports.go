package relay

import (
	"context"
	"errors"
	"time"
)

// The interfaces the pipeline consumes. Each is implemented by an adapter (relay/store over the
// buffer package, signalbridge, modem, relay/mqtt) that cmd/relayd wires in; relay itself
// imports none of them.

// Stored is a job as it sits in the outbox: the job, the text rendered at acceptance (so a
// template change cannot alter a queued message), and the outbox's bookkeeping.
type Stored struct {
	Job    Job
	Body   string  // rendered text, sender named
	Mobile bool    // the number can receive SMS
	Via    Channel // "" = Signal first; ChannelSMS for a reply to a customer's SMS
	// System marks the box's own replies (opt-out confirmation, help, opt-in question): they
	// bypass quiet hours and recorded consent, but an opted-out number receives nothing but the
	// opt-out confirmation, so a System reply that is not the confirmation is suppressed when
	// the number is opted out at send time (a HELP answer queued just before a STOP).
	System bool
	// OptOutConfirmation marks the System reply that confirms an opt-out: the one message an
	// opted-out number still receives.
	OptOutConfirmation bool

	AcceptedAt    time.Time // filled by the outbox
	LeaseDeadline time.Time // when the outbox hands the job out again if nothing was recorded
	Attempts      int       // failed attempts so far
	SendStarted   bool      // a send was started before a crash and never confirmed
}

// Outbox is the durable queue. Submit enqueues a job and returns a wait that reports, once the
// job is on disk, whether its id was already seen within the dedup window (dup). Jobs submitted
// one after another are stored in that order, so one customer's jobs keep the order they
// arrived in while many jobs share one synced write. The events given to Submit are stored in
// the same transaction when the job is accepted, so an accepted job is never without its
// accepted event.
//
// Every state change (Ack, Retry, Defer, Expire) stores its Effects in the same transaction as
// the change: a crash cannot leave a job acknowledged without its terminal event, or an event
// published for a change that did not happen. A change that fails (the lease was lost) stores
// none of its Effects.
type Outbox interface {
	Submit(ctx context.Context, s Stored, events ...Event) (wait func() (dup bool, err error))
	Lease(ctx context.Context, n int, now time.Time) ([]Stored, error)
	MarkSending(ctx context.Context, id string) error
	// Ack ends a leased job for good with outcome.
	Ack(ctx context.Context, id string, outcome EventType, fx Effects) error
	// Retry ends the lease after a failed attempt (Attempts+1); the job is due again at at.
	Retry(ctx context.Context, id string, at time.Time, reason string, fx Effects) error
	// Defer ends the lease of a job that was not tried (quiet hours, a captcha pause): due
	// again at until, Attempts unchanged.
	Defer(ctx context.Context, id string, until time.Time, reason string, fx Effects) error
	// Expire removes the queued jobs past their expires_at and returns each once; fx gives
	// what each removal stores with it. fx runs inside the outbox's write transaction: it must
	// be quick and must not call the Outbox.
	Expire(ctx context.Context, now time.Time, fx func(Stored) Effects) ([]Stored, error)
	// Apply stores fx, and the new job s when s is not nil (one of the box's own messages: a
	// keyword reply, the double opt-in question), in one transaction: all of it or none. It is
	// how a consent change (fx.Consent), its event, its journal line and the reply it causes
	// are kept together through a crash.
	Apply(ctx context.Context, s *Stored, fx Effects) error
	// Seen reports whether a job id was accepted within the dedup window. The intake asks it
	// for a job it rejects: a job whose id is known is answered duplicate even when this copy
	// of it is invalid (ARCHITECTURE rule 3: the id is the shop's key; a backend that publishes
	// a job again after its expires_at passed must hear duplicate, not a rejected that reads as
	// if the first copy had failed).
	Seen(id string) (bool, error)
	Depth() int
	OldestAge(now time.Time) time.Duration
}

// Effects are what a state change leaves behind: the events for the backend, the journal
// lines, and for a Signal send the record that lets its receipts find the job. They are stored
// in the same transaction as the change they describe.
type Effects struct {
	Events  []Event
	Journal []JournalEntry
	Sent    *SentSend // nil: no send to remember
	// Consent is a number's changed consent record (nil: none), as the consent policy
	// encoded it; the change, its event and its reply are one transaction.
	Consent *ConsentWrite
	// Recipient remembers which number a Signal account (uuid) belongs to, from a send's
	// result (nil: nothing to remember), so that a customer whose number signal-cli hides
	// (phone number privacy) can still send STOP.
	Recipient *SignalRecipient
}

// ConsentWrite is a consent record to store for Number (opaque bytes of the consent policy).
type ConsentWrite struct {
	Number string
	Record []byte
}

// SignalRecipient is a number we sent to and the Signal account uuid (ACI) signal-cli reported
// for it.
type SignalRecipient struct {
	Number string
	UUID   string
}

// SentSend is one entry of the SentIndex: a Signal send timestamp and what it belongs to.
type SentSend struct {
	Timestamp int64
	Record    SentRecord
}

// EventSink stores an event or inbound message durably for publication on MQTT (in order,
// surviving broker outages and restarts).
type EventSink interface {
	Publish(ctx context.Context, e Event) error
	PublishInbound(ctx context.Context, in Inbound) error
}

// Journal keeps every attempt for disputes.
type Journal interface {
	Record(ctx context.Context, e JournalEntry) error
}

// JournalEntry is one line of the journal: a state change with the full number and text.
type JournalEntry struct {
	At      time.Time
	ID      string
	To      string
	Channel Channel
	Event   EventType
	Attempt int
	Code    string
	Detail  string
	Text    string
}

// SentIndex remembers which job a Signal send timestamp belongs to, so that receipts arriving
// later (also after a restart) become delivered and read events for the right job. Sends are
// remembered through the Outbox (Effects.Sent, with the Ack); receipts update the record with
// Commit.
type SentIndex interface {
	Lookup(timestamp int64) (SentRecord, bool, error)
	// Commit stores fx in one transaction: its Sent record (replacing the one under that
	// timestamp), its events and its journal lines, all or none. A receipt's delivered event
	// is thus never lost after the record already says Delivered.
	Commit(ctx context.Context, fx Effects) error
	// Recipient returns the number a Signal account uuid belongs to, as remembered from our
	// sends to it (Effects.Recipient); ok false for a uuid we never sent to.
	Recipient(uuid string) (number string, ok bool, err error)
}

// SentRecord is what the SentIndex keeps per send.
type SentRecord struct {
	ID        string    `json:"id"`
	To        string    `json:"to"`
	SentAt    time.Time `json:"sent_at"`
	Delivered bool      `json:"delivered,omitempty"`
	Read      bool      `json:"read,omitempty"`
}

// SendOutcome is what a Signal send means for the job.
type SendOutcome int

const (
	// The zero value is no outcome at all: a Signal adapter that returns an empty SendResult has
	// not sent anything, and the dispatcher treats it as a failure, never as sent.
	OutcomeSent            SendOutcome = iota + 1 // delivered to Signal's servers; Timestamp set
	OutcomeNotOnSignal                            // the number has no Signal account
	OutcomeIdentityChanged                        // the customer's safety number changed
	OutcomeRateLimited                            // Signal asks us to slow down; RetryAfter set
	OutcomeCaptcha                                // Signal wants a captcha solved; ChallengeToken set
	OutcomeTransient                              // network, signal-cli down: try again later
	OutcomeUnknown                                // the request was written, the reply never came
	OutcomeFailed                                 // permanent failure
)

var outcomeNames = [...]string{"none", "sent", "not_on_signal", "identity_changed", "rate_limited", "captcha_required", "transient", "unknown_outcome", "failed"}

func (o SendOutcome) String() string {
	if o >= 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "invalid"
}

// SendResult is the classified answer of one Signal send.
type SendResult struct {
	Outcome        SendOutcome
	Timestamp      int64
	RetryAfter     time.Duration
	ChallengeToken string
	// MaybeLookupFailure: not-on-Signal may be a failed lookup (signal-cli gives a null uuid);
	// the dispatcher tries once more before deciding.
	MaybeLookupFailure bool
	Detail             string
	// UUID is the recipient's Signal account (ACI) when signal-cli reported it; remembered
	// with the send so a STOP from that account finds the number.
	UUID string
}

// Signal sends messages through the shop's Signal account.
type Signal interface {
	Send(ctx context.Context, to, text string) SendResult
	Trust(ctx context.Context, to string) error
}

// SMS sends plain SMS through the modem. An error wrapping ErrPermanent will not get better by
// retrying (an invalid number, the network refusing the destination); an error wrapping
// ErrOutcomeUnknown means the message may have been sent (written, never confirmed).
type SMS interface {
	SendSMS(ctx context.Context, to, text string) (parts int, err error)
}

var (
	// ErrPermanent marks failures that retrying will not fix.
	ErrPermanent = errors.New("permanent failure")
	// ErrOutcomeUnknown marks a send whose outcome is unknown: the message was handed over (an
	// SMS PDU written to the modem) but no confirmation came back, so the send may have
	// happened. The dispatcher applies ARCHITECTURE section 3 rule 6 to it: at_most_once ends
	// the job with an unknown event, at_least_once sends it again.
	ErrOutcomeUnknown = errors.New("send outcome unknown")
)

// Renderer turns a job into the text the customer reads, naming the shop. A job it cannot
// render is refused with a *FieldError naming the field (template, vars.x, text).
type Renderer interface {
	Render(j Job) (string, error)
}
