package signaltest

import (
	"encoding/json"
	"slices"
	"time"
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

// InjectEnvelope puts {"envelope":…,"account":…[,"exception":…]} on the fake Signal server for
// account; the fake's receive loop hands it to the subscribers, in injection order per account.
//
// As with the real daemon (reference 1.4, 1.5): in manual and on-connection mode a message waits
// (it stays on the Signal server) while nobody is subscribed to its account, including while a
// client has unsubscribed, and is delivered after the next subscribeReceive; in on-start mode a
// message that arrives while no connection is open is lost (the daemon's own stdout was its only
// receiver). Delivery is at most once: a message whose write fails is gone, and the failed write
// ends that subscription.
func (f *Fake) InjectEnvelope(account string, env Envelope, exception map[string]any) {
	inner := map[string]any{"account": account, "envelope": env}
	if exception != nil {
		inner["exception"] = exception
	}
	b, _ := json.Marshal(inner)
	f.mu.Lock()
	if f.cfg.ReceiveMode == "on-start" && len(f.conns) == 0 {
		f.mu.Unlock()
		return // received by the daemon and written to its own stdout only
	}
	f.queued[account] = append(f.queued[account], b)
	f.mu.Unlock()
	f.kickReceive()
}

// Backlog counts messages waiting on the fake Signal server (injected, not yet delivered).
func (f *Fake) Backlog() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, q := range f.queued {
		n += len(q)
	}
	return n
}

func (f *Fake) kickReceive() {
	select {
	case f.recvWake <- struct{}{}:
	default:
	}
}

// receiveLoop is the daemon's receive thread: it takes one message at a time off the server and
// passes it to the receivers while holding recvMu, the lock unsubscribeReceive also takes
// (ManagerImpl's synchronized(messageHandlers) in 0.13.19). So a notification being written
// when an unsubscribe arrives is on the wire before the unsubscribe reply, and none follows it.
func (f *Fake) receiveLoop() {
	defer f.wg.Done()
	for {
		if f.receiveOne() {
			if iv := f.cfg.DeliveryInterval; iv > 0 {
				select {
				case <-time.After(iv):
				case <-f.closing:
					return
				}
			}
			continue
		}
		select {
		case <-f.recvWake:
		case <-f.closing:
			return
		}
	}
}

// receiveOne delivers (or, in on-start mode with nobody connected, loses) the oldest message of
// the first account, in account order, that has a receiver. It reports whether a message was
// taken off the server.
func (f *Fake) receiveOne() bool {
	type target struct {
		c    *fconn
		line []byte
		sub  int64
	}
	f.recvMu.Lock()
	defer f.recvMu.Unlock()
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return false
	}
	accs := make([]string, 0, len(f.queued))
	for acc, q := range f.queued {
		if len(q) > 0 {
			accs = append(accs, acc)
		}
	}
	slices.Sort(accs)
	conns := make([]*fconn, 0, len(f.conns))
	for c := range f.conns {
		conns = append(conns, c)
	}
	slices.SortFunc(conns, func(a, b *fconn) int { return int(a.seq - b.seq) })
	var ts []target
	var inner []byte
	for _, acc := range accs {
		msg := f.queued[acc][0]
		for _, c := range conns {
			if c.auto {
				ts = append(ts, target{c, notification(msg, -1), -1})
			}
			ids := make([]int64, 0, len(c.subs))
			for id := range c.subs {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			for _, id := range ids {
				if filter := c.subs[id]; filter == "" || filter == acc {
					ts = append(ts, target{c, notification(msg, id), id})
				}
			}
		}
		if len(ts) > 0 || f.cfg.ReceiveMode == "on-start" {
			inner = msg
			f.queued[acc] = f.queued[acc][1:]
			if len(f.queued[acc]) == 0 {
				delete(f.queued, acc)
			}
			break
		}
	}
	f.mu.Unlock()
	if inner == nil {
		return false
	}
	for _, t := range ts {
		if err := t.c.write(t.line); err != nil && t.sub >= 0 {
			f.mu.Lock()
			delete(t.c.subs, t.sub) // a failed write drops the subscription
			f.mu.Unlock()
		}
	}
	return true
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
