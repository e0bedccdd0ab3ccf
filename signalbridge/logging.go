package signalbridge

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/shopkit/relay/relay/redact"
)

var phoneRE = regexp.MustCompile(`\+[1-9][0-9]{6,14}`)

// maskNumbers masks every E.164 number inside a log line.
func maskNumbers(s string) string { return phoneRE.ReplaceAllStringFunc(s, redact.Number) }

// lineLimiter logs a child's stderr: numbers masked, consecutive identical lines folded into
// "repeated N times", and at most perWindow lines per window (the rest counted and reported
// once per window). After a power cut signal-cli can print the same error hundreds of times a
// second (peers.md: 360 GB of logs in 12 h); this keeps the journal small.
type lineLimiter struct {
	log       *slog.Logger
	now       func() time.Time
	perWindow int
	window    time.Duration

	mu         sync.Mutex
	last       string // fold key of the last logged line
	repeats    int
	winStart   time.Time
	count      int
	suppressed int
}

func newLineLimiter(log *slog.Logger, now func() time.Time, perWindow int, window time.Duration) *lineLimiter {
	return &lineLimiter{log: log, now: now, perWindow: perWindow, window: window, winStart: now()}
}

func (l *lineLimiter) Line(s string) {
	s = maskNumbers(strings.TrimRight(s, "\r"))
	if strings.TrimSpace(s) == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := l.now(); now.Sub(l.winStart) >= l.window {
		l.rollover(now)
	}
	key := foldKey(s)
	if key == l.last {
		l.repeats++
		return
	}
	l.flushRepeats()
	l.last = key
	if l.count >= l.perWindow {
		l.suppressed++
		return
	}
	l.count++
	l.log.Log(context.Background(), levelOf(s), s)
}

func (l *lineLimiter) flushRepeats() {
	if l.repeats > 0 {
		l.log.Warn(fmt.Sprintf("previous signal-cli line repeated %d times", l.repeats), "repeated", l.repeats)
		l.repeats = 0
	}
}

func (l *lineLimiter) rollover(now time.Time) {
	l.flushRepeats()
	if l.suppressed > 0 {
		l.log.Warn(fmt.Sprintf("signal-cli stderr rate-limited: %d lines not logged", l.suppressed), "suppressed", l.suppressed)
		l.suppressed = 0
	}
	l.count = 0
	l.winStart = now
}

// Close reports what is still folded or suppressed.
func (l *lineLimiter) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rollover(l.now())
	l.last = ""
}

var digitsRE = regexp.MustCompile(`[0-9]+`)

// foldKey treats lines that differ only in numbers (timestamps, counters) as repeats.
func foldKey(s string) string { return digitsRE.ReplaceAllString(s, "#") }

func levelOf(s string) slog.Level {
	f := s
	if i := strings.IndexAny(f, " \t"); i >= 0 && i < 30 {
		// real lines start with the level ("ERROR App - …"); the fake's with a timestamp first
		if j := strings.Index(f, " ERROR "); j >= 0 && j < 30 {
			return slog.LevelError
		}
		if j := strings.Index(f, " WARN "); j >= 0 && j < 30 {
			return slog.LevelWarn
		}
	}
	switch {
	case strings.HasPrefix(f, "ERROR"), strings.HasPrefix(f, "Exception"), strings.HasPrefix(f, "\tat "), strings.HasPrefix(f, "Caused by"):
		return slog.LevelError
	case strings.HasPrefix(f, "WARN"):
		return slog.LevelWarn
	}
	return slog.LevelInfo
}
