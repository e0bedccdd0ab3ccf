package signalbridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestClassifySend(t *testing.T) {
	const ts = 1763740800123
	res := func(number, uuid, typ, extra string) string {
		n, u := `null`, `null`
		if number != "" {
			n = `"` + number + `"`
		}
		if uuid != "" {
			u = `"` + uuid + `"`
		}
		return fmt.Sprintf(`{"recipientAddress":{"uuid":%s,"number":%s,"username":null},"type":"%s"%s}`, u, n, typ, extra)
	}
	ok := func(results ...string) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`{"timestamp":%d,"results":[%s]}`, ts, join(results)))
	}
	failed := func(code int, msg string, results ...string) error {
		return &RPCError{Method: "send", Code: code, Message: msg,
			Data: json.RawMessage(fmt.Sprintf(`{"response":{"timestamp":%d,"results":[%s]}}`, ts, join(results)))}
	}
	tests := []struct {
		name       string
		recipients []string
		result     json.RawMessage
		err        error
		want       []SendResult
		wantErr    error
	}{
		{"success", []string{"+4915112345678"}, ok(res("+4915112345678", "u1", "SUCCESS", "")), nil,
			[]SendResult{{Recipient: "+4915112345678", Outcome: OutcomeSent, Timestamp: ts, Detail: "SUCCESS", UUID: "u1"}}, nil},
		{"success normalized number matched positionally", []string{"015112345678"}, ok(res("+4915112345678", "u1", "SUCCESS", "")), nil,
			[]SendResult{{Recipient: "015112345678", Outcome: OutcomeSent, Timestamp: ts, Detail: "SUCCESS", UUID: "u1"}}, nil},
		{"empty results is success", []string{"+4915112345678"}, ok(), nil,
			[]SendResult{{Recipient: "+4915112345678", Outcome: OutcomeSent, Timestamp: ts, Detail: "SUCCESS"}}, nil},
		{"partial: matched by number not position", []string{"+491", "+492"},
			ok(res("+492", "u2", "UNREGISTERED_FAILURE", ""), res("+491", "u1", "SUCCESS", "")), nil,
			[]SendResult{
				{Recipient: "+491", Outcome: OutcomeSent, Timestamp: ts, Detail: "SUCCESS", UUID: "u1"},
				{Recipient: "+492", Outcome: OutcomeNotOnSignal, Timestamp: ts, Detail: "UNREGISTERED_FAILURE", UUID: "u2"},
			}, nil},
		{"-1 all unregistered, null uuid = maybe lookup failure", []string{"+491"}, nil,
			failed(-1, "Failed to send message", res("+491", "", "UNREGISTERED_FAILURE", "")),
			[]SendResult{{Recipient: "+491", Outcome: OutcomeNotOnSignal, Timestamp: ts, Detail: "UNREGISTERED_FAILURE", MaybeLookupFailure: true}}, nil},
		{"-1 network failure", []string{"+491"}, nil, failed(-1, "Failed to send message", res("+491", "u1", "NETWORK_FAILURE", "")),
			[]SendResult{{Recipient: "+491", Outcome: OutcomeTransient, Timestamp: ts, Detail: "NETWORK_FAILURE", UUID: "u1"}}, nil},
		{"-1 invalid pre-key", []string{"+491"}, nil, failed(-1, "Failed to send message", res("+491", "u1", "INVALID_PRE_KEY_FAILURE", "")),
			[]SendResult{{Recipient: "+491", Outcome: OutcomeTransient, Timestamp: ts, Detail: "INVALID_PRE_KEY_FAILURE", UUID: "u1"}}, nil},
		{"-4 identity", []string{"+491"}, nil, failed(-4, "Failed to send message due to untrusted identities", res("+491", "u1", "IDENTITY_FAILURE", "")),
			[]SendResult{{Recipient: "+491", Outcome: OutcomeIdentityChanged, Timestamp: ts, Detail: "IDENTITY_FAILURE", UUID: "u1"}}, nil},
		{"-5 rate limit without token", []string{"+491"}, nil, failed(-5, "Failed to send message due to rate limiting", res("+491", "u1", "RATE_LIMIT_FAILURE", "")),
			[]SendResult{{Recipient: "+491", Outcome: OutcomeRateLimited, Timestamp: ts, Detail: "RATE_LIMIT_FAILURE", UUID: "u1"}}, nil},
		{"-5 captcha with token and retry-after (issue #566 shape)", []string{"+491"}, nil,
			failed(-5, "Failed to send message due to rate limiting", res("+491", "u1", "RATE_LIMIT_FAILURE", `,"token":"tok-1","retryAfterSeconds":86400`)),
			[]SendResult{{Recipient: "+491", Outcome: OutcomeCaptchaRequired, Timestamp: ts, Detail: "RATE_LIMIT_FAILURE", UUID: "u1",
				ChallengeToken: "tok-1", RetryAfter: 24 * time.Hour}}, nil},
		{"unknown result type from a newer version", []string{"+491"}, ok(res("+491", "u1", "PROOF_REQUIRED_FAILURE", "")), nil,
			[]SendResult{{Recipient: "+491", Outcome: OutcomeFailed, Timestamp: ts, Detail: "unknown result type PROOF_REQUIRED_FAILURE", UUID: "u1"}}, nil},
		{"-1 without data: invalid number", []string{"x"}, nil, &RPCError{Code: -1, Message: "Invalid phone number 'x'"},
			[]SendResult{{Recipient: "x", Outcome: OutcomeFailed, Detail: "Invalid phone number 'x'"}}, nil},
		{"-5 without data", []string{"+491"}, nil, &RPCError{Code: -5, Message: "Rate limit reached"},
			[]SendResult{{Recipient: "+491", Outcome: OutcomeRateLimited, Detail: "Rate limit reached"}}, ErrRateLimited},
		{"-32603 exception before sending", []string{"+491"}, nil, &RPCError{Code: -32603, Message: "Failed to send message: x (IOException) (UnexpectedErrorException)"},
			[]SendResult{{Recipient: "+491", Outcome: OutcomeTransient, Detail: "Failed to send message: x (IOException) (UnexpectedErrorException)"}}, nil},
		{"-32602 account", []string{"+491"}, nil, &RPCError{Code: -32602, Message: "Specified account does not exist"},
			[]SendResult{{Recipient: "+491", Outcome: OutcomeFailed, Detail: "Specified account does not exist"}}, ErrAccount},
		{"unknown code -6", []string{"+491"}, nil, &RPCError{Code: -6, Message: "new"},
			[]SendResult{{Recipient: "+491", Outcome: OutcomeFailed, Detail: "new"}}, nil},
		{"written, connection lost", []string{"+491"}, nil, &CallError{Method: "send", Written: true, Err: ErrConnectionLost},
			[]SendResult{{Recipient: "+491", Outcome: OutcomeUnknown}}, ErrOutcomeUnknown},
		{"not written", []string{"+491"}, nil, &CallError{Method: "send", Err: ErrConnectionLost},
			[]SendResult{{Recipient: "+491", Outcome: OutcomeTransient}}, ErrConnectionLost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := classifySend(tt.recipients, tt.result, tt.err)
			if tt.err == nil && err != nil {
				t.Fatalf("unexpected err %v", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d results, want %d", len(got), len(tt.want))
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if w.Outcome == OutcomeUnknown || (w.Outcome == OutcomeTransient && w.Detail == "") {
					g.Detail = "" // the detail is the error text
				}
				if g != w {
					t.Errorf("result %d:\n got %+v\nwant %+v", i, g, w)
				}
			}
		})
	}
}

func join(xs []string) string {
	s := ""
	for i, x := range xs {
		if i > 0 {
			s += ","
		}
		s += x
	}
	return s
}

func TestRPCError_Is(t *testing.T) {
	tests := []struct {
		code   int
		target error
		want   bool
	}{
		{-32601, ErrMethodNotFound, true}, {-32600, ErrInvalidRequest, true}, {-32700, ErrInvalidRequest, true},
		{-32602, ErrAccount, true}, {-4, ErrUntrustedIdentity, true}, {-5, ErrRateLimited, true},
		{-3, ErrIO, true}, {-1, ErrIO, false}, {-6, ErrRateLimited, false}, {-32603, ErrOutcomeUnknown, false},
	}
	for _, tt := range tests {
		err := fmt.Errorf("wrapped: %w", &RPCError{Code: tt.code})
		if got := errors.Is(err, tt.target); got != tt.want {
			t.Errorf("code %d Is(%v) = %v, want %v", tt.code, tt.target, got, tt.want)
		}
	}
}

func TestDecodeNotification(t *testing.T) {
	wrap := func(inner string) string { return `{"subscription":2,"result":` + inner + `}` }
	env := func(src, body string) string {
		return `{"envelope":{"source":null,"sourceNumber":` + src + `,"sourceUuid":"u-1","sourceName":"Alice","sourceDevice":1,"timestamp":1763740810000,` + body + `},"account":"+4930123456"}`
	}
	tests := []struct {
		name   string
		params string
		want   Event
	}{
		{"text wrapped", wrap(env(`"+4915112345678"`, `"dataMessage":{"timestamp":1763740810000,"message":"STOP","expiresInSeconds":0,"viewOnce":false}`)),
			&TextMessage{Account: "+4930123456", SenderNumber: "+4915112345678", SenderUUID: "u-1", SenderName: "Alice", Text: "STOP", Timestamp: 1763740810000}},
		{"text plain form, null number", env(`null`, `"dataMessage":{"timestamp":1763740810000,"message":"hi","groupInfo":{"groupId":"g=="}}`),
			&TextMessage{Account: "+4930123456", SenderUUID: "u-1", SenderName: "Alice", Text: "hi", Timestamp: 1763740810000, GroupID: "g=="}},
		{"reaction (null message) ignored", wrap(env(`"+49"`, `"dataMessage":{"timestamp":1,"message":null,"reaction":{}}`)), nil},
		{"delivery receipt", wrap(env(`"+49"`, `"receiptMessage":{"when":5,"isDelivery":true,"isRead":false,"isViewed":false,"timestamps":[1763740800123,1763740800124]}`)),
			&Receipt{Account: "+4930123456", Kind: ReceiptDelivery, SenderNumber: "+49", SenderUUID: "u-1", When: 5, Timestamps: []int64{1763740800123, 1763740800124}}},
		{"read receipt", wrap(env(`"+49"`, `"receiptMessage":{"when":5,"isDelivery":false,"isRead":true,"isViewed":false,"timestamps":[9007199254740993]}`)),
			&Receipt{Account: "+4930123456", Kind: ReceiptRead, SenderNumber: "+49", SenderUUID: "u-1", When: 5, Timestamps: []int64{9007199254740993}}},
		{"viewed receipt", wrap(env(`"+49"`, `"receiptMessage":{"when":5,"isDelivery":false,"isRead":false,"isViewed":true,"timestamps":[1]}`)),
			&Receipt{Account: "+4930123456", Kind: ReceiptViewed, SenderNumber: "+49", SenderUUID: "u-1", When: 5, Timestamps: []int64{1}}},
		{"unknown receipt type ignored", wrap(env(`"+49"`, `"receiptMessage":{"when":5,"isDelivery":false,"isRead":false,"isViewed":false,"timestamps":[1]}`)), nil},
		{"typing ignored", wrap(env(`"+49"`, `"typingMessage":{"action":"STARTED","timestamp":1}`)), nil},
		{"sync ignored", wrap(env(`"+49"`, `"syncMessage":{"sentMessage":{"message":"STOP"}}`)), nil},
		{"story ignored", wrap(env(`"+49"`, `"storyMessage":{}`)), nil},
		{"undecryptable", wrap(`{"envelope":{"sourceNumber":"+49","sourceUuid":"u-1","timestamp":7},"account":"+4930123456","exception":{"message":"bad mac","type":"ProtocolInvalidMessageException"}}`),
			&Undecryptable{Account: "+4930123456", SenderNumber: "+49", SenderUUID: "u-1", Timestamp: 7, ExceptionType: "ProtocolInvalidMessageException", Message: "bad mac"}},
		{"no envelope ignored", wrap(`{"account":"+4930123456","exception":{"message":"x","type":"Y"}}`), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeNotification("receive", json.RawMessage(tt.params))
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", tt.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
	if ev, err := decodeNotification("other", json.RawMessage(`{}`)); ev != nil || err != nil {
		t.Errorf("other method: %v %v", ev, err)
	}
	if _, err := decodeNotification("receive", json.RawMessage(`[1]`)); err == nil {
		t.Error("bad params accepted")
	}
}

// FuzzClassifySend: whatever signal-cli's send result or error.data holds, every requested
// recipient gets exactly one result with a defined outcome, in request order.
func FuzzClassifySend(f *testing.F) {
	f.Add([]byte(`{"timestamp":1763740800123,"results":[{"recipientAddress":{"uuid":"u","number":"+491","username":null},"type":"SUCCESS"}]}`), false, -1)
	f.Add([]byte(`{"response":{"timestamp":1,"results":[{"recipientAddress":{"uuid":null,"number":"+491"},"type":"UNREGISTERED_FAILURE"}]}}`), true, -1)
	f.Add([]byte(`{"response":{"timestamp":1,"results":[{"recipientAddress":{"uuid":"u","number":"+492"},"type":"RATE_LIMIT_FAILURE","token":"t","retryAfterSeconds":86400}]}}`), true, -5)
	f.Add([]byte(`null`), true, -4)
	f.Add([]byte(`{"timestamp":"x"}`), false, 0)
	f.Fuzz(func(t *testing.T, data []byte, isErr bool, code int) {
		recipients := []string{"+491", "+492"}
		var got []SendResult
		if isErr {
			got, _, _ = classifySend(recipients, nil, &RPCError{Method: "send", Code: code, Message: "m", Data: data})
		} else {
			got, _, _ = classifySend(recipients, data, nil)
		}
		if len(got) != len(recipients) {
			t.Fatalf("%d results for %d recipients", len(got), len(recipients))
		}
		for i, r := range got {
			if r.Recipient != recipients[i] || r.Outcome < OutcomeSent || r.Outcome > OutcomeFailed {
				t.Fatalf("result %d: %+v", i, r)
			}
			if r.Outcome == OutcomeCaptchaRequired && r.ChallengeToken == "" {
				t.Fatalf("captcha without token: %+v", r)
			}
		}
	})
}
