package signaltest

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"
)

func TestSplitJavaLines(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"a\nb\n", []string{"a", "b"}},
		{"a\r\nb\r\n", []string{"a", "b"}},
		{"a\rb\r", []string{"a", "b"}},
		{"a\r\r\nb", []string{"a", "", "b"}},
		{"no newline at EOF", []string{"no newline at EOF"}},
		{"\n\n", []string{"", ""}},
	}
	for _, tt := range tests {
		sc := bufio.NewScanner(strings.NewReader(tt.in))
		sc.Split(splitJavaLines)
		var got []string
		for sc.Scan() {
			got = append(got, sc.Text())
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("split %q = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFake_process(t *testing.T) {
	f := New(Config{Accounts: []string{"+4930123456"}})
	defer f.Close()
	c := &fconn{subs: map[int64]string{}}
	tests := []struct {
		line string
		want string // "" = no reply; else the code as text or "ok"
	}{
		{`{"jsonrpc":"2.0","method":"version","id":1}`, "ok"},
		{`{"jsonrpc":"2.0","method":"version"}`, ""},
		{`{"jsonrpc":"2.0","method":"send","params":{"recipient":"+4915112345678","message":"x"},"id":2}`, "ok"},
		{`{"jsonrpc":"2.0","method":"send","params":{"recipient":"+4915112345678"},"id":3}`, "-1"},
		{`{"jsonrpc":"2.0","method":"send","params":{"recipients":"+4915112345678","message":"x"},"id":4}`, "-32603"},
		{`{"jsonrpc":"2.0","method":"sendReceipt","params":{"recipient":"+4915112345678","targetTimestamp":1763740800123,"type":"delivery"},"id":5}`, "-1"},
		{`{"jsonrpc":"2.0","method":"trust","params":{"recipient":"+4915112345678","trustAllKnownKeys":"true"},"id":6}`, "-32603"},
		{`{"jsonrpc":"2.0","method":"register","params":{"account":"+4930123456","voice":false,"x":1},"id":7}`, "-32600"},
		{`{"jsonrpc":"2.0","method":"listAccounts","params":{"account":"+1"},"id":8}`, "ok"},
		{`{"jsonrpc":"2.0","method":"version","params":{"account":"+1"},"id":9}`, "-32602"},
	}
	for _, tt := range tests {
		out := f.process(c, []byte(tt.line))
		got := ""
		if out != nil {
			var r struct {
				Error *struct{ Code int } `json:"error"`
			}
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("%s: reply not JSON: %s", tt.line, out)
			}
			got = "ok"
			if r.Error != nil {
				got = itoa(r.Error.Code)
			}
		}
		if got != tt.want {
			t.Errorf("%s: got %q (%s), want %q", tt.line, got, out, tt.want)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// FuzzFake_process: any line gets either no reply or one valid JSON line (object or array).
func FuzzFake_process(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","method":"version","id":1}`, `[{"jsonrpc":"2.0","method":"version","id":1},5]`,
		`{"jsonrpc":"2.0","method":"send","params":{"recipients":["+4915112345678"],"message":"x"},"id":"a"}`,
		`{"jsonrpc":"2.0","method":"unsubscribeReceive","params":[3],"id":2}`, `not json`, ``, `[]`, `"s"`,
		`{"jsonrpc":"2.0","method":"version","id":{}}`, `{"jsonrpc":"2.0","method":"x","id":1}{"a":1}`,
	} {
		f.Add([]byte(s))
	}
	fk := New(Config{Accounts: []string{"+4930123456"}})
	defer fk.Close()
	f.Fuzz(func(t *testing.T, line []byte) {
		c := &fconn{subs: map[int64]string{}}
		out := fk.process(c, line)
		if out == nil {
			return
		}
		if !json.Valid(out) || (out[0] != '{' && out[0] != '[') || strings.ContainsAny(string(out), "\n\r") {
			t.Fatalf("bad reply %q to %q", out, line)
		}
	})
}
