package main

// The end-to-end harness: relayd, the fake signal-cli and the modem simulator run as real
// processes built from this tree; Mosquitto is the real broker (relay/mqtt/mqtttest); a paho
// client plays the shop backend. Nothing here sleeps: every wait is on a message, a process or a
// polled condition with a deadline.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shopkit/relay/relay/mqtt/mqtttest"
	"github.com/shopkit/relay/signalbridge/signaltest"
)

const (
	shopAccount = "+4915100000000"
	shopName    = "E2E Shop"
	prefix      = "relay"
	// long is a guard against hanging, not a timing assumption.
	long = 30 * time.Second
)

// binDir holds the binaries TestMain's directory receives on first use (see buildBinaries).
var binDir string

var build struct {
	once                   sync.Once
	relayd, fake, modemSim string
	err                    error
}

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "relayd-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = d
	code := m.Run()
	_ = os.RemoveAll(d)
	os.Exit(code)
}

// binaries builds relayd, fake-signal-cli and modem-sim (CGO_ENABLED=0, like `make build`)
// once per test binary, on first use, so the plain unit tests do not pay for it.
func binaries(t *testing.T) (relayd, fake, modemSim string) {
	t.Helper()
	build.once.Do(func() {
		gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(gobin); err != nil {
			if gobin, err = exec.LookPath("go"); err != nil {
				build.err = fmt.Errorf("the go tool is not available: %w", err)
				return
			}
		}
		cmd := exec.Command(gobin, "build", "-o", binDir+"/", "./cmd/relayd",
			"./signalbridge/signaltest/cmd/fake-signal-cli", "./modem/modemtest/cmd/modem-sim")
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		build.relayd = filepath.Join(binDir, "relayd")
		build.fake = filepath.Join(binDir, "fake-signal-cli")
		build.modemSim = filepath.Join(binDir, "modem-sim")
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.relayd, build.fake, build.modemSim
}

// ---- configuration ----

// opts shape one relayd under test.
type opts struct {
	quietHours     string   // policy.quiet_hours ("" none)
	modem          bool     // start a modem-sim and enable [modem]
	firstFakeFlags []string // extra fake-signal-cli flags on the first start only (faults)
}

// env is one relayd with its broker, fake signal-cli, optional modem sim and a shop client.
type env struct {
	t      *testing.T
	dir    string // short path: Unix sockets live here
	o      opts
	broker *mqtttest.Broker
	ctl    *fakeCtl
	shop   *shop
	modem  *modemSim
	d      *daemon
	conf   string
}

// newEnv starts Mosquitto (skipping visibly without it), the shop client and relayd, and
// waits until relayd reports online.
func newEnv(t *testing.T, o opts) *env {
	t.Helper()
	relayd, fake, simBin := binaries(t)
	b := mqtttest.Start(t, mqtttest.Options{})
	dir, err := os.MkdirTemp("", "re2e-")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, o: o, broker: b}
	t.Cleanup(func() {
		e.killFakes()
		if !t.Failed() {
			_ = os.RemoveAll(dir)
		} else {
			t.Logf("state kept in %s", dir)
		}
	})
	if err := os.MkdirAll(filepath.Join(dir, "signal-cli", "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	acc := fmt.Sprintf(`{"accounts":[{"number":%q}]}`, shopAccount)
	if err := os.WriteFile(filepath.Join(dir, "signal-cli", "data", "accounts.json"), []byte(acc), 0o600); err != nil {
		t.Fatal(err)
	}
	e.ctl = &fakeCtl{path: filepath.Join(dir, "ctl.sock")}
	e.writeWrapper(fake)
	if o.modem {
		e.modem = startModemSim(t, simBin, filepath.Join(dir, "modem"))
	}
	e.conf = filepath.Join(dir, "relay.toml")
	if err := os.WriteFile(e.conf, []byte(e.config()), 0o600); err != nil {
		t.Fatal(err)
	}
	e.shop = newShop(t, b.URL(), "shop-"+filepath.Base(dir))
	e.d = &daemon{t: t, bin: relayd, conf: e.conf, logPath: filepath.Join(dir, "relayd.log")}
	t.Cleanup(func() {
		e.d.stop()
		if t.Failed() {
			e.d.dumpLog(80)
		}
	})
	e.start()
	return e
}

func (e *env) config() string {
	modem := "[modem]\nenabled = false\n"
	if e.modem != nil {
		modem = fmt.Sprintf("[modem]\nenabled = true\ndevice = %q\nhealth_interval = \"5s\"\n", e.modem.link)
	}
	return fmt.Sprintf(`[shop]
name = %q
timezone = "UTC"
default_lang = "en"

[mqtt]
broker = %q
client_id = "relay-e2e"
topic_prefix = %q
keepalive = "5s"
max_reconnect_interval = "1s"

[signal]
account = %q
cli = %q
config_dir = %q
socket = %q
start_timeout = "15s"
call_timeout = "2s"
probe_interval = "1s"

[buffer]
dir = %q

[policy]
require_consent = true
quiet_hours = %q
rate_per_minute = 6000
rate_burst = 1000
concurrency = 8
retry_min = "200ms"
retry_max = "1s"

%s
[control]
socket = %q

[metrics]
listen = ""

[log]
level = "info"
`, shopName, e.broker.URL(), prefix, shopAccount,
		filepath.Join(e.dir, "signal-cli.sh"), filepath.Join(e.dir, "signal-cli"), filepath.Join(e.dir, "signal.sock"),
		filepath.Join(e.dir, "outbox"), e.o.quietHours, modem, filepath.Join(e.dir, "control.sock"))
}

// writeWrapper writes the signal.cli script: it records its pid (the exec keeps it) and adds the
// first-start-only faults once.
func (e *env) writeWrapper(fake string) {
	q := func(ss []string) string {
		var b strings.Builder
		for _, s := range ss {
			b.WriteString(" '" + strings.ReplaceAll(s, "'", `'\''`) + "'")
		}
		return b.String()
	}
	script := fmt.Sprintf(`#!/bin/sh
echo $$ >> %[1]s/fake.pids
if [ ! -e %[1]s/fake.started ]; then
  : > %[1]s/fake.started
  set -- "$@"%[2]s
fi
exec %[3]s --fake-account=%[4]s --fake-control=%[5]s --fake-receipt-after=300ms "$@"
`, e.dir, q(e.o.firstFakeFlags), fake, shopAccount, e.ctl.path)
	if err := os.WriteFile(filepath.Join(e.dir, "signal-cli.sh"), []byte(script), 0o700); err != nil {
		e.t.Fatal(err)
	}
}

// start starts relayd and waits for an online status published after the start.
func (e *env) start() {
	e.t.Helper()
	mark := e.shop.mark()
	e.d.start()
	e.shop.waitStatus(e.t, mark, long, "online")
}

// fakePids lists the fake signal-cli processes started so far that are still ours and alive.
func (e *env) fakePids() []int {
	b, _ := os.ReadFile(filepath.Join(e.dir, "fake.pids"))
	var out []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !bytes.Contains(cl, []byte(e.ctl.path)) {
			continue // gone, or the pid was reused by someone else
		}
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if i := bytes.LastIndexByte(st, ')'); i > 0 && len(st) > i+2 && st[i+2] == 'Z' {
				continue // a zombie waiting for its parent
			}
		}
		out = append(out, pid)
	}
	return out
}

// killFakes ends fake signal-cli processes left behind (relayd killed with SIGKILL does not
// take its child along; systemd's cgroup would).
func (e *env) killFakes() {
	for _, pid := range e.fakePids() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// ---- relayd ----

type daemon struct {
	t       *testing.T
	bin     string
	conf    string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	runs int
}

func (d *daemon) start() {
	d.t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		d.t.Fatal(err)
	}
	d.runs++
	fmt.Fprintf(logf, "==== relayd start %d ====\n", d.runs)
	cmd := exec.Command(d.bin, "run", "--config", d.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	logf.Close()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	d.cmd, d.done = cmd, done
}

// kill sends SIGKILL and waits for the process to be gone.
func (d *daemon) kill() { d.signal(syscall.SIGKILL) }

// stop sends SIGTERM (a clean stop) and waits; SIGKILL after 20 s.
func (d *daemon) stop() { d.signal(syscall.SIGTERM) }

func (d *daemon) signal(sig syscall.Signal) {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.cmd = nil
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		d.t.Errorf("relayd did not stop within 20s of %v; killing it", sig)
		_ = cmd.Process.Kill()
		<-done
	}
}

func (d *daemon) dumpLog(lines int) {
	b, _ := os.ReadFile(d.logPath)
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	d.t.Logf("relayd log (last %d lines of %s):\n%s", len(ls), d.logPath, strings.Join(ls, "\n"))
}

// ---- the fake's control socket ----

type fakeCtl struct{ path string }

// do sends one control command, retrying the connection until the deadline (the fake may be
// restarting).
func (c *fakeCtl) do(cmd signaltest.ControlCommand, within time.Duration) (signaltest.ControlReply, error) {
	deadline := time.Now().Add(within)
	line, _ := json.Marshal(cmd)
	var lastErr error
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		rep, err := c.once(line)
		if err == nil {
			if !rep.OK {
				return rep, fmt.Errorf("control %s: %s", cmd.Op, rep.Error)
			}
			return rep, nil
		}
		lastErr = err
		if time.Now().After(deadline) {
			return rep, fmt.Errorf("control %s: %w", cmd.Op, lastErr)
		}
		<-tick.C
	}
}

func (c *fakeCtl) once(line []byte) (signaltest.ControlReply, error) {
	var rep signaltest.ControlReply
	conn, err := net.DialTimeout("unix", c.path, time.Second)
	if err != nil {
		return rep, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(append(line, '\n')); err != nil {
		return rep, err
	}
	r := bufio.NewReaderSize(conn, 1<<20)
	b, err := r.ReadBytes('\n')
	if err != nil {
		return rep, err
	}
	return rep, json.Unmarshal(b, &rep)
}

func (c *fakeCtl) must(t *testing.T, cmd signaltest.ControlCommand) signaltest.ControlReply {
	t.Helper()
	rep, err := c.do(cmd, long)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// sent lists the current fake instance's sends (every attempt, any result type).
func (c *fakeCtl) sent(t *testing.T) []signaltest.Sent {
	t.Helper()
	return c.must(t, signaltest.ControlCommand{Op: "sent"}).Sent
}

func (c *fakeCtl) outcome(t *testing.T, to, typ, token string) {
	t.Helper()
	c.must(t, signaltest.ControlCommand{Op: "outcome", Recipient: to, Type: typ, Token: token})
}

// text injects a customer's message to the shop and returns its Signal timestamp.
func (c *fakeCtl) text(t *testing.T, from, text string) int64 {
	t.Helper()
	return c.must(t, signaltest.ControlCommand{Op: "text", Account: shopAccount, Number: from, Text: text}).Timestamp
}

// sendLog accumulates the sends of every fake instance (the list lives in the fake's memory and
// dies with it): poll merges the current instance's list in, keyed by timestamp, recipient and
// text, in the fake's order.
type sendLog struct {
	mu   sync.Mutex
	seen map[string]bool
	all  []signaltest.Sent
}

func (l *sendLog) merge(ss []signaltest.Sent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	for _, s := range ss {
		k := fmt.Sprintf("%d|%s|%s", s.Timestamp, s.Recipient, s.Text)
		if !l.seen[k] {
			l.seen[k] = true
			l.all = append(l.all, s)
		}
	}
}

// list returns the merged sends ordered by the fake's timestamps (per account they increase).
func (l *sendLog) list() []signaltest.Sent {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.all)
	slices.SortStableFunc(out, func(a, b signaltest.Sent) int { return int(a.Timestamp - b.Timestamp) })
	return out
}

// poll merges the current instance's list; a fake that is restarting is skipped.
func (l *sendLog) poll(c *fakeCtl) {
	if rep, err := c.do(signaltest.ControlCommand{Op: "sent"}, 0); err == nil {
		l.merge(rep.Sent)
	}
}

// watch polls every 100 ms until the returned stop is called (then polls once more).
func (l *sendLog) watch(c *fakeCtl) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			l.poll(c)
			select {
			case <-quit:
				l.poll(c)
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit); <-done }) }
}

// ---- the shop backend ----

// event is a P/events payload (contract v1).
type event struct {
	ID              string `json:"id"`
	Event           string `json:"event"`
	At              string `json:"at"`
	To              string `json:"to"`
	Channel         string `json:"channel"`
	Attempt         int    `json:"attempt"`
	SignalTimestamp int64  `json:"signal_timestamp"`
	SMSParts        int    `json:"sms_parts"`
	NextAttemptAt   string `json:"next_attempt_at"`
	Source          string `json:"source"`
	Error           *struct {
		Code   string `json:"code"`
		Field  string `json:"field"`
		Detail string `json:"detail"`
	} `json:"error"`
}

func (e event) code() string {
	if e.Error == nil {
		return ""
	}
	return e.Error.Code
}

func (e event) at() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, e.At)
	return t
}

type message struct {
	topic    string
	payload  []byte
	received time.Time
	ev       event // for P/events
}

// shop is the backend: a paho client with a persistent session subscribed to events, inbound
// and status, that records every message in arrival order.
type shop struct {
	c paho.Client

	mu   sync.Mutex
	msgs []message
	wake chan struct{} // closed and replaced on every message
}

func newShop(t *testing.T, broker, id string) *shop {
	t.Helper()
	s := &shop{wake: make(chan struct{})}
	subs := map[string]byte{prefix + "/events": 1, prefix + "/inbound": 1, prefix + "/status": 1}
	opts := paho.NewClientOptions().AddBroker(broker).SetClientID(id).SetCleanSession(false).
		SetOrderMatters(true).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(200 * time.Millisecond).SetMaxReconnectInterval(500 * time.Millisecond).
		SetKeepAlive(5 * time.Second).SetWriteTimeout(10 * time.Second).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { s.add(m.Topic(), m.Payload()) }).
		SetOnConnectHandler(func(c paho.Client) { c.SubscribeMultiple(subs, nil) })
	s.c = paho.NewClient(opts)
	tok := s.c.Connect()
	if !tok.WaitTimeout(long) || tok.Error() != nil {
		t.Fatalf("shop client: connect: %v", tok.Error())
	}
	tok = s.c.SubscribeMultiple(subs, nil)
	if !tok.WaitTimeout(long) || tok.Error() != nil {
		t.Fatalf("shop client: subscribe: %v", tok.Error())
	}
	t.Cleanup(func() { s.c.Disconnect(100) })
	return s
}

func (s *shop) add(topic string, payload []byte) {
	m := message{topic: topic, payload: slices.Clone(payload), received: time.Now()}
	if topic == prefix+"/events" {
		_ = json.Unmarshal(payload, &m.ev)
	}
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	close(s.wake)
	s.wake = make(chan struct{})
	s.mu.Unlock()
}

// mark is a position in the message log; waits "since mark" ignore what came before.
func (s *shop) mark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

func (s *shop) snapshot() ([]message, chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs), s.wake
}

// events returns the P/events messages received so far, in order.
func (s *shop) events() []event {
	ms, _ := s.snapshot()
	var out []event
	for _, m := range ms {
		if m.topic == prefix+"/events" {
			out = append(out, m.ev)
		}
	}
	return out
}

// eventsFor returns the events of one job id, in order.
func (s *shop) eventsFor(id string) []event {
	var out []event
	for _, e := range s.events() {
		if e.ID == id {
			out = append(out, e)
		}
	}
	return out
}

// publish publishes QoS 1 and waits for the broker's PUBACK.
func (s *shop) publish(t *testing.T, topic string, payload []byte) {
	t.Helper()
	if err := s.publishErr(topic, payload); err != nil {
		t.Fatalf("publish to %s: %v", topic, err)
	}
}

func (s *shop) publishErr(topic string, payload []byte) error {
	tok := s.c.Publish(prefix+"/"+topic, 1, false, payload)
	if !tok.WaitTimeout(long) {
		return errors.New("no PUBACK within the deadline")
	}
	return tok.Error()
}

func (s *shop) job(t *testing.T, j map[string]any) {
	t.Helper()
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	s.publish(t, "jobs", b)
}

func (s *shop) consent(t *testing.T, to, what string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"to": to, "consent": what, "source": "e2e", "at": time.Now().UTC().Format(time.RFC3339Nano)})
	s.publish(t, "consent", b)
}

// waitMsg waits until cond holds over the messages received so far.
func (s *shop) wait(t *testing.T, within time.Duration, what string, cond func(ms []message) bool) []message {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		ms, wake := s.snapshot()
		if cond(ms) {
			return ms
		}
		select {
		case <-wake:
		case <-deadline.C:
			t.Fatalf("waited %v for %s; %d messages, last events: %s", within, what, len(ms), lastEvents(ms, 15))
			return nil
		}
	}
}

func lastEvents(ms []message, n int) string {
	var b strings.Builder
	for _, m := range ms[max(0, len(ms)-n):] {
		fmt.Fprintf(&b, "\n  %s %s", m.topic, m.payload)
	}
	return b.String()
}

// waitEvent waits for the first event of id with the given type (after mark) and returns it.
func (s *shop) waitEvent(t *testing.T, within time.Duration, id, typ string) event {
	t.Helper()
	var got event
	s.wait(t, within, fmt.Sprintf("event %s of %s", typ, id), func(ms []message) bool {
		for _, m := range ms {
			if m.topic == prefix+"/events" && m.ev.ID == id && m.ev.Event == typ {
				got = m.ev
				return true
			}
		}
		return false
	})
	return got
}

// waitConsentEvent waits for a consent event (no id) for number after mark.
func (s *shop) waitConsentEvent(t *testing.T, within time.Duration, mark int, to, typ string) event {
	t.Helper()
	var got event
	s.wait(t, within, fmt.Sprintf("consent event %s for %s", typ, to), func(ms []message) bool {
		for _, m := range ms[min(mark, len(ms)):] {
			if m.topic == prefix+"/events" && m.ev.ID == "" && m.ev.To == to && m.ev.Event == typ {
				got = m.ev
				return true
			}
		}
		return false
	})
	return got
}

// waitStatus waits for a status message after mark whose state is one of states.
func (s *shop) waitStatus(t *testing.T, mark int, within time.Duration, states ...string) map[string]any {
	t.Helper()
	var got map[string]any
	s.wait(t, within, fmt.Sprintf("status %v", states), func(ms []message) bool {
		for _, m := range ms[min(mark, len(ms)):] {
			if m.topic != prefix+"/status" {
				continue
			}
			var st map[string]any
			if json.Unmarshal(m.payload, &st) == nil && slices.Contains(states, fmt.Sprint(st["state"])) {
				got = st
				return true
			}
		}
		return false
	})
	return got
}

// waitStatusMatch waits for a status message after mark for which match holds.
func (s *shop) waitStatusMatch(t *testing.T, mark int, within time.Duration, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	var got map[string]any
	s.wait(t, within, "status with "+what, func(ms []message) bool {
		for _, m := range ms[min(mark, len(ms)):] {
			var st map[string]any
			if m.topic == prefix+"/status" && json.Unmarshal(m.payload, &st) == nil && match(st) {
				got = st
				return true
			}
		}
		return false
	})
	return got
}

// terminal reports whether an event type ends a job (ARCHITECTURE: sent, failed, expired,
// unknown, suppressed; rejected and duplicate answer a payload rather than a queued job).
func terminal(typ string) bool {
	switch typ {
	case "sent", "failed", "expired", "unknown", "suppressed":
		return true
	}
	return false
}

// terminals counts terminal events per job id.
func terminals(evs []event) map[string][]string {
	out := map[string][]string{}
	for _, e := range evs {
		if e.ID != "" && terminal(e.Event) {
			out[e.ID] = append(out[e.ID], e.Event)
		}
	}
	return out
}

// waitCond polls cond every 100 ms until it holds or the deadline passes.
func waitCond(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", within, what)
		}
		<-tick.C
	}
}

// ---- phone numbers and jobs ----

// num returns a valid German mobile number, distinct per (test, i).
func num(base, i int) string { return fmt.Sprintf("+49151%08d", base*10000+i) }

var idInText = regexp.MustCompile(`\[([A-Za-z0-9._:-]+)\]`)

// textJob is a free-text job whose text names its id, so sends can be mapped back to jobs.
func textJob(id, to string, extra ...any) map[string]any {
	j := map[string]any{"id": id, "to": to, "text": "E2E [" + id + "]",
		"consent": map[string]any{"at": "2026-01-01T00:00:00Z", "source": "checkout"}}
	for i := 0; i+1 < len(extra); i += 2 {
		k := extra[i].(string)
		if extra[i+1] == nil {
			delete(j, k)
			continue
		}
		j[k] = extra[i+1]
	}
	return j
}

// jobOf names the job a send belongs to ("" for texts that are not test jobs).
func jobOf(s signaltest.Sent) string {
	if m := idInText.FindStringSubmatch(s.Text); m != nil {
		return m[1]
	}
	return ""
}

// successes keeps the sends the fake answered SUCCESS.
func successes(ss []signaltest.Sent) []signaltest.Sent {
	var out []signaltest.Sent
	for _, s := range ss {
		if s.Type == signaltest.Success {
			out = append(out, s)
		}
	}
	return out
}

// ---- modem simulator ----

type modemSim struct {
	link  string
	stdin io.WriteCloser

	mu  sync.Mutex
	out bytes.Buffer
}

func startModemSim(t *testing.T, bin, link string) *modemSim {
	t.Helper()
	cmd := exec.Command(bin, "-link", link)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &modemSim{link: link, stdin: in}
	ready := make(chan struct{})
	go func() {
		r := bufio.NewReader(out)
		first := true
		for {
			line, err := r.ReadString('\n')
			m.mu.Lock()
			m.out.WriteString(line)
			m.mu.Unlock()
			if first && line != "" {
				first = false
				close(ready)
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	select {
	case <-ready:
	case <-time.After(long):
		t.Fatalf("modem-sim did not print its device: %s", stderr.String())
	}
	return m
}

// command writes one line to the simulator.
func (m *modemSim) command(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(m.stdin, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

// waitSent asks the simulator for its sent texts until one contains want.
func (m *modemSim) waitSent(t *testing.T, within time.Duration, want string) {
	t.Helper()
	waitCond(t, within, "the modem sim to have sent "+want, func() bool {
		m.command(t, "sent")
		m.mu.Lock()
		defer m.mu.Unlock()
		return strings.Contains(m.out.String(), want)
	})
}
