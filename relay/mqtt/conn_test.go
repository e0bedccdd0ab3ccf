package mqtt

import (
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeConn is the socket under a bufferedConn: it records each Write call, can hold a write
// until released, fail writes, and count reads.
type fakeConn struct {
	net.Conn // unused methods panic

	mu     sync.Mutex
	writes []string
	gate   chan struct{} // a write waits until it is closed (nil: never waits)
	fail   error
	closed chan struct{}
	src    *strings.Reader
	reads  int
	dls    int // SetWriteDeadline calls
}

func newFakeConn() *fakeConn { return &fakeConn{closed: make(chan struct{})} }

func (f *fakeConn) Write(p []byte) (int, error) {
	f.mu.Lock()
	gate, fail := f.gate, f.fail
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-f.closed:
			return 0, net.ErrClosed
		}
	}
	if fail != nil {
		return 0, fail
	}
	f.mu.Lock()
	f.writes = append(f.writes, string(p))
	f.mu.Unlock()
	return len(p), nil
}

func (f *fakeConn) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return f.src.Read(p)
}

func (f *fakeConn) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.closed:
		return net.ErrClosed
	default:
		close(f.closed)
		return nil
	}
}

func (f *fakeConn) isClosed() bool {
	select {
	case <-f.closed:
		return true
	default:
		return false
	}
}

func (f *fakeConn) SetWriteDeadline(time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dls++
	return nil
}
func (f *fakeConn) SetReadDeadline(time.Time) error { return nil }

func (f *fakeConn) written() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.writes)
}

// busyConn returns a bufferedConn whose flusher is inside the socket's write with "a", held
// there until release is closed (in a synctest bubble).
func busyConn(t *testing.T) (f *fakeConn, c *bufferedConn, release chan struct{}) {
	f = newFakeConn()
	release = make(chan struct{})
	f.gate = release
	c = newBufferedConn(f, time.Second)
	mustWrite(t, c, "a")
	synctest.Wait()
	return f, c, release
}

// Packets written while the socket is busy go out together, in order, in one write.
func TestBufferedConn_CoalescesWhileBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, c, release := busyConn(t)
		for _, p := range []string{"b", "cc", "d"} {
			mustWrite(t, c, p)
		}
		close(release)
		synctest.Wait()
		if got, want := f.written(), []string{"a", "bccd"}; !slices.Equal(got, want) {
			t.Errorf("socket writes %q, want %q", got, want)
		}
		mustWrite(t, c, "e") // a lone packet goes out at once
		synctest.Wait()
		if got := f.written(); len(got) != 3 || got[2] != "e" {
			t.Errorf("socket writes %q, want a third one of %q", got, "e")
		}
		if err := c.Close(); err != nil || !f.isClosed() {
			t.Errorf("Close = %v, socket closed %v", err, f.isClosed())
		}
	})
}

// What gathered while the socket was busy goes out in pieces of at most writeChunk, each with
// its own write timeout: a slow link that still moves data is not a dead broker.
func TestBufferedConn_WritesInChunks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, c, release := busyConn(t)
		want := "a"
		for i := range 40 {
			p := strings.Repeat(string(rune('b'+i%20)), 1000)
			mustWrite(t, c, p)
			want += p
		}
		close(release)
		synctest.Wait()
		got := f.written()
		if len(got) != 4 || strings.Join(got, "") != want {
			t.Fatalf("socket writes of %v bytes, want 1, then 40,000 in three pieces", lens(got))
		}
		for _, w := range got {
			if len(w) > writeChunk {
				t.Errorf("a socket write of %d bytes, over writeChunk %d", len(w), writeChunk)
			}
		}
		f.mu.Lock()
		dls := f.dls
		f.mu.Unlock()
		if dls != len(got) {
			t.Errorf("%d write deadlines set for %d socket writes; want one each", dls, len(got))
		}
		_ = c.Close()
	})
}

func lens(ws []string) (n []int) {
	for _, w := range ws {
		n = append(n, len(w))
	}
	return n
}

// A failed write closes the socket, so paho's reader sees the loss, and every later Write
// returns the error.
func TestBufferedConn_WriteErrorIsSticky(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeConn()
		broken := errors.New("connection reset by peer")
		f.fail = broken
		c := newBufferedConn(f, time.Second)
		mustWrite(t, c, "publish")
		synctest.Wait()
		if !f.isClosed() {
			t.Error("the socket is still open after a failed write")
		}
		for range 2 {
			if _, err := c.Write([]byte("puback")); !errors.Is(err, broken) {
				t.Errorf("Write after the failure = %v, want %v", err, broken)
			}
		}
		_ = c.Close()
	})
}

// A broker that stops reading stops the writer once maxPending bytes wait, as a full socket
// would; Close gives the buffer closeFlushWait to go out, then closes and frees the writer.
func TestBufferedConn_BackpressureAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeConn()
		f.gate = make(chan struct{}) // never released: the broker does not read
		c := newBufferedConn(f, 0)
		mustWrite(t, c, "x")
		synctest.Wait() // the flusher is stuck in the socket with "x"
		mustWrite(t, c, strings.Repeat("y", maxPending))
		blocked := make(chan error, 1)
		go func() {
			_, err := c.Write([]byte("z"))
			blocked <- err
		}()
		synctest.Wait()
		select {
		case err := <-blocked:
			t.Fatalf("Write returned (%v) with %d bytes waiting; want it to block", err, maxPending)
		default:
		}
		start := time.Now()
		if err := c.Close(); err != nil {
			t.Errorf("Close = %v", err)
		}
		if waited := time.Since(start); waited != closeFlushWait {
			t.Errorf("Close waited %v for the stuck socket, want %v", waited, closeFlushWait)
		}
		if err := <-blocked; !errors.Is(err, net.ErrClosed) {
			t.Errorf("blocked Write = %v, want net.ErrClosed", err)
		}
		if !f.isClosed() {
			t.Error("socket not closed")
		}
	})
}

// One read of the socket serves many small reads by paho (type byte, length, body).
func TestBufferedConn_ReadsThroughBuffer(t *testing.T) {
	f := newFakeConn()
	puback := "\x40\x02\x00\x01"
	f.src = strings.NewReader(strings.Repeat(puback, 100))
	c := newBufferedConn(f, 0)
	defer c.Close()
	got, err := io.ReadAll(iotestOneByte{c})
	if err != nil || string(got) != strings.Repeat(puback, 100) {
		t.Fatalf("read %q, %v", got, err)
	}
	if f.reads > 2 { // one with the data, one for EOF
		t.Errorf("%d socket reads for 400 one-byte reads, want at most 2", f.reads)
	}
}

type iotestOneByte struct{ r io.Reader }

func (o iotestOneByte) Read(p []byte) (int, error) { return o.r.Read(p[:min(1, len(p))]) }

// Over a real socket: everything written before Close reaches the peer, in order, before EOF
// (paho writes DISCONNECT and closes at once; the broker must still get it).
func TestBufferedConn_CloseSendsEverything(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan []byte, 1)
	go func() {
		peer, err := l.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer peer.Close()
		b, _ := io.ReadAll(peer)
		got <- b
	}()
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := newBufferedConn(raw, 10*time.Second)
	var want bytes.Buffer
	for i := range 5000 {
		p := []byte(strings.Repeat(string(rune('a'+i%26)), 1+i%300))
		want.Write(p)
		mustWrite(t, c, string(p))
	}
	want.WriteString("\xe0\x00") // DISCONNECT
	mustWrite(t, c, "\xe0\x00")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, want.Bytes()) {
		t.Fatalf("peer got %d bytes, want %d (the same, in order)", len(b), want.Len())
	}
}

func mustWrite(t *testing.T, c net.Conn, p string) {
	t.Helper()
	if n, err := c.Write([]byte(p)); err != nil || n != len(p) {
		t.Fatalf("Write(%d bytes) = %d, %v", len(p), n, err)
	}
}
