// Package modem owns the USB LTE modem that holds the SIM of the shop's number: the AT engine
// over go.bug.st/serial, SMS in PDU mode (github.com/warthog618/sms), health, and recovery.
//
// # Lifecycle
//
//	m, err := modem.New(modem.Config{Device: "/dev/serial/by-id/usb-Quectel_EC25-if02-port0",
//		OnSMS: relay.HandleSMS, OnReport: relay.HandleReport, Logger: log})
//	go m.Run(ctx)                 // returns nil when ctx ends
//	refs, err := m.SendSMS(ctx, "+4915112345678", "Your order has shipped")
//	h := m.Health()               // signal, registration, operator, SIM, NeedsStaff, counters
//	code, ok := modem.ExtractSignalCode(sms.Text)
//
// # What it promises
//
//   - One command at a time. Each command has a fixed deadline from the moment it is sent;
//     unsolicited result codes never extend it (Gammu's ^BOOT bug).
//   - URCs (+CMTI, +CDS, +CREG/+CEREG/+CGREG, RING, ^BOOT/^RSSI noise, ...) are recognised at
//     any moment, also between the lines of a reply, and never taken for a reply. A registration
//     URC is told from the reply to AT+CxREG? by its form (the reply starts "<n>,<stat>").
//     Non-printable bytes are line noise and are dropped.
//   - go.bug.st/serial's quirks stop at this package's edge: a (0, nil) read is ErrTimeout, a
//     PortClosed error or EIO is ErrPortGone; a write that hangs is abandoned at the deadline.
//   - Errors: sentinels ErrTimeout, ErrPortGone, ErrClosed, ErrUnavailable, ErrCommandFailed,
//     ErrSIMMissing, ErrSIMLocked, ErrNoDevice, ErrBadResponse, ErrInvalidInput,
//     ErrOutcomeUnknown (match with errors.Is); *ResultError carries the final result and the
//     numeric +CME/+CMS cause; *CommandError names the command that timed out or lost its port
//     (and whether its PDU had been written); *SendError the SMS part that failed; *ParseError
//     the line.
//   - Receiving: on +CMTI, at start-up, after every recovery and on every health tick the
//     storage is read (AT+CMGR / AT+CMGL=4), PDUs are decoded (GSM 7-bit, UCS-2, national
//     tables), concatenated parts are held until complete or MultipartTimeout (then handed over
//     with Incomplete set), and a message is deleted (AT+CMGD) only after OnSMS returned nil.
//   - No SMS is lost or doubled across recovery: an SMS stays stored until OnSMS accepted it;
//     one accepted but not yet deleted when the modem died is read again after recovery and
//     recognised by its ID (hash of sender, service-centre time, parts and text) within
//     DedupWindow, then deleted without a second hand-over. The window lives in memory: across
//     a process restart the relay must dedup by SMS.ID itself (store it with what it did).
//   - Sending: PDU mode, GSM 7-bit when possible else UCS-2, concatenated with a fresh 8-bit
//     reference per message, status report requested (Config.NoDeliveryReports turns it off);
//     SendSMS returns the TP-MR of each part, and DeliveryReport.Ref matches it. Refused while
//     the modem is not ready (ErrUnavailable). A send that may have gone out matches
//     ErrOutcomeUnknown: the PDU reached the modem and no verdict came back (timeout, port gone,
//     cancellation), or earlier parts of a multipart SMS were sent before a later one failed
//     (a partial delivery: a resend would duplicate them). A failure before the PDU was written,
//     or a +CMS ERROR for the first part, is a definite failure and does not match it.
//   - A write never outlives its port: go.bug.st/serial writes to a bare fd number, so a write
//     abandoned at a deadline and started after the port was closed would reach whatever file
//     reused the number (the reopened modem, a database file); the port refuses it instead.
//   - Recovery ladder on a timeout or a lost port, each step logged once and counted in
//     Health.Recoveries: resync (AT), reopen the port (re-resolving a by-id link or the USB
//     VID/PID, so a modem back as ttyUSB3 instead of ttyUSB2 is found), radio off/on
//     (AT+CFUN=0/1), full reset (AT+CFUN=1,1), then Health.NeedsStaff with a reason, retried
//     quietly every RetryEvery (a modem that was not found is looked for every DevicePoll).
//     A missing or locked SIM needs staff at once. A PIN the SIM refused is never retried.
//   - Health is polled every HealthEvery (AT+CSQ, AT+CESQ for LTE RSRP/RSRQ, AT+CEREG?/
//     AT+CREG?, AT+COPS?) and logged on change only. Phone numbers are masked in logs.
//   - A babbling, flapping or unplugged modem does not flood the journal: lines that repeat
//     (send failures by kind, recovery steps, needs-staff, undecodable PDUs, storage and
//     hand-over errors) go out once per kind and then at most once per 10 minutes with the
//     number held back ("suppressed"); network changes at most once a minute (signal bars alone
//     every 10 minutes), and the state it settles in is logged once the window has passed.
//     Health keeps the full counts.
//
// After a command times out, the modem may still answer it later; such a late final result is
// dropped when nothing is pending, but can be taken for the answer of the next command. The
// ladder's resync exists for that: a wrong answer shows up as a parse error or a failed command,
// never as silent success for SMS storage (a delete that did not happen is re-read and
// deduplicated).
//
// The simulator in modem/modemtest speaks the same AT dialect on a real pseudo-terminal.
package modem
