package power

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shopkit/relay/relay/gpio/gpiotest"
)

// Inside synctest bubbles time.Sleep advances the fake clock at once; nothing really waits.

const deb = 5 * time.Second

// steps is a fake Steps: it records calls, can fail a step, and can hold a step until released.
type steps struct {
	mu    sync.Mutex
	calls []Step
	errs  map[Step]error
	hold  map[Step]chan struct{} // closed by the test to let the step return
	deaf  map[Step]bool          // the step ignores its context until held is released
}

func newSteps() *steps {
	return &steps{errs: map[Step]error{}, hold: map[Step]chan struct{}{}, deaf: map[Step]bool{}}
}

func (s *steps) run(ctx context.Context, st Step) error {
	s.mu.Lock()
	s.calls = append(s.calls, st)
	h, deaf, err := s.hold[st], s.deaf[st], s.errs[st]
	s.mu.Unlock()
	if h != nil {
		if deaf {
			<-h
		} else {
			select {
			case <-h:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return err
}

func (s *steps) StopIntake(ctx context.Context) error    { return s.run(ctx, StepStopIntake) }
func (s *steps) DrainInFlight(ctx context.Context) error { return s.run(ctx, StepDrainInFlight) }
func (s *steps) CloseOutbox(ctx context.Context) error   { return s.run(ctx, StepCloseOutbox) }
func (s *steps) StopSignal(ctx context.Context) error    { return s.run(ctx, StepStopSignal) }
func (s *steps) PublishShuttingDown(ctx context.Context) error {
	return s.run(ctx, StepPublishShuttingDown)
}

func (s *steps) Calls() []Step {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// runner is a fake Runner.
type runner struct {
	mu   sync.Mutex
	argv [][]string
	err  error
	hold chan struct{}
}

func (r *runner) Run(ctx context.Context, argv []string) error {
	r.mu.Lock()
	r.argv = append(r.argv, argv)
	h := r.hold
	r.mu.Unlock()
	if h != nil {
		<-h
	}
	return r.err
}

func (r *runner) Calls() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.argv)
}

type harness struct {
	t      *testing.T
	ob, lb *gpiotest.Input
	steps  *steps
	runner *runner
	w      *Watcher
	cancel context.CancelFunc
	done   chan error

	mu       sync.Mutex
	journal  []Entry
	statuses []Status
}

var cfgDefault = Config{Debounce: deb, Grace: 10 * time.Minute, DrainDeadline: 30 * time.Second,
	StepTimeout: 10 * time.Second, PowerOffCommand: DefaultPowerOffCommand, RebootCommand: DefaultRebootCommand}

// start builds a watcher over fake lines and runs it; call inside a synctest bubble.
func start(t *testing.T, cfg Config, onBattery bool, withLB bool) *harness {
	h := &harness{t: t, ob: gpiotest.NewInput(t, onBattery, 0), steps: newSteps(), runner: &runner{}, done: make(chan error, 1)}
	o := Options{Runner: h.runner,
		Journal:  func(e Entry) { h.mu.Lock(); h.journal = append(h.journal, e); h.mu.Unlock() },
		OnChange: func(s Status) { h.mu.Lock(); h.statuses = append(h.statuses, s); h.mu.Unlock() },
	}
	if withLB {
		h.lb = gpiotest.NewInput(t, false, 0)
		o.BatteryLow = h.lb
	}
	w, err := New(cfg, h.ob, h.steps, o)
	if err != nil {
		t.Fatal(err)
	}
	h.w = w
	ctx, cancel := context.WithCancel(t.Context())
	h.cancel = cancel
	go func() { h.done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		// Release anything still held so the bubble can end.
		h.steps.mu.Lock()
		for _, c := range h.steps.hold {
			select {
			case <-c:
			default:
				close(c)
			}
		}
		h.steps.mu.Unlock()
	})
	synctest.Wait()
	return h
}

// events lists the journal as "event" or "event@step".
func (h *harness) events() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, e := range h.journal {
		s := e.Event
		if e.Step != StepNone {
			s += "@" + e.Step.String()
		}
		out = append(out, s)
	}
	return out
}

func (h *harness) advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func (h *harness) state() State { return h.w.Status().State }

func (h *harness) result() (error, bool) {
	select {
	case err := <-h.done:
		return err, true
	default:
		return nil, false
	}
}

// fullSequence is the journal of a shutdown in which every step succeeds.
func fullSequence(final string) []string {
	var out []string
	for _, s := range []Step{StepStopIntake, StepDrainInFlight, StepCloseOutbox, StepStopSignal, StepPublishShuttingDown} {
		out = append(out, "step_started@"+s.String(), "step_done@"+s.String())
	}
	if final == "" {
		return append(out, "final_skipped@power_off", "shutdown_complete@done")
	}
	return append(out, "step_started@power_off", "step_done@power_off", "shutdown_complete@done")
}

var allSteps = []Step{StepStopIntake, StepDrainInFlight, StepCloseOutbox, StepStopSignal, StepPublishShuttingDown}

func TestWatcher_glitchIgnored(t *testing.T) {
	for _, d := range []time.Duration{time.Millisecond, time.Second, deb - time.Millisecond} {
		t.Run(d.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := start(t, cfgDefault, false, true)
				h.ob.Set(true)
				h.advance(d)
				h.ob.Set(false)
				h.lb.Set(true) // a battery-low blip on mains, also short
				h.advance(d)
				h.lb.Set(false)
				h.advance(time.Hour) // long after any filter or grace could have run
				if got := h.events(); len(got) != 0 {
					t.Errorf("journal %v, want nothing", got)
				}
				if got := h.state(); got != Mains {
					t.Errorf("state %v, want on_mains", got)
				}
				if got, want := h.w.Status().Glitches, uint64(2); got != want {
					t.Errorf("Glitches = %d, want %d", got, want)
				}
				if c := h.steps.Calls(); len(c) != 0 {
					t.Errorf("steps ran: %v", c)
				}
			})
		})
	}
}

func TestWatcher_onBatteryAndBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, cfgDefault, false, false)
		h.ob.Set(true)
		h.advance(deb - time.Millisecond)
		if h.state() != Mains {
			t.Fatalf("reported before the filter ran out")
		}
		h.advance(time.Millisecond)
		if got := h.state(); got != OnBattery {
			t.Fatalf("state %v after %v on battery, want on_battery", got, deb)
		}
		h.advance(5 * time.Minute) // half the grace
		h.ob.Set(false)
		h.advance(deb)
		if got := h.state(); got != Mains {
			t.Fatalf("state %v after mains returned, want on_mains", got)
		}
		h.advance(time.Hour) // the old grace must not fire
		want := []string{"on_battery", "grace_started", "grace_cancelled", "on_mains"}
		if got := h.events(); !slices.Equal(got, want) {
			t.Errorf("journal %v, want %v", got, want)
		}
		if c := h.steps.Calls(); len(c) != 0 {
			t.Errorf("steps ran: %v", c)
		}
		h.mu.Lock()
		var states []State
		for _, s := range h.statuses {
			states = append(states, s.State)
		}
		h.mu.Unlock()
		if want := []State{Mains, OnBattery, Mains}; !slices.Equal(states, want) {
			t.Errorf("OnChange states %v, want %v", states, want)
		}
	})
}

func TestWatcher_graceExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, cfgDefault, false, true)
		h.ob.Set(true)
		h.advance(deb)
		// Mains flickers back for less than the filter: the grace keeps running.
		h.advance(9 * time.Minute)
		h.ob.Set(false)
		h.advance(time.Second)
		h.ob.Set(true)
		h.advance(time.Minute - time.Second - time.Millisecond)
		if h.state() != OnBattery {
			t.Fatalf("shut down before the grace ran out")
		}
		h.advance(time.Millisecond)
		err, ok := h.result()
		if !ok || !errors.Is(err, ErrShutdown) || !strings.Contains(err.Error(), ReasonGraceExpired) {
			t.Fatalf("Run = %v, %v; want ErrShutdown for %s", err, ok, ReasonGraceExpired)
		}
		want := append([]string{"on_battery", "grace_started", "shutdown_latched"}, fullSequence("poweroff")...)
		if got := h.events(); !slices.Equal(got, want) {
			t.Errorf("journal\n got %v\nwant %v", got, want)
		}
		if got := h.steps.Calls(); !slices.Equal(got, allSteps) {
			t.Errorf("steps %v, want %v", got, allSteps)
		}
		if got := h.runner.Calls(); len(got) != 1 || !slices.Equal(got[0], DefaultPowerOffCommand) {
			t.Errorf("runner calls %v, want one %v", got, DefaultPowerOffCommand)
		}
		if st := h.w.Status(); st.State != ShuttingDown || st.Step != StepDone || st.Reason != ReasonGraceExpired || st.Glitches != 1 {
			t.Errorf("status %+v", st)
		}
	})
}

func TestWatcher_batteryLow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, cfgDefault, false, true)
		h.ob.Set(true)
		h.advance(time.Minute)
		h.lb.Set(true)
		h.advance(deb)
		err, ok := h.result()
		if !ok || !errors.Is(err, ErrShutdown) || !strings.Contains(err.Error(), ReasonBatteryLow) {
			t.Fatalf("Run = %v, %v; want ErrShutdown for %s", err, ok, ReasonBatteryLow)
		}
		want := append([]string{"on_battery", "grace_started", "battery_low", "shutdown_latched"}, fullSequence("poweroff")...)
		if got := h.events(); !slices.Equal(got, want) {
			t.Errorf("journal\n got %v\nwant %v", got, want)
		}
		if st := h.w.Status(); !st.BatteryLow || st.Reason != ReasonBatteryLow {
			t.Errorf("status %+v", st)
		}
	})
}

// Battery low while on mains (recharging) is reported, never acted on; low battery present
// when the outage starts shuts down once on battery is confirmed.
func TestWatcher_batteryLowOnMains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, cfgDefault, false, true)
		h.lb.Set(true)
		h.advance(time.Hour)
		if h.state() != Mains || len(h.steps.Calls()) != 0 {
			t.Fatalf("acted on battery low while on mains: %v %v", h.state(), h.steps.Calls())
		}
		if got, want := h.events(), []string{"battery_low"}; !slices.Equal(got, want) {
			t.Errorf("journal %v, want %v", got, want)
		}
		h.ob.Set(true)
		h.advance(deb)
		if _, ok := h.result(); !ok {
			t.Fatal("no shutdown: on battery with battery low")
		}
		if st := h.w.Status(); st.Reason != ReasonBatteryLow {
			t.Errorf("reason %q, want %q", st.Reason, ReasonBatteryLow)
		}
	})
}

func TestWatcher_bootOnBattery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := cfgDefault
		cfg.Grace = 0 // shut down as soon as on battery is confirmed
		h := start(t, cfg, true, false)
		if h.state() != Mains {
			t.Fatal("reported on battery before the filter ran out")
		}
		h.advance(deb)
		if _, ok := h.result(); !ok {
			t.Fatal("grace 0 did not shut down once on battery was confirmed")
		}
		if got := h.events()[:3]; !slices.Equal(got, []string{"on_battery", "grace_started", "shutdown_latched"}) {
			t.Errorf("journal starts %v", got)
		}
	})
}

// Power returns (and stays) while each step runs: the sequence finishes every step in order
// and the final action is a reboot, except once the power-off command itself is running.
func TestWatcher_powerReturnsAtEachStep(t *testing.T) {
	for _, during := range append(slices.Clone(allSteps), StepPowerOff) {
		t.Run(during.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := cfgDefault
				cfg.StepTimeout = time.Minute // long enough to hold a step over the filter
				cfg.DrainDeadline = time.Minute
				h := start(t, cfg, false, true)
				release := make(chan struct{})
				if during == StepPowerOff {
					h.runner.hold = release
				} else {
					h.steps.hold[during] = release
				}
				h.ob.Set(true)
				h.lb.Set(true)
				h.advance(deb) // latched
				if got := h.w.Status().Step; got != during {
					t.Fatalf("held at %v, want %v", got, during)
				}
				h.ob.Set(false) // mains is back, for good
				h.advance(deb)
				if st := h.w.Status(); st.State != ShuttingDown || !st.MainsBack {
					t.Errorf("status %+v: want shutting_down with mains back", st)
				}
				close(release)
				synctest.Wait()
				err, ok := h.result()
				if !ok || !errors.Is(err, ErrShutdown) {
					t.Fatalf("Run = %v, %v; want ErrShutdown", err, ok)
				}
				if got := h.steps.Calls(); !slices.Equal(got, allSteps) {
					t.Errorf("steps %v, want all of %v", got, allSteps)
				}
				wantCmd := DefaultRebootCommand
				if during == StepPowerOff {
					wantCmd = DefaultPowerOffCommand // already chosen and running
				}
				if got := h.runner.Calls(); len(got) != 1 || !slices.Equal(got[0], wantCmd) {
					t.Errorf("final command %v, want %v", got, wantCmd)
				}
				if !slices.Contains(h.events(), "power_returned@"+during.String()) {
					t.Errorf("journal %v lacks power_returned@%v", h.events(), during)
				}
			})
		})
	}
}

// Mains back for less than the filter right before the final step still means mains is there
// now: reboot rather than leave the box dark.
func TestWatcher_mainsBackUnconfirmedAtFinal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, cfgDefault, false, true)
		release := make(chan struct{})
		h.steps.hold[StepPublishShuttingDown] = release
		h.ob.Set(true)
		h.lb.Set(true)
		h.advance(deb)
		h.ob.Set(false)
		synctest.Wait() // Run has seen the change, nothing more
		close(release)
		synctest.Wait()
		if got := h.runner.Calls(); len(got) != 1 || !slices.Equal(got[0], DefaultRebootCommand) {
			t.Errorf("final command %v, want %v", got, DefaultRebootCommand)
		}
	})
}

func TestWatcher_stepFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, cfgDefault, false, true)
		boom := errors.New("outbox sync failed")
		h.steps.errs[StepCloseOutbox] = boom
		h.steps.hold[StepDrainInFlight] = make(chan struct{}) // sends never finish: deadline
		h.steps.hold[StepStopSignal] = make(chan struct{})    // ignores its context entirely
		h.steps.deaf[StepStopSignal] = true
		h.ob.Set(true)
		h.advance(time.Millisecond)
		h.lb.Set(true)
		h.advance(deb)
		h.advance(cfgDefault.DrainDeadline)
		if got := h.w.Status().Step; got != StepCloseOutbox && got != StepStopSignal {
			t.Fatalf("after the drain deadline at %v", got)
		}
		h.advance(cfgDefault.StepTimeout + time.Second) // stop_signal abandoned
		err, ok := h.result()
		if !ok || !errors.Is(err, ErrShutdown) {
			t.Fatalf("Run = %v, %v; want ErrShutdown", err, ok)
		}
		want := []string{"on_battery", "grace_started", "battery_low", "shutdown_latched",
			"step_started@stop_intake", "step_done@stop_intake",
			"step_started@drain_in_flight", "step_failed@drain_in_flight",
			"step_started@close_outbox", "step_failed@close_outbox",
			"step_started@stop_signal", "step_abandoned@stop_signal",
			"step_started@publish_shutting_down", "step_done@publish_shutting_down",
			"step_started@power_off", "step_done@power_off", "shutdown_complete@done"}
		if got := h.events(); !slices.Equal(got, want) {
			t.Errorf("journal\n got %v\nwant %v", got, want)
		}
		h.mu.Lock()
		last := h.journal[len(h.journal)-1]
		h.mu.Unlock()
		if !errors.Is(last.Err, boom) || !errors.Is(last.Err, context.DeadlineExceeded) {
			t.Errorf("shutdown_complete error %v: want the failed steps' errors", last.Err)
		}
		close(h.steps.hold[StepStopSignal]) // let the abandoned goroutine end with the bubble
	})
}

func TestWatcher_finalAction(t *testing.T) {
	boom := errors.New("Access denied")
	tests := []struct {
		name     string
		poweroff []string
		reboot   []string
		err      error
		calls    int
		event    string
	}{
		{"default", DefaultPowerOffCommand, DefaultRebootCommand, nil, 1, "step_done@power_off"},
		{"disabled", nil, DefaultRebootCommand, nil, 0, "final_skipped@power_off"},
		{"fails", DefaultPowerOffCommand, nil, boom, 1, "step_failed@power_off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := cfgDefault
				cfg.PowerOffCommand, cfg.RebootCommand = tt.poweroff, tt.reboot
				h := start(t, cfg, false, true)
				h.runner.err = tt.err
				h.ob.Set(true)
				h.lb.Set(true)
				h.advance(deb)
				err, ok := h.result()
				if !ok || !errors.Is(err, ErrShutdown) {
					t.Fatalf("Run = %v, %v; want ErrShutdown", err, ok)
				}
				if tt.err != nil && !errors.Is(err, tt.err) {
					t.Errorf("Run = %v; want it to wrap %v", err, tt.err)
				}
				if got := len(h.runner.Calls()); got != tt.calls {
					t.Errorf("runner called %d times, want %d", got, tt.calls)
				}
				if !slices.Contains(h.events(), tt.event) {
					t.Errorf("journal %v lacks %s", h.events(), tt.event)
				}
			})
		})
	}
}

// Cancelling Run's context before the latch stops it; after the latch the sequence finishes.
func TestWatcher_Run_cancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, cfgDefault, false, true)
		h.ob.Set(true)
		h.advance(deb)
		h.cancel()
		synctest.Wait()
		if err, ok := h.result(); !ok || err != nil {
			t.Fatalf("Run after cancel = %v, %v; want nil", err, ok)
		}
		if c := h.steps.Calls(); len(c) != 0 {
			t.Errorf("steps ran: %v", c)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		h := start(t, cfgDefault, false, true)
		release := make(chan struct{})
		h.steps.hold[StepDrainInFlight] = release
		h.ob.Set(true)
		h.lb.Set(true)
		h.advance(deb)
		h.cancel()
		synctest.Wait()
		if _, ok := h.result(); ok {
			t.Fatal("Run returned mid-sequence on cancel")
		}
		close(release)
		synctest.Wait()
		if err, ok := h.result(); !ok || !errors.Is(err, ErrShutdown) {
			t.Fatalf("Run = %v, %v; want ErrShutdown", err, ok)
		}
		if got := h.steps.Calls(); !slices.Equal(got, allSteps) {
			t.Errorf("steps %v, want %v", got, allSteps)
		}
	})
}

func TestWatcher_Run_lineFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, cfgDefault, false, true)
		h.ob.Close()
		synctest.Wait()
		if err, ok := h.result(); !ok || !errors.Is(err, ErrLineClosed) {
			t.Fatalf("Run = %v, %v; want ErrLineClosed", err, ok)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		h := start(t, cfgDefault, false, true)
		h.lb.Close()
		synctest.Wait()
		if err, ok := h.result(); !ok || !errors.Is(err, ErrLineClosed) {
			t.Fatalf("Run = %v, %v; want ErrLineClosed", err, ok)
		}
	})
	// Lines closing after the latch (the caller's shutdown releasing GPIO) do not stop the sequence.
	synctest.Test(t, func(t *testing.T) {
		h := start(t, cfgDefault, false, true)
		release := make(chan struct{})
		h.steps.hold[StepStopIntake] = release
		h.ob.Set(true)
		h.lb.Set(true)
		h.advance(deb)
		h.ob.Close()
		h.lb.Close()
		synctest.Wait()
		close(release)
		synctest.Wait()
		if err, ok := h.result(); !ok || !errors.Is(err, ErrShutdown) {
			t.Fatalf("Run = %v, %v; want ErrShutdown", err, ok)
		}
	})
	boom := errors.New("chip gone")
	for _, which := range []string{"on_battery", "battery_low"} {
		in, lb := gpiotest.NewInput(t, false, 0), gpiotest.NewInput(t, false, 0)
		map[string]*gpiotest.Input{"on_battery": in, "battery_low": lb}[which].FailReads(boom)
		w, err := New(cfgDefault, in, newSteps(), Options{BatteryLow: lb})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Run(t.Context()); !errors.Is(err, boom) {
			t.Errorf("Run with a failing %s line = %v, want %v", which, err, boom)
		}
	}
}

func TestNew(t *testing.T) {
	in := gpiotest.NewInput(t, false, 0)
	tests := []struct {
		name  string
		cfg   Config
		line  Line
		steps Steps
	}{
		{"no line", cfgDefault, nil, newSteps()},
		{"no steps", cfgDefault, in, nil},
		{"negative grace", Config{Grace: -1}, in, newSteps()},
		{"negative debounce", Config{Debounce: -1}, in, newSteps()},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg, tt.line, tt.steps, Options{}); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: New = %v, want ErrConfig", tt.name, err)
		}
	}
	w, err := New(Config{PowerOffCommand: []string{"halt"}}, in, newSteps(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(w.cfg.Debounce, w.cfg.DrainDeadline, w.cfg.StepTimeout, w.cfg.RebootCommand)
	if want := fmt.Sprint(DefaultDebounce, DefaultDrainDeadline, DefaultStepTimeout, []string{"halt"}); got != want {
		t.Errorf("defaults %s, want %s", got, want)
	}
}

func TestState_String(t *testing.T) {
	tests := []struct {
		s    fmt.Stringer
		want string
	}{
		{Mains, "on_mains"}, {OnBattery, "on_battery"}, {ShuttingDown, "shutting_down"}, {State(9), "State(9)"},
		{StepStopIntake, "stop_intake"}, {StepPowerOff, "power_off"}, {Step(-1), "Step(-1)"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}
