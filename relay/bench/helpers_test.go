package bench_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shopkit/relay/buffer"
	"github.com/shopkit/relay/relay"
	"github.com/shopkit/relay/relay/consent"
	"github.com/shopkit/relay/relay/mqtt"
	"github.com/shopkit/relay/relay/store"
	"github.com/shopkit/relay/relay/template"
)

const prefix = "relay"

// recipient is the i-th customer: a valid German mobile number (+49 151 and eight digits).
func recipient(i int) string { return fmt.Sprintf("+49151%08d", 10_000_000+i%90_000_000) }

// jobPayload is a P/jobs payload as a shop backend sends it: a template job with its variables
// and a consent proof.
func jobPayload(id, to string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"to":%q,"template":"order_shipped","lang":"de","vars":{"order":"1042","carrier":"DHL","url":"https://t.example/1042"},"consent":{"at":"2026-01-20T12:00:00Z","source":"checkout","proof":"form-v3"}}`, id, to)
}

// jobs returns n payloads with ids tag-0…, the i-th to recipient(i % recipients).
func jobs(tag string, n, recipients int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = jobPayload(fmt.Sprintf("%s-%d", tag, i), recipient(i%recipients))
	}
	return out
}

// client connects a paho client (QoS 1 throughout). handler, when set, takes every message
// on a persistent session with manual acknowledgement, as relay does.
func client(b testing.TB, url, id string, handler paho.MessageHandler) paho.Client {
	b.Helper()
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(id).
		SetAutoReconnect(false).SetConnectTimeout(10 * time.Second).SetWriteTimeout(10 * time.Second)
	if handler != nil {
		opts.SetCleanSession(false).SetAutoAckDisabled(true).SetOrderMatters(true).SetDefaultPublishHandler(handler)
	}
	cl := paho.NewClient(opts)
	if tok := cl.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		b.Fatalf("connect %s: %v", id, tok.Error())
	}
	b.Cleanup(func() { cl.Disconnect(100) })
	return cl
}

func subscribe(b testing.TB, cl paho.Client, topic string, h paho.MessageHandler) {
	b.Helper()
	if tok := cl.Subscribe(topic, 1, h); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		b.Fatalf("subscribe %s: %v", topic, tok.Error())
	}
}

// window bounds the publisher's unacknowledged QoS 1 publishes (paho has 65535 packet ids).
const window = 8192

// publishAll publishes every payload QoS 1 as fast as the broker takes them: pipelined, at most
// window unacknowledged, and returns when the broker has acknowledged them all.
func publishAll(b testing.TB, cl paho.Client, topic string, payloads [][]byte) {
	b.Helper()
	toks := make(chan paho.Token, window)
	errc := make(chan error, 1)
	go func() {
		var first error
		for tok := range toks {
			if !tok.WaitTimeout(time.Minute) && first == nil {
				first = fmt.Errorf("publish not acknowledged within a minute")
			}
			if err := tok.Error(); err != nil && first == nil {
				first = err
			}
		}
		errc <- first
	}()
	for _, p := range payloads {
		toks <- cl.Publish(topic, 1, false, p)
	}
	close(toks)
	if err := <-errc; err != nil {
		b.Fatalf("publish: %v", err)
	}
}

// waitFor polls cond every 200µs until it holds; the deadline only guards against a hang.
func waitFor(b testing.TB, what string, limit time.Duration, cond func() bool) {
	b.Helper()
	tick := time.NewTicker(200 * time.Microsecond)
	defer tick.Stop()
	deadline := time.After(limit)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			b.Fatalf("not within %v: %s", limit, what)
		}
	}
}

// rig is relay in-process: relay/mqtt over relay.Intake over relay/store over a real buffer in
// a temporary directory, and a dispatcher when the Signal is given.
type rig struct {
	buf  *buffer.Store
	st   *store.Store
	mq   *mqtt.Client
	disp *relay.Dispatcher
}

var rigNoDispatcher relay.DispatcherConfig

func newRig(b testing.TB, url string, sig relay.Signal, dcfg relay.DispatcherConfig) *rig {
	b.Helper()
	buf, err := buffer.Open(b.TempDir(), buffer.Options{})
	if err != nil {
		b.Fatal(err)
	}
	st := store.New(buf, nil)
	pol, err := consent.New(consent.Config{Store: st.Consent(), Shop: "Blumenladen"})
	if err != nil {
		b.Fatal(err)
	}
	tr, err := template.New(template.Config{Shop: "Blumenladen", DefaultLang: "de"})
	if err != nil {
		b.Fatal(err)
	}
	keeper := relay.ConsentPolicy(pol)
	r := &rig{buf: buf, st: st}
	var kick func()
	if sig != nil {
		r.disp = relay.NewDispatcher(dcfg, relay.DispatcherDeps{Outbox: st, Signal: sig, Consent: keeper})
		kick = r.disp.Kick
	}
	intake := relay.NewIntake(relay.JobDefaults{Lang: "de", Expiry: 24 * time.Hour},
		relay.IntakeDeps{Outbox: st, Events: st, Renderer: relay.TemplateRenderer(tr), Consent: keeper, OnAccepted: kick})
	r.mq = mqtt.New(mqtt.Config{Broker: url, ClientID: "relay-bench", TopicPrefix: prefix}, intake, st, nil, nil)
	st.OnSpool(r.mq.Notify)

	ctx, cancel := context.WithCancel(context.Background())
	var running atomic.Int32
	done := make(chan struct{}, 2)
	start := func(run func(context.Context) error) {
		running.Add(1)
		go func() { _ = run(ctx); done <- struct{}{} }()
	}
	start(r.mq.Run)
	if r.disp != nil {
		start(r.disp.Run)
	}
	b.Cleanup(func() {
		cancel()
		for range running.Load() {
			<-done
		}
		if err := buf.Close(); err != nil {
			b.Error(err)
		}
	})
	waitFor(b, "relay connected and subscribed", 20*time.Second, r.mq.Connected)
	return r
}
