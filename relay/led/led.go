package led

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// Output is the LED line; *gpio.OutputLine and gpiotest.Output satisfy it.
type Output interface {
	Set(on bool) error
}

// Pattern is what the LED shows.
type Pattern int

// Patterns, in rising priority (see Highest).
const (
	Healthy Pattern = iota
	Starting
	Degraded
	StaffNeeded
	OnBattery
	ShuttingDown
	numPatterns
)

var names = [...]string{Healthy: "healthy", Starting: "starting", Degraded: "degraded",
	StaffNeeded: "staff_needed", OnBattery: "on_battery", ShuttingDown: "shutting_down"}

func (p Pattern) String() string {
	if p < 0 || p >= numPatterns {
		return "Pattern(" + strconv.Itoa(int(p)) + ")"
	}
	return names[p]
}

const ms = time.Millisecond

// timings: alternating on, off, on, off… durations of one cycle, starting with on.
var timings = [...][]time.Duration{
	Healthy:      {1900 * ms, 100 * ms},                     // steady on, a short dark wink every 2 s
	Starting:     {250 * ms, 250 * ms},                      // even blink, twice a second
	Degraded:     {1000 * ms, 1000 * ms},                    // slow even blink, 1 s on / 1 s off
	StaffNeeded:  {150 * ms, 150 * ms, 150 * ms, 1550 * ms}, // two quick flashes, pause
	OnBattery:    {100 * ms, 1900 * ms},                     // dark, a short blip every 2 s
	ShuttingDown: {50 * ms, 50 * ms},                        // rapid flicker, ten times a second
}

// Timing returns one cycle of p as alternating on/off durations, starting with on. An unknown
// pattern shows as StaffNeeded: something is wrong and someone should look.
func (p Pattern) Timing() []time.Duration {
	if p < 0 || p >= numPatterns {
		p = StaffNeeded
	}
	return append([]time.Duration(nil), timings[p]...)
}

// Highest returns the pattern that wins when several states hold at once: shutting down, then
// on battery (time-critical), then staff needed, degraded, starting, healthy. With none it is
// Healthy.
func Highest(ps ...Pattern) Pattern {
	best := Healthy
	for _, p := range ps {
		if p > best && p < numPatterns {
			best = p
		}
	}
	return best
}

// Driver blinks an Output with the current Pattern.
type Driver struct {
	out  Output
	log  *slog.Logger
	wake chan struct{}

	mu sync.Mutex
	p  Pattern
}

// New returns a driver for out showing Starting until Set says otherwise. Timing comes from the
// time package (tests use testing/synctest). logger nil: discard.
func New(out Output, logger *slog.Logger) *Driver {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Driver{out: out, log: logger.With("component", "led"), wake: make(chan struct{}, 1), p: Starting}
}

// Set switches to p. It never blocks; the same pattern again does not restart the cycle.
func (d *Driver) Set(p Pattern) {
	d.mu.Lock()
	same := d.p == p
	d.p = p
	d.mu.Unlock()
	if same {
		return
	}
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Pattern returns the pattern being shown.
func (d *Driver) Pattern() Pattern {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.p
}

// Run blinks until ctx ends, then turns the LED off and returns nil.
func (d *Driver) Run(ctx context.Context) error {
	var lastErr error
	set := func(on bool) {
		err := d.out.Set(on)
		switch {
		case err != nil && (lastErr == nil || err.Error() != lastErr.Error()):
			d.log.Warn("cannot drive the status LED", "err", err)
		case err == nil && lastErr != nil:
			d.log.Info("status LED works again")
		}
		lastErr = err
	}
	defer func() { set(false) }()

	t := time.NewTimer(time.Hour) // reset by restart before anyone waits on it
	defer t.Stop()
	var steps []time.Duration
	i := 0
	restart := func() {
		steps = d.Pattern().Timing()
		i = 0
		set(true)
		t.Reset(steps[0])
	}
	select { // a Set before Run is already in d.p
	case <-d.wake:
	default:
	}
	restart()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.wake:
			restart()
		case <-t.C:
			i = (i + 1) % len(steps)
			set(i%2 == 0)
			t.Reset(steps[i])
		}
	}
}
