package modem

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// How often a repeating log line may go out. A modem that babbles, flaps or is unplugged must
// not flood the journal of a box nobody can easily reach: the first line of a kind goes out at
// once (so a change is seen), repeats of it within the window are held back and counted, and the
// count ("suppressed") goes out with the next line of that kind. Health keeps the full counts.
const (
	repeatLogEvery = 10 * time.Minute // send failures, recovery steps, bad PDUs, storage errors
	netLogEvery    = time.Minute      // registration, operator or technology changes
	signalLogEvery = 10 * time.Minute // signal bars alone (they flap between neighbours)
)

// logLimiter lets each kind (key) of log line through at most once per window.
type logLimiter struct {
	mu   sync.Mutex
	now  func() time.Time
	last map[string]*limitEntry
}

type limitEntry struct {
	at   time.Time
	held int
}

// limiterKeys bounds the limiter's memory; keys come from small fixed sets (error classes,
// step names), so the cap is only a guard.
const limiterKeys = 256

func newLogLimiter(now func() time.Time) *logLimiter {
	return &logLimiter{now: now, last: map[string]*limitEntry{}}
}

// allow reports whether a line of kind key may go out now, and how many were held back since
// the last one that did.
func (l *logLimiter) allow(key string, every time.Duration) (ok bool, held int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	e := l.last[key]
	if e == nil {
		if len(l.last) >= limiterKeys {
			l.prune(now)
		}
		l.last[key] = &limitEntry{at: now}
		return true, 0
	}
	if now.Sub(e.at) < every && !now.Before(e.at) {
		e.held++
		return false, 0
	}
	held = e.held
	e.at, e.held = now, 0
	return true, held
}

// prune forgets keys quiet for longer than the longest window; if all are recent, all go.
func (l *logLimiter) prune(now time.Time) {
	for k, e := range l.last {
		if now.Sub(e.at) >= repeatLogEvery {
			delete(l.last, k)
		}
	}
	if len(l.last) >= limiterKeys {
		clear(l.last)
	}
}

// logLimited logs msg at level unless a line of the same key went out within every, and
// reports whether it did.
func (m *Modem) logLimited(level slog.Level, key string, every time.Duration, msg string, args ...any) bool {
	ok, held := m.limit.allow(key, every)
	if !ok {
		return false
	}
	if held > 0 {
		args = append(args, "suppressed", held)
	}
	m.log.Log(context.Background(), level, msg, args...)
	return true
}

// errClass names the kind of an error for rate-limiting: a new kind is logged at once.
func errClass(err error) string {
	var re *ResultError
	switch {
	case errors.As(err, &re):
		return fmt.Sprintf("%s %d", re.Kind, re.Code)
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, ErrPortGone):
		return "port_gone"
	case errors.Is(err, ErrClosed):
		return "closed"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "context"
	case errors.Is(err, ErrBadResponse):
		return "bad_response"
	case errors.Is(err, ErrSIMMissing):
		return "sim_missing"
	case errors.Is(err, ErrSIMLocked):
		return "sim_locked"
	case errors.Is(err, ErrNoDevice):
		return "no_device"
	}
	return "other"
}
