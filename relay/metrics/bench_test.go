package metrics

import (
	"context"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/shopkit/relay/relay"
)

// BenchmarkEvents_Count is the cost the counting adds to every stored event (ingest runs at
// 10,000+ jobs/s, each with an accepted and a sent event).
func BenchmarkEvents_Count(b *testing.B) {
	ev := NewEvents()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ev.Count(relay.EventSent)
		}
	})
}

// BenchmarkEvents_Submit is the counting outbox wrapper around an accepted job's Submit.
func BenchmarkEvents_Submit(b *testing.B) {
	o := NewEvents().Outbox(&fakeOutbox{})
	ctx := context.Background()
	accepted := relay.Event{Event: relay.EventAccepted}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := o.Submit(ctx, relay.Stored{}, accepted)(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMetrics_Scrape is one whole /metrics response (every source, Go and process
// collectors), served in process.
func BenchmarkMetrics_Scrape(b *testing.B) {
	w := &fakeWorld{modem: ModemReading{SignalKnown: true}}
	h := New(NewEvents(), w.sources(), nil).Handler()
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
		_, _ = io.Copy(io.Discard, rec.Body)
	}
}
