package systemd

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// notifySocket is the systemd side of sd_notify: a real unixgram socket that
// NOTIFY_SOCKET points at.
type notifySocket struct {
	t    *testing.T
	conn *net.UnixConn
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_PID", "")
	return &notifySocket{t: t, conn: conn}
}

// next returns the next datagram, failing after a generous deadline (a
// deadline on a blocking read, not a sleep).
func (s *notifySocket) next() string {
	s.t.Helper()
	if err := s.conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		s.t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := s.conn.Read(buf)
	if err != nil {
		s.t.Fatalf("no datagram: %v", err)
	}
	return string(buf[:n])
}

// none asserts that no datagram is queued. Every send is synchronous
// (sendto has returned before the sender goes on), so "already past" is
// enough: the deadline is now.
func (s *notifySocket) none() {
	s.t.Helper()
	if err := s.conn.SetReadDeadline(time.Now()); err != nil {
		s.t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if n, err := s.conn.Read(buf); err == nil {
		s.t.Fatalf("unexpected datagram %q", buf[:n])
	}
}

func TestNotifier_ReadyStatusStopping(t *testing.T) {
	sock := listenNotify(t)
	n := NewNotifier(nil)
	if err := n.Ready(); err != nil {
		t.Fatal(err)
	}
	if got, want := sock.next(), "READY=1"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if err := n.Status("online; queue 3; signal up"); err != nil {
		t.Fatal(err)
	}
	if got, want := sock.next(), "STATUS=online; queue 3; signal up"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// Unchanged status is not resent; a changed one is.
	if err := n.Status("online; queue 3; signal up"); err != nil {
		t.Fatal(err)
	}
	if err := n.Status("degraded:\nbroker down"); err != nil {
		t.Fatal(err)
	}
	if got, want := sock.next(), "STATUS=degraded: broker down"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if err := n.Stopping(); err != nil {
		t.Fatal(err)
	}
	if got, want := sock.next(), "STOPPING=1"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	sock.none()
}

func TestNotifier_NoSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := NewNotifier(nil)
	for name, f := range map[string]func() error{
		"Ready": n.Ready, "Stopping": n.Stopping, "Status": func() error { return n.Status("x") },
	} {
		if err := f(); err != nil {
			t.Errorf("%s outside systemd: %v, want nil", name, err)
		}
	}
}

func TestNotifier_SocketGone(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone.sock"))
	n := NewNotifier(nil)
	err := n.Ready()
	var ne *NotifyError
	if !errors.As(err, &ne) || ne.State != "READY=1" || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %#v, want NotifyError{READY=1} wrapping ENOENT", err)
	}
	// A failed STATUS is not remembered as sent: it goes out once the socket is back.
	if err := n.Status("online"); err == nil {
		t.Fatal("Status to a missing socket: nil error")
	}
	sock := listenNotify(t)
	if err := n.Status("online"); err != nil {
		t.Fatal(err)
	}
	if got := sock.next(); got != "STATUS=online" {
		t.Errorf("got %q", got)
	}
}

func TestOneLine(t *testing.T) {
	long := strings.Repeat("é", MaxStatusLen) // 2 bytes each
	tests := []struct{ in, want string }{
		{"online", "online"},
		{"  a\r\nb\tc  ", "a b c"},
		{"a\x00b\x1bc", "a b c"},
		{"bad \xff utf8", "bad utf8"},
		{"", ""},
		{long, long[:MaxStatusLen]},
		{strings.Repeat("a", MaxStatusLen-1) + " bb", strings.Repeat("a", MaxStatusLen-1)},
	}
	for _, tt := range tests {
		if got := oneLine(tt.in); got != tt.want {
			t.Errorf("oneLine(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzOneLine(f *testing.F) {
	for _, s := range []string{"online", "a\nb", "\xff\xfe", strings.Repeat("ж", 150), " \t "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := oneLine(s)
		if len(got) > MaxStatusLen || !utf8.ValidString(got) || strings.ContainsAny(got, "\r\n\x00") ||
			strings.HasPrefix(got, " ") || strings.HasSuffix(got, " ") || strings.Contains(got, "  ") {
			t.Fatalf("oneLine(%q) = %q", s, got)
		}
		if oneLine(got) != got {
			t.Fatalf("not idempotent: %q -> %q", got, oneLine(got))
		}
	})
}

// fakeClock is the injected ticker of RunWatchdog.
type fakeClock struct {
	period chan time.Duration
	tick   chan time.Time
}

func newFakeClock(n *Notifier) *fakeClock {
	c := &fakeClock{period: make(chan time.Duration, 1), tick: make(chan time.Time)}
	n.newTicker = func(d time.Duration) (<-chan time.Time, func()) {
		c.period <- d
		return c.tick, func() {}
	}
	return c
}

// healthProbe hands each healthy() call to the test, which answers it: the
// test always knows where the watchdog loop is.
type healthProbe struct {
	asked  chan struct{}
	answer chan bool
}

func newHealthProbe() *healthProbe {
	return &healthProbe{asked: make(chan struct{}), answer: make(chan bool)}
}

func (p *healthProbe) healthy() bool { p.asked <- struct{}{}; return <-p.answer }
func (p *healthProbe) reply(t *testing.T, ok bool) {
	t.Helper()
	select {
	case <-p.asked:
	case <-time.After(10 * time.Second):
		t.Fatal("watchdog loop did not ask for health")
	}
	p.answer <- ok
}

func TestNotifier_RunWatchdog(t *testing.T) {
	sock := listenNotify(t)
	t.Setenv("WATCHDOG_USEC", strconv.Itoa(30_000_000))
	n := NewNotifier(nil)
	clock := newFakeClock(n)
	probe := newHealthProbe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.RunWatchdog(ctx, probe.healthy) }()

	// Healthy at start: one ping at once.
	probe.reply(t, true)
	if got := <-clock.period; got != 15*time.Second {
		t.Errorf("ping period = %v, want 15s (WatchdogSec/2)", got)
	}
	if got := sock.next(); got != "WATCHDOG=1" {
		t.Fatalf("got %q, want WATCHDOG=1", got)
	}
	// Unhealthy for two ticks: no pings.
	for range 2 {
		clock.tick <- time.Time{}
		probe.reply(t, false)
	}
	// Healthy again: pings resume, one per tick.
	clock.tick <- time.Time{}
	probe.reply(t, true)
	if got := sock.next(); got != "WATCHDOG=1" {
		t.Fatalf("got %q, want WATCHDOG=1", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunWatchdog after cancel: %v, want nil", err)
	}
	sock.none() // the two unhealthy ticks sent nothing
}

func TestNotifier_RunWatchdogOff(t *testing.T) {
	tests := []struct{ name, usec, pid string }{
		{"no WATCHDOG_USEC", "", ""},
		{"another process's watchdog", "30000000", "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := listenNotify(t)
			t.Setenv("WATCHDOG_USEC", tt.usec)
			t.Setenv("WATCHDOG_PID", tt.pid)
			n := NewNotifier(nil)
			n.newTicker = func(time.Duration) (<-chan time.Time, func()) {
				t.Error("ticker started with the watchdog off")
				return nil, func() {}
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- n.RunWatchdog(ctx, func() bool { t.Error("healthy called"); return true }) }()
			select {
			case err := <-done:
				t.Fatalf("returned before ctx ended: %v", err)
			default:
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			sock.none()
		})
	}
}

func TestNotifier_RunWatchdogBadEnv(t *testing.T) {
	listenNotify(t)
	t.Setenv("WATCHDOG_USEC", "thirty")
	err := NewNotifier(nil).RunWatchdog(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "watchdog") {
		t.Fatalf("err = %v, want a watchdog error", err)
	}
}
