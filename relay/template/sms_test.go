package template

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/warthog618/sms"
)

func TestCountSMS(t *testing.T) {
	x := strings.Repeat
	tests := []struct {
		name string
		in   string
		want SMSInfo
	}{
		{"empty", "", SMSInfo{GSM7, 0, 1}},
		{"ascii", "Hello", SMSInfo{GSM7, 5, 1}},
		{"german umlauts are gsm", "Grüße aus Köln, Straße", SMSInfo{GSM7, 22, 1}},
		{"160 septets", x("a", 160), SMSInfo{GSM7, 160, 1}},
		{"161 septets", x("a", 161), SMSInfo{GSM7, 161, 2}},
		{"306 septets", x("a", 306), SMSInfo{GSM7, 306, 2}},
		{"307 septets", x("a", 307), SMSInfo{GSM7, 307, 3}},
		{"extension counts two", "{€}", SMSInfo{GSM7, 6, 1}},
		{"80 euros fill one", x("€", 80), SMSInfo{GSM7, 160, 1}},
		{"81 euros", x("€", 81), SMSInfo{GSM7, 162, 2}},
		// 152 plain + € would straddle the 153 boundary: the escape moves to part two.
		{"escape never split", x("a", 152) + "€" + x("a", 152), SMSInfo{GSM7, 306, 3}},
		{"newline and cr are gsm", "a\r\nb", SMSInfo{GSM7, 4, 1}},
		{"cyrillic", "Привет", SMSInfo{UCS2, 6, 1}},
		{"polish", "Dziękujemy", SMSInfo{UCS2, 10, 1}},
		{"one em dash makes ucs2", "Hello — Shop", SMSInfo{UCS2, 12, 1}},
		{"70 units", x("я", 70), SMSInfo{UCS2, 70, 1}},
		{"71 units", x("я", 71), SMSInfo{UCS2, 71, 2}},
		{"134 units", x("я", 134), SMSInfo{UCS2, 134, 2}},
		{"135 units", x("я", 135), SMSInfo{UCS2, 135, 3}},
		{"emoji is two units", "🚚", SMSInfo{UCS2, 2, 1}},
		{"35 emoji", x("🚚", 35), SMSInfo{UCS2, 70, 1}},
		// 66 units + an emoji would straddle 67: the surrogate pair moves to part two.
		{"surrogate pair never split", x("я", 66) + "🚚" + x("я", 66), SMSInfo{UCS2, 134, 3}},
		{"extension char inside ucs2 counts one", "я€", SMSInfo{UCS2, 2, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CountSMS(tt.in); got != tt.want {
				t.Errorf("CountSMS(%.20q…) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

// TestCountSMS_MatchesEncoder checks our count against a real PDU encoder (the modem's
// library) on random texts without extension characters or surrogate pairs, where every
// splitter must agree.
func TestCountSMS_MatchesEncoder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	gsm := []rune("abcXYZ019 .,!?@£$äöüßÄÖÜé\n€[~")
	ucs := []rune("абвгдЯęłóśążź—–„“🚚")
	for i := range 400 {
		n := 1 + rng.IntN(500)
		rs := make([]rune, n)
		for j := range rs {
			rs[j] = gsm[rng.IntN(len(gsm))]
			if i%2 == 1 && rng.IntN(20) == 0 {
				rs[j] = ucs[rng.IntN(len(ucs))]
			}
		}
		s := string(rs)
		got := CountSMS(s)
		pdus, err := sms.Encode([]byte(s))
		if err != nil {
			t.Fatalf("sms.Encode(%q): %v", s, err)
		}
		if got.Segments != len(pdus) {
			t.Fatalf("CountSMS(%q) = %+v, the encoder made %d PDUs", s, got, len(pdus))
		}
	}
}
