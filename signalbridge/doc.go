// Package signalbridge drives a local signal-cli 0.13.x over JSON-RPC and keeps it running.
//
// It owns the hop between the relay and signal-cli: the line protocol (framing, ids, error
// objects, notifications), the typed operations the relay needs, the classification of send
// results into decisions, the incoming event stream, and the signal-cli process.
// The protocol facts it relies on are in ../shared/reference/signal-cli-jsonrpc.md.
//
// # Client
//
// A Client is one connection (Unix socket, TCP, or any io.ReadWriteCloser such as the pipes of
// `signal-cli jsonRpc`). It promises:
//   - one reader goroutine; replies matched by id in any order, notifications interleaved;
//   - the waiter registered before the request is written;
//   - every call bounded by its context: a call to a hung daemon returns the context error
//     (wrapped in *CallError, errors.Is(err, ErrOutcomeUnknown)) and leaves nothing behind;
//     ClientOptions.CallTimeout bounds calls whose context has no deadline;
//   - requests carry only jsonrpc, method, params (an object) and a string id, as valid UTF-8;
//   - incoming lines capped (ClientOptions.MaxLineBytes, default 4 MiB): a longer line is
//     discarded and the connection keeps working;
//   - unknown error codes surface as *RPCError with the code and message as sent;
//   - a request that was written but never answered is reported as ErrOutcomeUnknown, distinct
//     from a request that never left (ErrConnectionLost alone, safe to retry).
//
// Send returns a SendResult whose Outcome is always set (Sent, NotOnSignal, IdentityChanged,
// RateLimited, CaptchaRequired, Transient, Unknown, Failed); the all-failed error forms -1/-4/-5
// with data.response are decoded into per-recipient outcomes. Timestamps are int64 ms; the send
// Timestamp is what Receipt.Timestamps refer to.
//
// Incoming events (after SubscribeReceive on a daemon in --receive-mode=manual) are *Receipt,
// *TextMessage and *Undecryptable, handed to ClientOptions.OnEvent in order from a goroutine of
// the Client, so a slow handler never delays replies. Sync, typing, story and body-less data
// messages are dropped. Delivery is at most once (signal-cli acknowledges before notifying).
//
// Memory for incoming events is bounded without blocking the reader and without dropping: the
// queue in front of OnEvent has a high mark (ClientOptions.EventQueueHigh, default 1,000). When
// it is reached the Client unsubscribes, so signal-cli stops pulling messages and they wait on
// the Signal server; when the queue has drained to the low mark it subscribes again. Events
// already on the wire when it paused are queued too (a bounded overshoot: what signal-cli wrote
// before the unsubscribe reply). Paused and resumed are logged once each; EventStats and
// Health.Incoming report the queue. Caveat of signal-cli 0.13.19 (from its source): a message
// its receive thread is processing at the instant the last subscription ends goes to nobody,
// so each pause can lose at most that one message, as a broken connection can.
//
// # Supervisor
//
// A Supervisor starts `signal-cli --config DIR daemon --socket PATH --receive-mode=manual
// --no-receive-stdout` (multi-account mode: calls carry the account) or connects to an external
// daemon, waits for readiness (connect, version, listAccounts contains the account), subscribes
// to incoming messages on its connection, probes it periodically, and restarts it with backoff
// and jitter (relay/backoff) when it exits, the socket breaks or a probe fails. It implements API
// on the current connection and reports Health. Its incoming event queue outlives connections:
// a new connection does not subscribe while the queue is still full, and Run returns only after
// every received event was handed to OnEvent.
//
// The fake signal-cli for tests is in package signaltest.
package signalbridge
