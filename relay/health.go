package relay

import (
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// Component is a part of the box that reports its health.
type Component string

const (
	ComponentMQTT   Component = "mqtt"
	ComponentSignal Component = "signal"
	ComponentModem  Component = "modem"
	ComponentOutbox Component = "outbox"
	ComponentPower  Component = "power"
)

// State is a component's health, in order of severity.
type State int

const (
	StateOK          State = iota
	StateStarting          // not ready yet
	StateDegraded          // working around a failure; messages are buffered
	StateStaffNeeded       // will not get better without a person (captcha, unregistered, modem dead, outbox quarantined)
)

var stateNames = [...]string{"ok", "starting", "degraded", "staff_needed"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "invalid"
}

// Overall is the box's state on the status topic (contract v1).
type Overall string

const (
	Online       Overall = "online"
	Degraded     Overall = "degraded"
	OnBattery    Overall = "on_battery"
	ShuttingDown Overall = "shutting_down"
)

// Indicator is what the LED shows: the most urgent thing a person should know.
type Indicator string

const (
	IndicatorHealthy      Indicator = "healthy"
	IndicatorStarting     Indicator = "starting"
	IndicatorDegraded     Indicator = "degraded"
	IndicatorStaffNeeded  Indicator = "staff_needed"
	IndicatorOnBattery    Indicator = "on_battery"
	IndicatorShuttingDown Indicator = "shutting_down"
)

// ComponentHealth is one component's last report.
type ComponentHealth struct {
	State  State     `json:"-"`
	Name   string    `json:"state"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since"`
}

// Summary is the rolled-up health: what the status topic, sd_notify STATUS, relayctl and the LED
// show.
type Summary struct {
	Overall    Overall
	Indicator  Indicator
	Components map[Component]ComponentHealth
}

// Line is a one-line summary for sd_notify STATUS and logs.
func (s Summary) Line() string {
	line := string(s.Overall)
	for _, c := range slices.Sorted(maps.Keys(s.Components)) {
		h := s.Components[c]
		if h.State != StateOK {
			line += "; " + string(c) + " " + h.State.String()
			if h.Reason != "" {
				line += " (" + h.Reason + ")"
			}
		}
	}
	return line
}

// Health is the one tracker every component reports to. Reports that do not change a
// component's state or reason are free; subscribers hear only changes (log-on-change for
// flapping hardware).
type Health struct {
	mu           sync.Mutex
	now          func() time.Time
	comps        map[Component]ComponentHealth
	onBattery    bool
	shuttingDown bool
	subs         []func(Summary)

	seq       uint64     // changes so far (under mu)
	notifyMu  sync.Mutex // serialises subscriber calls
	delivered uint64     // seq of the last summary handed to subscribers (under notifyMu)
}

// NewHealth returns a tracker with no components (all healthy).
func NewHealth(now func() time.Time) *Health {
	if now == nil {
		now = time.Now
	}
	return &Health{now: now, comps: map[Component]ComponentHealth{}}
}

// Subscribe calls fn with the new summary after every change. fn must not block for long: it
// runs on the reporter's goroutine (hand off to a channel for slow work).
func (h *Health) Subscribe(fn func(Summary)) {
	h.mu.Lock()
	h.subs = append(h.subs, fn)
	h.mu.Unlock()
}

// Set records a component's state.
func (h *Health) Set(c Component, s State, reason string) {
	h.mu.Lock()
	old, ok := h.comps[c]
	if ok && old.State == s && old.Reason == reason {
		h.mu.Unlock()
		return
	}
	h.comps[c] = ComponentHealth{State: s, Name: s.String(), Reason: reason, Since: h.now()}
	h.notifyLocked()
}

// SetOnBattery records mains power lost (true) or back (false).
func (h *Health) SetOnBattery(on bool) {
	h.mu.Lock()
	if h.onBattery == on {
		h.mu.Unlock()
		return
	}
	h.onBattery = on
	h.notifyLocked()
}

// SetShuttingDown records that a clean shutdown has begun.
func (h *Health) SetShuttingDown() {
	h.mu.Lock()
	if h.shuttingDown {
		h.mu.Unlock()
		return
	}
	h.shuttingDown = true
	h.notifyLocked()
}

// notifyLocked computes the summary, releases the lock and calls the subscribers. Calls are
// serialised, and a summary older than one already delivered is dropped, so two reporters
// racing cannot leave the LED or the status line on the older state.
func (h *Health) notifyLocked() {
	h.seq++
	seq := h.seq
	sum := h.summaryLocked()
	subs := slices.Clone(h.subs)
	h.mu.Unlock()
	h.notifyMu.Lock()
	defer h.notifyMu.Unlock()
	if seq <= h.delivered {
		return
	}
	h.delivered = seq
	for _, fn := range subs {
		fn(sum)
	}
}

// Summary returns the current roll-up.
func (h *Health) Summary() Summary {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.summaryLocked()
}

func (h *Health) summaryLocked() Summary {
	worst := StateOK
	for _, c := range h.comps {
		worst = max(worst, c.State)
	}
	sum := Summary{Components: maps.Clone(h.comps)}
	switch {
	case h.shuttingDown:
		sum.Overall = ShuttingDown
	case h.onBattery:
		sum.Overall = OnBattery
	case worst == StateOK:
		sum.Overall = Online
	default:
		sum.Overall = Degraded
	}
	switch {
	case h.shuttingDown:
		sum.Indicator = IndicatorShuttingDown
	case worst == StateStaffNeeded:
		sum.Indicator = IndicatorStaffNeeded
	case h.onBattery:
		sum.Indicator = IndicatorOnBattery
	case worst == StateDegraded:
		sum.Indicator = IndicatorDegraded
	case worst == StateStarting:
		sum.Indicator = IndicatorStarting
	default:
		sum.Indicator = IndicatorHealthy
	}
	return sum
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler) // Enabled is false: nothing is formatted to be thrown away
	}
	return l
}
