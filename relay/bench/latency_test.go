package bench_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shopkit/relay/relay"
	"github.com/shopkit/relay/relay/mqtt/mqtttest"
)

// stampSignal is the fake relay.Signal: it records when each recipient's send call came, and
// answers sent.
type stampSignal struct {
	mu   sync.Mutex
	at   map[string]time.Time
	ts   int64
	sent chan struct{} // one token per send
}

func (f *stampSignal) Send(_ context.Context, to, _ string) relay.SendResult {
	now := time.Now()
	f.mu.Lock()
	if _, dup := f.at[to]; !dup {
		f.at[to] = now
	}
	f.ts++
	ts := f.ts
	f.mu.Unlock()
	f.sent <- struct{}{}
	return relay.SendResult{Outcome: relay.OutcomeSent, Timestamp: 1763740800000 + ts}
}

func (f *stampSignal) Trust(context.Context, string) error { return nil }

// latencyRate is the load the latency target is set for.
const latencyRate = 100 // jobs/s

// BenchmarkLatency publishes b.N jobs at 100 jobs/s (one every 10 ms, QoS 1, not waiting for
// PUBACKs), each to a different recipient with a consent proof (so the dispatcher records the
// consent before sending), and measures publish → Signal send call through the whole
// in-process pipeline: relay/mqtt, intake, the outbox on real Badger, the dispatcher (consent,
// rate limiter, MarkSending) and a fake relay.Signal that timestamps the calls. The dispatcher
// runs as relayd's defaults (concurrency 4, burst 10) with rate_per_minute = 6000, the highest
// the config allows, which is exactly 100/s. Reported: p50-ms, p99-ms, max-ms, and the
// buffer's synced commits per job.
//
// Sub-benchmarks: Mosquitto's default configuration and set_tcp_nodelay (Nagle off); at
// 100 jobs/s max_inflight_messages does not matter. b.N is the number of jobs (10 ms each):
// -benchtime=3000x is 30 s per sub-benchmark.
func BenchmarkLatency(b *testing.B) {
	for _, c := range brokerConfigs {
		if c.opts.MaxInflight != 0 && !c.opts.TCPNoDelay {
			continue
		}
		b.Run(c.name, func(b *testing.B) { benchLatency(b, c.opts) })
	}
}

func benchLatency(b *testing.B, opts mqtttest.Options) {
	b.StopTimer()
	n := b.N
	broker := mqtttest.Start(b, opts)
	sig := &stampSignal{at: make(map[string]time.Time, n), sent: make(chan struct{}, n+16)}
	r := newRig(b, broker.URL(), sig, relay.DispatcherConfig{Concurrency: 4, RatePerMinute: 6000, RateBurst: 10,
		RetryMin: 5 * time.Second, RetryMax: 10 * time.Minute})
	pub := client(b, broker.URL(), "shop-backend", nil)
	payloads := jobs("lat", n, n) // every job to its own recipient
	published := make([]time.Time, n)

	c0 := r.buf.Stats().Commits
	b.StartTimer()
	tick := time.NewTicker(time.Second / latencyRate)
	toks := make(chan error, n)
	for i, p := range payloads {
		<-tick.C
		published[i] = time.Now()
		tok := pub.Publish(prefix+"/jobs", 1, false, p)
		go func() { tok.Wait(); toks <- tok.Error() }()
	}
	tick.Stop()
	deadline := time.After(time.Minute)
	for range n {
		select {
		case <-sig.sent:
		case <-deadline:
			b.Fatalf("only %d of %d jobs were sent within a minute of the last publish", len(sig.at), n)
		}
	}
	b.StopTimer()
	for range n {
		if err := <-toks; err != nil {
			b.Fatalf("publish: %v", err)
		}
	}
	commits := r.buf.Stats().Commits - c0

	lat := make([]time.Duration, n)
	sig.mu.Lock()
	for i := range n {
		at, ok := sig.at[recipient(i)]
		if !ok {
			b.Fatalf("job %d (%s) never sent", i, recipient(i))
		}
		lat[i] = at.Sub(published[i])
	}
	sig.mu.Unlock()
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(lat[n/2]), "p50-ms")
	b.ReportMetric(ms(lat[min(n-1, n*99/100)]), "p99-ms")
	b.ReportMetric(ms(lat[n-1]), "max-ms")
	b.ReportMetric(float64(commits)/float64(n), "fsyncs/job")
	if testing.Verbose() {
		b.Logf("n=%d latency p50 %v p90 %v p99 %v max %v", n, lat[n/2], lat[n*9/10], lat[min(n-1, n*99/100)], lat[n-1])
	}
}
