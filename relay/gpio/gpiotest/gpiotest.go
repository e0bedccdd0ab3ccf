// Package gpiotest holds fakes of relay/gpio's Input and Output for logic tests.
//
// They behave like the kernel lines as relay/gpio presents them: an Input reports a Change only
// when its level really changes (the kernel reports edges, not levels), through the same
// non-blocking drop-oldest gpio.Queue as the real line; Close closes Changes. An Output records
// every level it is driven to, with time.Now() (fake time inside a testing/synctest bubble).
//
// Misuse fails the test instead of passing silently: reading or driving a line after Close, or
// injecting an edge into a closed input, is reported with t.Errorf.
package gpiotest

import (
	"sync"
	"testing"
	"time"

	"github.com/shopkit/relay/relay/gpio"
)

// Input is a fake gpio.Input whose level the test drives with Set.
type Input struct {
	t       testing.TB
	q       *gpio.Queue
	mu      sync.Mutex
	active  bool
	closed  bool
	readErr error
	seq     uint32
	reads   int
}

var _ gpio.Input = (*Input)(nil)

// NewInput returns a fake input at level active, with a queue of queueSize
// (gpio.DefaultQueueSize when < 1).
func NewInput(t testing.TB, active bool, queueSize int) *Input {
	t.Helper()
	return &Input{t: t, q: gpio.NewQueue(queueSize), active: active}
}

// Set drives the line to active. Like the kernel, it reports a Change only when the level
// changes, and never blocks (a slow consumer loses the oldest change, counted in Dropped).
func (in *Input) Set(active bool) {
	in.t.Helper()
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		in.t.Errorf("gpiotest: Set(%v) on a closed input", active)
		return
	}
	if in.active == active {
		return
	}
	in.active = active
	in.seq++
	in.q.Offer(gpio.Change{Active: active, Time: time.Duration(in.seq) * time.Millisecond, Seqno: in.seq})
}

// Glitch reports a change to active and straight back, as a bounce the kernel debounce let
// through would look.
func (in *Input) Glitch() {
	in.t.Helper()
	in.mu.Lock()
	now := in.active
	in.mu.Unlock()
	in.Set(!now)
	in.Set(now)
}

// FailReads makes Active return err (nil: succeed again), as a vanished chip would.
func (in *Input) FailReads(err error) {
	in.mu.Lock()
	in.readErr = err
	in.mu.Unlock()
}

// Reads is how many times Active was called.
func (in *Input) Reads() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.reads
}

// Active implements gpio.Input.
func (in *Input) Active() (bool, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.reads++
	if in.closed {
		in.t.Errorf("gpiotest: Active on a closed input")
		return false, gpio.ErrClosed
	}
	if in.readErr != nil {
		return false, in.readErr
	}
	return in.active, nil
}

// Changes implements gpio.Input.
func (in *Input) Changes() <-chan gpio.Change { return in.q.C() }

// Dropped implements gpio.Input.
func (in *Input) Dropped() uint64 { return in.q.Dropped() }

// Close implements gpio.Input: it closes Changes. A second Close is allowed, like the real one.
func (in *Input) Close() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.closed = true
	in.q.Close()
	return nil
}

// Closed reports whether Close was called.
func (in *Input) Closed() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.closed
}

// Level is one level an Output was driven to, and when.
type Level struct {
	On bool
	At time.Time
}

// Output is a fake gpio.Output that records its level history.
type Output struct {
	t       testing.TB
	mu      sync.Mutex
	history []Level
	closed  bool
	setErr  error
	changed chan struct{}
}

var _ gpio.Output = (*Output)(nil)

// NewOutput returns a fake output whose line starts at initial (recorded as the first Level).
func NewOutput(t testing.TB, initial bool) *Output {
	t.Helper()
	return &Output{t: t, history: []Level{{On: initial, At: time.Now()}}, changed: make(chan struct{}, 1)}
}

// Set implements gpio.Output. After FailSets it returns that error and records nothing.
func (o *Output) Set(on bool) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		o.t.Errorf("gpiotest: Set(%v) on a closed output", on)
		return gpio.ErrClosed
	}
	if o.setErr != nil {
		return o.setErr
	}
	o.history = append(o.history, Level{On: on, At: time.Now()})
	select {
	case o.changed <- struct{}{}:
	default:
	}
	return nil
}

// FailSets makes Set return err (nil: succeed again).
func (o *Output) FailSets(err error) {
	o.mu.Lock()
	o.setErr = err
	o.mu.Unlock()
}

// Close implements gpio.Output.
func (o *Output) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	return nil
}

// Closed reports whether Close was called.
func (o *Output) Closed() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closed
}

// History returns a copy of every level driven so far, the initial level first.
func (o *Output) History() []Level {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]Level(nil), o.history...)
}

// On is the current level.
func (o *Output) On() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.history[len(o.history)-1].On
}

// Changed is signalled (capacity 1, coalescing) after each successful Set.
func (o *Output) Changed() <-chan struct{} { return o.changed }
