package signalbridge

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// DefaultMaxLineBytes caps one line read from signal-cli. signal-cli has no limit of its own
// (reference 1.2); list results and incoming bodies can exceed bufio's 64 KiB default.
const DefaultMaxLineBytes = 4 << 20

// errLineTooLong is returned by readLine for a line above the cap; the line has been discarded.
var errLineTooLong = errors.New("signalbridge: line from signal-cli exceeds the size cap")

// wireError is the JSON-RPC error object: {"code":int,"message":string,"data":null|object}.
type wireError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

// wireMessage is any object signal-cli writes: a response (id + result|error) or a
// notification (method + params).
type wireMessage struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *wireError      `json:"error"`
}

type frameKind uint8

const (
	frameResponse     frameKind = iota + 1 // one reply, msgs[0]
	frameNotification                      // msgs[0].Method/Params
	frameBatch                             // msgs holds the replies of a batch, in any order
)

type frame struct {
	kind frameKind
	msgs []wireMessage
}

// decodeLine sorts one line from signal-cli (reference pitfall 7.1): an object with method is a
// notification; an object with id, result or error is a reply (id may be null for errors that
// cannot be matched); an array is a batch of replies. Blank lines yield (frame{}, nil).
func decodeLine(line []byte) (frame, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return frame{}, nil
	}
	switch line[0] {
	case '{':
		var m wireMessage
		if err := json.Unmarshal(line, &m); err != nil {
			return frame{}, protoErr(line, "not JSON: "+err.Error())
		}
		if m.Method != "" {
			return frame{kind: frameNotification, msgs: []wireMessage{m}}, nil
		}
		if m.ID == nil && m.Result == nil && m.Error == nil {
			return frame{}, protoErr(line, "object is neither a reply nor a notification")
		}
		return frame{kind: frameResponse, msgs: []wireMessage{m}}, nil
	case '[':
		var ms []wireMessage
		if err := json.Unmarshal(line, &ms); err != nil {
			return frame{}, protoErr(line, "batch not JSON: "+err.Error())
		}
		for i := range ms {
			if ms[i].Method != "" || (ms[i].ID == nil && ms[i].Result == nil && ms[i].Error == nil) {
				return frame{}, protoErr(line, "batch element is not a reply")
			}
		}
		return frame{kind: frameBatch, msgs: ms}, nil
	}
	return frame{}, protoErr(line, "not a JSON object or array")
}

func protoErr(line []byte, reason string) error {
	const max = 200
	s := string(line)
	if len(s) > max {
		s = s[:max] + "…"
	}
	return &ProtocolError{Line: s, Reason: reason}
}

// Request ids are strings "r<n>" (reference pitfall 7.3: signal-cli echoes the JSON value; strings
// avoid any number formatting question).
func appendID(b []byte, id uint64) []byte {
	b = append(b, `"r`...)
	b = strconv.AppendUint(b, id, 10)
	return append(b, '"')
}

// parseID returns the numeric part of an id we sent, or false for anything else.
func parseID(raw json.RawMessage) (uint64, bool) {
	if len(raw) < 4 || raw[0] != '"' || raw[1] != 'r' || raw[len(raw)-1] != '"' {
		return 0, false
	}
	n, err := strconv.ParseUint(string(raw[2:len(raw)-1]), 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// appendRequest writes one request line with exactly the four allowed top-level members
// (reference pitfall 7.4) and a trailing newline. params may be nil (member left out).
func appendRequest(b []byte, method string, id uint64, params any) ([]byte, error) {
	b = append(b, `{"jsonrpc":"2.0","method":`...)
	mb, err := json.Marshal(method)
	if err != nil {
		return b, err
	}
	b = append(b, mb...)
	if params != nil {
		var pb []byte
		if raw, ok := params.(json.RawMessage); ok {
			pb = raw
		} else if pb, err = json.Marshal(params); err != nil {
			return b, err
		}
		if len(pb) == 0 || pb[0] != '{' {
			if !bytes.Equal(pb, []byte("null")) {
				return b, errors.New("signalbridge: params must be a JSON object")
			}
		} else {
			b = append(b, `,"params":`...)
			b = append(b, pb...)
		}
	}
	b = append(b, `,"id":`...)
	b = appendID(b, id)
	b = append(b, '}')
	if !utf8.Valid(b) {
		return b, ErrInvalidUTF8
	}
	// A raw newline inside the line would split it; encoding/json never emits one, but a
	// json.RawMessage from the caller could be indented.
	if bytes.IndexByte(b, '\n') >= 0 || bytes.IndexByte(b, '\r') >= 0 {
		b = compactLine(b)
	}
	return append(b, '\n'), nil
}

func compactLine(b []byte) []byte {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return b
	}
	return out.Bytes()
}

// readLine reads one '\n'-terminated line, without the terminator, capped at max bytes. A longer
// line is consumed and discarded and errLineTooLong returned, so the stream stays framed. The
// returned slice is valid until the next call (it may alias buf or br's buffer).
func readLine(br *bufio.Reader, max int, buf *[]byte) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == nil {
		if len(line)-1 > max {
			return nil, errLineTooLong
		}
		return line[:len(line)-1], nil
	}
	if !errors.Is(err, bufio.ErrBufferFull) {
		return nil, err // io.EOF mid-line: the partial line is dropped with the connection
	}
	acc := append((*buf)[:0], line...)
	tooLong := len(acc) > max
	for {
		line, err = br.ReadSlice('\n')
		if !tooLong {
			acc = append(acc, line...)
			if len(acc)-1 > max || (err != nil && len(acc) > max) {
				tooLong = true
				acc = acc[:0]
			}
		}
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
	if cap(acc) <= 2*max { // keep a grown buffer for the next long line, within reason
		*buf = acc
	}
	if tooLong {
		return nil, errLineTooLong
	}
	return acc[:len(acc)-1], nil
}
