package signalbridge

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestDecodeLine(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		kind    frameKind
		n       int
		wantErr bool
	}{
		{"result", `{"jsonrpc":"2.0","result":{"version":"0.13.19"},"id":"r1"}`, frameResponse, 1, false},
		{"error with data", `{"jsonrpc":"2.0","error":{"code":-5,"message":"x","data":{"response":{}}},"id":"r2"}`, frameResponse, 1, false},
		{"id null parse error", `{"jsonrpc":"2.0","error":{"code":-32700,"message":"Empty input line","data":null},"id":null}`, frameResponse, 1, false},
		{"notification wrapped", `{"jsonrpc":"2.0","method":"receive","params":{"subscription":0,"result":{"account":"+1"}}}`, frameNotification, 1, false},
		{"batch", `[{"jsonrpc":"2.0","result":1,"id":"r1"},{"jsonrpc":"2.0","error":{"code":-32601,"message":"m","data":null},"id":"r2"}]`, frameBatch, 2, false},
		{"crlf and spaces", "  {\"jsonrpc\":\"2.0\",\"result\":1,\"id\":\"r1\"}\r", frameResponse, 1, false},
		{"blank", "   ", 0, 0, false},
		{"not json", `hello`, 0, 0, true},
		{"truncated", `{"jsonrpc":"2.0","result":`, 0, 0, true},
		{"empty object", `{}`, 0, 0, true},
		{"batch with notification", `[{"jsonrpc":"2.0","method":"receive","params":{}}]`, 0, 0, true},
		{"scalar", `42`, 0, 0, true},
		{"bad batch", `[1,2]`, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := decodeLine([]byte(tt.line))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			var pe *ProtocolError
			if err != nil && !errors.As(err, &pe) {
				t.Fatalf("err %T is not *ProtocolError", err)
			}
			if f.kind != tt.kind || len(f.msgs) != tt.n {
				t.Fatalf("got kind %d with %d msgs, want kind %d with %d", f.kind, len(f.msgs), tt.kind, tt.n)
			}
		})
	}
}

func TestParseID(t *testing.T) {
	tests := []struct {
		raw  string
		want uint64
		ok   bool
	}{
		{`"r1"`, 1, true}, {`"r18446744073709551615"`, 18446744073709551615, true}, {`"r"`, 0, false},
		{`1`, 0, false}, {`null`, 0, false}, {`"x1"`, 0, false}, {`"r-1"`, 0, false}, {`"r1`, 0, false},
		{`1.5`, 0, false}, {`"r99999999999999999999"`, 0, false},
	}
	for _, tt := range tests {
		got, ok := parseID(json.RawMessage(tt.raw))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseID(%s) = %d, %v; want %d, %v", tt.raw, got, ok, tt.want, tt.ok)
		}
	}
}

func TestAppendRequest(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		params  any
		want    string
		wantErr error
	}{
		{"no params", "version", nil, `{"jsonrpc":"2.0","method":"version","id":"r7"}` + "\n", nil},
		{"struct params", "send", struct {
			A string `json:"account"`
			T int64  `json:"targetTimestamp"`
		}{"+49", 1763740800123}, `{"jsonrpc":"2.0","method":"send","params":{"account":"+49","targetTimestamp":1763740800123},"id":"r7"}` + "\n", nil},
		{"raw indented params compacted", "x", json.RawMessage("{\n \"a\": 1\n}"), `{"jsonrpc":"2.0","method":"x","params":{"a":1},"id":"r7"}` + "\n", nil},
		{"invalid utf8 in raw", "x", json.RawMessage("{\"a\":\"\xff\"}"), "", ErrInvalidUTF8},
		{"invalid utf8 in string is replaced", "x", map[string]string{"m": "a\xffb"}, `{"jsonrpc":"2.0","method":"x","params":{"m":"a\ufffdb"},"id":"r7"}` + "\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := appendRequest(nil, tt.method, 7, tt.params)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && string(got) != tt.want {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
			if err == nil {
				var top map[string]json.RawMessage
				if err := json.Unmarshal(got, &top); err != nil {
					t.Fatal(err)
				}
				for k := range top {
					if k != "jsonrpc" && k != "method" && k != "params" && k != "id" {
						t.Errorf("top-level member %q not allowed", k)
					}
				}
			}
		})
	}
	if _, err := appendRequest(nil, "x", 1, []int{1}); err == nil {
		t.Error("array params accepted; signal-cli rejects them")
	}
}

func TestReadLine(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		name  string
		input string
		max   int
		want  []string // "!" marks errLineTooLong
	}{
		{"short lines", "a\nb\n", 100, []string{"a", "b"}},
		{"exactly max", strings.Repeat("y", 100) + "\nz\n", 100, []string{strings.Repeat("y", 100), "z"}},
		{"over max discarded then next ok", long + "\nnext\n", 100, []string{"!", "next"}},
		{"long within max spans buffer", long + "\n", 1000, []string{long}},
		{"partial line at EOF dropped", "a\nb", 100, []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(tt.input), 16) // tiny buffer: exercise ErrBufferFull
			var buf []byte
			var got []string
			for {
				l, err := readLine(br, tt.max, &buf)
				if errors.Is(err, errLineTooLong) {
					got = append(got, "!")
					continue
				}
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, string(l))
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzDecodeLine: the decoder never panics, and whatever it accepts is consistent: replies and
// batch elements carry id/result/error, notifications a method.
func FuzzDecodeLine(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","result":{"version":"0.13.19"},"id":"r1"}`,
		`{"jsonrpc":"2.0","error":{"code":-1,"message":"Failed to send message","data":{"response":{"timestamp":1763740800123,"results":[]}}},"id":"r2"}`,
		`{"jsonrpc":"2.0","error":{"code":-32700,"message":"Empty input line","data":null},"id":null}`,
		`{"jsonrpc":"2.0","method":"receive","params":{"subscription":3,"result":{"envelope":{"sourceNumber":null,"sourceUuid":"u","timestamp":1,"dataMessage":{"timestamp":1,"message":"STOP"}},"account":"+4930123456"}}}`,
		`{"jsonrpc":"2.0","method":"receive","params":{"envelope":{"receiptMessage":{"when":1,"isDelivery":true,"timestamps":[1763740800123]}},"account":"+1"}}`,
		`[{"jsonrpc":"2.0","result":{},"id":"r3"},{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not implemented","data":null},"id":"r4"}]`,
		`[]`, `{}`, `null`, "\r\n", `{"id":12345678901234567890,"result":1.5e300}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		fr, err := decodeLine(line)
		if err != nil {
			if fr.kind != 0 {
				t.Fatalf("error with kind %d", fr.kind)
			}
			return
		}
		for _, m := range fr.msgs {
			switch fr.kind {
			case frameNotification:
				if m.Method == "" {
					t.Fatal("notification without method")
				}
				_, _ = decodeNotification(m.Method, m.Params)
			case frameResponse, frameBatch:
				if m.Method != "" || (m.ID == nil && m.Result == nil && m.Error == nil) {
					t.Fatalf("reply without id/result/error: %+v", m)
				}
				_, _ = parseID(m.ID)
			}
		}
	})
}
