// Package relay is the appliance core: the job contract (decoding and validation of MQTT
// payloads), events, the intake that acknowledges only after a durable Put, the dispatcher that
// sends through Signal or SMS under the delivery rules, the responder for receipts and customer
// replies, and the health roll-up.
//
// It owns the small interfaces it consumes (Outbox, EventSink, Journal, SentIndex, Signal, SMS,
// Renderer, ConsentKeeper) and imports none of their implementations: relay/store adapts the
// buffer package, signalbridge and modem are adapted in cmd/relayd, relay/mqtt feeds Intake.
//
// Promises (ARCHITECTURE section 3):
//   - Intake returns nil (acknowledge) only when the job is durable, or was rejected with a
//     durable rejected event; an error means "do not acknowledge".
//   - The dispatcher marks a send as started (durably) before the request is written, so a crash
//     mid-send is resent (at_least_once) or reported unknown (at_most_once), never silently lost.
//   - Each customer's jobs go in acceptance order (the outbox leases only a customer's head).
//   - Every state change is an event and a journal line; a terminal event follows a successful
//     Ack only, so the backend never hears two terminal events for one job.
package relay
