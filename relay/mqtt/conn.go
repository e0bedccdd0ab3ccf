package mqtt

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/net/proxy"
)

// Dial opens the broker connection for paho (ClientOptions.CustomOpenConnectionFn), with a
// read buffer (see bufferedConn). Every relay client uses it: relayd's and relayctl's.
//
// It opens what paho's own openConnection opens for the schemes relay's config accepts, with one
// difference: a TLS configuration (a CA or a client certificate, see Login) means TLS also on a
// tcp:// or mqtt:// URL, where paho would connect in the clear and send the password with it.
func Dial(uri *url.URL, opts paho.ClientOptions) (net.Conn, error) {
	d := opts.Dialer
	if d == nil {
		d = &net.Dialer{Timeout: opts.ConnectTimeout}
	}
	tc := opts.TLSConfig
	switch uri.Scheme {
	case "ws", "wss":
		ws := *uri
		ws.User = nil
		if tc != nil {
			ws.Scheme = "wss"
		}
		return paho.NewWebsocket(ws.String(), tc, opts.ConnectTimeout, opts.HTTPHeaders, opts.WebsocketOptions)
	case "tcp", "mqtt":
	case "ssl", "tls", "mqtts":
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	default:
		return nil, fmt.Errorf("mqtt: unsupported broker scheme %q", uri.Scheme)
	}
	// As paho does: through a proxy named by the environment (all_proxy), else directly; the
	// dialer's timeout covers the TLS handshake too, as in tls.DialWithDialer.
	var deadline time.Time
	if d.Timeout > 0 {
		deadline = time.Now().Add(d.Timeout)
	}
	conn, err := proxy.FromEnvironmentUsing(d).Dial("tcp", uri.Host)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		if tc.ServerName == "" {
			tc = tc.Clone()
			tc.ServerName = uri.Hostname()
		}
		t := tls.Client(conn, tc)
		if err := handshake(t, deadline); err != nil {
			_ = conn.Close()
			return nil, err
		}
		conn = t
	}
	return &bufferedConn{Conn: conn, r: bufio.NewReaderSize(conn, readBuffer)}, nil
}

// handshake runs the TLS handshake, ending at deadline (zero: none).
func handshake(t *tls.Conn, deadline time.Time) error {
	if !deadline.IsZero() {
		if err := t.SetDeadline(deadline); err != nil {
			return err
		}
		defer func() { _ = t.SetDeadline(time.Time{}) }()
	}
	if err := t.Handshake(); err != nil {
		return fmt.Errorf("mqtt: TLS handshake: %w", err)
	}
	return nil
}

// bufferedConn is the broker connection with a read buffer, because paho has none: it reads
// each packet straight from the socket, one read for the type byte, one per byte of the length
// and one for the rest, so a 4-byte PUBACK took three system calls. Behind the buffer one call
// takes whatever the broker has sent, under load many packets (BenchmarkIngest: 140,000 reads
// by paho, ~740 system calls). Only paho's one reading goroutine reads.
//
// Writes go straight to the socket, one per packet, as paho makes them. Gathering them in a
// flusher goroutine was tried: 10% less CPU per job at full load, but against Mosquitto's
// default (Nagle on) the p50 latency at 100 jobs/s went from 22 ms to 150–250 ms
// (BenchmarkLatency/broker=default), and latency is what a shop notices.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

const readBuffer = 16 << 10

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
