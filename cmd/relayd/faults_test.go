package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shopkit/relay/signalbridge/signaltest"
)

// streamJob is one job of a fault test's stream: seq orders one recipient's jobs.
type streamJob struct {
	id, to string
	seq    int
}

// newStream makes perRecip jobs for each of nRecip numbers, interleaved.
func newStream(tag string, base, nRecip, perRecip int) []streamJob {
	var out []streamJob
	for k := range perRecip {
		for r := range nRecip {
			out = append(out, streamJob{id: fmt.Sprintf("%s-%d-%d", tag, r, k), to: num(base, r), seq: k})
		}
	}
	return out
}

// publishStream publishes the jobs in order, each acknowledged by the broker (PUBACK) before the
// next, and calls at(i) before job i when it is set.
func publishStream(t *testing.T, s *shop, jobs []streamJob, at map[int]func()) {
	t.Helper()
	for i, j := range jobs {
		if f := at[i]; f != nil {
			f()
		}
		s.job(t, textJob(j.id, j.to))
	}
}

// waitAllTerminal waits until every job has at least one terminal event.
func waitAllTerminal(t *testing.T, s *shop, jobs []streamJob, within time.Duration) {
	t.Helper()
	want := map[string]bool{}
	for _, j := range jobs {
		want[j.id] = true
	}
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		ms, wake := s.snapshot()
		done := map[string]bool{}
		for _, m := range ms {
			if want[m.ev.ID] && terminal(m.ev.Event) {
				done[m.ev.ID] = true
			}
		}
		var missing []string
		for _, j := range jobs {
			if !done[j.id] {
				missing = append(missing, j.id)
			}
		}
		if len(missing) == 0 {
			return
		}
		select {
		case <-wake:
		case <-deadline.C:
			for _, id := range missing[:min(5, len(missing))] {
				t.Logf("events of %s: %+v", id, s.eventsFor(id))
			}
			t.Errorf("waited %v: %d of %d jobs have no terminal event: %v", within, len(missing), len(jobs), missing)
			return
		}
	}
}

// dupInfo describes a job the fake saw sent more than once.
type dupInfo struct {
	id     string
	sends  []int64 // fake timestamps of the SUCCESS sends
	events []string
}

// checkStream asserts the delivery rules over a finished stream: each job exactly one kind of
// terminal event, and it is sent (events are at least once, so a repeated identical event is
// allowed: the backend keys them by id and event); none lost; each recipient's sends in
// acceptance order. It returns the jobs sent more than once, for the caller to judge against
// the at-least-once window of its fault.
func checkStream(t *testing.T, s *shop, jobs []streamJob, sends []signaltest.Sent) []dupInfo {
	t.Helper()
	byID := map[string]streamJob{}
	for _, j := range jobs {
		byID[j.id] = j
	}
	kinds := map[string][]string{}
	for _, ev := range s.events() {
		if _, ok := byID[ev.ID]; ok && terminal(ev.Event) && !slices.Contains(kinds[ev.ID], ev.Event) {
			kinds[ev.ID] = append(kinds[ev.ID], ev.Event)
		}
	}
	count := map[string][]int64{}
	last := map[string]streamJob{}
	for _, x := range successes(sends) {
		id := jobOf(x)
		j, ok := byID[id]
		if !ok {
			continue
		}
		if x.Recipient != j.to {
			t.Errorf("job %s sent to %s, want %s", id, x.Recipient, j.to)
		}
		count[id] = append(count[id], x.Timestamp)
		if p, ok := last[j.to]; ok && p.seq > j.seq {
			t.Errorf("order broken for %s: %s sent after %s", j.to, id, p.id)
		}
		last[j.to] = j
	}
	var dups []dupInfo
	lost := 0
	for _, j := range jobs {
		if k := kinds[j.id]; len(k) != 1 || k[0] != "sent" {
			t.Errorf("job %s: terminal events %v, want exactly [sent]; fake sends at %v", j.id, k, count[j.id])
		}
		switch n := len(count[j.id]); {
		case n == 0:
			lost++
			if lost <= 10 {
				t.Errorf("job %s was acknowledged by the broker but never sent", j.id)
			}
		case n > 1:
			var evs []string
			for _, ev := range s.eventsFor(j.id) {
				evs = append(evs, ev.Event)
			}
			dups = append(dups, dupInfo{id: j.id, sends: count[j.id], events: evs})
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d jobs lost", lost, len(jobs))
	}
	return dups
}

// TestE2E_KillRelayd: relayd is killed with SIGKILL while jobs stream in and sends are in flight,
// jobs keep arriving at the broker while it is down, and it restarts on the same state. Every job
// the broker acknowledged is sent; a job sent twice must have been in flight at the kill (its
// first send before the kill, no sent event published before the kill).
func TestE2E_KillRelayd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, opts{})
	log := &sendLog{}
	stop := log.watch(e.ctl)
	defer stop()
	jobs := newStream("kr", 5, 6, 40)
	var killedAt time.Time
	var sentBeforeKill map[string]bool
	publishStream(t, e.shop, jobs, map[int]func(){
		80: func() {
			// Kill while the dispatcher is busy: wait for some sends first.
			e.shop.wait(t, long, "sends under way", func(ms []message) bool {
				n := 0
				for _, m := range ms {
					if m.ev.Event == "sent" && strings.HasPrefix(m.ev.ID, "kr-") {
						n++
					}
				}
				return n >= 10
			})
			e.d.kill()
			killedAt = time.Now()
			sentBeforeKill = map[string]bool{}
			for _, ev := range e.shop.events() {
				if ev.Event == "sent" {
					sentBeforeKill[ev.ID] = true
				}
			}
			log.poll(e.ctl) // the orphaned signal-cli still holds the sends made before the kill
			e.killFakes()
		},
		160: func() { e.start() },
	})
	waitAllTerminal(t, e.shop, jobs, 60*time.Second)
	stop()
	dups := checkStream(t, e.shop, jobs, log.list())
	for _, d := range dups {
		// The fake's timestamps run up to a few ms ahead of the clock in a burst (each send of
		// an account gets a distinct millisecond).
		if time.UnixMilli(d.sends[0]).After(killedAt.Add(100*time.Millisecond)) || sentBeforeKill[d.id] {
			t.Errorf("job %s sent %d times outside the at-least-once window of the kill at %s (first send %s, sent event before the kill: %v)",
				d.id, len(d.sends), killedAt.Format(time.RFC3339Nano), time.UnixMilli(d.sends[0]).Format(time.RFC3339Nano), sentBeforeKill[d.id])
		}
	}
	if len(dups) > 8 { // at most one send in flight per worker (policy.concurrency)
		t.Errorf("%d jobs sent twice after one kill, want at most 8 (the sends in flight)", len(dups))
	}
	t.Logf("%d jobs, %d SUCCESS sends, %d sent twice (in flight at the kill)", len(jobs), len(successes(log.list())), len(dups))
}

// TestE2E_BrokerRestart: Mosquitto is restarted mid-stream; nothing acknowledged is lost, no job
// is sent twice (signal-cli never failed), order is kept.
func TestE2E_BrokerRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, opts{})
	log := &sendLog{}
	stop := log.watch(e.ctl)
	defer stop()
	jobs := newStream("br", 6, 6, 30)
	publishStream(t, e.shop, jobs, map[int]func(){
		60:  func() { e.broker.Restart() },
		120: func() { e.broker.Restart() },
	})
	waitAllTerminal(t, e.shop, jobs, 60*time.Second)
	stop()
	if dups := checkStream(t, e.shop, jobs, log.list()); len(dups) != 0 {
		t.Errorf("jobs sent more than once across broker restarts: %+v", dups)
	}
}

// TestE2E_SignalCLIFaults: signal-cli hangs (--fault=hang-after=N on its first start: it stops
// answering, like a wedged JVM) and is later killed with SIGKILL mid-stream. The supervisor
// restarts it each time and every job ends sent; duplicates only for sends the hung or killed
// process had taken without answering.
func TestE2E_SignalCLIFaults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, opts{firstFakeFlags: []string{"--fault=hang-after=60"}})
	log := &sendLog{}
	stop := log.watch(e.ctl)
	defer stop()
	first := e.fakePids()
	jobs := newStream("sc", 7, 6, 30)
	var killed int
	publishStream(t, e.shop, jobs, map[int]func(){
		90: func() {
			// By now the first instance hung and was replaced.
			waitCond(t, long, "the hung signal-cli to be replaced", func() bool {
				p := e.fakePids()
				return len(p) == 1 && !slices.Equal(p, first)
			})
			pids := e.fakePids()
			// Hang it so the list read next is final, then kill it.
			e.ctl.must(t, signaltest.ControlCommand{Op: "hang", On: true})
			log.poll(e.ctl)
			killed = pids[0]
			if err := syscall.Kill(killed, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		},
	})
	waitAllTerminal(t, e.shop, jobs, 60*time.Second)
	stop()
	pids := e.fakePids()
	if len(pids) != 1 || pids[0] == killed || slices.Equal(pids, first) {
		t.Errorf("signal-cli processes now %v; want one new one (first %v, killed %d)", pids, first, killed)
	}
	dups := checkStream(t, e.shop, jobs, log.list())
	if len(dups) > 16 { // at most the sends in flight (concurrency 8) at each of the two faults
		t.Errorf("%d jobs sent twice, want at most 16", len(dups))
	}
	starts := strings.Count(readFile(t, e.dir+"/fake.pids"), "\n")
	t.Logf("%d jobs, %d signal-cli starts, %d jobs sent twice (taken by a hung or killed signal-cli)", len(jobs), starts, len(dups))
	if starts < 3 {
		t.Errorf("signal-cli started %d times, want at least 3 (first, after the hang, after the kill)", starts)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var _ = strconv.Itoa

// knownBug skips a test that fails because of a reported, not yet fixed bug in relay code,
// unless RELAY_E2E_KNOWN_BUGS=1. The assertions stay at full strength: remove the call when the
// fix lands.
func knownBug(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("RELAY_E2E_KNOWN_BUGS") != "1" {
		t.Skip("SKIP (known bug, set RELAY_E2E_KNOWN_BUGS=1 to run): " + what)
	}
}
