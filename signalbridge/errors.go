package signalbridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// JSON-RPC error codes used by signal-cli 0.13.x (reference section 5.1). Other codes (for example
// -6 from 0.14.x) are accepted and surface as *RPCError with the code as sent.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602 // signal-cli uses it only for account selection problems
	CodeInternalError  = -32603
	CodeUserError      = -1
	CodeIOError        = -3
	CodeUntrustedKey   = -4
	CodeRateLimit      = -5
)

// Sentinel errors. Test with errors.Is.
var (
	// ErrClosed: the Client (or Supervisor) was closed by its owner.
	ErrClosed = errors.New("signalbridge: closed")
	// ErrConnectionLost: the connection to signal-cli broke. A call that returns it without
	// ErrOutcomeUnknown was never written and is safe to retry.
	ErrConnectionLost = errors.New("signalbridge: connection to signal-cli lost")
	// ErrOutcomeUnknown: the request was written but no reply came (connection lost or the
	// caller's context ended). The daemon may have executed it: do not resend blindly.
	ErrOutcomeUnknown = errors.New("signalbridge: request written, outcome unknown")
	// ErrInvalidUTF8: a request contained invalid UTF-8; signal-cli would drop the connection.
	ErrInvalidUTF8 = errors.New("signalbridge: request is not valid UTF-8")
	// ErrNotReady: the Supervisor has no usable connection right now.
	ErrNotReady = errors.New("signalbridge: signal-cli not ready")
	// ErrUnregistered: the configured account is not registered in signal-cli.
	ErrUnregistered = errors.New("signalbridge: account not registered in signal-cli")

	// The following match *RPCError values by code (errors.Is(err, ErrMethodNotFound)).
	ErrMethodNotFound    = errors.New("signalbridge: method not implemented")     // -32601
	ErrInvalidRequest    = errors.New("signalbridge: invalid request")            // -32600, -32700
	ErrAccount           = errors.New("signalbridge: missing or unknown account") // -32602
	ErrUntrustedIdentity = errors.New("signalbridge: untrusted identity")         // -4
	ErrRateLimited       = errors.New("signalbridge: rate limited")               // -5
	ErrIO                = errors.New("signalbridge: signal-cli I/O error")       // -3
)

// RPCError is an error object returned by signal-cli. Unknown codes are kept as they are.
type RPCError struct {
	Method  string
	Code    int
	Message string
	// Data is error.data as sent: null unless the command produced a result before failing,
	// then {"response": result} (reference 5.2).
	Data json.RawMessage
}

func (e *RPCError) Error() string {
	// Messages can span lines (register rate limit); keep log lines single.
	msg := strings.ReplaceAll(e.Message, "\n", " ")
	return fmt.Sprintf("signal-cli %s: error %d: %s", e.Method, e.Code, msg)
}

// Is maps codes onto the sentinel errors.
func (e *RPCError) Is(target error) bool {
	switch target {
	case ErrMethodNotFound:
		return e.Code == CodeMethodNotFound
	case ErrInvalidRequest:
		return e.Code == CodeInvalidRequest || e.Code == CodeParseError
	case ErrAccount:
		return e.Code == CodeInvalidParams
	case ErrUntrustedIdentity:
		return e.Code == CodeUntrustedKey
	case ErrRateLimited:
		return e.Code == CodeRateLimit
	case ErrIO:
		return e.Code == CodeIOError
	}
	return false
}

// CallError reports a call that failed before or after its request was written, without a reply.
// Written tells which: when true, errors.Is(err, ErrOutcomeUnknown) holds.
type CallError struct {
	Method  string
	Written bool
	Err     error // ErrConnectionLost, ErrClosed, a context error, or a write error
}

func (e *CallError) Error() string {
	if e.Written {
		return fmt.Sprintf("signal-cli %s: request written, no reply: %v", e.Method, e.Err)
	}
	return fmt.Sprintf("signal-cli %s: not sent: %v", e.Method, e.Err)
}

func (e *CallError) Unwrap() error { return e.Err }

// Is makes a written call match ErrOutcomeUnknown.
func (e *CallError) Is(target error) bool { return target == ErrOutcomeUnknown && e.Written }

// ProtocolError reports a line from signal-cli that could not be understood.
type ProtocolError struct {
	Line   string // possibly truncated
	Reason string
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("signalbridge: bad line from signal-cli (%s): %q", e.Reason, e.Line)
}
