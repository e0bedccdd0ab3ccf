package gpio_test

// Real-kernel tests: go-gpiocdev against gpio-sim chips created through configfs with
// go-gpiosim. They need root and CONFIG_GPIO_SIM, so CI runs them inside the gpio VM:
//
//	CGO_ENABLED=0 go test -c -o gpio.test ./relay/gpio
//	bash ../shared/tools/gpio-vm/run.sh ./gpio.test -test.v
//
// The kernel's timers are real here, so waits are deadlines on channels or polls, never fixed
// pauses; the only timed waits are "nothing arrives within N debounce periods".

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopkit/relay/relay/gpio"
	"github.com/shopkit/relay/relay/power"
	"github.com/warthog618/go-gpiosim"
)

const deadline = 10 * time.Second

func needSim(t *testing.T) {
	t.Helper()
	const how = "run them in the gpio VM: CGO_ENABLED=0 go test -c -o gpio.test ./relay/gpio && bash ../shared/tools/gpio-vm/run.sh ./gpio.test -test.v"
	if os.Geteuid() != 0 {
		t.Skip("SKIP real-kernel GPIO test: needs root and gpio-sim; " + how)
	}
	if _, err := os.Stat("/sys/kernel/config/gpio-sim"); err != nil {
		t.Skip("SKIP real-kernel GPIO test: no /sys/kernel/config/gpio-sim (kernel without CONFIG_GPIO_SIM, or configfs not mounted); " + how)
	}
}

// newSim creates a simulator with the given banks and removes it when the test ends.
func newSim(t *testing.T, banks ...*gpiosim.Bank) *gpiosim.Sim {
	t.Helper()
	var opts []gpiosim.NewSimOption
	for _, b := range banks {
		opts = append(opts, gpiosim.WithBank(b))
	}
	s, err := gpiosim.NewSim(opts...)
	if err != nil {
		t.Fatalf("gpiosim: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func pull(t *testing.T, c *gpiosim.Chip, offset, level int) {
	t.Helper()
	if err := c.SetPull(offset, level); err != nil {
		t.Fatalf("set pull of offset %d: %v", offset, err)
	}
}

// next waits for the next change, failing after the deadline.
func next(t *testing.T, in gpio.Input) gpio.Change {
	t.Helper()
	select {
	case c, ok := <-in.Changes():
		if !ok {
			t.Fatal("Changes closed")
		}
		return c
	case <-time.After(deadline):
		t.Fatalf("no change within %v", deadline)
	}
	return gpio.Change{}
}

// quiet fails if a change arrives within d.
func quiet(t *testing.T, in gpio.Input, d time.Duration) {
	t.Helper()
	select {
	case c := <-in.Changes():
		t.Fatalf("unexpected change %+v", c)
	case <-time.After(d):
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	end := time.After(deadline)
	for !cond() {
		select {
		case <-tick.C:
		case <-end:
			t.Fatalf("%s: not within %v", what, deadline)
		}
	}
}

func openInput(t *testing.T, cfg gpio.LineConfig, o gpio.Options) *gpio.InputLine {
	t.Helper()
	in, err := gpio.OpenInput(cfg, o)
	if err != nil {
		t.Fatalf("OpenInput: %v", err)
	}
	t.Cleanup(func() { in.Close() })
	return in
}

func TestSim_OpenInput_find(t *testing.T) {
	needSim(t)
	s := newSim(t,
		gpiosim.NewBank("relay-left", 8, gpiosim.WithNamedLine(3, "UPS_ONBATT")),
		gpiosim.NewBank("relay-right", 8, gpiosim.WithNamedLine(5, "UPS_LOWBATT")))
	left, right := &s.Chips[0], &s.Chips[1]
	tests := []struct {
		name   string
		cfg    gpio.LineConfig
		offset int
		chip   *gpiosim.Chip
	}{
		{"name on any chip", gpio.LineConfig{Line: "UPS_LOWBATT"}, 5, right},
		{"name on its chip", gpio.LineConfig{Chip: left.ChipName(), Line: "UPS_ONBATT"}, 3, left},
		{"offset", gpio.LineConfig{Chip: right.ChipName(), Line: "2"}, 2, right},
		{"device path", gpio.LineConfig{Chip: right.DevPath(), Line: "UPS_LOWBATT"}, 5, right},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := openInput(t, tt.cfg, gpio.Options{})
			for _, level := range []int{1, 0} {
				pull(t, tt.chip, tt.offset, level)
				if c := next(t, in); c.Active != (level == 1) {
					t.Errorf("change %+v after pulling offset %d to %d", c, tt.offset, level)
				}
				if got, err := in.Active(); err != nil || got != (level == 1) {
					t.Errorf("Active() = %v, %v after pulling to %d", got, err, level)
				}
			}
		})
	}

	// Missing lines are startup errors that say where to look.
	_, err := gpio.OpenInput(gpio.LineConfig{Chip: left.ChipName(), Line: "UPS_LOWBATT"}, gpio.Options{})
	if !errors.Is(err, gpio.ErrLineNotFound) || !strings.Contains(err.Error(), right.ChipName()+" offset 5") {
		t.Errorf("name on the wrong chip: %v; want ErrLineNotFound pointing at %s offset 5", err, right.ChipName())
	}
	_, err = gpio.OpenInput(gpio.LineConfig{Chip: left.ChipName(), Line: "8"}, gpio.Options{})
	if !errors.Is(err, gpio.ErrLineNotFound) || !strings.Contains(err.Error(), "has 8 lines") {
		t.Errorf("offset beyond the chip: %v; want ErrLineNotFound saying it has 8 lines", err)
	}
	_, err = gpio.OpenOutput(gpio.LineConfig{Line: "NO_SUCH_LED"}, false, gpio.Options{})
	if !errors.Is(err, gpio.ErrLineNotFound) || !strings.Contains(err.Error(), left.ChipName()) {
		t.Errorf("name nowhere: %v; want ErrLineNotFound listing the chips", err)
	}
}

// A glitch shorter than the kernel debounce never becomes a change; without debounce the same
// glitch is two changes; a held level arrives no sooner than the debounce period.
func TestSim_debounce(t *testing.T) {
	needSim(t)
	const period = 300 * time.Millisecond // generous: the VM shares two host cores
	s := newSim(t, gpiosim.NewBank("relay-debounce", 4))
	c := &s.Chips[0]
	plain := openInput(t, gpio.LineConfig{Chip: c.ChipName(), Line: "1", Bias: gpio.BiasPullDown}, gpio.Options{})
	deb := openInput(t, gpio.LineConfig{Chip: c.ChipName(), Line: "2", Bias: gpio.BiasPullDown, Debounce: period}, gpio.Options{})

	// The glitch: two writes back to back, microseconds apart.
	pull(t, c, 1, 1)
	pull(t, c, 1, 0)
	pull(t, c, 2, 1)
	pull(t, c, 2, 0)
	if a, b := next(t, plain), next(t, plain); !a.Active || b.Active {
		t.Errorf("without debounce the glitch gave %+v, %+v; want active then inactive", a, b)
	}
	quiet(t, deb, 3*period)

	start := time.Now()
	pull(t, c, 2, 1)
	ch := next(t, deb)
	if waited := time.Since(start); !ch.Active || waited < period*9/10 {
		t.Errorf("held level: %+v after %v; want active, no sooner than %v", ch, waited, period)
	}
	if deb.Dropped() != 0 || plain.Dropped() != 0 {
		t.Errorf("dropped %d and %d changes, want none", deb.Dropped(), plain.Dropped())
	}
}

func TestSim_activeLow(t *testing.T) {
	needSim(t)
	s := newSim(t, gpiosim.NewBank("relay-activelow", 4))
	c := &s.Chips[0]
	// A typical HAT contact: open collector, pulled up, low means "on battery".
	in := openInput(t, gpio.LineConfig{Chip: c.ChipName(), Line: "0", ActiveLow: true, Bias: gpio.BiasPullUp}, gpio.Options{})
	if got, err := in.Active(); err != nil || got {
		t.Fatalf("pulled up, active-low: Active() = %v, %v; want false", got, err)
	}
	pull(t, c, 0, 0)
	if ch := next(t, in); !ch.Active {
		t.Errorf("pulled low, active-low: change %+v, want active", ch)
	}
	pull(t, c, 0, 1)
	if ch := next(t, in); ch.Active {
		t.Errorf("pulled high, active-low: change %+v, want inactive", ch)
	}
}

func TestSim_busy(t *testing.T) {
	needSim(t)
	s := newSim(t, gpiosim.NewBank("relay-busy", 4,
		gpiosim.WithHoggedLine(2, "ups-hat-driver", gpiosim.HogDirectionInput)))
	c := &s.Chips[0]
	tests := []struct {
		name   string
		line   string
		holder string
		before func(t *testing.T)
	}{
		{"kernel hog", "2", "ups-hat-driver", func(*testing.T) {}},
		{"another program", "1", "other-daemon", func(t *testing.T) {
			openInput(t, gpio.LineConfig{Chip: c.ChipName(), Line: "1"}, gpio.Options{Consumer: "other-daemon"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.before(t)
			for _, open := range []func() error{
				func() error {
					in, err := gpio.OpenInput(gpio.LineConfig{Chip: c.ChipName(), Line: tt.line}, gpio.Options{})
					closeIf(in, err)
					return err
				},
				func() error {
					o, err := gpio.OpenOutput(gpio.LineConfig{Chip: c.ChipName(), Line: tt.line}, false, gpio.Options{})
					closeIf(o, err)
					return err
				},
			} {
				err := open()
				var le *gpio.LineError
				if !errors.Is(err, gpio.ErrLineBusy) || !errors.As(err, &le) || le.Holder != tt.holder {
					t.Fatalf("got %v; want ErrLineBusy held by %q", err, tt.holder)
				}
				if !strings.Contains(err.Error(), `held by "`+tt.holder+`"`) || !strings.Contains(err.Error(), c.ChipName()) {
					t.Errorf("error %q does not name the chip and the holder", err)
				}
			}
		})
	}
}

func closeIf[T interface{ Close() error }](v T, err error) {
	if err == nil {
		v.Close()
	}
}

func TestSim_OutputLine_Set(t *testing.T) {
	needSim(t)
	s := newSim(t, gpiosim.NewBank("relay-led", 4, gpiosim.WithNamedLine(3, "STATUS_LED")))
	c := &s.Chips[0]
	level := func(offset int) int {
		v, err := c.Level(offset)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name      string
		cfg       gpio.LineConfig
		offset    int
		onLevel   int
		offLevel  int
		initially bool
	}{
		{"active-high by name", gpio.LineConfig{Line: "STATUS_LED"}, 3, 1, 0, false},
		{"active-low (LED to 3V3)", gpio.LineConfig{Chip: c.ChipName(), Line: "1", ActiveLow: true}, 1, 0, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := gpio.OpenOutput(tt.cfg, tt.initially, gpio.Options{})
			if err != nil {
				t.Fatal(err)
			}
			want := map[bool]int{true: tt.onLevel, false: tt.offLevel}
			if got := level(tt.offset); got != want[tt.initially] {
				t.Errorf("initial level %d, want %d", got, want[tt.initially])
			}
			for _, on := range []bool{true, false, true} {
				if err := out.Set(on); err != nil {
					t.Fatal(err)
				}
				if got := level(tt.offset); got != want[on] {
					t.Errorf("Set(%v): level %d, want %d", on, got, want[on])
				}
			}
			if err := out.Close(); err != nil {
				t.Fatal(err)
			}
			if err := out.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if err := out.Set(true); !errors.Is(err, gpio.ErrClosed) {
				t.Errorf("Set after Close: %v, want ErrClosed", err)
			}
		})
	}
	if _, err := gpio.OpenOutput(gpio.LineConfig{Chip: c.ChipName(), Line: "0", Debounce: time.Millisecond}, false, gpio.Options{}); !errors.Is(err, gpio.ErrConfig) {
		t.Errorf("debounced output: %v, want ErrConfig", err)
	}
}

// A consumer that does not read loses the oldest changes, never the newest, and every change
// the kernel made is either delivered or counted.
func TestSim_InputLine_Dropped(t *testing.T) {
	needSim(t)
	s := newSim(t, gpiosim.NewBank("relay-flood", 2))
	c := &s.Chips[0]
	in := openInput(t, gpio.LineConfig{Chip: c.ChipName(), Line: "0", Bias: gpio.BiasPullDown}, gpio.Options{QueueSize: 4})
	const n = 40
	for i := range n {
		pull(t, c, 0, (i+1)%2)
	}
	delivered := 0
	var last gpio.Change
	for last.Seqno != n {
		last = next(t, in)
		delivered++
	}
	if last.Active != false {
		t.Errorf("last change %+v, want inactive (the final level)", last)
	}
	if got := uint64(delivered) + in.Dropped(); got != n || in.Dropped() == 0 {
		t.Errorf("delivered %d + dropped %d = %d, want %d with some dropped", delivered, in.Dropped(), got, n)
	}
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-in.Changes(); ok {
		t.Error("Changes still open after Close")
	}
	if _, err := in.Active(); !errors.Is(err, gpio.ErrClosed) {
		t.Errorf("Active after Close: %v, want ErrClosed", err)
	}
}

// The power watcher on a real line: a glitch is ignored, mains returning during the grace
// cancels, a held outage ends in the shutdown sequence and the power-off command.
func TestSim_powerWatcher(t *testing.T) {
	needSim(t)
	s := newSim(t, gpiosim.NewBank("relay-ups", 4,
		gpiosim.WithNamedLine(0, "UPS_ONBATT"), gpiosim.WithNamedLine(1, "UPS_LOWBATT")))
	c := &s.Chips[0]
	open := func(t *testing.T, name string) *gpio.InputLine {
		// No kernel debounce here (TestSim_debounce covers it): the glitch below is two writes
		// microseconds apart, and it is the watcher's own filter that must ignore it.
		return openInput(t, gpio.LineConfig{Chip: c.ChipName(), Line: name, ActiveLow: true, Bias: gpio.BiasPullUp}, gpio.Options{})
	}
	start := func(t *testing.T, grace time.Duration) (*watch, context.CancelFunc) {
		w := &watch{journal: make(chan power.Entry, 64), done: make(chan error, 1)}
		pw, err := power.New(power.Config{Debounce: 200 * time.Millisecond, Grace: grace,
			StepTimeout: 2 * time.Second, DrainDeadline: 2 * time.Second,
			PowerOffCommand: []string{"test-poweroff"}, RebootCommand: []string{"test-reboot"}},
			open(t, "UPS_ONBATT"), w, power.Options{BatteryLow: open(t, "UPS_LOWBATT"), Runner: w,
				Journal: func(e power.Entry) { w.journal <- e }})
		if err != nil {
			t.Fatal(err)
		}
		w.pw = pw
		ctx, cancel := context.WithCancel(t.Context())
		go func() { w.done <- pw.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-w.done })
		return w, cancel
	}

	t.Run("glitch, then mains back during the grace", func(t *testing.T) {
		pull(t, c, 0, 1)
		pull(t, c, 1, 1)
		w, _ := start(t, 5*time.Second)
		pull(t, c, 0, 0) // a dip far shorter than the watcher's 200 ms filter
		pull(t, c, 0, 1)
		eventually(t, "glitch counted", func() bool { return w.pw.Status().Glitches == 1 })
		pull(t, c, 0, 0)
		w.expect(t, "on_battery", "grace_started")
		pull(t, c, 0, 1)
		w.expect(t, "grace_cancelled", "on_mains")
		if calls := w.calls(); len(calls) != 0 {
			t.Errorf("steps ran: %v", calls)
		}
	})
	t.Run("outage outlasts the grace", func(t *testing.T) {
		pull(t, c, 0, 1)
		pull(t, c, 1, 1)
		w, _ := start(t, 300*time.Millisecond)
		pull(t, c, 0, 0)
		w.expect(t, "on_battery", "grace_started", "shutdown_latched")
		select {
		case err := <-w.done:
			if !errors.Is(err, power.ErrShutdown) {
				t.Fatalf("Run = %v, want ErrShutdown", err)
			}
			w.done <- err // for the cleanup
		case <-time.After(deadline):
			t.Fatal("no shutdown")
		}
		want := []string{"stop_intake", "drain_in_flight", "close_outbox", "stop_signal", "publish_shutting_down", "test-poweroff"}
		if got := w.calls(); !slices.Equal(got, want) {
			t.Errorf("sequence %v, want %v", got, want)
		}
	})
	t.Run("battery low while on battery", func(t *testing.T) {
		pull(t, c, 0, 1)
		pull(t, c, 1, 1)
		w, _ := start(t, time.Hour)
		pull(t, c, 0, 0)
		w.expect(t, "on_battery", "grace_started")
		pull(t, c, 1, 0)
		w.expect(t, "battery_low", "shutdown_latched")
		if st := w.pw.Status(); st.Reason != power.ReasonBatteryLow {
			t.Errorf("reason %q, want %q", st.Reason, power.ReasonBatteryLow)
		}
	})
}

// watch is the test's Steps, Runner and journal reader for TestSim_powerWatcher.
type watch struct {
	pw      *power.Watcher
	journal chan power.Entry
	done    chan error
	mu      sync.Mutex
	seq     []string
}

func (w *watch) add(s string) error {
	w.mu.Lock()
	w.seq = append(w.seq, s)
	w.mu.Unlock()
	return nil
}
func (w *watch) calls() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.seq)
}
func (w *watch) StopIntake(context.Context) error          { return w.add("stop_intake") }
func (w *watch) DrainInFlight(context.Context) error       { return w.add("drain_in_flight") }
func (w *watch) CloseOutbox(context.Context) error         { return w.add("close_outbox") }
func (w *watch) StopSignal(context.Context) error          { return w.add("stop_signal") }
func (w *watch) PublishShuttingDown(context.Context) error { return w.add("publish_shutting_down") }
func (w *watch) Run(_ context.Context, argv []string) error {
	return w.add(strings.Join(argv, " "))
}

// expect reads journal entries until the events appear in this order (others may come between).
func (w *watch) expect(t *testing.T, events ...string) {
	t.Helper()
	end := time.After(deadline)
	for _, want := range events {
		for found := false; !found; {
			select {
			case e := <-w.journal:
				found = e.Event == want
			case <-end:
				t.Fatalf("journal: no %q within %v", want, deadline)
			}
		}
	}
}
