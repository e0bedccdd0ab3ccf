package relay

import (
	"bytes"
	"encoding/json"
	"errors"
	"runtime"
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
		{"trailing data", `{"id":"a"} {}`, "a", "", CodeNotJSON},
		{"truncated, id readable", `{"id":"j1","to":"+4915112345678","text":"x"`, "j1", "", CodeNotJSON},
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
			fe := decodeFieldError(t, tt.in)
			if fe.ID != tt.id || fe.Field != tt.field || fe.Code != tt.code {
				t.Errorf("got id=%q field=%q code=%q (%s); want id=%q field=%q code=%q", fe.ID, fe.Field, fe.Code, fe.Detail, tt.id, tt.field, tt.code)
			}
			if fe.Detail == "" {
				t.Error("a rejection must explain itself in Detail")
			}
		})
	}
}

// decodeFieldError decodes in, which must be refused with a *FieldError, and returns it.
func decodeFieldError(t *testing.T, in string) *FieldError {
	t.Helper()
	_, err := DecodeJob([]byte(in), now0, defs)
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v, want *FieldError", err)
	}
	return fe
}

func TestDecodeJob_TooLarge(t *testing.T) {
	big := `{"id":"j1","to":"+4915112345678","text":"x","pad":"` + strings.Repeat("a", MaxPayload) + `"}`
	_, err := DecodeJob([]byte(big), now0, defs)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Code != CodeTooLarge {
		t.Fatalf("err = %v, want too_large", err)
	}
}

// A payload that cannot be decoded whole still names its job when the id can be read from its
// first idScanLimit bytes, at the top level, and is a valid id.
func TestDecodeJob_EnvelopeID(t *testing.T) {
	huge := strings.Repeat("a", MaxPayload)       // makes any payload too large
	pastBound := strings.Repeat("b", idScanLimit) // pushes what follows past the scan bound
	tests := []struct {
		name, in string
		id, code string
	}{
		{"id first", `{"id":"j1","to":"+4915112345678","text":"` + huge + `"}`, "j1", CodeTooLarge},
		{"id after small fields", `{"to":"+4915112345678","vars":{"a":[1,{"b":null}]},"n":1.5,"ok":true,"id":"j2","pad":"` + huge + `"}`, "j2", CodeTooLarge},
		{"escaped key", `{"\u0069d":"j3","pad":"` + huge + `"}`, "j3", CodeTooLarge},
		{"id after a huge field", `{"pad":"` + huge + `","id":"j1"}`, "", CodeTooLarge},
		{"id just past the bound", `{"pad":"` + pastBound + `","id":"j1","more":"` + huge + `"}`, "", CodeTooLarge},
		{"later id past the bound not seen", `{"id":"j1","pad":"` + pastBound + `","id":"j2","more":"` + huge + `"}`, "j1", CodeTooLarge},
		{"repeated id: the last counts", `{"id":"j1","id":"j2","pad":"` + huge + `"}`, "j2", CodeTooLarge},
		{"repeated id: the last is invalid", `{"id":"j1","id":"a b","pad":"` + huge + `"}`, "", CodeTooLarge},
		{"nested id only", `{"vars":{"id":"nested"},"pad":"` + huge + `"}`, "", CodeTooLarge},
		{"nested id then the real one", `{"consent":{"id":"nested","x":{"id":"deeper"}},"id":"real","pad":"` + huge + `"}`, "real", CodeTooLarge},
		{"id in an array", `{"list":[{"id":"n1"},"id",["id"]],"pad":"` + huge + `"}`, "", CodeTooLarge},
		{"id as a value", `{"key":"id","pad":"` + huge + `"}`, "", CodeTooLarge},
		{"invalid id chars", `{"id":"a b","pad":"` + huge + `"}`, "", CodeTooLarge},
		{"id too long", `{"id":"` + strings.Repeat("x", 129) + `","pad":"` + huge + `"}`, "", CodeTooLarge},
		{"empty id", `{"id":"","pad":"` + huge + `"}`, "", CodeTooLarge},
		{"id a number", `{"id":42,"pad":"` + huge + `"}`, "", CodeTooLarge},
		{"id an object", `{"id":{"id":"x"},"pad":"` + huge + `"}`, "", CodeTooLarge},
		{"id an array", `{"id":["x"],"pad":"` + huge + `"}`, "", CodeTooLarge},
		{"id null", `{"id":null,"pad":"` + huge + `"}`, "", CodeTooLarge},
		{"top-level array", `[{"id":"j1"},"` + huge + `"]`, "", CodeTooLarge},
		{"whitespace before the object", strings.Repeat(" ", idScanLimit) + `{"id":"j1","pad":"` + huge + `"}`, "", CodeTooLarge},
		{"not json at all", strings.Repeat("x", MaxPayload+1), "", CodeTooLarge},
		{"broken after the id", `{"id":"j1","to":+49}`, "j1", CodeNotJSON},
		{"broken before the id", `{"to":+49,"id":"j1"}`, "", CodeNotJSON},
		{"invalid utf8 in id", "{\"id\":\"a\xff\"}", "", CodeNotJSON},
		{"invalid utf8 after id", "{\"id\":\"j1\",\"text\":\"\xff\"}", "j1", CodeNotJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fe := decodeFieldError(t, tt.in)
			if fe.ID != tt.id || fe.Code != tt.code || fe.Field != "" {
				t.Errorf("got id=%q field=%q code=%q; want id=%q field=\"\" code=%q", fe.ID, fe.Field, fe.Code, tt.id, tt.code)
			}
		})
	}
}

// peekID reads only its bound: the work for a payload of megabytes is that of a few KiB.
func TestPeekID_Bounded(t *testing.T) {
	big := []byte(`{"pad":"` + strings.Repeat("a", 8<<20) + `","id":"j1"}`)
	allocs := testing.AllocsPerRun(5, func() {
		if id := peekID(big); id != "" {
			t.Fatalf("peekID read past its bound: %q", id)
		}
	})
	if allocs > 200 {
		t.Errorf("%v allocations per peekID", allocs)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	for range 10 {
		peekID(big)
	}
	runtime.ReadMemStats(&ms)
	if per := (ms.TotalAlloc - before) / 10; per > 64<<10 {
		t.Errorf("peekID allocated %d bytes per call on an 8 MiB payload, want at most 64 KiB", per)
	}
}

func BenchmarkPeekID(b *testing.B) {
	p := []byte(`{"id":"order-1042-shipped","to":"+4915112345678","text":"` + strings.Repeat("a", 1<<20) + `"}`)
	b.ReportAllocs()
	for b.Loop() {
		if peekID(p) != "order-1042-shipped" {
			b.Fatal("id not read")
		}
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
	f.Add([]byte(`{"id":"j1","id":"j2","to":"+4915112345678","text":"x"}`))
	f.Add([]byte(`{"vars":{"id":"nested"},"id":"real","to":"+4915112345678","template":"t"}`))
	f.Add([]byte(`{"id":"j1","to":"+4915112345678","text":"x"`))
	f.Add([]byte(`{"id":"j1"} {}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := DecodeJob(data, now0, defs)
		id := j.ID
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Code == "" || fe.Detail == "" {
				t.Fatalf("error is not a complete *FieldError: %#v", err)
			}
			if fe.ID != "" && !idRe.MatchString(fe.ID) {
				t.Fatalf("rejection names an invalid id %q", fe.ID)
			}
			id = fe.ID
		} else if !idRe.MatchString(j.ID) || (j.Template == "") == (j.Text == "") || j.Kind == "" || j.Priority == "" ||
			j.Fallback == "" || j.Delivery == "" || !j.ExpiresAt.After(now0) {
			// An accepted job is complete and normalised.
			t.Fatalf("accepted an incomplete job: %+v", j)
		} else if n, err := ParseNumber(j.To); err != nil || n.E164 != j.To {
			t.Fatalf("accepted number %q is not normalised E.164 (%v)", j.To, err)
		}
		// The same payload made too large (whitespace after it) is rejected as too_large, naming
		// the same id whenever the whole payload lies within the scan bound.
		if len(data) > idScanLimit {
			return
		}
		big := append(bytes.Clone(data), bytes.Repeat([]byte(" "), MaxPayload+1-len(data))...)
		_, err = DecodeJob(big, now0, defs)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Code != CodeTooLarge {
			t.Fatalf("oversized payload: err = %v, want too_large", err)
		}
		if fe.ID != id {
			t.Fatalf("oversized payload names id %q, the payload itself %q", fe.ID, id)
		}
	})
}
