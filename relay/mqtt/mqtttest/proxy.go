package mqtttest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP relay between a client and the broker that a test can cut, as a network loss
// or a crashed box would: the broker sees the connection drop without a DISCONNECT (and
// publishes the client's last will). It can also pause what clients send, as a broker that
// stops reading (or a stalled uplink) would: the client's socket buffers fill and its writes
// block.
type Proxy struct {
	l      net.Listener
	target string

	mu    sync.Mutex
	conns []net.Conn
	gate  chan struct{} // closed while relaying; open (blocking) while paused
	wg    sync.WaitGroup
}

// NewProxy listens on a free loopback port and relays to target (host:port).
func NewProxy(t testing.TB, target string) *Proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{l: l, target: target, gate: make(chan struct{})}
	close(p.gate)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { _ = l.Close(); p.Resume(); p.Cut(); p.wg.Wait() })
	return p
}

// URL is the proxy's address for paho.
func (p *Proxy) URL() string { return "tcp://" + p.l.Addr().String() }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); p.relayGated(u, c); _ = u.Close() }()
		go func() { defer p.wg.Done(); _, _ = io.Copy(c, u); _ = c.Close() }()
	}
}

// Cut closes every connection through the proxy; new connections are still accepted.
func (p *Proxy) Cut() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// Pause stops relaying what clients send to the broker (the broker's answers still come
// through) until Resume.
func (p *Proxy) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
		p.gate = make(chan struct{})
	default: // already paused
	}
}

// Resume relays what clients send again, starting with what waited.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
}

// relayGated copies from the client to the broker, holding each chunk while paused.
func (p *Proxy) relayGated(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			gate := p.gate
			p.mu.Unlock()
			<-gate
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
