package systemd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coreos/go-systemd/v22/daemon"
)

// MaxStatusLen caps a STATUS= line (bytes); systemctl status shows one line.
const MaxStatusLen = 200

// NotifyError reports a failed sd_notify datagram; it unwraps to the cause.
type NotifyError struct {
	State string // the first line of what was sent, e.g. "READY=1"
	Err   error
}

func (e *NotifyError) Error() string {
	return fmt.Sprintf("systemd: sd_notify %q: %v", e.State, e.Err)
}
func (e *NotifyError) Unwrap() error { return e.Err }

// Notifier speaks the sd_notify protocol for relayd (Type=notify,
// NotifyAccess=main). Outside systemd (NOTIFY_SOCKET unset) every method is a
// no-op that returns nil. Safe for concurrent use.
type Notifier struct {
	log *slog.Logger
	// newTicker is the injected clock of RunWatchdog.
	newTicker func(time.Duration) (<-chan time.Time, func())

	mu         sync.Mutex
	lastStatus string
	failing    bool // log-on-change for send failures
}

// NewNotifier returns a Notifier logging to log (nil = discard).
func NewNotifier(log *slog.Logger) *Notifier {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Notifier{
		log: log.With("component", "systemd"),
		newTicker: func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		},
	}
}

// Ready tells systemd that relayd is up (READY=1). Call it once, when the
// outbox is open and intake can start: systemd holds dependent units and
// "systemctl start" until then, and kills relayd after TimeoutStartSec
// without it.
func (n *Notifier) Ready() error { return n.send(daemon.SdNotifyReady) }

// Stopping tells systemd that relayd has begun a clean shutdown (STOPPING=1).
func (n *Notifier) Stopping() error { return n.send(daemon.SdNotifyStopping) }

// Status sets the one-line summary shown by "systemctl status relayd"
// (STATUS=). Line breaks and control characters become spaces, and the line
// is cut to MaxStatusLen bytes. An unchanged line is not resent. Keep phone
// numbers out of it: systemctl status is readable by every local user.
func (n *Notifier) Status(line string) error {
	line = oneLine(line)
	n.mu.Lock()
	same := line == n.lastStatus
	n.mu.Unlock()
	if same {
		return nil
	}
	if err := n.send("STATUS=" + line); err != nil {
		return err
	}
	n.mu.Lock()
	n.lastStatus = line
	n.mu.Unlock()
	return nil
}

// RunWatchdog keeps systemd's watchdog (WatchdogSec=) fed: every half of the
// interval systemd gave (WATCHDOG_USEC) it calls healthy and sends WATCHDOG=1
// only if healthy returns true, so a wedged main loop gets relayd restarted.
// healthy must be quick and must not block; nil means always healthy.
//
// It returns nil when ctx ends, also when the watchdog is off (no
// WATCHDOG_USEC, or WATCHDOG_PID names another process), so it can run in an
// errgroup next to the components. A malformed WATCHDOG_USEC is an error.
func (n *Notifier) RunWatchdog(ctx context.Context, healthy func() bool) error {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return fmt.Errorf("systemd: watchdog: %w", err)
	}
	if interval <= 0 {
		n.log.Debug("watchdog off")
		<-ctx.Done()
		return nil
	}
	if healthy == nil {
		healthy = func() bool { return true }
	}
	period := interval / 2
	n.log.Info("watchdog on", "interval", interval, "ping_every", period)
	tick, stop := n.newTicker(period)
	defer stop()
	wasHealthy := true
	for {
		ok := healthy()
		switch {
		case ok:
			_ = n.send(daemon.SdNotifyWatchdog) // failures are logged by send
			if !wasHealthy {
				n.log.Info("main loop healthy again; watchdog pings resumed")
			}
		case wasHealthy:
			n.log.Warn("main loop unhealthy; withholding watchdog pings, systemd restarts relayd after the watchdog interval",
				"interval", interval)
		}
		wasHealthy = ok
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
		}
	}
}

func (n *Notifier) send(state string) error {
	_, err := daemon.SdNotify(false, state)
	n.mu.Lock()
	changed := (err != nil) != n.failing
	n.failing = err != nil
	n.mu.Unlock()
	first, _, _ := strings.Cut(state, "\n")
	if err != nil {
		if changed {
			n.log.Warn("sd_notify failed", "state", first, "err", err)
		}
		return &NotifyError{State: first, Err: err}
	}
	if changed {
		n.log.Info("sd_notify works again", "state", first)
	}
	return nil
}

// oneLine makes s a single STATUS line: control characters (newlines
// included) become spaces, runs of spaces collapse, and the result is cut to
// MaxStatusLen bytes on a rune boundary.
func oneLine(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		need := utf8.RuneLen(r)
		if space {
			need++
		}
		if b.Len()+need > MaxStatusLen {
			break
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}
