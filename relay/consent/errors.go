package consent

import (
	"errors"
	"fmt"
)

// Errors callers can test with errors.Is.
var (
	// ErrConfig: the Config given to New is unusable.
	ErrConfig = errors.New("invalid consent configuration")
	// ErrInvalid: an argument or a P/consent record is malformed. Wrapped by *FieldError.
	ErrInvalid = errors.New("invalid consent input")
	// ErrOptedOut: the number is opted out, so it may not be asked to opt in (Request), and a
	// customer's own STOP cannot be lifted by the shop (Record opt_in): only the customer's START
	// lifts it.
	ErrOptedOut = errors.New("number is opted out")
	// ErrPending: a double opt-in question is already outstanding; it is not asked again until
	// it expires, so a looping backend cannot flood a customer.
	ErrPending = errors.New("double opt-in already pending")
	// ErrStale: the record is older than the opposite change already in force (last writer wins
	// by "at").
	ErrStale = errors.New("consent record is older than the current state")
	// ErrCorrupt: the stored record cannot be read. Allow refuses, STOP and START still work
	// (they overwrite it), everything else fails until it is overwritten.
	ErrCorrupt = errors.New("stored consent record is corrupt")
	// ErrStore: the store failed. Wrapped with the store's own error.
	ErrStore = errors.New("consent store failed")
)

// FieldError names the field of a P/consent record or job consent proof at fault, for a
// rejected event.
type FieldError struct {
	Field  string // "to", "consent", "at", "source", "consent.at", ...
	Reason string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }

// Unwrap returns ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }
