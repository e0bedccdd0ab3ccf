package signaltest

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Codes as signal-cli 0.13.19 sends them (reference 5.1).
const (
	codeParse          = -32700
	codeInvalidRequest = -32600
	codeMethodNotFound = -32601
	codeInvalidParams  = -32602
	codeInternal       = -32603
	codeUser           = -1
	codeIO             = -3
	codeUntrusted      = -4
	codeRateLimit      = -5
)

// rpcErr is a JSON-RPC error object; data is nil (written as null) or {"response":…}.
type rpcErr struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data"`
}

func newErr(code int, format string, args ...any) *rpcErr {
	return &rpcErr{Code: code, Message: fmt.Sprintf(format, args...)}
}

var nullID = json.RawMessage("null")

// replyLine encodes one response object (without newline).
func replyLine(id json.RawMessage, result any, e *rpcErr) []byte {
	if id == nil {
		id = nullID
	}
	b := make([]byte, 0, 128)
	b = append(b, `{"jsonrpc":"2.0",`...)
	if e != nil {
		eb, _ := json.Marshal(e)
		b = append(b, `"error":`...)
		b = append(b, eb...)
	} else {
		rb, err := json.Marshal(result)
		if err != nil {
			rb = []byte("null")
		}
		b = append(b, `"result":`...)
		b = append(b, rb...)
	}
	b = append(b, `,"id":`...)
	b = append(b, id...)
	return append(b, '}')
}

// firstValue returns the first JSON value on the line; anything after it is ignored, as Jackson
// does (reference 1.2).
func firstValue(line []byte) (json.RawMessage, error) {
	if json.Valid(line) {
		return bytes.TrimSpace(line), nil
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// jacksonParseMessage imitates the shape (not the exact text) of Jackson's parse error.
func jacksonParseMessage(line []byte) string {
	tok := line
	if i := bytes.IndexAny(tok, " \t{}[],:\""); i > 0 {
		tok = tok[:i]
	}
	if len(tok) > 40 {
		tok = tok[:40]
	}
	return fmt.Sprintf("Unrecognized token '%s': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')\n at [Source: REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled); line: 1, column: %d]", tok, len(tok)+1)
}

func jsonType(v json.RawMessage) string {
	if len(v) == 0 {
		return "MISSING"
	}
	switch v[0] {
	case '{':
		return "OBJECT"
	case '[':
		return "ARRAY"
	case '"':
		return "STRING"
	case 't', 'f':
		return "BOOLEAN"
	case 'n':
		return "NULL"
	}
	return "NUMBER"
}

// params is a map-style params object after "account" was taken out.
type params map[string]json.RawMessage

func (p params) has(k string) bool {
	v, ok := p[k]
	return ok && string(v) != "null"
}

// str reads a string option; like signal-cli, any scalar is accepted through toString().
func (p params) str(k string) (string, bool) {
	v, ok := p[k]
	if !ok || string(v) == "null" {
		return "", false
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s, true
	}
	if len(v) > 0 && v[0] != '{' && v[0] != '[' {
		return string(v), true
	}
	return "", false
}

// bool reads a boolean option; a non-boolean gives -32603 as in signal-cli (reference 3.1).
func (p params) bool(k string) (bool, *rpcErr) {
	v, ok := p[k]
	if !ok || string(v) == "null" {
		return false, nil
	}
	switch string(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, newErr(codeInternal, "class java.lang.%s cannot be cast to class java.lang.Boolean (ClassCastException)", javaClass(v))
}

// list reads a list option the way signal-cli does: fooBar as array, fooBar as scalar, fooBars
// as array (a scalar there is a ClassCastException).
func (p params) list(k string) ([]string, *rpcErr) {
	if v, ok := p[k]; ok && string(v) != "null" {
		if v[0] == '[' {
			return scalarArray(v)
		}
		s, _ := p.str(k)
		return []string{s}, nil
	}
	if v, ok := p[k+"s"]; ok && string(v) != "null" {
		if v[0] != '[' {
			return nil, newErr(codeInternal, "class java.lang.%s cannot be cast to class java.util.List (ClassCastException)", javaClass(v))
		}
		return scalarArray(v)
	}
	return nil, nil
}

func scalarArray(v json.RawMessage) ([]string, *rpcErr) {
	var raw []json.RawMessage
	if err := json.Unmarshal(v, &raw); err != nil {
		return nil, newErr(codeInvalidRequest, "%v", err)
	}
	out := make([]string, 0, len(raw))
	for _, r := range raw {
		var s string
		if json.Unmarshal(r, &s) != nil {
			s = string(r)
		}
		out = append(out, s)
	}
	return out, nil
}

func javaClass(v json.RawMessage) string {
	switch jsonType(v) {
	case "STRING":
		return "String"
	case "BOOLEAN":
		return "Boolean"
	case "NUMBER":
		if bytes.ContainsAny(v, ".eE") {
			return "Double"
		}
		return "Integer"
	}
	return "Object"
}
