package mqtt_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shopkit/relay/relay/config"
	"github.com/shopkit/relay/relay/mqtt"
	"github.com/shopkit/relay/relay/mqtt/mqtttest"
)

// TLS against a real Mosquitto that requires a client certificate: relay connects with the CA
// and client certificate of [mqtt], on an ssl:// URL and also on a tcp:// one (a configured CA
// or certificate means TLS; paho alone would speak MQTT in the clear there and send the
// password with it), and a job published over TLS is acknowledged. Without a client
// certificate, or trusting another CA, the connection is refused with a clear reason.
func TestClient_TLS(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{TLS: true})
	files := b.TLS()
	hostPort := strings.TrimPrefix(b.URL(), "ssl://")
	other := mqtttest.Start(t, mqtttest.Options{TLS: true}).TLS() // another CA

	login := func(t *testing.T, c config.MQTT) *tls.Config {
		t.Helper()
		_, tc, err := mqtt.Login(c)
		if err != nil || tc == nil {
			t.Fatalf("Login = %v, %v", tc, err)
		}
		return tc
	}
	full := config.MQTT{CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey}

	for _, url := range []string{"ssl://" + hostPort, "tcp://" + hostPort} {
		t.Run("connects/"+strings.SplitN(url, ":", 2)[0], func(t *testing.T) {
			c := full
			c.Broker = url
			h := newHandler(func(string) error { return nil })
			client, stop := startClientWith(t, mqtt.Config{Broker: url, ClientID: "relay-box", TopicPrefix: "shop", TLS: login(t, c),
				MaxReconnect: 200 * time.Millisecond}, h, nil)
			defer stop()
			shop := b.Connect(t, "shop-backend")
			job := fmt.Sprintf(`{"id":"tls-%s"}`, strings.SplitN(url, ":", 2)[0])
			if tok := shop.Publish("shop/jobs", 1, false, job); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
				t.Fatalf("publish over TLS: %v", tok.Error())
			}
			waitSeen(t, h, job)
			waitAcked(t, client, 1)
		})
	}

	refused := []struct {
		name string
		c    config.MQTT
		want string
	}{
		{"no client certificate", config.MQTT{CAFile: files.CA}, ""},
		{"broker's certificate from another CA", config.MQTT{CAFile: other.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey}, "certificate"},
	}
	for _, tt := range refused {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			tt.c.Broker = b.URL()
			reasons := make(chan string, 100)
			c := mqtt.New(mqtt.Config{Broker: b.URL(), ClientID: "relay-box", TopicPrefix: "shop", TLS: login(t, tt.c),
				MaxReconnect: 50 * time.Millisecond}, newHandler(func(string) error { return nil }), nil, nil,
				func(up bool, reason string) {
					if up {
						reason = "CONNECTED"
					}
					reasons <- reason
				})
			defer runClient(t, c)()
			for range 2 { // the first refusal and the retry's
				select {
				case r := <-reasons:
					if r == "CONNECTED" || !strings.Contains(r, tt.want) {
						t.Fatalf("state %q, want a refusal mentioning %q", r, tt.want)
					}
				case <-time.After(waitFor):
					t.Fatal("no connection attempt reported")
				}
			}
			if c.Connected() {
				t.Fatal("connected without a valid TLS setup")
			}
		})
	}
}

// A broker address that accepts and then says nothing (a wrong port, a stuck proxy): the TLS
// handshake ends with the connect timeout instead of hanging the connect for good.
func TestDial_SilentPeerEndsTLSHandshake(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { // holds what it accepts, silent, until the listener closes
		var held []net.Conn
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	opts := paho.NewClientOptions().SetConnectTimeout(200 * time.Millisecond).
		SetTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12})
	u, err := url.Parse("tcp://" + l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		c, err := mqtt.Dial(u, *opts)
		if c != nil {
			_ = c.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "TLS handshake") {
			t.Fatalf("Dial = %v, want a TLS handshake error", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Dial still waiting for a peer that never answers")
	}
}
