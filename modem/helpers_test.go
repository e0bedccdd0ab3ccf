package modem_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shopkit/relay/modem"
	"github.com/shopkit/relay/modem/modemtest"
)

// rig is a modem under test on a simulator.
type rig struct {
	t      *testing.T
	sim    *modemtest.Sim
	m      *modem.Modem
	sms    chan modem.SMS
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	handler func(modem.SMS) error
	reports []modem.DeliveryReport
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// newRig starts a simulator with a by-id style link and a Modem on that link.
func newRig(t *testing.T, opts modemtest.Options, tweak func(*modem.Config)) *rig {
	t.Helper()
	if opts.Link == "" {
		opts.Link = filepath.Join(t.TempDir(), "by-id", "usb-Quectel_EC25-if02-port0")
	}
	sim, err := modemtest.New(opts)
	if err != nil {
		t.Fatalf("simulator: %v", err)
	}
	t.Cleanup(func() { sim.Close() })
	r := &rig{t: t, sim: sim, sms: make(chan modem.SMS, 64), done: make(chan struct{})}
	cfg := modem.Config{
		Device:           opts.Link,
		HealthEvery:      time.Hour, // tests drive drains through +CMTI; scenario tests shorten it
		CommandTimeout:   400 * time.Millisecond,
		SendTimeout:      2 * time.Second,
		DeviceWait:       3 * time.Second,
		ResetWait:        3 * time.Second,
		DevicePoll:       10 * time.Millisecond,
		RetryEvery:       time.Hour,
		MultipartTimeout: time.Minute,
		Logger:           testLogger(t),
		OnSMS: func(ctx context.Context, s modem.SMS) error {
			r.mu.Lock()
			h := r.handler
			r.mu.Unlock()
			if h != nil {
				if err := h(s); err != nil {
					return err
				}
			}
			r.sms <- s
			return nil
		},
		OnReport: func(d modem.DeliveryReport) {
			r.mu.Lock()
			r.reports = append(r.reports, d)
			r.mu.Unlock()
		},
	}
	if tweak != nil {
		tweak(&cfg)
	}
	m, err := modem.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r.m = m
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		if err := m.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(r.stop)
	return r
}

func (r *rig) stop() {
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		r.t.Errorf("Run did not return after cancel")
	}
}

func (r *rig) setHandler(h func(modem.SMS) error) {
	r.mu.Lock()
	r.handler = h
	r.mu.Unlock()
}

// waitFor polls cond until it holds or the deadline passes (state changes of a goroutine that
// talks to a real pty have no channel to wait on).
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

func (r *rig) waitReady() {
	r.t.Helper()
	waitFor(r.t, "modem ready", 10*time.Second, func() bool { return r.m.Health().State == modem.StateReady })
}

func (r *rig) nextSMS(d time.Duration) modem.SMS {
	r.t.Helper()
	select {
	case s := <-r.sms:
		return s
	case <-time.After(d):
		r.t.Fatalf("no SMS within %v", d)
	}
	return modem.SMS{}
}

// noMoreSMS asserts that no further SMS has been handed over. It does not wait: it means most
// after the storage was seen empty (OnSMS runs before the delete, so every message taken is
// already in r.sms by then).
func (r *rig) noMoreSMS() {
	r.t.Helper()
	select {
	case s := <-r.sms:
		r.t.Fatalf("unexpected extra SMS %+v", s)
	default:
	}
}

// logCounter counts log messages by text (with the step attribute, if any), for "logged once"
// assertions, and keeps the attributes of the last record of each. The zero value is ready.
type logCounter struct {
	mu   sync.Mutex
	msgs map[string]*logged
}

// logged is what a logCounter keeps of one message: how often, and the last record's attributes.
type logged struct {
	n     int
	attrs map[string]string
}

func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := r.Message
	attrs := map[string]string{}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "step" {
			key += " " + a.Value.String()
		}
		attrs[a.Key] = a.Value.String()
		return true
	})
	if l.msgs == nil {
		l.msgs = map[string]*logged{}
	}
	e := l.msgs[key]
	if e == nil {
		e = &logged{}
		l.msgs[key] = e
	}
	e.n++
	e.attrs = attrs
	return nil
}
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCounter) WithGroup(string) slog.Handler      { return l }

func (l *logCounter) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.msgs[msg]; e != nil {
		return e.n
	}
	return 0
}

// last returns an attribute of the last record of msg.
func (l *logCounter) last(msg, attr string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.msgs[msg]; e != nil {
		return e.attrs[attr]
	}
	return ""
}

// fakeClock is a clock the test moves by hand (Config.Now).
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
