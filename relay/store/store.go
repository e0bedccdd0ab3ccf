// Package store adapts the buffer package (the Badger outbox and the small stores beside it) to
// the interfaces relay consumes: Outbox, EventSink, Journal, SentIndex, the consent store and the
// MQTT spool. It owns the record formats relay keeps there; the buffer sees only bytes.
//
// Key spaces used (inside the buffer's own layout, see buffer/doc.go):
//   - the outbox: one message per job, Payload = JSON of Record;
//   - spool "mqtt": outbound MQTT messages, each mqtt.EncodeItem(topic, JSON);
//   - KV "sent": Signal send timestamp (decimal) → JSON of relay.SentRecord;
//   - KV "consent": E.164 number → the consent package's record;
//   - KV "recipients": Signal account uuid (lower case) → JSON {number, at} of our last send to it;
//   - the journal: one entry per state change, Kind = event, Outcome = error code.
//
// A job's state change (Ack, Retry, Defer, Expire) and its relay.Effects — the events on spool
// "mqtt", the journal lines, the "sent" entry of a Signal send — are one buffer transaction
// (buffer Extras); a receipt's record update and its events are one too (Commit); so are a
// consent change, its event, its journal line and the reply it causes (Apply).
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/shopkit/relay/buffer"
	"github.com/shopkit/relay/relay"
	"github.com/shopkit/relay/relay/mqtt"
)

// Spool and KV names.
const (
	mqttSpool = "mqtt"
	sentNS    = "sent"
)

// Store wraps an open buffer.Store.
type Store struct {
	b      *buffer.Store
	spool  *buffer.Spool
	sent   *buffer.KV
	log    *slog.Logger
	notify func() // tells the MQTT publisher the spool grew
	// applyHook, when set (tests), runs before Apply writes and fails it with its error.
	applyHook func() error
}

var (
	_ relay.Outbox    = (*Store)(nil)
	_ relay.EventSink = (*Store)(nil)
	_ relay.Journal   = (*Store)(nil)
	_ relay.SentIndex = (*Store)(nil)
	_ mqtt.Spool      = (*Store)(nil)
)

// New wraps b. notify (may be nil, or set later with OnSpool) is called after events are stored.
func New(b *buffer.Store, log *slog.Logger) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{b: b, spool: b.Spool(mqttSpool), sent: b.KV(sentNS), log: log.With("component", "store"), notify: func() {}}
}

// OnSpool sets the function called when the MQTT spool grows.
func (s *Store) OnSpool(fn func()) { s.notify = fn }

// Record is what the outbox keeps per job (buffer Message Payload).
type Record struct {
	Job    relay.Job     `json:"job"`
	Body   string        `json:"body"`
	Mobile bool          `json:"mobile,omitempty"`
	Via    relay.Channel `json:"via,omitempty"`
	System bool          `json:"system,omitempty"`
	// SystemKind tells the box's own replies apart: SystemOptOutConfirmation or SystemReply.
	// Records written before it existed have System without a kind; they read as before
	// (exempt from the opt-out check, as every System reply then was).
	SystemKind string `json:"system_kind,omitempty"`
}

// Record.SystemKind values.
const (
	SystemOptOutConfirmation = "opt_out_confirmation"
	SystemReply              = "reply"
)

var priorities = map[relay.Priority]buffer.Priority{
	relay.PriorityHigh: buffer.PriorityHigh, relay.PriorityNormal: buffer.PriorityNormal, relay.PriorityLow: buffer.PriorityLow,
}

// Submit implements relay.Outbox.
func (s *Store) Submit(ctx context.Context, st relay.Stored, events ...relay.Event) func() (bool, error) {
	m, err := message(st)
	if err != nil {
		return func() (bool, error) { return false, err }
	}
	also, err := s.extras(relay.Effects{Events: events})
	if err != nil {
		return func() (bool, error) { return false, err }
	}
	wait := s.b.PutAsync(ctx, m, also...)
	return func() (bool, error) {
		res, err := wait()
		if err != nil {
			return false, err
		}
		if res == buffer.Accepted && len(also) > 0 {
			s.notify()
		}
		return res == buffer.Duplicate, nil
	}
}

// message is the outbox message of st.
func message(st relay.Stored) (buffer.Message, error) {
	rec := Record{Job: st.Job, Body: st.Body, Mobile: st.Mobile, Via: st.Via, System: st.System}
	switch {
	case st.System && st.OptOutConfirmation:
		rec.SystemKind = SystemOptOutConfirmation
	case st.System:
		rec.SystemKind = SystemReply
	}
	payload, err := json.Marshal(rec)
	if err != nil {
		return buffer.Message{}, err
	}
	d := buffer.AtLeastOnce
	if st.Job.Delivery == relay.AtMostOnce {
		d = buffer.AtMostOnce
	}
	return buffer.Message{ID: st.Job.ID, To: st.Job.To, Priority: priorities[st.Job.Priority], Delivery: d,
		AcceptedAt: st.AcceptedAt, NotBefore: st.Job.NotBefore, ExpiresAt: st.Job.ExpiresAt, Payload: payload}, nil
}

func (s *Store) decode(ms []buffer.Message) []relay.Stored {
	out := make([]relay.Stored, 0, len(ms))
	for _, m := range ms {
		st, err := decodeStored(m)
		if err != nil {
			// The buffer's checksums passed, so this is a record an older relay wrote in a shape
			// this one cannot read. Finish it loudly rather than loop on it.
			// The backend hears of it (failed) in the same transaction.
			s.log.Error("outbox record unreadable; marking it failed", "id", m.ID, "err", err)
			ev := relay.Event{ID: m.ID, Event: relay.EventFailed, At: relay.Timestamp(time.Now()), To: m.To,
				Error: &relay.EventError{Code: "unreadable", Detail: "the outbox record of this job cannot be read by this relay version"}}
			_ = s.Ack(context.Background(), m.ID, "failed_unreadable", relay.Effects{Events: []relay.Event{ev}})
			continue
		}
		out = append(out, st)
	}
	return out
}

func decodeStored(m buffer.Message) (relay.Stored, error) {
	var r Record
	if err := json.Unmarshal(m.Payload, &r); err != nil {
		return relay.Stored{}, err
	}
	if r.Job.ID != m.ID {
		return relay.Stored{}, fmt.Errorf("record of job %q stored under %q", r.Job.ID, m.ID)
	}
	return relay.Stored{Job: r.Job, Body: r.Body, Mobile: r.Mobile, Via: r.Via, System: r.System,
		OptOutConfirmation: r.System && r.SystemKind != SystemReply,
		AcceptedAt:         m.AcceptedAt, LeaseDeadline: m.LeaseDeadline, Attempts: m.Attempts, SendStarted: m.SendStarted}, nil
}

// extras turns fx into buffer writes: events to the MQTT spool, lines to the journal, the sent
// record to KV "sent", a consent record to KV "consent", a recipient's uuid to KV "recipients".
func (s *Store) extras(fx relay.Effects) ([]buffer.Extra, error) {
	var out []buffer.Extra
	for _, e := range fx.Events {
		b, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		out = append(out, buffer.SpoolExtra(mqttSpool, mqtt.EncodeItem(mqtt.TopicEvents, b)))
	}
	for _, e := range fx.Journal {
		out = append(out, buffer.JournalExtra(journalEntry(e)))
	}
	if fx.Sent != nil {
		b, err := json.Marshal(fx.Sent.Record)
		if err != nil {
			return nil, err
		}
		out = append(out, buffer.KVExtra(sentNS, strconv.FormatInt(fx.Sent.Timestamp, 10), b))
	}
	return appendConsentExtras(out, fx)
}

// commit runs a buffer operation with fx's extras and tells the MQTT publisher when events
// were stored.
func (s *Store) commit(fx relay.Effects, op func([]buffer.Extra) error) error {
	xs, err := s.extras(fx)
	if err != nil {
		return err
	}
	if err := op(xs); err != nil {
		return err
	}
	if len(fx.Events) > 0 {
		s.notify()
	}
	return nil
}

// Lease implements relay.Outbox.
func (s *Store) Lease(ctx context.Context, n int, now time.Time) ([]relay.Stored, error) {
	ms, err := s.b.Lease(ctx, n, now)
	return s.decode(ms), err
}

// MarkSending implements relay.Outbox.
func (s *Store) MarkSending(ctx context.Context, id string) error { return s.b.MarkSending(ctx, id) }

// Ack implements relay.Outbox.
func (s *Store) Ack(ctx context.Context, id string, outcome relay.EventType, fx relay.Effects) error {
	return s.commit(fx, func(xs []buffer.Extra) error { return s.b.Ack(ctx, id, string(outcome), xs...) })
}

// Retry implements relay.Outbox.
func (s *Store) Retry(ctx context.Context, id string, at time.Time, reason string, fx relay.Effects) error {
	return s.commit(fx, func(xs []buffer.Extra) error { return s.b.Retry(ctx, id, at, reason, xs...) })
}

// Defer implements relay.Outbox.
func (s *Store) Defer(ctx context.Context, id string, until time.Time, reason string, fx relay.Effects) error {
	return s.commit(fx, func(xs []buffer.Extra) error { return s.b.Defer(ctx, id, until, reason, xs...) })
}

// Expire implements relay.Outbox. A removed record that cannot be decoded gets no effects (it
// is reported by the log and never returned).
func (s *Store) Expire(ctx context.Context, now time.Time, fx func(relay.Stored) relay.Effects) ([]relay.Stored, error) {
	events := false
	var buildErr error
	ms, err := s.b.Expire(ctx, now, func(m buffer.Message) []buffer.Extra {
		if fx == nil {
			return nil
		}
		st, err := decodeStored(m)
		if err != nil {
			return nil
		}
		f := fx(st)
		xs, err := s.extras(f)
		if err != nil {
			// Only an unmarshalable event gets here; expire the job without it rather than
			// keep it forever, and say so.
			buildErr = errors.Join(buildErr, fmt.Errorf("effects of expired job %q: %w", m.ID, err))
			return nil
		}
		events = events || len(f.Events) > 0
		return xs
	})
	if events {
		s.notify()
	}
	out := make([]relay.Stored, 0, len(ms))
	for _, m := range ms {
		st, derr := decodeStored(m)
		if derr != nil {
			s.log.Error("expired outbox record unreadable", "id", m.ID, "err", derr)
			continue
		}
		out = append(out, st)
	}
	return out, errors.Join(err, buildErr)
}

// Depth implements relay.Outbox.
func (s *Store) Depth() int { return s.b.Depth() }

// OldestAge implements relay.Outbox.
func (s *Store) OldestAge(now time.Time) time.Duration { return s.b.OldestAge(now) }

// Publish implements relay.EventSink.
func (s *Store) Publish(ctx context.Context, e relay.Event) error {
	return s.append(ctx, mqtt.TopicEvents, e)
}

// PublishInbound implements relay.EventSink.
func (s *Store) PublishInbound(ctx context.Context, in relay.Inbound) error {
	return s.append(ctx, mqtt.TopicInbound, in)
}

func (s *Store) append(ctx context.Context, topic string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := s.spool.Append(ctx, mqtt.EncodeItem(topic, b)); err != nil {
		return fmt.Errorf("storing %s message: %w", topic, err)
	}
	s.notify()
	return nil
}

// PeekAfter implements mqtt.Spool: up to n items with Seq > after, from the head on.
func (s *Store) PeekAfter(after uint64, n int) ([]mqtt.Item, error) {
	items, err := s.spool.PeekAfter(after, n)
	if err != nil {
		return nil, err
	}
	out := make([]mqtt.Item, 0, len(items))
	for _, it := range items {
		// An unreadable item comes back with Err set: the client logs, counts and removes it
		// in order with its neighbours (left out here, a batch of them would stall the spool).
		out = append(out, mqtt.SpooledItem(it.Seq, it.Data))
	}
	return out, nil
}

// Seen implements relay.Outbox: whether a job id was accepted within the dedup window.
func (s *Store) Seen(id string) (bool, error) {
	_, _, ok, err := s.b.Outcome(id)
	return ok, err
}

// Remove implements mqtt.Spool.
func (s *Store) Remove(ctx context.Context, upto uint64) error { return s.spool.Remove(ctx, upto) }

// SpoolLen is the number of messages waiting for the broker.
func (s *Store) SpoolLen() int { return s.spool.Len() }

// Record implements relay.Journal.
func (s *Store) Record(ctx context.Context, e relay.JournalEntry) error {
	return s.b.Journal().Append(ctx, journalEntry(e))
}

func journalEntry(e relay.JournalEntry) buffer.Entry {
	detail := e.Detail
	if e.Attempt > 0 {
		detail = "attempt " + strconv.Itoa(e.Attempt) + ": " + detail
	}
	return buffer.Entry{At: e.At, ID: e.ID, To: e.To, Channel: string(e.Channel),
		Kind: string(e.Event), Outcome: e.Code, Detail: detail, Text: e.Text}
}

// Commit implements relay.SentIndex: fx (sent record, events, journal lines) in one
// transaction.
func (s *Store) Commit(ctx context.Context, fx relay.Effects) error {
	return s.commit(fx, func(xs []buffer.Extra) error { return s.b.Apply(ctx, xs...) })
}

// Lookup implements relay.SentIndex.
func (s *Store) Lookup(ts int64) (relay.SentRecord, bool, error) {
	b, ok, err := s.sent.Get(strconv.FormatInt(ts, 10))
	if err != nil || !ok {
		return relay.SentRecord{}, false, err
	}
	var r relay.SentRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return relay.SentRecord{}, false, fmt.Errorf("sent index entry %d: %w", ts, err)
	}
	return r, true, nil
}

// PruneJournal drops journal entries older than before.
func (s *Store) PruneJournal(before time.Time) (int, error) { return s.b.Journal().Prune(before) }

// PruneSent drops sent-index entries older than before (receipts for them are ignored then).
func (s *Store) PruneSent(ctx context.Context, before time.Time) (int, error) {
	return pruneKV(ctx, s.sent, before, func(v []byte) (time.Time, error) {
		var r relay.SentRecord
		err := json.Unmarshal(v, &r)
		return r.SentAt, err
	})
}

// PruneRecipients drops uuid → number entries whose last send is older than before: a STOP from
// such a hidden number then goes to the shop on P/inbound instead of being applied.
func (s *Store) PruneRecipients(ctx context.Context, before time.Time) (int, error) {
	return pruneKV(ctx, s.b.KV(recipientsNS), before, func(v []byte) (time.Time, error) {
		var r recipient
		err := json.Unmarshal(v, &r)
		return r.At, err
	})
}

// pruneKV deletes the entries of kv whose time (at) is before before; unreadable entries go too.
func pruneKV(ctx context.Context, kv *buffer.KV, before time.Time, at func([]byte) (time.Time, error)) (int, error) {
	var old []string
	err := kv.Each("", func(k string, v []byte) bool {
		if t, err := at(v); err != nil || t.Before(before) {
			old = append(old, k)
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	for _, k := range old {
		if err := kv.Delete(ctx, k); err != nil {
			return 0, err
		}
	}
	return len(old), nil
}
