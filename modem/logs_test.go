package modem

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestLogLimiter_Allow(t *testing.T) {
	start := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	now := start
	l := newLogLimiter(func() time.Time { return now })
	steps := []struct {
		at       time.Duration // since start
		key      string
		ok       bool
		wantHeld int
	}{
		{0, "a", true, 0},                 // the first of a kind goes out
		{time.Second, "a", false, 0},      // a repeat is held
		{2 * time.Second, "a", false, 0},  // and another
		{3 * time.Second, "b", true, 0},   // a new kind goes out at once
		{time.Minute, "a", true, 2},       // after the window, with the count held back
		{time.Minute, "a", false, 0},      // and the window starts again
		{2*time.Minute + 1, "a", true, 1}, //
		{3 * time.Minute, "b", true, 0},   // nothing was held for b
		{-time.Hour, "b", true, 0},        // a clock that went back does not silence it
		{-time.Hour + time.Second, "c", true, 0},
	}
	for i, s := range steps {
		now = start.Add(s.at)
		ok, held := l.allow(s.key, time.Minute)
		if ok != s.ok || held != s.wantHeld {
			t.Errorf("step %d (%v %s): allow = %v, %d; want %v, %d", i, s.at, s.key, ok, held, s.ok, s.wantHeld)
		}
	}
}

// The limiter's memory stays bounded whatever keys it is given.
func TestLogLimiter_Bounded(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	l := newLogLimiter(func() time.Time { return now })
	for i := 0; i < 10*limiterKeys; i++ {
		l.allow(fmt.Sprint("k", i), time.Minute)
	}
	if n := len(l.last); n > limiterKeys {
		t.Errorf("limiter holds %d keys, cap %d", n, limiterKeys)
	}
}

func TestErrClass(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&ResultError{Command: "AT+CMGS=9", Kind: KindCMS, Code: 331}, "+CMS ERROR 331"},
		{&SendError{Err: &ResultError{Kind: KindCMS, Code: 500}}, "+CMS ERROR 500"},
		{&CommandError{Command: "AT", Err: ErrTimeout}, "timeout"},
		{&SendError{Err: &CommandError{Command: "AT+CMGS=9", Err: ErrPortGone, PDUWritten: true}}, "port_gone"},
		{fmt.Errorf("x: %w", context.Canceled), "context"},
		{ErrSIMMissing, "sim_missing"},
		{fmt.Errorf("open: %w", ErrNoDevice), "no_device"},
		{fmt.Errorf("boom"), "other"},
	}
	for _, tt := range tests {
		if got := errClass(tt.err); got != tt.want {
			t.Errorf("errClass(%v) = %q; want %q", tt.err, got, tt.want)
		}
	}
}
