// Package metrics owns relayd's Prometheus endpoint: a private registry (never the global
// default one, so nothing a library registers in init leaks in), the relay_* metrics, Go and
// process figures, and the HTTP server that serves them on /metrics.
//
// What it promises:
//   - Observed state is read at scrape time through small funcs and interfaces ([Sources]);
//     this package imports only the relay core types, not the buffer, signalbridge, modem or
//     mqtt packages it reports on. cmd/relayd adapts those.
//   - Job and event counts come from wrappers around the pipeline's ports ([Events.Sink],
//     [Events.Outbox], [Events.SentIndex]), the places where an event is stored for
//     publication: an event is counted once, when the write that stores it committed (a
//     failed write is not counted; its retry is).
//   - relay_outbox_quarantined is 1 when the outbox database could not be opened at start-up
//     and was moved aside (buffer's Quarantined); staff must look at the moved directory.
//   - [Listen] binds at once, so a taken port is a start-up error naming the address
//     ([*ListenError]), never a background log line; [Server.Serve] serves until its context
//     ends and then shuts down cleanly. An empty address turns the endpoint off.
//
// The endpoint is plain HTTP without authentication; the default address is loopback. The
// metric names, their labels and HELP texts are listed in metrics.go and in the README.
package metrics
