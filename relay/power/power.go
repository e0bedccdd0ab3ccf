package power

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/shopkit/relay/relay/gpio"
)

// Line is what the watcher needs of a UPS input; *gpio.InputLine and gpiotest.Input satisfy it.
type Line interface {
	Active() (bool, error)
	Changes() <-chan gpio.Change
}

// Steps are the caller's parts of a clean shutdown. The watcher calls them in this order, each
// at most once, each with a context that ends at the step's deadline. They must be safe to run
// while the caller's own shutdown also stops the same parts (idempotent stops).
type Steps interface {
	// StopIntake stops taking jobs: no new PUBACKs.
	StopIntake(ctx context.Context) error
	// DrainInFlight lets sends already started finish, until ctx ends (Config.DrainDeadline).
	DrainInFlight(ctx context.Context) error
	// CloseOutbox flushes and closes the durable outbox.
	CloseOutbox(ctx context.Context) error
	// StopSignal stops signal-cli.
	StopSignal(ctx context.Context) error
	// PublishShuttingDown publishes the retained status shutting_down.
	PublishShuttingDown(ctx context.Context) error
}

// Runner runs the final power command. ExecRunner is the real one.
type Runner interface {
	Run(ctx context.Context, argv []string) error
}

// Defaults.
const (
	DefaultDebounce      = 5 * time.Second
	DefaultDrainDeadline = 30 * time.Second
	DefaultStepTimeout   = 10 * time.Second
)

// DefaultPowerOffCommand and DefaultRebootCommand ask systemd (logind) to power off or reboot.
// The service user needs polkit's permission for org.freedesktop.login1.power-off / reboot.
var (
	DefaultPowerOffCommand = []string{"systemctl", "poweroff"}
	DefaultRebootCommand   = []string{"systemctl", "reboot"}
)

// Config sets the watcher's timing and final action.
type Config struct {
	// Debounce is the glitch filter: how long a line must hold a new level before it counts.
	// 0 means DefaultDebounce; there is deliberately no "off" (that is the NUT trap).
	Debounce time.Duration
	// Grace is how long the box runs on battery before shutting down even without battery low.
	// 0: shut down as soon as on battery is confirmed.
	Grace time.Duration
	// DrainDeadline bounds the drain_in_flight step (0: DefaultDrainDeadline).
	DrainDeadline time.Duration
	// StepTimeout bounds every other step and the final command (0: DefaultStepTimeout).
	StepTimeout time.Duration
	// PowerOffCommand is run at the end when mains is still absent. Empty: no final action.
	PowerOffCommand []string
	// RebootCommand is run at the end instead when mains has returned. Empty: PowerOffCommand.
	RebootCommand []string
}

// State is the power state reported to the health roll-up.
type State int

// States. ShuttingDown is latched: nothing leaves it.
const (
	Mains State = iota
	OnBattery
	ShuttingDown
)

var stateNames = [...]string{Mains: "on_mains", OnBattery: "on_battery", ShuttingDown: "shutting_down"}

func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return "State(" + strconv.Itoa(int(s)) + ")"
	}
	return stateNames[s]
}

// Step names one step of the shutdown sequence.
type Step int

// Steps in the order they run.
const (
	StepNone Step = iota
	StepStopIntake
	StepDrainInFlight
	StepCloseOutbox
	StepStopSignal
	StepPublishShuttingDown
	StepPowerOff
	StepDone
)

var stepNames = [...]string{StepNone: "", StepStopIntake: "stop_intake", StepDrainInFlight: "drain_in_flight",
	StepCloseOutbox: "close_outbox", StepStopSignal: "stop_signal", StepPublishShuttingDown: "publish_shutting_down",
	StepPowerOff: "power_off", StepDone: "done"}

func (s Step) String() string {
	if s < 0 || int(s) >= len(stepNames) {
		return "Step(" + strconv.Itoa(int(s)) + ")"
	}
	return stepNames[s]
}

// Shutdown reasons (Status.Reason and the journal).
const (
	ReasonBatteryLow   = "battery_low"
	ReasonGraceExpired = "on_battery_grace_expired"
)

// Status is the watcher's current view.
type Status struct {
	State      State
	BatteryLow bool      // filtered battery-low line (false when there is none)
	Since      time.Time // when State was entered
	Reason     string    // ShuttingDown: why
	Step       Step      // ShuttingDown: the step running (StepDone when finished)
	MainsBack  bool      // ShuttingDown: mains has returned since the latch
	Glitches   uint64    // changes shorter than Debounce, ignored
}

// Entry is one journal line. Event is a stable snake_case word: on_battery, on_mains,
// battery_low, battery_ok, grace_started, grace_cancelled, shutdown_latched, step_started,
// step_done, step_failed, step_abandoned, power_returned, final_skipped, shutdown_complete.
type Entry struct {
	At     time.Time
	Event  string
	Step   Step
	Detail string
	Err    error
}

// Options are the watcher's optional collaborators.
type Options struct {
	BatteryLow Line         // optional second input
	Journal    func(Entry)  // called for every journal entry, never concurrently
	OnChange   func(Status) // called after every Status change, never concurrently; must not block
	Runner     Runner       // nil: ExecRunner{}
	Logger     *slog.Logger // nil: discard
}

// Errors.
var (
	// ErrShutdown: Run finished a shutdown sequence; the caller should exit.
	ErrShutdown = errors.New("power: shut down")
	// ErrLineClosed: an input line's change channel closed (line released or chip gone).
	ErrLineClosed = errors.New("power: UPS line closed")
	// ErrConfig: New was given something unusable.
	ErrConfig = errors.New("power: bad config")
)

// Watcher turns UPS line changes into reports and, when critical, the shutdown sequence.
type Watcher struct {
	cfg    Config
	ob     Line
	lb     Line
	steps  Steps
	runner Runner
	log    *slog.Logger
	jf     func(Entry)
	onCh   func(Status)

	mu      sync.Mutex
	st      Status
	rawMain bool // latest on-battery line level seen by Run (true: on battery)

	cbMu sync.Mutex // serialises Journal and OnChange across Run's goroutines
}

// New checks cfg and returns a Watcher; Run starts it.
func New(cfg Config, onBattery Line, steps Steps, o Options) (*Watcher, error) {
	if onBattery == nil || steps == nil {
		return nil, fmt.Errorf("%w: the on-battery line and the shutdown steps are required", ErrConfig)
	}
	if cfg.Debounce < 0 || cfg.Grace < 0 || cfg.DrainDeadline < 0 || cfg.StepTimeout < 0 {
		return nil, fmt.Errorf("%w: negative duration in %+v", ErrConfig, cfg)
	}
	if cfg.Debounce == 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.DrainDeadline == 0 {
		cfg.DrainDeadline = DefaultDrainDeadline
	}
	if cfg.StepTimeout == 0 {
		cfg.StepTimeout = DefaultStepTimeout
	}
	if len(cfg.RebootCommand) == 0 {
		cfg.RebootCommand = cfg.PowerOffCommand
	}
	w := &Watcher{cfg: cfg, ob: onBattery, lb: o.BatteryLow, steps: steps, runner: o.Runner,
		jf: o.Journal, onCh: o.OnChange, log: o.Logger}
	if w.runner == nil {
		w.runner = ExecRunner{}
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	w.log = w.log.With("component", "power")
	if w.jf == nil {
		w.jf = func(Entry) {}
	}
	if w.onCh == nil {
		w.onCh = func(Status) {}
	}
	return w, nil
}

// Status returns the current status.
func (w *Watcher) Status() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.st
}

func (w *Watcher) journal(e Entry) {
	e.At = time.Now()
	lvl := slog.LevelInfo
	if e.Err != nil {
		lvl = slog.LevelWarn
	}
	w.log.Log(context.Background(), lvl, "power "+e.Event, "step", e.Step.String(), "detail", e.Detail, "err", e.Err)
	w.cbMu.Lock()
	defer w.cbMu.Unlock()
	w.jf(e)
}

func (w *Watcher) update(f func(*Status)) {
	w.mu.Lock()
	f(&w.st)
	st := w.st
	w.mu.Unlock()
	w.cbMu.Lock()
	defer w.cbMu.Unlock()
	w.onCh(st)
}

// filter is the glitch filter of one line: raw is the latest level seen, level the confirmed one.
type filter struct {
	raw, level bool
	since      time.Time   // when raw last changed
	t          *time.Timer // running while raw != level
}

func (f *filter) c() <-chan time.Time {
	if f.t == nil {
		return nil
	}
	return f.t.C
}

// see takes a raw level; it reports a glitch (and its length) when the line returned to the
// confirmed level before the filter ran out.
func (f *filter) see(v bool, d time.Duration) (glitch time.Duration, ok bool) {
	if v == f.raw {
		return 0, false
	}
	now := time.Now()
	f.raw = v
	if v == f.level { // back before confirmation
		f.stop()
		return now.Sub(f.since), true
	}
	f.since = now
	f.stop()
	f.t = time.NewTimer(d)
	return 0, false
}

func (f *filter) stop() {
	if f.t != nil {
		f.t.Stop()
		f.t = nil
	}
}

// Run watches the lines until ctx ends (returning nil) or a shutdown sequence completes
// (returning an error wrapping ErrShutdown). Once the shutdown is latched, Run returns only when
// the sequence has finished, whatever happens to ctx.
func (w *Watcher) Run(ctx context.Context) error {
	ob, err := w.ob.Active()
	if err != nil {
		return fmt.Errorf("power: read on-battery line: %w", err)
	}
	var lb bool
	var lbCh <-chan gpio.Change
	if w.lb != nil {
		if lb, err = w.lb.Active(); err != nil {
			return fmt.Errorf("power: read battery-low line: %w", err)
		}
		lbCh = w.lb.Changes()
	}
	obCh := w.ob.Changes()
	now := time.Now()
	w.update(func(s *Status) { *s = Status{State: Mains, Since: now} })
	obf, lbf := &filter{}, &filter{}
	defer obf.stop()
	defer lbf.stop()
	w.setRaw(ob)
	obf.see(ob, w.cfg.Debounce) // a box that boots on battery starts its filter now
	lbf.see(lb, w.cfg.Debounce)

	var grace *time.Timer
	stopGrace := func() {
		if grace != nil {
			grace.Stop()
			grace = nil
		}
	}
	defer stopGrace()
	graceC := func() <-chan time.Time {
		if grace == nil {
			return nil
		}
		return grace.C
	}
	var seqDone chan error // non-nil once latched
	done := ctx.Done()

	latch := func(reason string) {
		stopGrace()
		w.journal(Entry{Event: "shutdown_latched", Detail: reason})
		w.update(func(s *Status) { s.State, s.Since, s.Reason, s.Step = ShuttingDown, time.Now(), reason, StepNone })
		seqDone = make(chan error, 1)
		done = nil // latched: finish whatever ctx does
		go func() { seqDone <- w.sequence(reason) }()
	}
	critical := func() {
		if seqDone == nil && obf.level && lbf.level {
			latch(ReasonBatteryLow)
		}
	}
	glitch := func(line string, d time.Duration) {
		w.mu.Lock()
		w.st.Glitches++
		n := w.st.Glitches
		w.mu.Unlock()
		// Log-on-change would hide a flapping contact; log the first few, then every 100th.
		if n <= 3 || n%100 == 0 {
			w.log.Info("power glitch ignored", "line", line, "length", d, "glitches", n)
		}
	}

	for {
		select {
		case <-done:
			return nil
		case c, ok := <-obCh:
			if !ok {
				obCh = nil
				if seqDone == nil {
					return fmt.Errorf("power: on-battery line: %w", ErrLineClosed)
				}
				continue
			}
			w.setRaw(c.Active)
			if d, g := obf.see(c.Active, w.cfg.Debounce); g {
				glitch("on_battery", d)
			}
		case c, ok := <-lbCh:
			if !ok {
				lbCh = nil
				if seqDone == nil {
					return fmt.Errorf("power: battery-low line: %w", ErrLineClosed)
				}
				continue
			}
			if d, g := lbf.see(c.Active, w.cfg.Debounce); g {
				glitch("battery_low", d)
			}
		case <-obf.c():
			obf.t = nil
			obf.level = obf.raw
			switch {
			case seqDone != nil:
				if !obf.level {
					st := w.Status()
					w.journal(Entry{Event: "power_returned", Step: st.Step, Detail: "shutdown continues; the final action will be a reboot"})
					w.update(func(s *Status) { s.MainsBack = true })
				}
			case obf.level:
				w.journal(Entry{Event: "on_battery"})
				w.update(func(s *Status) { s.State, s.Since = OnBattery, time.Now() })
				grace = time.NewTimer(w.cfg.Grace)
				w.journal(Entry{Event: "grace_started", Detail: w.cfg.Grace.String()})
				critical()
			default:
				stopGrace()
				w.journal(Entry{Event: "grace_cancelled", Detail: "mains returned"})
				w.journal(Entry{Event: "on_mains"})
				w.update(func(s *Status) { s.State, s.Since = Mains, time.Now() })
			}
		case <-lbf.c():
			lbf.t = nil
			lbf.level = lbf.raw
			if lbf.level {
				detail := ""
				if !obf.level {
					detail = "on mains: no shutdown"
				}
				w.journal(Entry{Event: "battery_low", Detail: detail})
			} else {
				w.journal(Entry{Event: "battery_ok"})
			}
			w.update(func(s *Status) { s.BatteryLow = lbf.level })
			critical()
		case <-graceC():
			grace = nil
			if seqDone == nil {
				latch(ReasonGraceExpired)
			}
		case err := <-seqDone:
			return err
		}
	}
}

func (w *Watcher) setRaw(onBattery bool) {
	w.mu.Lock()
	w.rawMain = !onBattery
	w.mu.Unlock()
}

func (w *Watcher) mainsPresent() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rawMain
}

// sequence runs the latched shutdown. It returns an error wrapping ErrShutdown.
func (w *Watcher) sequence(reason string) error {
	seq := []struct {
		step Step
		d    time.Duration
		fn   func(context.Context) error
	}{
		{StepStopIntake, w.cfg.StepTimeout, w.steps.StopIntake},
		{StepDrainInFlight, w.cfg.DrainDeadline, w.steps.DrainInFlight},
		{StepCloseOutbox, w.cfg.StepTimeout, w.steps.CloseOutbox},
		{StepStopSignal, w.cfg.StepTimeout, w.steps.StopSignal},
		{StepPublishShuttingDown, w.cfg.StepTimeout, w.steps.PublishShuttingDown},
	}
	var failed []error
	for _, s := range seq {
		if err := w.step(s.step, s.d, s.fn); err != nil {
			failed = append(failed, err)
		}
	}

	w.update(func(st *Status) { st.Step = StepPowerOff })
	var final error
	switch {
	case len(w.cfg.PowerOffCommand) == 0:
		w.journal(Entry{Event: "final_skipped", Step: StepPowerOff, Detail: "power-off disabled in config"})
	default:
		argv := w.cfg.PowerOffCommand
		if w.mainsPresent() {
			argv = w.cfg.RebootCommand
		}
		final = w.step(StepPowerOff, w.cfg.StepTimeout, func(ctx context.Context) error {
			return w.runner.Run(ctx, argv)
		}, argv...)
	}
	w.update(func(st *Status) { st.Step = StepDone })
	w.journal(Entry{Event: "shutdown_complete", Step: StepDone, Detail: reason, Err: errors.Join(failed...)})
	if final != nil {
		return fmt.Errorf("%w (%s), final action failed: %w", ErrShutdown, reason, final)
	}
	return fmt.Errorf("%w (%s)", ErrShutdown, reason)
}

// step runs one step with its deadline. A step that ignores its context is abandoned a moment
// after the deadline (its goroutine is left behind: the box is going down).
func (w *Watcher) step(s Step, d time.Duration, fn func(context.Context) error, argv ...string) error {
	w.update(func(st *Status) { st.Step = s })
	detail := ""
	if len(argv) > 0 {
		detail = fmt.Sprint(argv)
	}
	w.journal(Entry{Event: "step_started", Step: s, Detail: detail})
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	res := make(chan error, 1)
	go func() { res <- fn(ctx) }()
	var err error
	abandon := time.NewTimer(d + time.Second)
	defer abandon.Stop()
	select {
	case err = <-res:
	case <-abandon.C:
		err = fmt.Errorf("power: step %s ignored its deadline of %v: %w", s, d, context.DeadlineExceeded)
		w.journal(Entry{Event: "step_abandoned", Step: s, Detail: time.Since(start).String(), Err: err})
		return err
	}
	if err == nil && ctx.Err() != nil { // returned nil, but only after its time was up
		err = fmt.Errorf("power: step %s overran %v: %w", s, d, ctx.Err())
	}
	if err != nil {
		w.journal(Entry{Event: "step_failed", Step: s, Detail: time.Since(start).String(), Err: err})
		return err
	}
	w.journal(Entry{Event: "step_done", Step: s, Detail: time.Since(start).String()})
	return nil
}
