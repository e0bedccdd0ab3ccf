package relay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxPayload is the largest MQTT payload relay reads (contract v1): larger ones are rejected.
const MaxPayload = 64 << 10

// Limits on job fields, so a hostile payload cannot make the box render or store megabytes.
const (
	maxTextRunes  = 4000
	maxVars       = 32
	maxVarRunes   = 512
	maxSourceLen  = 64
	maxProofLen   = 256
	maxExpiryDays = 30
)

// Kind says whether a message may be sent on recorded consent (transactional) or needs an
// explicit opt-in (marketing).
type Kind string

// Priority orders jobs across customers; one customer's jobs always go in acceptance order.
type Priority string

// Fallback says what to do when the customer is not on Signal.
type Fallback string

// Delivery says what to do when a send's outcome is unknown (ARCHITECTURE rule 6).
type Delivery string

const (
	KindTransactional Kind = "transactional"
	KindMarketing     Kind = "marketing"

	PriorityHigh   Priority = "high"
	PriorityNormal Priority = "normal"
	PriorityLow    Priority = "low"

	FallbackSMS  Fallback = "sms"
	FallbackNone Fallback = "none"

	AtLeastOnce Delivery = "at_least_once"
	AtMostOnce  Delivery = "at_most_once"
)

// Job is one notification as the shop backend asked for it, validated and normalised: To is
// E.164, Lang is a two-letter code, every default is filled in.
type Job struct {
	ID        string            `json:"id"`
	To        string            `json:"to"`
	Template  string            `json:"template,omitempty"`
	Vars      map[string]string `json:"vars,omitempty"`
	Text      string            `json:"text,omitempty"`
	Lang      string            `json:"lang,omitempty"`
	Kind      Kind              `json:"kind"`
	Priority  Priority          `json:"priority"`
	ExpiresAt time.Time         `json:"expires_at"`
	NotBefore time.Time         `json:"not_before,omitzero"`
	Fallback  Fallback          `json:"fallback"`
	Delivery  Delivery          `json:"delivery"`
	Consent   *ConsentProof     `json:"consent,omitempty"`
}

// ConsentProof is the shop's record of how a customer agreed to messages (e.g. at checkout).
type ConsentProof struct {
	At     time.Time `json:"at"`
	Source string    `json:"source"`
	Proof  string    `json:"proof,omitempty"`
}

// JobDefaults are the values a job gets for fields it leaves out.
type JobDefaults struct {
	Lang   string        // shop.default_lang
	Expiry time.Duration // policy.default_expiry, counted from acceptance
}

// FieldError says which field of a payload is wrong and why. Code is a stable snake_case word
// for the backend's code; Detail is for people. It becomes the rejected event's error.
type FieldError struct {
	ID     string // the job's id when it could be read; "" otherwise
	Field  string
	Code   string
	Detail string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Code + ": " + e.Detail
	}
	return fmt.Sprintf("%s: %s: %s", e.Field, e.Code, e.Detail)
}

// Rejection codes (stable: shop backends may switch on them).
const (
	CodeTooLarge    = "too_large"
	CodeNotJSON     = "not_json"
	CodeRequired    = "required"
	CodeInvalid     = "invalid"
	CodeWrongType   = "wrong_type"
	CodeConflict    = "conflict"
	CodeUnknown     = "unknown_template"
	CodeMissingVar  = "missing_variable"
	CodeExtraVar    = "unexpected_variable"
	CodeTooLong     = "too_long"
	CodeBadNumber   = "invalid_number"
	CodeNotMobile   = "not_mobile"
	CodeExpired     = "already_expired"
	CodeControlChar = "control_character"
	// CodeDuplicate is the error code of a duplicate event (not a rejection).
	CodeDuplicate = "duplicate"
)

var idRe = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// DecodeJob reads and validates a job payload (contract v1). Unknown fields are ignored. Every
// failure is a *FieldError naming the field; its ID is set whenever the id itself was readable,
// so the rejection can be reported on P/events.
//
// A payload that cannot be decoded whole (over MaxPayload, not JSON) still names its job when
// the id can be read near its start (see peekID): the backend hears a rejected event for it
// instead of waiting for one that never comes.
func DecodeJob(payload []byte, now time.Time, def JobDefaults) (Job, error) {
	j, _, err := decodeJob(payload, now, def)
	return j, err
}

// decodeJob is DecodeJob that also returns the parsed number of j.To (the intake needs its
// Mobile), so the number is parsed once per job.
func decodeJob(payload []byte, now time.Time, def JobDefaults) (Job, Number, error) {
	fields, err := decodeObject(payload)
	if err != nil {
		if fe, ok := err.(*FieldError); ok {
			fe.ID = peekID(payload)
		}
		return Job{}, Number{}, err
	}
	d := &decoder{fields: fields}
	var j Job
	j.ID = d.str("id", true)
	if d.err == nil && !idRe.MatchString(j.ID) {
		d.fail("id", CodeInvalid, "want 1-128 characters of A-Z a-z 0-9 . _ : -")
	}
	if d.err != nil {
		return Job{}, Number{}, d.err
	}
	d.id = j.ID

	to := d.str("to", true)
	var num Number
	if d.err == nil {
		if num, err = ParseNumber(to); err != nil {
			d.fail("to", CodeBadNumber, err.Error())
		}
		j.To = num.E164
	}
	j.Template = d.str("template", false)
	j.Text = d.str("text", false)
	switch {
	case d.err != nil:
	case j.Template == "" && j.Text == "":
		d.fail("template", CodeRequired, "one of template or text is required")
	case j.Template != "" && j.Text != "":
		d.fail("text", CodeConflict, "give template or text, not both")
	case j.Template != "" && !templateNameRe.MatchString(j.Template):
		d.fail("template", CodeInvalid, "want 1-64 of a-z 0-9 _ -")
	case j.Text != "" && strings.TrimSpace(j.Text) == "":
		d.fail("text", CodeRequired, "is blank")
	case j.Text != "":
		d.checkText("text", j.Text, maxTextRunes)
	}
	j.Vars = d.vars("vars")
	if len(j.Vars) > 0 && j.Text != "" && d.err == nil {
		d.fail("vars", CodeConflict, "vars go with template, not with text")
	}
	j.Lang = d.lang("lang", def.Lang)
	j.Kind = Kind(d.enum("kind", string(KindTransactional), string(KindTransactional), string(KindMarketing)))
	j.Priority = Priority(d.enum("priority", string(PriorityNormal), string(PriorityHigh), string(PriorityNormal), string(PriorityLow)))
	j.Fallback = Fallback(d.enum("fallback", string(FallbackSMS), string(FallbackSMS), string(FallbackNone)))
	j.Delivery = Delivery(d.enum("delivery", string(AtLeastOnce), string(AtLeastOnce), string(AtMostOnce)))

	j.ExpiresAt = d.time("expires_at")
	j.NotBefore = d.time("not_before")
	if d.err == nil {
		switch {
		case j.ExpiresAt.IsZero():
			j.ExpiresAt = now.Add(def.Expiry)
		case !j.ExpiresAt.After(now):
			d.fail("expires_at", CodeExpired, "is already past")
		case j.ExpiresAt.After(now.Add(maxExpiryDays * 24 * time.Hour)):
			d.fail("expires_at", CodeInvalid, fmt.Sprintf("more than %d days ahead", maxExpiryDays))
		}
	}
	if d.err == nil && !j.NotBefore.IsZero() && !j.NotBefore.Before(j.ExpiresAt) {
		d.fail("not_before", CodeConflict, "is not before expires_at")
	}
	j.Consent = d.consent("consent")
	if d.err != nil {
		return Job{}, Number{}, d.err
	}
	return j, num, nil
}

var templateNameRe = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// decodeObject checks the envelope every payload shares: size, UTF-8 JSON, an object.
func decodeObject(payload []byte) (map[string]json.RawMessage, error) {
	if len(payload) > MaxPayload {
		return nil, &FieldError{Code: CodeTooLarge, Detail: fmt.Sprintf("payload is %d bytes, the limit is %d", len(payload), MaxPayload)}
	}
	if !utf8.Valid(payload) {
		return nil, &FieldError{Code: CodeNotJSON, Detail: "payload is not UTF-8"}
	}
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&fields); err != nil || fields == nil {
		return nil, &FieldError{Code: CodeNotJSON, Detail: "payload is not a JSON object"}
	}
	if dec.More() {
		return nil, &FieldError{Code: CodeNotJSON, Detail: "payload has data after the JSON object"}
	}
	return fields, nil
}

// idScanLimit bounds how much of a payload that cannot be decoded whole is read to find its id.
const idScanLimit = 4 << 10

// peekID returns the top-level "id" of a payload that cannot be decoded whole, read token by
// token from its first idScanLimit bytes only (never the whole payload into memory structures),
// or "" when none can be read there: the payload does not start as a JSON object, the id is not
// a valid job id (1-128 of A-Za-z0-9._:-), or it lies beyond the bound (after a huge field).
// An "id" inside a nested value is not the job's. When the object repeats "id" within the
// bound, the last one counts, as in a whole decode.
func peekID(payload []byte) string {
	dec := json.NewDecoder(bytes.NewReader(payload[:min(len(payload), idScanLimit)]))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	var id any
	for {
		t, err := dec.Token() // a key, or the end of the object
		key, isKey := t.(string)
		if err != nil || !isKey {
			break
		}
		if key == "id" {
			if id, err = dec.Token(); err != nil {
				id = nil
				break
			}
			if d, isDelim := id.(json.Delim); isDelim && !skipNested(dec, d) {
				break
			}
			continue
		}
		if !skipValue(dec) {
			break
		}
	}
	if s, ok := id.(string); ok && idRe.MatchString(s) {
		return s
	}
	return ""
}

// skipValue reads one JSON value of any shape; false when the input ends or is not JSON.
func skipValue(dec *json.Decoder) bool {
	t, err := dec.Token()
	if err != nil {
		return false
	}
	if d, ok := t.(json.Delim); ok {
		return skipNested(dec, d)
	}
	return true
}

// skipNested reads the rest of the object or array opened by d.
func skipNested(dec *json.Decoder, d json.Delim) bool {
	if d != '{' && d != '[' {
		return false
	}
	for depth := 1; depth > 0; {
		t, err := dec.Token()
		if err != nil {
			return false
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return true
}

// decoder reads fields one by one so that a wrong type names its field, and keeps the first
// error (with the job's id once known).
type decoder struct {
	fields map[string]json.RawMessage
	id     string
	err    *FieldError
}

func (d *decoder) fail(field, code, detail string) {
	if d.err == nil {
		d.err = &FieldError{ID: d.id, Field: field, Code: code, Detail: detail}
	}
}

// raw returns the field's JSON, or nil when absent or null (null means "use the default").
func (d *decoder) raw(field string) json.RawMessage {
	r, ok := d.fields[field]
	if !ok || d.err != nil || string(r) == "null" {
		return nil
	}
	return r
}

func (d *decoder) str(field string, required bool) string {
	r := d.raw(field)
	if r == nil {
		if required && d.err == nil {
			d.fail(field, CodeRequired, "is required")
		}
		return ""
	}
	var s string
	if err := json.Unmarshal(r, &s); err != nil {
		d.fail(field, CodeWrongType, "want a string")
		return ""
	}
	if required && s == "" {
		d.fail(field, CodeRequired, "is empty")
	}
	return s
}

func (d *decoder) enum(field, def string, allowed ...string) string {
	s := d.str(field, false)
	if d.err != nil {
		return ""
	}
	if s == "" {
		return def
	}
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	d.fail(field, CodeInvalid, fmt.Sprintf("%q: want one of %s", truncate(s, 32), strings.Join(allowed, ", ")))
	return ""
}

var langRe = regexp.MustCompile(`^([A-Za-z]{2})([-_][A-Za-z0-9]{2,8})?$`)

func (d *decoder) lang(field, def string) string {
	s := d.str(field, false)
	if d.err != nil {
		return ""
	}
	if s == "" {
		return def
	}
	m := langRe.FindStringSubmatch(s)
	if m == nil {
		d.fail(field, CodeInvalid, "want a language code such as \"de\" or \"pl-PL\"")
		return ""
	}
	return strings.ToLower(m[1])
}

func (d *decoder) time(field string) time.Time {
	s := d.str(field, false)
	if d.err != nil || s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		d.fail(field, CodeInvalid, "want an RFC 3339 time such as \"2026-11-22T10:00:00Z\"")
		return time.Time{}
	}
	return t.UTC()
}

// vars reads the template variables. Numbers and booleans are taken as their JSON text, because
// backends send order numbers as numbers; objects, arrays and null are refused.
func (d *decoder) vars(field string) map[string]string {
	r := d.raw(field)
	if r == nil {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r, &m); err != nil {
		d.fail(field, CodeWrongType, "want an object of name: value")
		return nil
	}
	if len(m) > maxVars {
		d.fail(field, CodeTooLong, fmt.Sprintf("%d variables, the limit is %d", len(m), maxVars))
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		f := field + "." + k
		if !varNameRe.MatchString(k) {
			d.fail(f, CodeInvalid, "a variable name is 1-32 of a-z A-Z 0-9 _")
			return nil
		}
		var s string
		switch {
		case len(v) > 0 && v[0] == '"':
			if err := json.Unmarshal(v, &s); err != nil {
				d.fail(f, CodeWrongType, "want a string or number")
				return nil
			}
		case string(v) == "true" || string(v) == "false":
			s = string(v)
		default:
			if _, err := strconv.ParseFloat(string(v), 64); err != nil {
				d.fail(f, CodeWrongType, "want a string or number")
				return nil
			}
			s = string(v)
		}
		d.checkText(f, s, maxVarRunes)
		out[k] = s
	}
	return out
}

var varNameRe = regexp.MustCompile(`^[A-Za-z0-9_]{1,32}$`)

func (d *decoder) consent(field string) *ConsentProof {
	r := d.raw(field)
	if r == nil {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r, &m); err != nil {
		d.fail(field, CodeWrongType, "want an object with at, source and proof")
		return nil
	}
	sub := &decoder{fields: m, id: d.id}
	p := &ConsentProof{}
	p.At = sub.time("at")
	if sub.err == nil && p.At.IsZero() {
		sub.fail("at", CodeRequired, "is required")
	}
	p.Source = sub.str("source", true)
	p.Proof = sub.str("proof", false)
	if sub.err == nil {
		sub.checkText("source", p.Source, maxSourceLen)
		sub.checkText("proof", p.Proof, maxProofLen)
	}
	if sub.err != nil {
		sub.err.Field = field + "." + sub.err.Field
		d.err = sub.err
		return nil
	}
	return p
}

// checkText refuses control characters (other than newline and tab) and over-long values.
func (d *decoder) checkText(field, s string, maxRunes int) {
	if d.err != nil {
		return
	}
	if n := utf8.RuneCountInString(s); n > maxRunes {
		d.fail(field, CodeTooLong, fmt.Sprintf("%d characters, the limit is %d", n, maxRunes))
		return
	}
	for _, r := range s {
		if r != '\n' && r != '\t' && (unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == utf8.RuneError) {
			d.fail(field, CodeControlChar, fmt.Sprintf("contains the control character %U", r))
			return
		}
	}
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}
