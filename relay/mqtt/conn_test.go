package mqtt

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
)

// countingConn is the socket under a bufferedConn: it serves src and counts the reads.
type countingConn struct {
	net.Conn // unused methods panic
	src      *strings.Reader
	reads    int
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads++
	return c.src.Read(p)
}

// One read of the socket serves many small reads by paho (type byte, length, body).
func TestBufferedConn_ReadsThroughBuffer(t *testing.T) {
	puback := "\x40\x02\x00\x01"
	sock := &countingConn{src: strings.NewReader(strings.Repeat(puback, 100))}
	c := &bufferedConn{Conn: sock, r: bufio.NewReaderSize(sock, readBuffer)}
	got, err := io.ReadAll(oneByte{c})
	if err != nil || string(got) != strings.Repeat(puback, 100) {
		t.Fatalf("read %q, %v", got, err)
	}
	if sock.reads > 2 { // one with the data, one for EOF
		t.Errorf("%d socket reads for 400 one-byte reads, want at most 2", sock.reads)
	}
}

// oneByte reads one byte at a time, as paho reads a packet's header.
type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) { return o.r.Read(p[:min(1, len(p))]) }
