package signalbridge_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/shopkit/relay/signalbridge"
	"github.com/shopkit/relay/signalbridge/signaltest"
)

// shortDir returns a directory with a short path: Unix socket paths are limited to 108 bytes and
// t.TempDir() paths can be longer.
func shortDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "sb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// startFake serves an in-process fake on a Unix socket and returns it with a connected client.
func startFake(t testing.TB, cfg signaltest.Config, opts signalbridge.ClientOptions) (*signaltest.Fake, *signalbridge.Client, string) {
	t.Helper()
	f := signaltest.New(cfg)
	sock := filepath.Join(shortDir(t), "s")
	if err := f.ListenUnix(sock); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	c, err := signalbridge.Dial(context.Background(), "unix", sock, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return f, c, sock
}

// rawServer listens on a Unix socket and hands the first connection to serve (closed after it
// returns), for tests that need a server saying exactly what they script. It returns the path.
func rawServer(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	sock := filepath.Join(shortDir(t), "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		serve(conn)
	}()
	return sock
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or the deadline passes (no fixed sleeps).
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", d, what)
		case <-tick.C:
		}
	}
}

// checkNoLeaks fails if goroutines started by the test are still running shortly after it.
func checkNoLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.NewTimer(5 * time.Second)
		defer deadline.Stop()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for runtime.NumGoroutine() > before {
			select {
			case <-deadline.C:
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Errorf("goroutine leak: %d before, %d after\n%s", before, runtime.NumGoroutine(), filterStacks(string(buf[:n])))
				return
			case <-tick.C:
			}
		}
	})
}

func filterStacks(s string) string {
	var out []string
	for _, g := range strings.Split(s, "\n\n") {
		if strings.Contains(g, "signalbridge") && !strings.Contains(g, "testing.tRunner") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}
