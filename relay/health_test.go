package relay

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestQuietHours_Until(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	wrap := QuietHours{Start: 21 * time.Hour, End: 8 * time.Hour, Location: berlin}
	noon := QuietHours{Start: 12 * time.Hour, End: 14 * time.Hour, Location: berlin}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, berlin)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name  string
		q     QuietHours
		now   time.Time
		quiet bool
		until time.Time
	}{
		{"evening", wrap, at("2026-11-21 22:30"), true, at("2026-11-22 08:00")},
		{"just at start", wrap, at("2026-11-21 21:00"), true, at("2026-11-22 08:00")},
		{"early morning", wrap, at("2026-11-22 03:00"), true, at("2026-11-22 08:00")},
		{"at end", wrap, at("2026-11-22 08:00"), false, time.Time{}},
		{"day", wrap, at("2026-11-22 12:00"), false, time.Time{}},
		{"same-day window", noon, at("2026-11-22 13:00"), true, at("2026-11-22 14:00")},
		{"before same-day window", noon, at("2026-11-22 11:59"), false, time.Time{}},
		// 2027-03-28 is the spring-forward night in Berlin: 08:00 local is still 08:00 local.
		{"across DST", wrap, at("2027-03-27 23:00"), true, at("2027-03-28 08:00")},
		{"none", QuietHours{}, at("2026-11-21 23:00"), false, time.Time{}},
		// The window is read in the shop's zone, not the box's: 20:30 UTC is 21:30 in Berlin.
		{"utc input", wrap, time.Date(2026, 11, 21, 20, 30, 0, 0, time.UTC), true, at("2026-11-22 08:00")},
	}
	for _, tt := range tests {
		until, quiet := tt.q.Until(tt.now)
		if quiet != tt.quiet || !until.Equal(tt.until) {
			t.Errorf("%s: Until(%v) = %v, %v; want %v, %v", tt.name, tt.now, until, quiet, tt.until, tt.quiet)
		}
	}
}

func TestHealth_Summary(t *testing.T) {
	h := NewHealth(func() time.Time { return now0 })
	var heard []Summary
	h.Subscribe(func(s Summary) { heard = append(heard, s) })
	check := func(step string, overall Overall, ind Indicator) {
		t.Helper()
		s := h.Summary()
		if s.Overall != overall || s.Indicator != ind {
			t.Errorf("%s: got %s/%s, want %s/%s", step, s.Overall, s.Indicator, overall, ind)
		}
	}
	check("empty", Online, IndicatorHealthy)
	h.Set(ComponentSignal, StateStarting, "jvm starting")
	check("starting", Degraded, IndicatorStarting)
	h.Set(ComponentSignal, StateOK, "")
	h.Set(ComponentMQTT, StateDegraded, "broker unreachable")
	check("broker down", Degraded, IndicatorDegraded)
	h.SetOnBattery(true)
	check("on battery", OnBattery, IndicatorOnBattery)
	h.Set(ComponentSignal, StateStaffNeeded, "captcha")
	check("captcha on battery", OnBattery, IndicatorStaffNeeded)
	h.SetShuttingDown()
	check("shutting down", ShuttingDown, IndicatorShuttingDown)
	if got := h.Summary().Line(); got != "shutting_down; mqtt degraded (broker unreachable); signal staff_needed (captcha)" {
		t.Errorf("Line() = %q", got)
	}
	n := len(heard)
	h.Set(ComponentMQTT, StateDegraded, "broker unreachable") // no change: no notification
	h.SetOnBattery(true)
	if len(heard) != n {
		t.Errorf("repeated reports notified subscribers: %d → %d", n, len(heard))
	}
	if n != 6 {
		t.Errorf("subscribers heard %d changes, want 6", n)
	}
}

func TestHealth_ConcurrentReportsEndOnTheLatest(t *testing.T) {
	h := NewHealth(nil)
	var mu sync.Mutex
	var last Summary
	h.Subscribe(func(s Summary) { mu.Lock(); last = s; mu.Unlock() })
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := StateOK
			if i%2 == 0 {
				st = StateDegraded
			}
			h.Set(Component(fmt.Sprintf("c%d", i%5)), st, "")
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if got, want := last.Indicator, h.Summary().Indicator; got != want || len(last.Components) != len(h.Summary().Components) {
		t.Errorf("subscriber's last summary %v/%d components, tracker says %v/%d", got, len(last.Components), want, len(h.Summary().Components))
	}
}
