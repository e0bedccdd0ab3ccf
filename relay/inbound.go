package relay

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/shopkit/relay/relay/redact"
)

// DecodeConsentRecord reads and validates a P/consent payload (contract v1).
func DecodeConsentRecord(payload []byte, now time.Time) (ConsentRecord, error) {
	fields, err := decodeObject(payload)
	if err != nil {
		return ConsentRecord{}, err
	}
	d := &decoder{fields: fields}
	var r ConsentRecord
	to := d.str("to", true)
	if d.err == nil {
		n, err := ParseNumber(to)
		if err != nil {
			d.fail("to", CodeBadNumber, err.Error())
		}
		r.To = n.E164
	}
	r.Consent = d.enum("consent", "", "opt_in", "opt_out", "request")
	if d.err == nil && r.Consent == "" {
		d.fail("consent", CodeRequired, "want opt_in, opt_out or request")
	}
	r.At = d.time("at")
	if d.err == nil && r.At.IsZero() {
		r.At = now
	}
	r.Source = d.str("source", false)
	r.Proof = d.str("proof", false)
	d.checkText("source", r.Source, maxSourceLen)
	d.checkText("proof", r.Proof, maxProofLen)
	r.Lang = d.lang("lang", "")
	if d.err != nil {
		return ConsentRecord{}, d.err
	}
	return r, nil
}

// Receipt is a delivery or read receipt from a customer's phone for sends of ours, named by
// their Signal timestamps.
type Receipt struct {
	Read       bool // false: delivery receipt
	From       string
	Timestamps []int64
	At         time.Time
}

// Message is a customer's message to the shop's number, on Signal or by SMS.
type Message struct {
	From            string // E.164; may be empty on Signal when only the uuid is known
	FromUUID        string
	Text            string
	At              time.Time
	Channel         Channel
	SignalTimestamp int64
}

// Responder handles what customers send back: receipts become delivered and read events, keywords
// change consent and get an answer, other text goes to P/inbound.
type Responder struct {
	intake  *Intake
	consent ConsentKeeper
	sent    SentIndex
	events  EventSink
	journal Journal
	log     *slog.Logger
	now     func() time.Time
}

// NewResponder returns a Responder. Replies are queued through intake.System.
func NewResponder(intake *Intake, consent ConsentKeeper, sent SentIndex, events EventSink, journal Journal, log *slog.Logger, now func() time.Time) *Responder {
	if now == nil {
		now = time.Now
	}
	return &Responder{intake: intake, consent: consent, sent: sent, events: events, journal: journal,
		log: orDiscard(log).With("component", "responder"), now: now}
}

// HandleReceipt publishes delivered/read for each job the receipt names, once per job and
// kind. A read receipt implies delivery: if no delivery receipt came first, delivered is
// published before read. Unknown timestamps (not our sends, or older than the index keeps)
// are ignored. The updated record and its events commit together, so an error leaves the
// receipt to be handled again with nothing lost or doubled.
func (r *Responder) HandleReceipt(ctx context.Context, rc Receipt) error {
	for _, t := range rc.Timestamps {
		rec, ok, err := r.sent.Lookup(t)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		var evs []EventType
		if !rec.Delivered {
			evs = append(evs, EventDelivered)
			rec.Delivered = true
		}
		if rc.Read && !rec.Read {
			evs = append(evs, EventRead)
			rec.Read = true
		}
		if len(evs) == 0 {
			continue
		}
		fx := Effects{Sent: &SentSend{Timestamp: t, Record: rec}}
		for _, et := range evs {
			fx.Events = append(fx.Events, Event{ID: rec.ID, Event: et, At: ts(rc.At), To: rec.To, Channel: ChannelSignal, SignalTimestamp: t})
			if r.journal != nil {
				fx.Journal = append(fx.Journal, JournalEntry{At: rc.At, ID: rec.ID, To: rec.To, Channel: ChannelSignal, Event: et})
			}
		}
		if err := r.sent.Commit(ctx, fx); err != nil {
			return err
		}
	}
	return nil
}

// HandleMessage applies keywords or forwards the text to P/inbound. It returns nil only when
// the message is safely handled (for SMS: the modem may then delete it).
func (r *Responder) HandleMessage(ctx context.Context, m Message) error {
	if m.From != "" {
		act, err := r.consent.Inbound(ctx, m.From, m.Text, m.At)
		if err != nil {
			return err
		}
		if act.Keyword {
			if act.Reply != "" {
				via := Channel("")
				if m.Channel == ChannelSMS {
					via = ChannelSMS
				}
				if err := r.reply(ctx, m.From, act.Reply, via); err != nil {
					return err
				}
			}
			if act.Event != "" {
				if err := r.events.Publish(ctx, Event{Event: act.Event, At: ts(m.At), To: m.From, Channel: m.Channel, Source: "keyword"}); err != nil {
					return err
				}
			}
			if r.journal != nil {
				_ = r.journal.Record(ctx, JournalEntry{At: m.At, To: m.From, Channel: m.Channel, Event: act.Event, Code: "keyword", Text: m.Text})
			}
			return nil
		}
	}
	return r.events.PublishInbound(ctx, Inbound{From: m.From, FromUUID: m.FromUUID, Text: m.Text, At: ts(m.At),
		Channel: m.Channel, SignalTimestamp: m.SignalTimestamp})
}

// reply queues the answer to a keyword. The consent policy answers an opted-out number with the
// opt-out confirmation and nothing else (STOP, or HELP after STOP), so a reply queued while the
// number is opted out is that confirmation: it is marked as the one message an opted-out number
// still receives. Any other reply is suppressed at send time if a STOP came in between.
func (r *Responder) reply(ctx context.Context, to, text string, via Channel) error {
	ok, code, err := r.consent.Allow(ctx, to, KindTransactional, nil)
	if err != nil {
		return err
	}
	if ok || code != codeOptedOut {
		return r.intake.System(ctx, to, text, via)
	}
	return r.intake.systemReply(ctx, to, text, via, true)
}

// systemReply is Intake.System for a reply that is the opt-out confirmation.
//
// TODO(lead): fold into Intake.System (relay/intake.go) as a parameter; kept here so this change
// does not touch intake.go while it is being edited.
func (in *Intake) systemReply(ctx context.Context, to, text string, via Channel, optOutConfirmation bool) error {
	num, err := ParseNumber(to)
	if err != nil {
		return err
	}
	now := in.now()
	id := "relay-" + strconv.FormatInt(now.UnixNano(), 36) + "-" + strconv.FormatInt(in.sysSeq.Add(1), 36)
	j := Job{ID: id, To: num.E164, Text: text, Kind: KindTransactional, Priority: PriorityHigh,
		ExpiresAt: now.Add(in.defaults.Expiry), Fallback: FallbackNone, Delivery: AtLeastOnce}
	if via == ChannelSMS {
		j.Fallback = FallbackSMS
	}
	st := Stored{Job: j, Body: text, Mobile: num.Mobile, Via: via, System: true, OptOutConfirmation: optOutConfirmation}
	if _, err := in.outbox.Submit(ctx, st)(); err != nil {
		return fmt.Errorf("queueing a reply to %s: %w", redact.Number(to), err)
	}
	in.accepted()
	return nil
}
