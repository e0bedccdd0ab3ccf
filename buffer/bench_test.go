package buffer

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var benchPayload = make([]byte, 500)

// BenchmarkPut: durable Puts (each returns after its group commit is
// synced) from 1, 16 and 64 concurrent producers. Reports puts/s and
// fsyncs/put (synced commits per Put).
func BenchmarkPut(b *testing.B) {
	for _, producers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("producers=%d", producers), func(b *testing.B) {
			s := openT(b, b.TempDir(), Options{})
			b.ReportAllocs()
			var next atomic.Int64
			var wg sync.WaitGroup
			c0 := s.Stats().Commits
			b.ResetTimer()
			start := time.Now()
			for p := 0; p < producers; p++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						_, err := s.Put(ctx, Message{ID: fmt.Sprintf("id-%d", i), To: fmt.Sprintf("+4915%07d", i%1000), Payload: benchPayload})
						if err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "puts/s")
			b.ReportMetric(float64(s.Stats().Commits-c0)/float64(b.N), "fsyncs/put")
		})
	}
}

// BenchmarkLeaseAck: Lease up to 64 heads, Ack them from 16 goroutines,
// repeat. Reports messages/s and fsyncs per message.
func BenchmarkLeaseAck(b *testing.B) { benchLeaseAck(b, nil) }

// BenchmarkLeaseAckExtras: BenchmarkLeaseAck with what relay commits with
// each Ack: a 250-byte event on a spool and a journal line with the text.
func BenchmarkLeaseAckExtras(b *testing.B) {
	event := make([]byte, 250)
	benchLeaseAck(b, func(m Message) []Extra {
		return []Extra{SpoolExtra("mqtt", event), JournalExtra(Entry{ID: m.ID, To: m.To, Kind: "sent", Text: string(benchPayload)})}
	})
}

func benchLeaseAck(b *testing.B, extras func(Message) []Extra) {
	s := openT(b, b.TempDir(), Options{})
	parallel(b, b.N, 64, func(i int) error {
		_, err := s.Put(ctx, Message{ID: fmt.Sprintf("id-%d", i), To: fmt.Sprintf("+4915%07d", i%5000), Payload: benchPayload})
		return err
	})
	b.ReportAllocs()
	c0 := s.Stats().Commits
	b.ResetTimer()
	start := time.Now()
	done := 0
	for done < b.N {
		ms, err := s.Lease(ctx, 64, time.Now())
		if err != nil || len(ms) == 0 {
			b.Fatalf("Lease: %d, %v after %d", len(ms), err, done)
		}
		parallel(b, len(ms), 16, func(i int) error {
			var xs []Extra
			if extras != nil {
				xs = extras(ms[i])
			}
			return s.Ack(ctx, ms[i].ID, "sent", xs...)
		})
		done += len(ms)
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
	b.ReportMetric(float64(s.Stats().Commits-c0)/float64(b.N), "fsyncs/msg")
}
