package modem_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/shopkit/relay/modem"
	"github.com/shopkit/relay/modem/modemtest"
)

// With the network refusing every SMS, each queued job fails the same way on every retry: one
// line per kind of failure per window, a new kind at once, and the count of what was held back
// with the next line.
func TestModem_SendFailuresAreRateLimited(t *testing.T) {
	logs := &logCounter{}
	clock := newFakeClock()
	r := newRig(t, modemtest.Options{}, func(c *modem.Config) {
		c.Logger = slog.New(logs)
		c.Now = clock.Now
	})
	r.waitReady()
	send := func(code int) {
		t.Helper()
		r.sim.FailPart(1, code)
		if _, err := r.m.SendSMS(context.Background(), "+4915112345678", "hello"); !modem.IsCMS(err, code) {
			t.Fatalf("send = %v; want +CMS ERROR %d", err, code)
		}
	}
	for range 5 {
		send(331)
	}
	if n := logs.count("modem: send failed"); n != 1 {
		t.Errorf("5 alike failures logged %d times, want 1", n)
	}
	send(500) // a different failure is news
	if n := logs.count("modem: send failed"); n != 2 {
		t.Errorf("after a new kind of failure: logged %d times, want 2", n)
	}
	clock.Advance(11 * time.Minute)
	send(331)
	if n := logs.count("modem: send failed"); n != 3 {
		t.Errorf("after the window: logged %d times, want 3", n)
	}
	if got := logs.last("modem: send failed", "suppressed"); got != "4" {
		t.Errorf("suppressed = %q, want 4", got)
	}
	if h := r.m.Health(); h.SendErrors != 7 {
		t.Errorf("SendErrors = %d, want 7 (the count is not rate-limited)", h.SendErrors)
	}
}

// A flapping USB link (unplugged and back, again and again) climbs the ladder each time; each
// step is counted each time but logged once per window.
func TestModem_FlappingLinkIsLoggedOnce(t *testing.T) {
	logs := &logCounter{}
	r := newRig(t, modemtest.Options{}, func(c *modem.Config) { c.Logger = slog.New(logs) })
	r.waitReady()
	const flaps = 3
	for i := 1; i <= flaps; i++ {
		r.sim.Unplug()
		waitFor(t, "the unplug noticed", 5*time.Second, func() bool { return r.m.Health().State != modem.StateReady })
		if err := r.sim.Replug(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "recovered", 10*time.Second, func() bool {
			h := r.m.Health()
			return h.State == modem.StateReady && h.Recoveries[modem.StepReopen] == i
		})
	}
	for _, msg := range []string{"modem: recovery step reopen", "modem: recovered reopen"} {
		if n := logs.count(msg); n != 1 {
			t.Errorf("%q logged %d times over %d flaps, want 1", msg, n, flaps)
		}
	}
}

// A babbling modem sending undecodable status reports: counted each, logged once.
func TestModem_BadPDUFloodIsLoggedOnce(t *testing.T) {
	logs := &logCounter{}
	r := newRig(t, modemtest.Options{}, func(c *modem.Config) { c.Logger = slog.New(logs) })
	r.waitReady()
	const n = 20
	for range n {
		r.sim.Garbage([]byte("\r\n+CDS: 3\r\n00FF\r\n"))
	}
	waitFor(t, "bad PDUs counted", 5*time.Second, func() bool { return r.m.Health().BadPDUs == n })
	if got := logs.count("modem: undecodable PDU"); got != 1 {
		t.Errorf("%d bad PDUs logged %d times, want 1", n, got)
	}
	if h := r.m.Health(); h.State != modem.StateReady {
		t.Errorf("state = %s", h.State)
	}
}

// Registration flapping between home and searching: the network line goes out at most once per
// window, and the state the network settles in is logged once the window has passed.
func TestModem_FlappingRegistrationIsRateLimited(t *testing.T) {
	logs := &logCounter{}
	clock := newFakeClock()
	r := newRig(t, modemtest.Options{}, func(c *modem.Config) {
		c.Logger = slog.New(logs)
		c.Now = clock.Now
		c.HealthEvery = 20 * time.Millisecond
	})
	r.waitReady()
	if n := logs.count("modem: network"); n != 1 {
		t.Fatalf("network logged %d times at start, want 1", n)
	}
	for range 10 {
		r.sim.SetRegistration(2) // searching
		r.sim.SetRegistration(1) // home
	}
	r.sim.SetRegistration(3) // denied: where it settles
	waitFor(t, "denied", 5*time.Second, func() bool { return r.m.Health().Registration == modem.RegDenied })
	polls := r.sim.CountCommand("AT+CSQ")
	waitFor(t, "more polls", 5*time.Second, func() bool { return r.sim.CountCommand("AT+CSQ") >= polls+2 })
	if n := logs.count("modem: network"); n != 1 {
		t.Errorf("21 registration changes logged %d times within the window, want 1 (the start)", n)
	}
	clock.Advance(2 * time.Minute)
	waitFor(t, "the settled state logged", 5*time.Second, func() bool { return logs.count("modem: network") == 2 })
	if got := logs.last("modem: network", "registration"); got != modem.RegDenied.String() {
		t.Errorf("logged registration %q, want %q", got, modem.RegDenied.String())
	}
	if got := logs.last("modem: network", "suppressed"); got == "" || got == "0" {
		t.Errorf("suppressed = %q, want the count held back", got)
	}
	polls = r.sim.CountCommand("AT+CSQ")
	waitFor(t, "more polls", 5*time.Second, func() bool { return r.sim.CountCommand("AT+CSQ") >= polls+3 })
	if n := logs.count("modem: network"); n != 2 {
		t.Errorf("a settled state logged %d times, want 2 in all", n)
	}
}
