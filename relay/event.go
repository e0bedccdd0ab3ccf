package relay

import (
	"encoding/json"
	"time"
)

// EventType names a state change of a job or of a customer's consent (contract v1).
type EventType string

// Job events, then consent events. sent, delivered and read may be followed by others; the
// terminal ones for a job are sent (then receipts), failed, expired, unknown, suppressed,
// rejected and duplicate.
const (
	EventAccepted   EventType = "accepted"
	EventDuplicate  EventType = "duplicate"
	EventRejected   EventType = "rejected"
	EventSuppressed EventType = "suppressed"
	EventDeferred   EventType = "deferred"
	EventSent       EventType = "sent"
	EventRetrying   EventType = "retrying"
	EventDelivered  EventType = "delivered"
	EventRead       EventType = "read"
	EventFailed     EventType = "failed"
	EventExpired    EventType = "expired"
	EventUnknown    EventType = "unknown"

	EventOptedIn        EventType = "opted_in"
	EventOptedOut       EventType = "opted_out"
	EventOptInRequested EventType = "optin_requested"
)

// Channel is how a message went out.
type Channel string

const (
	ChannelSignal Channel = "signal"
	ChannelSMS    Channel = "sms"
)

// Event is published on P/events and written to the journal.
type Event struct {
	ID              string      `json:"id,omitempty"`
	Event           EventType   `json:"event"`
	At              Timestamp   `json:"at"`
	To              string      `json:"to,omitempty"`
	Channel         Channel     `json:"channel,omitempty"`
	Attempt         int         `json:"attempt,omitempty"`
	SignalTimestamp int64       `json:"signal_timestamp,omitempty"`
	SMSParts        int         `json:"sms_parts,omitempty"`
	NextAttemptAt   *Timestamp  `json:"next_attempt_at,omitempty"`
	Source          string      `json:"source,omitempty"` // consent events: where the change came from
	Error           *EventError `json:"error,omitempty"`
}

// EventError explains a rejected, failed, retrying, deferred or suppressed job. Code is a stable
// snake_case word; Detail is for people.
type EventError struct {
	Code   string `json:"code"`
	Field  string `json:"field,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Inbound is a customer's message that is not a keyword, published on P/inbound.
type Inbound struct {
	From            string    `json:"from,omitempty"`
	FromUUID        string    `json:"from_uuid,omitempty"`
	Text            string    `json:"text"`
	At              Timestamp `json:"at"`
	Channel         Channel   `json:"channel"`
	SignalTimestamp int64     `json:"signal_timestamp,omitempty"`
}

// Timestamp is a time written as RFC 3339 in UTC with milliseconds, as the contract asks.
type Timestamp time.Time

const timestampLayout = "2006-01-02T15:04:05.000Z07:00"

// MarshalJSON implements json.Marshaler.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Time(t).UTC().Format(timestampLayout))
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	*t = Timestamp(v)
	return nil
}

func ts(t time.Time) Timestamp { return Timestamp(t) }

func tsp(t time.Time) *Timestamp { v := Timestamp(t); return &v }
