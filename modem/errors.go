package modem

import (
	"errors"
	"fmt"
)

// Sentinels. Match them with errors.Is; the struct errors below unwrap to one of them.
var (
	// ErrTimeout: the modem did not finish a command within its fixed deadline.
	ErrTimeout = errors.New("modem: command timed out")
	// ErrPortGone: the serial device went away (USB unplug, re-enumeration, hangup).
	ErrPortGone = errors.New("modem: serial port gone")
	// ErrClosed: the engine or modem was closed by its owner.
	ErrClosed = errors.New("modem: closed")
	// ErrUnavailable: the modem is not ready (starting, recovering or needing staff); retry later.
	ErrUnavailable = errors.New("modem: not available")
	// ErrCommandFailed: the modem answered a command with an error result (see *ResultError).
	ErrCommandFailed = errors.New("modem: command failed")
	// ErrSIMMissing: no SIM card (CME 10, or +CPIN: NOT INSERTED).
	ErrSIMMissing = errors.New("modem: SIM not inserted")
	// ErrSIMLocked: the SIM wants a PIN (or PUK) we do not have or that was refused.
	ErrSIMLocked = errors.New("modem: SIM locked")
	// ErrNoDevice: no serial device matches the configured path or USB ids.
	ErrNoDevice = errors.New("modem: no matching device")
	// ErrBadResponse: the modem answered something we could not parse.
	ErrBadResponse = errors.New("modem: unparsable response")
	// ErrInvalidInput: a caller passed something we cannot send (empty text, bad number).
	ErrInvalidInput = errors.New("modem: invalid input")
	// ErrOutcomeUnknown: the PDU reached the modem (written after the "> " prompt, with its
	// Ctrl-Z) and then the command ended without the modem's verdict (timeout, port gone,
	// cancellation, OK without +CMGS), so the SMS may have been sent; or an earlier part of the
	// same multipart SMS was sent. Sending it again may give the customer a duplicate (see
	// ARCHITECTURE section 3 rule 6). The error also wraps its cause (ErrTimeout, ErrPortGone, a
	// *ResultError, ...).
	ErrOutcomeUnknown = errors.New("modem: send outcome unknown")
)

// Kind is the class of a final result code.
type Kind int

// Final result kinds other than OK.
const (
	KindError      Kind = iota + 1 // plain ERROR
	KindCME                        // +CME ERROR: <n> (equipment / SIM / network)
	KindCMS                        // +CMS ERROR: <n> (SMS service)
	KindNoCarrier                  // NO CARRIER
	KindBusy                       // BUSY
	KindNoAnswer                   // NO ANSWER
	KindNoDialtone                 // NO DIALTONE
)

func (k Kind) String() string {
	switch k {
	case KindError:
		return "ERROR"
	case KindCME:
		return "+CME ERROR"
	case KindCMS:
		return "+CMS ERROR"
	case KindNoCarrier:
		return "NO CARRIER"
	case KindBusy:
		return "BUSY"
	case KindNoAnswer:
		return "NO ANSWER"
	case KindNoDialtone:
		return "NO DIALTONE"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// ResultError is a command that the modem answered with an error final result code. Code is the
// numeric CME/CMS cause (3GPP TS 27.007 §9.2 / TS 27.005 §3.2.5), or -1 when the modem gave text
// we could not map. It unwraps to ErrCommandFailed, and for the SIM causes also matches
// ErrSIMMissing (CME 10) or ErrSIMLocked (CME 11, 12, 16, 17, 18).
type ResultError struct {
	Command string // the command as sent, e.g. "AT+CMGS=23"
	Kind    Kind
	Code    int    // CME/CMS cause; 0 for kinds without one
	Text    string // the result line as received
}

func (e *ResultError) Error() string {
	if e.Kind == KindCME || e.Kind == KindCMS {
		return fmt.Sprintf("modem: %s: %s %d", e.Command, e.Kind, e.Code)
	}
	return fmt.Sprintf("modem: %s: %s", e.Command, e.Kind)
}

// Unwrap returns ErrCommandFailed.
func (e *ResultError) Unwrap() error { return ErrCommandFailed }

// Is lets SIM causes match ErrSIMMissing / ErrSIMLocked.
func (e *ResultError) Is(target error) bool {
	if e.Kind != KindCME {
		return false
	}
	switch target {
	case ErrSIMMissing:
		return e.Code == 10
	case ErrSIMLocked:
		return e.Code == 11 || e.Code == 12 || e.Code == 16 || e.Code == 17 || e.Code == 18
	}
	return false
}

// IsCMS reports whether err is a +CMS ERROR with the given cause.
func IsCMS(err error, code int) bool {
	var re *ResultError
	return errors.As(err, &re) && re.Kind == KindCMS && re.Code == code
}

// IsCME reports whether err is a +CME ERROR with the given cause.
func IsCME(err error, code int) bool {
	var re *ResultError
	return errors.As(err, &re) && re.Kind == KindCME && re.Code == code
}

// CommandError says which command failed for reasons outside the modem's answer (timeout, port
// gone, cancellation). It unwraps to the cause. When PDUWritten is set (a PDU command whose PDU
// had gone to the modem), it also matches ErrOutcomeUnknown.
type CommandError struct {
	Command string
	Err     error
	// PDUWritten: the PDU and its Ctrl-Z reached the port before the command failed, so the
	// modem may have acted on it (for AT+CMGS: sent the SMS).
	PDUWritten bool
}

func (e *CommandError) Error() string {
	if e.PDUWritten {
		return "modem: " + e.Command + ": " + e.Err.Error() + " after the PDU was written"
	}
	return "modem: " + e.Command + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *CommandError) Unwrap() error { return e.Err }

// Is makes a command that failed after its PDU was written match ErrOutcomeUnknown.
func (e *CommandError) Is(target error) bool { return target == ErrOutcomeUnknown && e.PDUWritten }

// SendError is a SendSMS that failed at one part. It unwraps to the cause (a *ResultError with
// the +CMS cause, a *CommandError with ErrTimeout or ErrPortGone, ...). OutcomeUnknown (which
// makes it match ErrOutcomeUnknown) is set when the failing part may have been sent (its PDU
// reached the modem and no verdict came back) or when earlier parts were sent: the customer
// already has part of the message, so resending would duplicate those parts.
type SendError struct {
	To             string // masked
	Part, Parts    int    // the part that failed (1-based) and how many the message has
	Sent           int    // parts the network accepted before it
	OutcomeUnknown bool
	Err            error
}

func (e *SendError) Error() string {
	msg := fmt.Sprintf("modem: send part %d of %d to %s: %v", e.Part, e.Parts, e.To, e.Err)
	switch {
	case e.Sent > 0:
		msg += fmt.Sprintf(" (partial delivery: %d of %d parts already sent; resending would duplicate them)", e.Sent, e.Parts)
	case e.OutcomeUnknown:
		msg += " (outcome unknown: the SMS may have been sent)"
	}
	return msg
}

// Unwrap returns the cause.
func (e *SendError) Unwrap() error { return e.Err }

// Is makes a send with an unknown outcome (or a partial delivery) match ErrOutcomeUnknown.
func (e *SendError) Is(target error) bool { return target == ErrOutcomeUnknown && e.OutcomeUnknown }

// ParseError is a response line the modem sent that we could not parse.
type ParseError struct {
	What string // what we were parsing, e.g. "+CSQ"
	Line string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("modem: cannot parse %s from %q", e.What, e.Line)
}

// Unwrap returns ErrBadResponse.
func (e *ParseError) Unwrap() error { return ErrBadResponse }
