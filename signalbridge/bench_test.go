package signalbridge_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/shopkit/relay/signalbridge"
	"github.com/shopkit/relay/signalbridge/signaltest"
)

// BenchmarkClient_Version measures calls/s against the in-process fake over a real Unix socket
// with 1 and 16 calls in flight. allocs/op counts both the client and the fake (same process).
func BenchmarkClient_Version(b *testing.B) {
	for _, inflight := range []int{1, 16} {
		b.Run(map[int]string{1: "inflight=1", 16: "inflight=16"}[inflight], func(b *testing.B) {
			_, c, _ := startFake(b, signaltest.Config{}, signalbridge.ClientOptions{})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			per := b.N / inflight
			for w := 0; w < inflight; w++ {
				n := per
				if w == 0 {
					n += b.N % inflight
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < n; i++ {
						if _, err := c.Version(ctx); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
		})
	}
}

// BenchmarkClient_Send is the same for send (one recipient, success), the relay's hot call.
func BenchmarkClient_Send(b *testing.B) {
	_, c, _ := startFake(b, signaltest.Config{Accounts: []string{acct}}, signalbridge.ClientOptions{})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < b.N; i += 16 {
				if r, err := c.Send(ctx, acct, alice, "Your order 4711 has shipped"); err != nil || r.Outcome != signalbridge.OutcomeSent {
					b.Error(r.Outcome, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
}
