package relay

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	now0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	defs = JobDefaults{Lang: "de", Expiry: 24 * time.Hour}
)

func TestDecodeJob_Defaults(t *testing.T) {
	j, err := DecodeJob([]byte(`{"id":"order-1042-shipped","to":"+49 151 1234 5678","template":"order_shipped",
		"vars":{"order":1042,"carrier":"DHL","url":"https://t.example/1","express":true}}`), now0, defs)
	if err != nil {
		t.Fatal(err)
	}
	want := Job{ID: "order-1042-shipped", To: "+4915112345678", Template: "order_shipped",
		Vars: map[string]string{"order": "1042", "carrier": "DHL", "url": "https://t.example/1", "express": "true"},
		Lang: "de", Kind: KindTransactional, Priority: PriorityNormal, ExpiresAt: now0.Add(24 * time.Hour),
		Fallback: FallbackSMS, Delivery: AtLeastOnce}
	gotJSON, _ := json.Marshal(j)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("got  %s\nwant %s", gotJSON, wantJSON)
	}
}

func TestDecodeJob_AllFields(t *testing.T) {
	in := `{"id":"a:b.c_d-1","to":"+48601234567","text":"Hello\nthere","lang":"pl-PL","kind":"marketing",
		"priority":"high","expires_at":"2026-11-22T10:00:00+01:00","not_before":"2026-11-21T13:00:00Z",
		"fallback":"none","delivery":"at_most_once","consent":{"at":"2026-11-20T12:00:00Z","source":"checkout","proof":"form-v3"},
		"unknown_field":{"ignored":true}}`
	j, err := DecodeJob([]byte(in), now0, defs)
	if err != nil {
		t.Fatal(err)
	}
	if j.Lang != "pl" || j.Kind != KindMarketing || j.Priority != PriorityHigh || j.Fallback != FallbackNone ||
		j.Delivery != AtMostOnce || !j.ExpiresAt.Equal(time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)) ||
		j.Consent == nil || j.Consent.Source != "checkout" || j.Text != "Hello\nthere" {
		t.Errorf("decoded %+v", j)
	}
}

func TestDecodeJob_Rejections(t *testing.T) {
	long := strings.Repeat("x", maxTextRunes+1)
	tests := []struct {
		name, in        string
		id, field, code string
	}{
		{"not json", `not json`, "", "", CodeNotJSON},
		{"array", `[1,2]`, "", "", CodeNotJSON},
		{"trailing data", `{"id":"a"} {}`, "", "", CodeNotJSON},
		{"invalid utf8", "{\"id\":\"a\xff\"}", "", "", CodeNotJSON},
		{"no id", `{"to":"+4915112345678","text":"x"}`, "", "id", CodeRequired},
		{"id wrong type", `{"id":42}`, "", "id", CodeWrongType},
		{"id bad chars", `{"id":"a b"}`, "", "id", CodeInvalid},
		{"id too long", `{"id":"` + strings.Repeat("a", 129) + `"}`, "", "id", CodeInvalid},
		{"no to", `{"id":"j1","text":"x"}`, "j1", "to", CodeRequired},
		{"to national", `{"id":"j1","to":"015112345678","text":"x"}`, "j1", "to", CodeBadNumber},
		{"to invalid", `{"id":"j1","to":"+49123","text":"x"}`, "j1", "to", CodeBadNumber},
		{"to letters", `{"id":"j1","to":"+49151CALLME","text":"x"}`, "j1", "to", CodeBadNumber},
		{"neither", `{"id":"j1","to":"+4915112345678"}`, "j1", "template", CodeRequired},
		{"both", `{"id":"j1","to":"+4915112345678","text":"x","template":"t"}`, "j1", "text", CodeConflict},
		{"template name", `{"id":"j1","to":"+4915112345678","template":"../etc/passwd"}`, "j1", "template", CodeInvalid},
		{"vars with text", `{"id":"j1","to":"+4915112345678","text":"x","vars":{"a":"b"}}`, "j1", "vars", CodeConflict},
		{"vars array", `{"id":"j1","to":"+4915112345678","template":"t","vars":[1]}`, "j1", "vars", CodeWrongType},
		{"var object", `{"id":"j1","to":"+4915112345678","template":"t","vars":{"a":{"b":1}}}`, "j1", "vars.a", CodeWrongType},
		{"var null", `{"id":"j1","to":"+4915112345678","template":"t","vars":{"a":null}}`, "j1", "vars.a", CodeWrongType},
		{"var control", `{"id":"j1","to":"+4915112345678","template":"t","vars":{"a":"x\u0000y"}}`, "j1", "vars.a", CodeControlChar},
		{"var name", `{"id":"j1","to":"+4915112345678","template":"t","vars":{"a-b":"x"}}`, "j1", "vars.a-b", CodeInvalid},
		{"text control", `{"id":"j1","to":"+4915112345678","text":"bell\u0007"}`, "j1", "text", CodeControlChar},
		{"text bidi line sep", `{"id":"j1","to":"+4915112345678","text":"a\u2028b"}`, "j1", "text", CodeControlChar},
		{"text too long", `{"id":"j1","to":"+4915112345678","text":"` + long + `"}`, "j1", "text", CodeTooLong},
		{"kind", `{"id":"j1","to":"+4915112345678","text":"x","kind":"spam"}`, "j1", "kind", CodeInvalid},
		{"priority type", `{"id":"j1","to":"+4915112345678","text":"x","priority":1}`, "j1", "priority", CodeWrongType},
		{"fallback", `{"id":"j1","to":"+4915112345678","text":"x","fallback":"email"}`, "j1", "fallback", CodeInvalid},
		{"delivery", `{"id":"j1","to":"+4915112345678","text":"x","delivery":"exactly_once"}`, "j1", "delivery", CodeInvalid},
		{"lang", `{"id":"j1","to":"+4915112345678","text":"x","lang":"deutsch!"}`, "j1", "lang", CodeInvalid},
		{"expires format", `{"id":"j1","to":"+4915112345678","text":"x","expires_at":"tomorrow"}`, "j1", "expires_at", CodeInvalid},
		{"expired", `{"id":"j1","to":"+4915112345678","text":"x","expires_at":"2026-11-21T11:59:59Z"}`, "j1", "expires_at", CodeExpired},
		{"expiry too far", `{"id":"j1","to":"+4915112345678","text":"x","expires_at":"2027-11-21T11:59:59Z"}`, "j1", "expires_at", CodeInvalid},
		{"not_before after expiry", `{"id":"j1","to":"+4915112345678","text":"x","not_before":"2026-11-23T12:00:00Z"}`, "j1", "not_before", CodeConflict},
		{"consent type", `{"id":"j1","to":"+4915112345678","text":"x","consent":"yes"}`, "j1", "consent", CodeWrongType},
		{"consent no at", `{"id":"j1","to":"+4915112345678","text":"x","consent":{"source":"checkout"}}`, "j1", "consent.at", CodeRequired},
		{"consent no source", `{"id":"j1","to":"+4915112345678","text":"x","consent":{"at":"2026-11-20T12:00:00Z"}}`, "j1", "consent.source", CodeRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeJob([]byte(tt.in), now0, defs)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want *FieldError", err)
			}
			if fe.ID != tt.id || fe.Field != tt.field || fe.Code != tt.code {
				t.Errorf("got id=%q field=%q code=%q (%s); want id=%q field=%q code=%q", fe.ID, fe.Field, fe.Code, fe.Detail, tt.id, tt.field, tt.code)
			}
			if fe.Detail == "" {
				t.Error("a rejection must explain itself in Detail")
			}
		})
	}
}

func TestDecodeJob_TooLarge(t *testing.T) {
	big := `{"id":"j1","to":"+4915112345678","text":"x","pad":"` + strings.Repeat("a", MaxPayload) + `"}`
	_, err := DecodeJob([]byte(big), now0, defs)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Code != CodeTooLarge {
		t.Fatalf("err = %v, want too_large", err)
	}
}

func TestParseNumber(t *testing.T) {
	tests := []struct {
		in, e164 string
		mobile   bool
		ok       bool
	}{
		{"+4915112345678", "+4915112345678", true, true},
		{"+49 (30) 1234567", "+49301234567", false, true},
		{"+48 601-234-567", "+48601234567", true, true},
		{"+7 912 345 67 89", "+79123456789", true, true},
		{"+1 650 253 0000", "+16502530000", true, true}, // US: fixed line or mobile
		{"015112345678", "", false, false},
		{"+0", "", false, false},
		{"+4915112345678999999", "", false, false},
		{"", "", false, false},
		{"+49151abc", "", false, false},
	}
	for _, tt := range tests {
		n, err := ParseNumber(tt.in)
		if (err == nil) != tt.ok || n.E164 != tt.e164 || n.Mobile != tt.mobile {
			t.Errorf("ParseNumber(%q) = %+v, %v; want %s mobile=%v ok=%v", tt.in, n, err, tt.e164, tt.mobile, tt.ok)
		}
	}
}

func TestDecodeConsentRecord(t *testing.T) {
	r, err := DecodeConsentRecord([]byte(`{"to":"+4915112345678","consent":"request","source":"shop","lang":"de"}`), now0)
	if err != nil || r.Consent != "request" || !r.At.Equal(now0) || r.Lang != "de" {
		t.Fatalf("got %+v, %v", r, err)
	}
	for _, bad := range []string{`{}`, `{"to":"+4915112345678"}`, `{"to":"+4915112345678","consent":"maybe"}`, `{"to":"x","consent":"opt_in"}`} {
		if _, err := DecodeConsentRecord([]byte(bad), now0); err == nil {
			t.Errorf("DecodeConsentRecord(%s) accepted", bad)
		}
	}
}

func FuzzDecodeJob(f *testing.F) {
	f.Add([]byte(`{"id":"order-1042-shipped","to":"+4915112345678","template":"order_shipped","vars":{"order":"1042"}}`))
	f.Add([]byte(`{"id":"x","to":"+48601234567","text":"hi","consent":{"at":"2026-11-20T12:00:00Z","source":"s"}}`))
	f.Add([]byte(`{"id":"x","to":"+48601234567","text":"hi","expires_at":"2026-11-22T00:00:00Z","not_before":"2026-11-21T13:00:00Z"}`))
	f.Add([]byte(`{"id":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := DecodeJob(data, now0, defs)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Code == "" || fe.Detail == "" {
				t.Fatalf("error is not a complete *FieldError: %#v", err)
			}
			return
		}
		// An accepted job is complete and normalised.
		if !idRe.MatchString(j.ID) || (j.Template == "") == (j.Text == "") || j.Kind == "" || j.Priority == "" ||
			j.Fallback == "" || j.Delivery == "" || !j.ExpiresAt.After(now0) {
			t.Fatalf("accepted an incomplete job: %+v", j)
		}
		if n, err := ParseNumber(j.To); err != nil || n.E164 != j.To {
			t.Fatalf("accepted number %q is not normalised E.164 (%v)", j.To, err)
		}
	})
}
