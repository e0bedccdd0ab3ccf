package signalbridge

import (
	"encoding/json"
	"strings"
)

// Event is one incoming item from signal-cli: *Receipt, *TextMessage or *Undecryptable.
// Sync, typing, story, call and body-less data messages (reactions, deletions, group updates)
// are not turned into events.
type Event interface {
	// EventAccount is the relay's own account the event arrived for.
	EventAccount() string
}

// ReceiptKind tells what a receipt acknowledges.
type ReceiptKind int

const (
	ReceiptDelivery ReceiptKind = iota + 1
	ReceiptRead
	ReceiptViewed
)

func (k ReceiptKind) String() string {
	switch k {
	case ReceiptDelivery:
		return "delivery"
	case ReceiptRead:
		return "read"
	case ReceiptViewed:
		return "viewed"
	}
	return "unknown"
}

// Receipt acknowledges messages we sent. Timestamps are the send timestamps (SendResult.Timestamp)
// of the messages it covers; one receipt can cover several. The sender is the recipient of our
// message; SenderNumber may be empty (phone-number privacy), SenderUUID is then set.
type Receipt struct {
	Account      string
	Kind         ReceiptKind
	SenderNumber string
	SenderUUID   string
	When         int64 // ms since epoch
	Timestamps   []int64
}

// TextMessage is a data message with a body from a contact (e.g. "STOP").
type TextMessage struct {
	Account      string
	SenderNumber string // may be empty: key on SenderUUID as well
	SenderUUID   string
	SenderName   string
	Text         string
	Timestamp    int64  // the sender's message timestamp (its id)
	GroupID      string // non-empty for a group message
}

// Undecryptable reports a message signal-cli received but could not decrypt (an "exception"
// without a data message), e.g. after a safety-number change.
type Undecryptable struct {
	Account       string
	SenderNumber  string
	SenderUUID    string
	Timestamp     int64
	ExceptionType string // Java class name, e.g. "ProtocolInvalidMessageException"
	Message       string
}

func (e *Receipt) EventAccount() string       { return e.Account }
func (e *TextMessage) EventAccount() string   { return e.Account }
func (e *Undecryptable) EventAccount() string { return e.Account }

var (
	_ Event = (*Receipt)(nil)
	_ Event = (*TextMessage)(nil)
	_ Event = (*Undecryptable)(nil)
)

// Wire shapes of reference section 4.
type wireReceiveParams struct {
	// Form 4.1b (after subscribeReceive): {"subscription":N,"result":{...}}.
	Subscription *int64        `json:"subscription"`
	Result       *wireIncoming `json:"result"`
	// Form 4.1a (automatic subscription): the inner object's members directly.
	wireIncoming
}

type wireIncoming struct {
	Account   string        `json:"account"`
	Envelope  *wireEnvelope `json:"envelope"`
	Exception *struct {
		Message string `json:"message"`
		Type    string `json:"type"`
	} `json:"exception"`
}

type wireEnvelope struct {
	SourceNumber *string `json:"sourceNumber"`
	SourceUUID   *string `json:"sourceUuid"`
	SourceName   *string `json:"sourceName"`
	Timestamp    int64   `json:"timestamp"`
	DataMessage  *struct {
		Timestamp int64   `json:"timestamp"`
		Message   *string `json:"message"`
		GroupInfo *struct {
			GroupID string `json:"groupId"`
		} `json:"groupInfo"`
	} `json:"dataMessage"`
	ReceiptMessage *struct {
		When       int64   `json:"when"`
		IsDelivery bool    `json:"isDelivery"`
		IsRead     bool    `json:"isRead"`
		IsViewed   bool    `json:"isViewed"`
		Timestamps []int64 `json:"timestamps"`
	} `json:"receiptMessage"`
	SyncMessage   json.RawMessage `json:"syncMessage"`
	TypingMessage json.RawMessage `json:"typingMessage"`
	StoryMessage  json.RawMessage `json:"storyMessage"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// decodeNotification turns a "receive" notification's params into an Event, or nil when the
// notification is one the relay ignores. An error means the params were not the documented shape.
func decodeNotification(method string, params json.RawMessage) (Event, error) {
	if method != "receive" {
		return nil, nil
	}
	var p wireReceiveParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	in := p.wireIncoming
	if p.Result != nil {
		in = *p.Result
	}
	env := in.Envelope
	if env == nil {
		return nil, nil // failure without an envelope: nothing to attribute it to
	}
	num, uuid := str(env.SourceNumber), str(env.SourceUUID)
	switch {
	case env.ReceiptMessage != nil:
		r := env.ReceiptMessage
		var kind ReceiptKind
		switch {
		case r.IsDelivery:
			kind = ReceiptDelivery
		case r.IsRead:
			kind = ReceiptRead
		case r.IsViewed:
			kind = ReceiptViewed
		default:
			return nil, nil // unknown receipt type
		}
		return &Receipt{Account: in.Account, Kind: kind, SenderNumber: num, SenderUUID: uuid,
			When: r.When, Timestamps: r.Timestamps}, nil
	case env.DataMessage != nil:
		d := env.DataMessage
		if d.Message == nil {
			return nil, nil // reaction, deletion, group update …
		}
		ts := d.Timestamp
		if ts == 0 {
			ts = env.Timestamp
		}
		m := &TextMessage{Account: in.Account, SenderNumber: num, SenderUUID: uuid,
			SenderName: str(env.SourceName), Text: *d.Message, Timestamp: ts}
		if d.GroupInfo != nil {
			m.GroupID = d.GroupInfo.GroupID
		}
		return m, nil
	case in.Exception != nil && env.SyncMessage == nil && env.TypingMessage == nil && env.StoryMessage == nil:
		return &Undecryptable{Account: in.Account, SenderNumber: num, SenderUUID: uuid,
			Timestamp: env.Timestamp, ExceptionType: in.Exception.Type,
			Message: strings.TrimSpace(in.Exception.Message)}, nil
	}
	return nil, nil
}
