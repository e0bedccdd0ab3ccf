package modem

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/shopkit/relay/modem/modemtest"
)

// BenchmarkEngine_RoundTrip measures AT round trips per second through go.bug.st/serial on a
// real pty, the simulator answering on the master side.
func BenchmarkEngine_RoundTrip(b *testing.B) {
	sim := newSim(b)
	p, err := OpenSerial(sim.Path(), 115200)
	if err != nil {
		b.Fatal(err)
	}
	e := NewEngine(p, nil)
	defer e.Close()
	ctx := context.Background()
	if _, err := e.Exec(ctx, "ATE0", time.Second); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.Exec(ctx, "AT+CSQ", time.Second, "+CSQ:"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "roundtrips/s")
}

func BenchmarkEncodeSubmit(b *testing.B) {
	for _, c := range []struct{ name, text string }{
		{"gsm7-1part", "Your order 1042 has shipped with DHL."},
		{"gsm7-3parts", strings.Repeat("Your order 1042 has shipped. ", 12)},
		{"ucs2-2parts", strings.Repeat("Ваш заказ 1042 отправлен. ", 5)},
	} {
		b.Run(c.name, func(b *testing.B) {
			var e encoder
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.EncodeSubmit("+4915112345678", c.text, true); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeDeliver(b *testing.B) {
	for _, c := range []struct{ name, text string }{
		{"gsm7-1part", "STOP"},
		{"gsm7-3parts", strings.Repeat("Please STOP sending me offers. ", 12)},
		{"ucs2-3parts", strings.Repeat("Пожалуйста, СТОП. ", 8)},
	} {
		hs, err := modemtest.EncodeDeliver("+4917600000001", c.text, time.Unix(1763740800, 0), 5)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			now := time.Unix(1763740800, 0)
			for b.Loop() {
				r := newReassembler(time.Minute)
				for i, h := range hs {
					t, err := decodePDU(h)
					if err != nil {
						b.Fatal(err)
					}
					if whole := r.add(part{Index: i, T: t}, now); whole != nil {
						if _, err := message(whole, false); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
		})
	}
}
