package signaltest

import (
	"encoding/json"
	"slices"
)

// Envelope is the JSON envelope of reference 4.2, built by the Inject helpers or by tests.
type Envelope map[string]any

func (f *Fake) envelope(number, uuid string, ts int64) Envelope {
	var num, src any
	if number != "" {
		num, src = number, number
	} else if uuid != "" {
		src = uuid
	}
	var u any
	if uuid != "" {
		u = uuid
	}
	return Envelope{"source": src, "sourceNumber": num, "sourceUuid": u, "sourceName": nil, "sourceDevice": 1,
		"timestamp": ts, "serverReceivedTimestamp": ts + 100, "serverDeliveredTimestamp": ts + 130}
}

func (f *Fake) nowMs() int64 { return f.cfg.Now().UnixMilli() }

// InjectText delivers an incoming text message from a contact. number may be empty (phone-number
// privacy: sourceNumber null). It returns the message timestamp.
func (f *Fake) InjectText(account, number, uuid, text string) int64 {
	ts := f.nowMs()
	env := f.envelope(number, uuid, ts)
	env["dataMessage"] = map[string]any{"timestamp": ts, "message": text, "expiresInSeconds": 0, "viewOnce": false}
	f.InjectEnvelope(account, env, nil)
	return ts
}

// InjectReceipt delivers a receipt ("delivery", "read" or "viewed") from a recipient for the given
// send timestamps.
func (f *Fake) InjectReceipt(account, number, uuid, kind string, timestamps ...int64) {
	ts := f.nowMs()
	env := f.envelope(number, uuid, ts)
	env["receiptMessage"] = map[string]any{"when": ts, "isDelivery": kind == "delivery", "isRead": kind == "read",
		"isViewed": kind == "viewed", "timestamps": timestamps}
	f.InjectEnvelope(account, env, nil)
}

// InjectUndecryptable delivers a message that could not be decrypted: an exception and no
// dataMessage.
func (f *Fake) InjectUndecryptable(account, number, uuid, exceptionType string) {
	env := f.envelope(number, uuid, f.nowMs())
	f.InjectEnvelope(account, env, map[string]any{"message": "Invalid message " + exceptionType, "type": exceptionType})
}

// InjectTyping and InjectSync deliver envelopes the relay must ignore.
func (f *Fake) InjectTyping(account, number, uuid string) {
	env := f.envelope(number, uuid, f.nowMs())
	env["typingMessage"] = map[string]any{"action": "STARTED", "timestamp": env["timestamp"]}
	f.InjectEnvelope(account, env, nil)
}

func (f *Fake) InjectSync(account, destination, text string) {
	env := f.envelope(account, UUIDFor(account), f.nowMs())
	env["syncMessage"] = map[string]any{"sentMessage": map[string]any{"destination": destination,
		"destinationNumber": destination, "destinationUuid": UUIDFor(destination), "timestamp": env["timestamp"],
		"message": text, "expiresInSeconds": 0, "viewOnce": false}}
	f.InjectEnvelope(account, env, nil)
}

// InjectEnvelope delivers {"envelope":…,"account":…[,"exception":…]} to the subscribers of
// account. In manual and on-connection mode a message nobody is subscribed to waits (it stays on
// the Signal server) until someone subscribes; in on-start mode it is lost, as with the real
// daemon, whose own stdout is then the only receiver (reference 1.4).
func (f *Fake) InjectEnvelope(account string, env Envelope, exception map[string]any) {
	inner := map[string]any{"account": account, "envelope": env}
	if exception != nil {
		inner["exception"] = exception
	}
	b, _ := json.Marshal(inner)
	if !f.deliver(account, b) && f.cfg.ReceiveMode != "on-start" {
		f.mu.Lock()
		f.queued[account] = append(f.queued[account], b)
		f.mu.Unlock()
	}
}

// deliver writes the inner object to every matching subscription; false if there was none.
func (f *Fake) deliver(account string, inner []byte) bool {
	type target struct {
		c    *fconn
		line []byte
		sub  int64
	}
	var ts []target
	f.mu.Lock()
	for c := range f.conns {
		if c.auto {
			ts = append(ts, target{c, notification(inner, -1), -1})
		}
		ids := make([]int64, 0, len(c.subs))
		for id := range c.subs {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			if filter := c.subs[id]; filter == "" || filter == account {
				ts = append(ts, target{c, notification(inner, id), id})
			}
		}
	}
	f.mu.Unlock()
	for _, t := range ts {
		if err := t.c.write(t.line); err != nil && t.sub >= 0 {
			f.mu.Lock()
			delete(t.c.subs, t.sub) // a failed write drops the subscription
			f.mu.Unlock()
		}
	}
	return len(ts) > 0
}

func notification(inner []byte, sub int64) []byte {
	var params []byte
	if sub < 0 {
		params = inner // 4.1a
	} else {
		params, _ = json.Marshal(map[string]any{"subscription": sub, "result": json.RawMessage(inner)}) // 4.1b
	}
	b := append([]byte(`{"jsonrpc":"2.0","method":"receive","params":`), params...)
	return append(b, '}', '\n')
}

// flushQueued delivers messages that waited for a subscriber.
func (f *Fake) flushQueued() {
	f.mu.Lock()
	q := f.queued
	f.queued = map[string][][]byte{}
	f.mu.Unlock()
	for acc, msgs := range q {
		for i, m := range msgs {
			if !f.deliver(acc, m) {
				f.mu.Lock()
				f.queued[acc] = append(f.queued[acc], msgs[i:]...)
				f.mu.Unlock()
				break
			}
		}
	}
}
