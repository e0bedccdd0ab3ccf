package mqtt_test

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/shopkit/relay/relay/mqtt"
)

// silentBroker speaks just enough MQTT 3.1.1 for relay's client (CONNACK, SUBACK, PINGRESP)
// and never acknowledges a PUBLISH: a broker that is alive but has stopped taking messages.
// It records each connection's PUBLISH payloads.
type silentBroker struct {
	l    net.Listener
	mu   sync.Mutex
	pubs [][]string // per connection
	more chan struct{}
}

func newSilentBroker(t *testing.T) *silentBroker {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &silentBroker{l: l, more: make(chan struct{}, 1000)}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.pubs = append(b.pubs, nil)
			n := len(b.pubs) - 1
			b.mu.Unlock()
			wg.Go(func() { defer conn.Close(); b.serve(conn, n) })
		}
	})
	return b
}

func (b *silentBroker) serve(conn net.Conn, n int) {
	for {
		cp, err := packets.ReadPacket(conn)
		if err != nil {
			return
		}
		var reply packets.ControlPacket
		switch p := cp.(type) {
		case *packets.ConnectPacket:
			reply = packets.NewControlPacket(packets.Connack)
		case *packets.SubscribePacket:
			sa := packets.NewControlPacket(packets.Suback).(*packets.SubackPacket)
			sa.MessageID, sa.ReturnCodes = p.MessageID, p.Qoss
			reply = sa
		case *packets.PingreqPacket:
			reply = packets.NewControlPacket(packets.Pingresp)
		case *packets.PublishPacket:
			b.mu.Lock()
			b.pubs[n] = append(b.pubs[n], string(p.Payload))
			b.mu.Unlock()
			b.more <- struct{}{}
		case *packets.DisconnectPacket:
			return
		}
		if reply != nil && reply.Write(conn) != nil {
			return
		}
	}
}

func (b *silentBroker) published() [][]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([][]string, len(b.pubs))
	for i, p := range b.pubs {
		out[i] = append([]string(nil), p...)
	}
	return out
}

// waitPublished waits until cond holds for what the broker has received.
func (b *silentBroker) waitPublished(t *testing.T, what string, cond func([][]string) bool) [][]string {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		if p := b.published(); cond(p) {
			return p
		}
		select {
		case <-b.more:
		case <-deadline:
			t.Fatalf("not within %v: %s; the broker got %q", waitFor, what, b.published())
		}
	}
}

// A broker that is alive (it answers pings) but never acknowledges: after AckTimeout the client
// makes a new connection and publishes the same events again, from the first; nothing leaves the
// spool without a PUBACK. The same for the retained status.
func TestClient_BrokerNeverAcknowledges(t *testing.T) {
	cfg := func(b *silentBroker) mqtt.Config {
		return mqtt.Config{Broker: "tcp://" + b.l.Addr().String(), ClientID: "relay-box", TopicPrefix: "shop",
			MaxReconnect: 50 * time.Millisecond, AckTimeout: 200 * time.Millisecond}
	}
	t.Run("events", func(t *testing.T) {
		b := newSilentBroker(t)
		sp := &memSpool{}
		for _, e := range []string{`{"n":0}`, `{"n":1}`, `{"n":2}`} {
			sp.add("events", e)
		}
		_, stop := startClientWith(t, cfg(b), newHandler(func(string) error { return nil }), sp)
		defer stop()
		b.waitPublished(t, "the events published on a second connection", func(p [][]string) bool {
			return len(p) >= 2 && len(p[1]) > 0
		})
		for i, conn := range b.published()[:2] {
			if len(conn) == 0 || conn[0] != `{"n":0}` {
				t.Errorf("connection %d published %q, want the spool from its first event", i, conn)
			}
		}
		if n := sp.len(); n != 3 {
			t.Errorf("spool holds %d events, want all 3 (none was acknowledged)", n)
		}
	})
	t.Run("status", func(t *testing.T) {
		b := newSilentBroker(t)
		c, stop := startClientWith(t, cfg(b), newHandler(func(string) error { return nil }), nil)
		defer stop()
		c.SetStatus([]byte(`{"state":"online"}`))
		b.waitPublished(t, "the status published again on a new connection", func(p [][]string) bool {
			seen := 0
			for _, conn := range p {
				if len(conn) > 0 && conn[0] == `{"state":"online"}` {
					seen++
				}
			}
			return seen >= 2
		})
	})
}
