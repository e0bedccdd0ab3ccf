package buffer

import (
	"errors"
	"fmt"
)

// Sentinel errors. Compare with errors.Is.
var (
	// ErrClosed is returned by every operation after Close.
	ErrClosed = errors.New("buffer: store closed")
	// ErrNotFound: no queued message with that id.
	ErrNotFound = errors.New("buffer: message not found")
	// ErrNotLeased: the message is queued but not currently leased, so it
	// cannot be Acked, Retried or marked as sending.
	ErrNotLeased = errors.New("buffer: message not leased")
	// ErrDiskFull: the write was refused or failed for lack of space;
	// nothing of it was stored.
	ErrDiskFull = errors.New("buffer: disk full")
	// ErrCorrupt: a stored record or the database could not be decoded.
	ErrCorrupt = errors.New("buffer: corrupt data")
	// ErrInvalid: a Message or argument failed validation.
	ErrInvalid = errors.New("buffer: invalid argument")
	// ErrNot64Bit: the platform is 32-bit; Badger loses data there.
	ErrNot64Bit = errors.New("buffer: relay requires a 64-bit OS (Badger loses data on 32-bit platforms)")
)

// CorruptError describes an undecodable stored value. It unwraps to ErrCorrupt.
type CorruptError struct {
	Key    []byte // the Badger key holding the bad value
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("buffer: corrupt record at key %q: %s", e.Key, e.Reason)
}

// Unwrap makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// InvalidError names the field of a Message or argument that failed validation.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("buffer: invalid %s: %s", e.Field, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// OpenError is returned by Open when the database cannot be opened and was
// not quarantined (wrong encryption key, locked by another process, no
// permission, ...).
type OpenError struct {
	Dir string
	Err error
}

func (e *OpenError) Error() string { return fmt.Sprintf("buffer: open %s: %v", e.Dir, e.Err) }

// Unwrap returns the underlying Badger or OS error.
func (e *OpenError) Unwrap() error { return e.Err }
