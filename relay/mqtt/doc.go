// Package mqtt is relay's side of the shop's broker (contract v1, ARCHITECTURE section 4), on
// paho.mqtt.golang v1.5.
//
// Promises:
//   - A persistent session (fixed client id, clean session off), QoS 1, manual acknowledgement:
//     a job is acknowledged only after the handler's wait reports it durable. paho drops an
//     acknowledgement made after the connection was lost; the broker then redelivers, and the
//     outbox's dedup by job id makes that harmless.
//   - Jobs are handed to the handler in arrival order on paho's delivery goroutine, which only
//     enqueues; the wait and the acknowledgement run beside it, so one fsync serves many jobs.
//   - Outbound messages come from a durable spool and are removed only after the broker's
//     PUBACK: events survive broker outages and restarts and go out in order (at least once: a
//     crash between PUBACK and removal publishes up to a few hundred again). The drain keeps a
//     window of publishes in flight rather than waiting batch by batch, so a broker that holds
//     PUBACKs back (Mosquitto's default Nagle) does not stall it. A publish that fails (a lost
//     connection, or one paho could not send in time to a broker that stopped reading) ends the
//     connection before anything behind it is published; the next one starts again after the
//     last acknowledged item. So does a broker that stops acknowledging (Config.AckTimeout,
//     while it still answers pings). A spooled record that cannot be decoded never stops the drain:
//     it is logged as an error, counted (Skipped) and removed in order with its neighbours,
//     never published (Item.Err, SpooledItem). A spool that fails (Peek or Remove) is retried
//     after a pause on the same connection: the box does not look offline for a disk hiccup,
//     and what the broker acknowledged is removed before anything is peeked again, so it is
//     not published twice.
//   - Each connection is a fresh paho client; relay reconnects with backoff itself, so nothing
//     is resent behind its back and events never overtake each other (see Client).
//   - The connection has a read buffer (paho reads a packet byte by byte; see bufferedConn),
//     and a configured CA or client certificate means TLS also on a tcp:// URL, where paho
//     alone would send the password in the clear (Dial, used by relayd and relayctl).
//   - The retained status is republished on every connect; the last will says
//     {"state":"offline"}, and a clean stop publishes the final status, then offline, itself.
package mqtt
