package led

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shopkit/relay/relay/gpio/gpiotest"
)

// Inside synctest bubbles time.Sleep advances the fake clock at once; nothing really waits.

type step struct {
	on bool
	d  time.Duration // how long the level was held
}

// steps turns an output's history (after its initial level) into levels and how long each held,
// up to end.
func steps(h []gpiotest.Level, end time.Time) []step {
	h = h[1:]
	var out []step
	for i, l := range h {
		next := end
		if i+1 < len(h) {
			next = h[i+1].At
		}
		out = append(out, step{l.On, next.Sub(l.At)})
	}
	return out
}

func cycle(p Pattern, n int) []step {
	var out []step
	for range n {
		for i, d := range p.Timing() {
			out = append(out, step{i%2 == 0, d})
		}
	}
	return out
}

func TestDriver_Run_blinkSequence(t *testing.T) {
	for p := Healthy; p < numPatterns; p++ {
		t.Run(p.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				out := gpiotest.NewOutput(t, false)
				d := New(out, nil)
				d.Set(p)
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error)
				go func() { done <- d.Run(ctx) }()
				var period time.Duration
				for _, s := range p.Timing() {
					period += s
				}
				time.Sleep(3 * period)
				synctest.Wait()
				end := time.Now()
				cancel()
				if err := <-done; err != nil {
					t.Fatalf("Run = %v", err)
				}
				h := out.History()
				got := steps(h[:len(h)-1], end) // the last Set is Run's "off" on exit
				// Three whole cycles, plus the first step of the fourth starting at the boundary.
				want := append(cycle(p, 3), step{true, 0})
				if !slices.Equal(got, want) {
					t.Errorf("blinks\n got %v\nwant %v", got, want)
				}
				if last := h[len(h)-1]; last.On || !last.At.Equal(end) {
					t.Errorf("after Run: %+v, want off at once", last)
				}
			})
		})
	}
}

func TestDriver_Set(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := gpiotest.NewOutput(t, false)
		d := New(out, nil)
		if got := d.Pattern(); got != Starting {
			t.Errorf("initial pattern %v, want starting", got)
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go d.Run(ctx)
		synctest.Wait() // showing starting
		d.Set(Degraded)
		time.Sleep(1300 * time.Millisecond) // on 1 s, off, 300 ms into the dark
		d.Set(Degraded)                     // same pattern: no restart
		time.Sleep(100 * time.Millisecond)
		d.Set(ShuttingDown) // switches at once, from its first (on) step
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		end := time.Now()
		got := steps(out.History(), end)
		want := []step{{true, 0}, {true, time.Second}, {false, 400 * time.Millisecond},
			{true, 50 * ms}, {false, 50 * ms}, {true, 50 * ms}, {false, 50 * ms}, {true, 0}}
		if !slices.Equal(got, want) {
			t.Errorf("blinks\n got %v\nwant %v", got, want)
		}
		if got := d.Pattern(); got != ShuttingDown {
			t.Errorf("Pattern() = %v", got)
		}
	})
}

// countingHandler counts log records by message.
type countingHandler struct {
	mu sync.Mutex
	n  map[string]int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.n[r.Message]++
	h.mu.Unlock()
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func TestDriver_Run_outputFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := gpiotest.NewOutput(t, false)
		logs := &countingHandler{n: map[string]int{}}
		d := New(out, slog.New(logs))
		d.Set(ShuttingDown)
		out.FailSets(errors.New("line released"))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- d.Run(ctx) }()
		time.Sleep(10 * time.Second) // 200 failed sets
		synctest.Wait()
		out.FailSets(nil)
		time.Sleep(time.Second)
		synctest.Wait()
		cancel()
		<-done
		if got := logs.n["cannot drive the status LED"]; got != 1 {
			t.Errorf("failure logged %d times, want once", got)
		}
		if got := logs.n["status LED works again"]; got != 1 {
			t.Errorf("recovery logged %d times, want once", got)
		}
		if n := len(out.History()); n < 20 {
			t.Errorf("only %d levels after recovery: the driver stopped blinking", n)
		}
	})
}

// Every pattern changes the LED at least every 2 s (stuck means "not running"), and no two
// patterns share a rhythm.
func TestPattern_Timing(t *testing.T) {
	seen := map[string]Pattern{}
	for p := Healthy; p < numPatterns; p++ {
		tm := p.Timing()
		if len(tm) == 0 || len(tm)%2 != 0 {
			t.Errorf("%v: %d steps, want an even number of on/off steps", p, len(tm))
		}
		for _, d := range tm {
			if d < 50*ms || d > 2*time.Second {
				t.Errorf("%v: step %v outside 50 ms..2 s", p, d)
			}
		}
		k := fmt.Sprint(tm)
		if q, dup := seen[k]; dup {
			t.Errorf("%v and %v blink alike", p, q)
		}
		seen[k] = p
	}
	tm := Healthy.Timing()
	tm[0] = 0
	if Healthy.Timing()[0] == 0 {
		t.Error("Timing returned the package's own slice")
	}
	if got := fmt.Sprint(Pattern(42).Timing()); got != fmt.Sprint(StaffNeeded.Timing()) {
		t.Errorf("unknown pattern blinks %v, want staff_needed", got)
	}
}

func TestHighest(t *testing.T) {
	tests := []struct {
		in   []Pattern
		want Pattern
	}{
		{nil, Healthy},
		{[]Pattern{Healthy}, Healthy},
		{[]Pattern{Degraded, Starting}, Degraded},
		{[]Pattern{StaffNeeded, Degraded}, StaffNeeded},
		{[]Pattern{StaffNeeded, OnBattery}, OnBattery},
		{[]Pattern{OnBattery, ShuttingDown, StaffNeeded}, ShuttingDown},
		{[]Pattern{Pattern(99), Degraded}, Degraded},
	}
	for _, tt := range tests {
		if got := Highest(tt.in...); got != tt.want {
			t.Errorf("Highest(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestPattern_String(t *testing.T) {
	var got []string
	for p := Healthy; p <= numPatterns; p++ {
		got = append(got, p.String())
	}
	want := "healthy starting degraded staff_needed on_battery shutting_down Pattern(6)"
	if strings.Join(got, " ") != want {
		t.Errorf("String() = %q, want %q", strings.Join(got, " "), want)
	}
}
