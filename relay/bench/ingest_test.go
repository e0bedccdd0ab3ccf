package bench_test

import (
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shopkit/relay/relay/mqtt/mqtttest"
)

// BenchmarkIngest measures b.N jobs published QoS 1 (pipelined) by a shop-side paho client
// until relay has acknowledged them all, each only after its Put (with its accepted event) was
// synced: relay/mqtt + relay.Intake + relay/store over a real buffer. No dispatcher runs (the
// jobs stay queued); the MQTT client drains the accepted events to the broker as relayd does.
//
// In the same run and on the same broker, the same jobs go to a subscriber that only
// acknowledges (persistent session, manual ack, OrderMatters, as relay's client): Mosquitto's
// own QoS 1 pass-through rate. Reported: jobs/s (all acknowledged), jobs+events/s (also every
// accepted event published and removed from the spool: the rate that can last), passthrough-msgs/s,
// ratio (of jobs/s), fsyncs/job
// (synced buffer commits per job, the spool removals of the drained events included), and CPU
// per message of this process (publisher + subscriber, or publisher + relay) and of Mosquitto.
//
// Sub-benchmarks are broker configurations (see brokerConfigs): Mosquitto's defaults
// (max_inflight_messages 20, Nagle on), max_inflight_messages 1000, and 1000 with
// set_tcp_nodelay. Fix b.N with -benchtime=20000x: each call starts its own broker.
func BenchmarkIngest(b *testing.B) {
	for _, c := range brokerConfigs {
		b.Run(c.name, func(b *testing.B) { benchIngest(b, c.opts) })
	}
}

// brokerConfigs are the Mosquitto settings the benchmarks compare.
var brokerConfigs = []struct {
	name string
	opts mqtttest.Options
}{
	{"broker=default", mqtttest.Options{}},
	{"broker=inflight1000", mqtttest.Options{MaxInflight: 1000}},
	{"broker=inflight1000+nodelay", mqtttest.Options{MaxInflight: 1000, TCPNoDelay: true}},
}

func benchIngest(b *testing.B, opts mqtttest.Options) {
	b.StopTimer()
	broker := mqtttest.Start(b, opts)
	n := b.N
	payloads := jobs("ingest", n, n) // every job to its own customer (a batch of shipping notices)
	pub := client(b, broker.URL(), "shop-backend", nil)

	// Mosquitto alone: publish → subscriber's ack, same payloads, same QoS, same ack mode.
	var got atomic.Int64
	sub := client(b, broker.URL(), "passthrough", func(_ paho.Client, m paho.Message) {
		m.Ack()
		got.Add(1)
	})
	subscribe(b, sub, "passthrough/jobs", nil)
	mosq := childNamed("mosquitto")
	t0, cpu0, mcpu0 := time.Now(), selfCPU(), procCPU(mosq)
	publishAll(b, pub, "passthrough/jobs", payloads)
	waitFor(b, "pass-through subscriber acked all", 5*time.Minute, func() bool { return got.Load() >= int64(n) })
	passthrough := float64(n) / time.Since(t0).Seconds()
	ptCPU, ptMosq := selfCPU()-cpu0, procCPU(mosq)-mcpu0
	sub.Disconnect(100)

	r := newRig(b, broker.URL(), nil, rigNoDispatcher)
	c0 := r.buf.Stats().Commits
	b.StartTimer()
	t0, cpu0, mcpu0 = time.Now(), selfCPU(), procCPU(mosq)
	publishAll(b, pub, prefix+"/jobs", payloads)
	waitFor(b, "relay acked all", 5*time.Minute, func() bool { return r.mq.Acked() >= int64(n) })
	el := time.Since(t0)
	// The accepted events may still sit in the spool: a rate that lasts must include them.
	waitFor(b, "every accepted event published", 5*time.Minute, func() bool { return r.st.SpoolLen() == 0 })
	drained := time.Since(t0)
	b.StopTimer()
	cpu, mcpu := selfCPU()-cpu0, procCPU(mosq)-mcpu0
	commits := r.buf.Stats().Commits - c0
	if d := r.st.Depth(); d != n {
		b.Fatalf("outbox holds %d jobs after %d acknowledgements, want %d (rejected?)", d, r.mq.Acked(), n)
	}
	rate := float64(n) / el.Seconds()
	b.ReportMetric(rate, "jobs/s")
	b.ReportMetric(float64(n)/drained.Seconds(), "jobs+events/s")
	b.ReportMetric(passthrough, "passthrough-msgs/s")
	b.ReportMetric(rate/passthrough, "ratio")
	b.ReportMetric(float64(commits)/float64(n), "fsyncs/job")
	// CPU per message, less noisy than rates on a shared machine: this process (publisher +
	// subscriber, or publisher + relay) and Mosquitto.
	perMsg := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	b.ReportMetric(perMsg(ptCPU), "passthrough-cpu-µs/msg")
	b.ReportMetric(perMsg(ptMosq), "passthrough-mosq-cpu-µs/msg")
	b.ReportMetric(perMsg(cpu), "cpu-µs/job")
	b.ReportMetric(perMsg(mcpu), "mosq-cpu-µs/job")
}
