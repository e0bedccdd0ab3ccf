package relay

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
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

	unknownUUID atomic.Int64 // keywords from a uuid we never sent to (no number to apply them to)
}

// NewResponder returns a Responder. Keyword replies are queued through intake.System, in one
// transaction with the consent change and its event and journal line (journal is used for
// receipts only).
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
//
// A keyword's consent change, its event, its journal line and its reply are one transaction:
// an error leaves none of them, and handling the message again does all of them once.
//
// A Signal sender who hides their number (signal-cli gives only the uuid) is known by the
// uuid's number from our sends to it (SentIndex.Recipient). When both are given, the number
// wins. A keyword from a uuid we never sent to cannot be applied: it is logged, counted
// (UnknownUUIDKeywords) and published on P/inbound with the uuid, so that the shop can act.
func (r *Responder) HandleMessage(ctx context.Context, m Message) error {
	if m.From == "" && m.FromUUID != "" {
		num, ok, err := r.sent.Recipient(m.FromUUID)
		if err != nil {
			return fmt.Errorf("looking up the number of Signal account %s: %w", redact.UUID(m.FromUUID), err)
		}
		switch {
		case ok:
			m.From = num
		case r.consent.IsKeyword(m.Text):
			r.unknownUUID.Add(1)
			r.log.Warn("keyword from a Signal account that hides its number and was never sent to; not applied, published on inbound",
				"uuid", redact.UUID(m.FromUUID), "channel", m.Channel)
		}
	}
	if m.From != "" {
		via := Channel("")
		if m.Channel == ChannelSMS {
			via = ChannelSMS
		}
		act, err := r.consent.Inbound(ctx, m.From, m.Text, m.At, func(ctx context.Context, w *ConsentWrite, ch ConsentChange) error {
			fx := Effects{Consent: w,
				Journal: []JournalEntry{{At: m.At, To: m.From, Channel: m.Channel, Event: ch.Event, Code: "keyword", Text: m.Text}}}
			if ch.Event != "" {
				fx.Events = []Event{{Event: ch.Event, At: ts(m.At), To: m.From, Channel: m.Channel, Source: "keyword"}}
			}
			return r.intake.System(ctx, Reply{To: m.From, Text: ch.Reply, Via: via, OptOutConfirmation: ch.OptOutConfirmation}, fx)
		})
		if err != nil {
			return err
		}
		if act.Keyword {
			return nil
		}
	}
	return r.events.PublishInbound(ctx, Inbound{From: m.From, FromUUID: m.FromUUID, Text: m.Text, At: ts(m.At),
		Channel: m.Channel, SignalTimestamp: m.SignalTimestamp})
}

// UnknownUUIDKeywords counts keywords from Signal accounts that hide their number and that we
// never sent to: they could not be applied (the shop hears of them on P/inbound).
func (r *Responder) UnknownUUIDKeywords() int64 { return r.unknownUUID.Load() }
