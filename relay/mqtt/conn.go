package mqtt

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/net/proxy"
)

// Dial opens the broker connection for paho (ClientOptions.CustomOpenConnectionFn), buffered
// both ways (see bufferedConn). Every relay client uses it: relayd's and relayctl's.
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
	// As paho does: through a proxy named by the environment (all_proxy), else directly.
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
		if err := handshake(t, d.Timeout); err != nil {
			_ = conn.Close()
			return nil, err
		}
		conn = t
	}
	return newBufferedConn(conn, writeTimeout), nil
}

// handshake runs the TLS handshake within timeout (0: none).
func handshake(t *tls.Conn, timeout time.Duration) error {
	if timeout > 0 {
		if err := t.SetDeadline(time.Now().Add(timeout)); err != nil {
			return err
		}
		defer func() { _ = t.SetDeadline(time.Time{}) }()
	}
	if err := t.Handshake(); err != nil {
		return fmt.Errorf("mqtt: TLS handshake: %w", err)
	}
	return nil
}

// bufferedConn is the broker connection with buffers on both sides, because paho has none.
//
// Reads: paho reads each packet straight from the socket, one read for the type byte, one per
// byte of the length and one for the rest, so a 4-byte PUBACK took three system calls. Behind
// the read buffer one call takes whatever the broker has sent, under load many packets.
//
// Writes: paho writes each packet with its own system call, from its one writing goroutine.
// Write here only appends to a buffer; a flusher goroutine writes whatever has gathered in one
// call, so a burst of PUBACKs and publishes shares calls while a lone packet still goes out at
// once. Measured in relay/bench (BenchmarkIngest): three Writes per system call under load, and
// about a tenth less CPU per job than unbuffered writes.
//
// What a buffered Write cannot report: a failed write. The flusher closes the connection on one
// (paho then sees the loss on its reading side) and every later Write returns the error. That
// is no weaker than before: a write that returned was never proof that the broker got it, and
// nothing in relay counts as delivered before the broker's PUBACK. Write blocks while maxPending
// bytes wait, so a broker that stops reading stops paho as a full socket would; paho's keepalive
// then ends the connection. The flusher writes in pieces of writeChunk, each within
// writeTimeout (a link moving 1.6 kB/s still passes); paho's own write deadlines are ignored
// (they would time a copy into memory), and its WriteTimeout (publishWait) only bounds handing
// a packet to paho's writer. Close first sends what is buffered, for at most closeFlushWait:
// paho writes DISCONNECT and closes right after it, and a DISCONNECT lost in the buffer would
// make the broker publish the will.
type bufferedConn struct {
	net.Conn
	r            *bufio.Reader
	writeTimeout time.Duration

	mu      sync.Mutex
	room    sync.Cond // signalled when the flusher took the buffer, failed, or the conn closed
	buf     []byte    // waiting for the flusher
	spare   []byte    // the flusher's last buffer, reused
	err     error     // the first write error
	closed  bool
	kick    chan struct{} // buf has data, or closed (1-buffered)
	flushed chan struct{} // closed when the flusher has ended
}

const (
	writeTimeout   = 10 * time.Second // one write of at most writeChunk bytes to the broker
	writeChunk     = 16 << 10
	readBuffer     = 16 << 10
	maxPending     = 64 << 10
	closeFlushWait = time.Second
)

func newBufferedConn(conn net.Conn, writeTimeout time.Duration) *bufferedConn {
	c := &bufferedConn{Conn: conn, r: bufio.NewReaderSize(conn, readBuffer), writeTimeout: writeTimeout,
		kick: make(chan struct{}, 1), flushed: make(chan struct{})}
	c.room.L = &c.mu
	go c.flusher()
	return c
}

// Read reads through the buffer. Only paho's one reading goroutine calls it.
func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Write queues p for the flusher; see bufferedConn.
func (c *bufferedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	for c.err == nil && !c.closed && len(c.buf) >= maxPending {
		c.room.Wait()
	}
	switch {
	case c.err != nil:
		err := c.err
		c.mu.Unlock()
		return 0, err
	case c.closed:
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	c.buf = append(c.buf, p...)
	c.mu.Unlock()
	c.wake()
	return len(p), nil
}

func (c *bufferedConn) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// flusher writes what Write gathered until the connection is closed and drained, or a write
// fails.
func (c *bufferedConn) flusher() {
	defer close(c.flushed)
	for {
		c.mu.Lock()
		for len(c.buf) == 0 && !c.closed {
			c.mu.Unlock()
			<-c.kick
			c.mu.Lock()
		}
		if len(c.buf) == 0 { // closed, and everything is out
			c.mu.Unlock()
			return
		}
		out := c.buf
		c.buf, c.spare = c.spare[:0], nil
		c.room.Broadcast()
		c.mu.Unlock()

		err := c.writeOut(out)

		c.mu.Lock()
		c.spare = out[:0]
		if err != nil {
			c.err = fmt.Errorf("mqtt: writing to the broker: %w", err)
			c.buf = nil
			c.room.Broadcast()
			c.mu.Unlock()
			_ = c.Conn.Close()
			return
		}
		c.mu.Unlock()
	}
}

// writeOut writes p in pieces of at most writeChunk, each within writeTimeout: the timeout
// catches a broker that stopped reading, not a slow link still moving data.
func (c *bufferedConn) writeOut(p []byte) error {
	for len(p) > 0 {
		n := min(len(p), writeChunk)
		if c.writeTimeout > 0 {
			_ = c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
		}
		if _, err := c.Conn.Write(p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// SetDeadline sets the read deadline only; writes are timed by the flusher.
func (c *bufferedConn) SetDeadline(t time.Time) error { return c.Conn.SetReadDeadline(t) }

// SetWriteDeadline is ignored: writes are timed by the flusher.
func (c *bufferedConn) SetWriteDeadline(time.Time) error { return nil }

// Close sends what is buffered (for at most closeFlushWait), then closes the connection.
func (c *bufferedConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.room.Broadcast()
	c.mu.Unlock()
	c.wake()
	t := time.NewTimer(closeFlushWait)
	defer t.Stop()
	select {
	case <-c.flushed:
	case <-t.C:
	}
	return c.Conn.Close()
}
