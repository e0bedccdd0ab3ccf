// Package signaltest is a faithful fake of signal-cli 0.13.19's JSON-RPC daemon, for tests.
//
// Fake serves the line protocol on Unix sockets, TCP or any connection, following
// ../shared/reference/signal-cli-jsonrpc.md section 8: envelope checks and error codes as the
// real one gives them (checked side by side by signalbridge's contract tests), ids echoed as
// raw JSON, notifications unanswered, batches answered on one line in any order, requests run
// concurrently, multi- and single-account rules, subscription ids from one process-wide counter,
// invalid UTF-8 closing the connection. Differences found against the real daemon were fixed in
// the fake and are noted where they live ("checked on 0.13.19"). Error texts that come from
// Jackson are imitated in shape only: assert on codes.
//
// Incoming messages go through one receive loop, like the daemon's receive thread: injected
// messages wait on the fake "Signal server" (Backlog) while nobody is subscribed (manual and
// on-connection mode, also after unsubscribeReceive) and are delivered in order per account after
// the next subscribeReceive; unsubscribeReceive takes the same lock as a delivery, so no
// notification of a subscription follows its unsubscribe reply. Config.DeliveryInterval paces the
// loop (deterministic inside testing/synctest). Not modelled: the real daemon can lose the one
// message in its receive thread when the last subscription ends (see package signalbridge).
//
// Tests script per-recipient send outcomes (SetOutcome), delay replies (SetDelay), inject
// incoming messages and receipts (Inject*), count requests (Requests), get automatic receipts after sends
// (Config.DeliveryReceiptAfter), and cause faults: hang (SetHang, HangAfter), close mid-request
// (CloseOn), drop connections. The standalone program cmd/fake-signal-cli accepts the real
// command line plus fault flags (exit at start, slow start, hang, ignore SIGTERM, stale socket).
package signaltest
