package template

import (
	"errors"
	"fmt"
)

// Errors callers can test with errors.Is. The struct errors below wrap them.
var (
	// ErrBadFile: a template file is malformed (header, body or name). Wrapped by *FileError.
	ErrBadFile = errors.New("template file is invalid")
	// ErrUnknownTemplate: no template of that name exists in any language.
	ErrUnknownTemplate = errors.New("unknown template")
	// ErrNoLanguage: the template exists, but neither in the requested, the default nor "en".
	ErrNoLanguage = errors.New("template not available in this language")
	// ErrMissingVar: the template declares a variable the job did not give. Wrapped by *VarError.
	ErrMissingVar = errors.New("missing variable")
	// ErrExtraVar: the job gave a variable the template does not declare. Wrapped by *VarError.
	ErrExtraVar = errors.New("undeclared variable")
	// ErrBadValue: a variable's value (or a free text) has a forbidden character, is not UTF-8 or
	// is too long. Wrapped by *VarError.
	ErrBadValue = errors.New("invalid variable value")
	// ErrTooLong: the rendered message is over SignalMaxBytes. Wrapped by *LengthError.
	ErrTooLong = errors.New("message too long")
	// ErrEmpty: a free-text job has no text.
	ErrEmpty = errors.New("empty text")
	// ErrConfig: the Config given to New is unusable.
	ErrConfig = errors.New("invalid template configuration")
)

// FileError is a problem in one template file. Line is 1-based; 0 when the problem is the file
// as a whole (its name, its size, or its variables disagreeing with another language).
type FileError struct {
	File string
	Line int
	Msg  string
}

func (e *FileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Unwrap returns ErrBadFile.
func (e *FileError) Unwrap() error { return ErrBadFile }

// VarError names the variable that made a job unrenderable. Field returns the job field to
// name in a rejected event ("vars.carrier", or "text" for a free-text job).
type VarError struct {
	Template string // empty for a free-text job
	Var      string // empty for a free-text job
	Reason   string // for people: "not declared by order_shipped (declared: order carrier url)"
	Err      error  // ErrMissingVar, ErrExtraVar or ErrBadValue
}

func (e *VarError) Error() string {
	if e.Var == "" {
		return fmt.Sprintf("text: %v: %s", e.Err, e.Reason)
	}
	return fmt.Sprintf("template %s: variable %q: %v: %s", e.Template, e.Var, e.Err, e.Reason)
}

// Unwrap returns the sentinel.
func (e *VarError) Unwrap() error { return e.Err }

// Field is the job field at fault, for a rejected event.
func (e *VarError) Field() string {
	if e.Var == "" {
		return "text"
	}
	return "vars." + e.Var
}

// LengthError reports a rendered message over the Signal limit.
type LengthError struct {
	Bytes int
	Limit int
}

func (e *LengthError) Error() string {
	return fmt.Sprintf("message is %d bytes, over the %d-byte limit (shorten the text or the variables)", e.Bytes, e.Limit)
}

// Unwrap returns ErrTooLong.
func (e *LengthError) Unwrap() error { return ErrTooLong }

// LookupError reports a template or language that cannot be found.
type LookupError struct {
	Template string
	Lang     string   // the language requested
	Have     []string // languages the template has (empty when the template is unknown)
	Err      error    // ErrUnknownTemplate or ErrNoLanguage
}

func (e *LookupError) Error() string {
	if errors.Is(e.Err, ErrUnknownTemplate) {
		return fmt.Sprintf("template %q: %v", e.Template, e.Err)
	}
	return fmt.Sprintf("template %q: %v %q (has %v; fallback default and en tried)", e.Template, e.Err, e.Lang, e.Have)
}

// Unwrap returns the sentinel.
func (e *LookupError) Unwrap() error { return e.Err }
