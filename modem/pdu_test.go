package modem

import (
	"strings"
	"testing"
	"time"

	"github.com/shopkit/relay/modem/modemtest"
	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"
)

func TestDecodePDU_Known(t *testing.T) {
	// The classic example of PDU-mode tutorials: SMSC +27381000015, from 27838890001 (TON
	// national), "hellohello", stamped 99-03-29 15:16:59 +02.
	const h = "07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37"
	tp, err := decodePDU(h)
	if err != nil {
		t.Fatal(err)
	}
	m, err := message([]part{{Index: 1, T: tp}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if m.From != "27838890001" || m.Text != "hellohello" || m.Parts != 1 {
		t.Errorf("got %+v", m)
	}
	if got := m.At.UTC().Format(time.RFC3339); got != "1999-03-29T13:16:59Z" {
		t.Errorf("At = %s", got)
	}
}

func TestDecodePDU_Bad(t *testing.T) {
	for _, h := range []string{"", "0", "ZZ", "00", "0791FF", "07917283010010F5040BC87238880900F1000099309251619580", "00" + strings.Repeat("FF", 10)} {
		if _, err := decodePDU(h); err == nil {
			t.Errorf("decodePDU(%q): want an error", h)
		}
	}
}

func TestEncoder_EncodeSubmit(t *testing.T) {
	long := strings.Repeat("Your order 1042 has shipped. ", 12) // 348 chars: 3 GSM-7 parts
	uni := strings.Repeat("Ваш заказ 1042 отправлен. ", 5)      // 130 chars UCS-2: 2 parts
	tests := []struct {
		name, text string
		parts      int
		alpha      tpdu.Alphabet
	}{
		{"short gsm7", "Hello Müller €5", 1, tpdu.Alpha7Bit},
		{"long gsm7", long, 3, tpdu.Alpha7Bit},
		{"ucs2", "Привет", 1, tpdu.AlphaUCS2},
		{"long ucs2", uni, 2, tpdu.AlphaUCS2},
		{"emoji", "ok 👍", 1, tpdu.AlphaUCS2},
	}
	var e encoder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pdus, err := e.EncodeSubmit("+4915112345678", tt.text, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(pdus) != tt.parts {
				t.Fatalf("parts = %d, want %d", len(pdus), tt.parts)
			}
			var ts []*tpdu.TPDU
			for _, p := range pdus {
				pm, err := pdumode.UnmarshalHexString(p.Hex)
				if err != nil {
					t.Fatal(err)
				}
				if len(pm.TPDU) != p.Len {
					t.Errorf("Len = %d, TPDU is %d", p.Len, len(pm.TPDU))
				}
				tp, err := sms.Unmarshal(pm.TPDU, sms.AsMO)
				if err != nil {
					t.Fatal(err)
				}
				if tp.DA.Number() != "+4915112345678" || !tp.FirstOctet.SRR() {
					t.Errorf("DA %q SRR %v", tp.DA.Number(), tp.FirstOctet.SRR())
				}
				if a, _ := tp.Alphabet(); a != tt.alpha {
					t.Errorf("alphabet %v, want %v", a, tt.alpha)
				}
				ts = append(ts, tp)
			}
			if !sms.IsCompleteMessage(ts) {
				t.Fatal("parts do not form a complete message")
			}
			got, err := sms.Decode(ts)
			if err != nil || string(got) != tt.text {
				t.Errorf("round trip = %q, %v", got, err)
			}
		})
	}
}

func TestEncoder_ConcatRefChanges(t *testing.T) {
	var e encoder
	long := strings.Repeat("x", 200)
	a, _ := e.EncodeSubmit("+4915112345678", long, false)
	b, _ := e.EncodeSubmit("+4915112345678", long, false)
	ra, rb := concatRef(t, a[0].Hex), concatRef(t, b[0].Hex)
	if ra == rb {
		t.Errorf("two long messages share concatenation ref %d", ra)
	}
}

func concatRef(t *testing.T, h string) int {
	pm, _ := pdumode.UnmarshalHexString(h)
	tp, err := sms.Unmarshal(pm.TPDU, sms.AsMO)
	if err != nil {
		t.Fatal(err)
	}
	_, _, ref, _ := tp.ConcatInfo()
	return ref
}

func TestEncoder_Invalid(t *testing.T) {
	var e encoder
	for _, c := range []struct{ to, text string }{{"+4915112345678", ""}, {"", "x"}, {"+49 151", "x"}, {"abc", "x"}} {
		if _, err := e.EncodeSubmit(c.to, c.text, false); err == nil {
			t.Errorf("EncodeSubmit(%q,%q): want error", c.to, c.text)
		}
	}
}

func deliverParts(t *testing.T, from, text string, at time.Time, ref int) []part {
	t.Helper()
	hs, err := modemtest.EncodeDeliver(from, text, at, ref)
	if err != nil {
		t.Fatal(err)
	}
	var ps []part
	for i, h := range hs {
		tp, err := decodePDU(h)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, part{Index: 10*ref + i, T: tp})
	}
	return ps
}

func TestReassembler_Add(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	longA := strings.Repeat("Ab1 ", 100) // GSM-7, 3 parts
	longB := strings.Repeat("Щука ", 40) // UCS-2, 3 parts
	a := deliverParts(t, "+4917600000001", longA, at, 7)
	b := deliverParts(t, "+4917600000002", longB, at, 7) // same ref, other sender: must not mix
	r := newReassembler(time.Minute)
	// Interleaved, out of order, with a duplicate.
	order := []part{a[2], b[1], a[0], a[2], b[0], a[1], b[2]}
	var done [][]part
	for _, p := range order {
		if whole := r.add(p, at); whole != nil {
			done = append(done, whole)
		}
	}
	if len(done) != 2 {
		t.Fatalf("completed %d messages, want 2", len(done))
	}
	for i, want := range []string{longA, longB} {
		m, err := message(done[i], false)
		if err != nil {
			t.Fatal(err)
		}
		if m.Text != want || m.Parts != 3 {
			t.Errorf("message %d = %q (%d parts)", i, m.Text, m.Parts)
		}
	}
	if len(r.pending) != 0 {
		t.Errorf("pending left: %d", len(r.pending))
	}
}

func TestReassembler_Expired(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	a := deliverParts(t, "+4917600000001", strings.Repeat("x", 400), at, 9) // 3 parts
	r := newReassembler(10 * time.Minute)
	r.add(a[0], at)
	r.add(a[1], at)
	if !r.holds(a[0].Index) || r.holds(999) {
		t.Error("holds() wrong")
	}
	if got := r.expired(at.Add(9 * time.Minute)); len(got) != 0 {
		t.Fatalf("expired early: %d", len(got))
	}
	got := r.expired(at.Add(10 * time.Minute))
	if len(got) != 1 || len(got[0]) != 2 {
		t.Fatalf("expired = %v", got)
	}
	m, err := message(got[0], true)
	if err != nil || !m.Incomplete || m.Parts != 2 || m.Text != strings.Repeat("x", 306) {
		t.Errorf("partial = %+v, %v", m, err)
	}
}

func TestMessage_IDStable(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	a := deliverParts(t, "+4917600000001", "STOP", at, 1)
	b := deliverParts(t, "+4917600000001", "STOP", at, 2)
	c := deliverParts(t, "+4917600000001", "STOP", at.Add(time.Second), 3)
	ma, _ := message(a, false)
	mb, _ := message(b, false)
	mc, _ := message(c, false)
	if ma.ID != mb.ID {
		t.Error("same SMS read twice has different IDs")
	}
	if ma.ID == mc.ID {
		t.Error("a second STOP a second later has the same ID")
	}
}

func TestReportFrom(t *testing.T) {
	var tp tpdu.TPDU
	_ = tp.SetSmsType(tpdu.SmsStatusReport)
	tp.MR = 42
	tp.RA = tpdu.NewAddress(tpdu.FromNumber("+4915112345678"))
	tp.ST = 0x41
	b, err := tp.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodePDU("00" + strings.ToUpper(hexs(b)))
	if err != nil {
		t.Fatal(err)
	}
	r, err := reportFrom(got)
	if err != nil {
		t.Fatal(err)
	}
	if r.Ref != 42 || r.To != "+4915112345678" || r.Delivered || !r.Final || r.Status != 0x41 {
		t.Errorf("report = %+v", r)
	}
}

func hexs(b []byte) string {
	const d = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, d[c>>4], d[c&15])
	}
	return string(out)
}

func FuzzDecodePDU(f *testing.F) {
	f.Add("07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37")
	if hs, err := modemtest.EncodeDeliver("+4917600000001", strings.Repeat("Щука ", 40), time.Unix(1763740800, 0), 3); err == nil {
		for _, h := range hs {
			f.Add(h)
		}
	}
	f.Add("0006")
	f.Fuzz(func(t *testing.T, h string) {
		tp, err := decodePDU(h)
		if err != nil {
			return
		}
		switch tp.SmsType() {
		case tpdu.SmsDeliver:
			r := newReassembler(time.Minute)
			if whole := r.add(part{T: tp}, time.Unix(0, 0)); whole != nil {
				_, _ = message(whole, false)
			}
			for _, ps := range r.expired(time.Unix(3600, 0)) {
				_, _ = message(ps, true)
			}
		case tpdu.SmsStatusReport:
			_, _ = reportFrom(tp)
		}
	})
}
