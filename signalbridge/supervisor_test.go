package signalbridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shopkit/relay/signalbridge"
	"github.com/shopkit/relay/signalbridge/signaltest"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// recordingClock fires every After at once and records the durations asked for: backoff
// timing is checked without waiting for it.
type recordingClock struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (c *recordingClock) Now() time.Time { return time.Now() }
func (c *recordingClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.delays = append(c.delays, d)
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- time.Now()
	return ch
}
func (c *recordingClock) recorded() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.delays...)
}

type supRun struct {
	sup  *signalbridge.Supervisor
	logs *syncBuffer
	stop func() // cancels Run and waits for it to return
	dir  string
}

// runSupervisor starts a Supervisor for bin (the fake by default) in a fresh directory.
func runSupervisor(t *testing.T, cfg signalbridge.SupervisorConfig) *supRun {
	t.Helper()
	dir := shortDir(t)
	if cfg.Binary == "" && cfg.Address == "" {
		cfg.Binary = fakeBin
	}
	if cfg.Binary != "" {
		cfg.ConfigDir = filepath.Join(dir, "cfg")
		cfg.SocketPath = filepath.Join(dir, "socket")
	}
	logs := &syncBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.ProbeInterval == 0 {
		cfg.ProbeInterval = 50 * time.Millisecond
	}
	if cfg.ProbeTimeout == 0 {
		cfg.ProbeTimeout = 2 * time.Second
	}
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin = 10 * time.Millisecond
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = 5 * time.Second
	}
	sup, err := signalbridge.NewSupervisor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("supervisor log:\n%s", logs.String())
		}
	})
	return &supRun{sup: sup, logs: logs, stop: stop, dir: dir}
}

func waitState(t *testing.T, s *signalbridge.Supervisor, within time.Duration, st signalbridge.State, extra func(signalbridge.Health) bool) signalbridge.Health {
	t.Helper()
	var h signalbridge.Health
	waitFor(t, within, "state "+string(st), func() bool {
		h = s.Health()
		return h.State == st && (extra == nil || extra(h))
	})
	return h
}

func processGone(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }

func TestSupervisor_upSendAndStop(t *testing.T) {
	checkNoLeaks(t)
	evs := make(chan signalbridge.Event, 4)
	r := runSupervisor(t, signalbridge.SupervisorConfig{Account: acct,
		ExtraArgs: []string{"--fake-account=" + acct, "--fake-receipt-after=5ms"},
		OnEvent:   func(e signalbridge.Event) { evs <- e }})
	h := waitState(t, r.sup, 10*time.Second, signalbridge.StateUp, nil)
	if h.PID == 0 {
		t.Fatal("no PID while up")
	}
	res, err := r.sup.Send(ctxTimeout(t, 5*time.Second), acct, alice, "hi")
	if err != nil || res.Outcome != signalbridge.OutcomeSent {
		t.Fatalf("Send = %+v, %v", res, err)
	}
	select { // the receipt proves the supervisor subscribed on its connection
	case e := <-evs:
		if rc, ok := e.(*signalbridge.Receipt); !ok || rc.Timestamps[0] != res.Timestamp {
			t.Fatalf("event %#v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no receipt")
	}
	if h := r.sup.Health(); h.LastOK.IsZero() || time.Since(h.LastOK) > 10*time.Second {
		t.Fatalf("LastOK = %v", h.LastOK)
	}
	r.stop()
	if !processGone(h.PID) {
		t.Errorf("child %d still running after stop", h.PID)
	}
	if _, err := os.Stat(filepath.Join(r.dir, "socket")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after clean stop: %v", err)
	}
	if h := r.sup.Health(); h.State != signalbridge.StateDown || h.Reason != "stopped" {
		t.Errorf("health after stop %+v", h)
	}
	if _, err := r.sup.Send(context.Background(), acct, alice, "x"); !errors.Is(err, signalbridge.ErrNotReady) {
		t.Errorf("Send after stop: %v", err)
	}
}

func TestSupervisor_crashLoopBackoff(t *testing.T) {
	checkNoLeaks(t)
	clk := &recordingClock{}
	r := runSupervisor(t, signalbridge.SupervisorConfig{Account: acct, Clock: clk, BackoffMin: time.Second,
		BackoffMax: 8 * time.Second, Rand: func() float64 { return 0.5 },
		ExtraArgs: []string{"--fault=exit-at-start"}})
	waitFor(t, 30*time.Second, "5 restarts", func() bool { return r.sup.Health().Restarts >= 5 })
	r.stop()
	got := clk.recorded()
	want := []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond, 3 * time.Second, 6 * time.Second, 6 * time.Second}
	for i, w := range want {
		if got[i] != w {
			t.Fatalf("backoff delays %v, want prefix %v", got, want)
		}
	}
	if !strings.Contains(r.logs.String(), "exited during start-up: exit status 2") {
		t.Errorf("exit reason not logged:\n%s", r.logs.String())
	}
}

func TestSupervisor_hangDetected(t *testing.T) {
	checkNoLeaks(t)
	// The fake answers version, listAccounts, subscribeReceive and one probe, then hangs.
	r := runSupervisor(t, signalbridge.SupervisorConfig{Account: acct, ProbeInterval: 20 * time.Millisecond,
		ProbeTimeout: 200 * time.Millisecond,
		ExtraArgs:    []string{"--fake-account=" + acct, "--fault=hang-after=4"}})
	first := waitState(t, r.sup, 10*time.Second, signalbridge.StateUp, nil)
	second := waitState(t, r.sup, 20*time.Second, signalbridge.StateUp, func(h signalbridge.Health) bool {
		return h.Restarts >= 1 && h.PID != first.PID
	})
	if !processGone(first.PID) {
		t.Errorf("hung child %d not killed", first.PID)
	}
	if !strings.Contains(r.logs.String(), "probe failed") || !strings.Contains(r.logs.String(), "deadline exceeded") {
		t.Errorf("probe failure not logged:\n%s", r.logs.String())
	}
	_ = second
}

func TestSupervisor_readyDeadline(t *testing.T) {
	checkNoLeaks(t)
	r := runSupervisor(t, signalbridge.SupervisorConfig{Account: acct, ReadyTimeout: 300 * time.Millisecond,
		BackoffMin: time.Hour, ExtraArgs: []string{"--slow-start=1m"}})
	h := waitState(t, r.sup, 10*time.Second, signalbridge.StateDown, func(h signalbridge.Health) bool {
		return strings.Contains(h.Reason, "not ready within 300ms")
	})
	if h.PID != 0 {
		t.Errorf("PID %d still reported while down", h.PID)
	}
	if _, err := r.sup.Client(); !errors.Is(err, signalbridge.ErrNotReady) {
		t.Errorf("Client() = %v", err)
	}
}

func TestSupervisor_stopEscalatesToSIGKILL(t *testing.T) {
	checkNoLeaks(t)
	r := runSupervisor(t, signalbridge.SupervisorConfig{Account: acct, StopTimeout: 300 * time.Millisecond,
		ExtraArgs: []string{"--fake-account=" + acct, "--fault=ignore-sigterm"}})
	h := waitState(t, r.sup, 10*time.Second, signalbridge.StateUp, nil)
	r.stop()
	if !processGone(h.PID) {
		t.Fatalf("child %d survived stop", h.PID)
	}
	if !strings.Contains(r.logs.String(), "ignored SIGTERM; killing") {
		t.Errorf("no SIGKILL escalation logged:\n%s", r.logs.String())
	}
}

func TestSupervisor_staleSocketAfterSIGKILL(t *testing.T) {
	checkNoLeaks(t)
	r := runSupervisor(t, signalbridge.SupervisorConfig{Account: acct, ExtraArgs: []string{"--fake-account=" + acct}})
	first := waitState(t, r.sup, 10*time.Second, signalbridge.StateUp, nil)
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitState(t, r.sup, 20*time.Second, signalbridge.StateUp, func(h signalbridge.Health) bool {
		return h.Restarts >= 1 && h.PID != first.PID && h.PID != 0
	})
	if !strings.Contains(r.logs.String(), "signal-cli exited: signal: killed") {
		t.Errorf("exit not logged:\n%s", r.logs.String())
	}
}

func TestSupervisor_staleSocketAtStart(t *testing.T) {
	checkNoLeaks(t)
	dir := shortDir(t)
	sock := filepath.Join(dir, "socket")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close() // the file stays: a stale socket, like after a power cut
	sup, err := signalbridge.NewSupervisor(signalbridge.SupervisorConfig{Binary: fakeBin, ConfigDir: filepath.Join(dir, "cfg"),
		SocketPath: sock, Account: acct, ExtraArgs: []string{"--fake-account=" + acct}, ProbeInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	waitState(t, sup, 10*time.Second, signalbridge.StateUp, nil)
	if h := sup.Health(); h.Restarts != 0 {
		t.Errorf("restarts %d: the stale socket should be removed before the first start", h.Restarts)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestSupervisor_unregisteredThenVerify(t *testing.T) {
	checkNoLeaks(t)
	r := runSupervisor(t, signalbridge.SupervisorConfig{Account: acct})
	h := waitState(t, r.sup, 10*time.Second, signalbridge.StateUnregistered, nil)
	if !strings.Contains(h.Reason, "not registered") {
		t.Errorf("reason %q", h.Reason)
	}
	ctx := ctxTimeout(t, 10*time.Second)
	if err := r.sup.Register(ctx, acct, signalbridge.RegisterOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.sup.Verify(ctx, acct, "123456", ""); err != nil {
		t.Fatal(err)
	}
	h = waitState(t, r.sup, 10*time.Second, signalbridge.StateUp, nil)
	if h.Restarts != 0 {
		t.Errorf("registration should not need a restart: %+v", h)
	}
}

func TestSupervisor_captchaHealth(t *testing.T) {
	r := runSupervisor(t, signalbridge.SupervisorConfig{Account: acct,
		ExtraArgs: []string{"--fake-account=" + acct, "--fake-outcome=" + alice + "=RATE_LIMIT_FAILURE:tok-7:86400"}})
	waitState(t, r.sup, 10*time.Second, signalbridge.StateUp, nil)
	ctx := ctxTimeout(t, 10*time.Second)
	res, err := r.sup.Send(ctx, acct, alice, "x")
	if err != nil || res.Outcome != signalbridge.OutcomeCaptchaRequired || res.RetryAfter != 24*time.Hour {
		t.Fatalf("Send = %+v, %v", res, err)
	}
	if h := r.sup.Health(); h.State != signalbridge.StateCaptchaRequired || h.ChallengeToken != "tok-7" {
		t.Fatalf("health %+v", h)
	}
	if err := r.sup.SubmitRateLimitChallenge(ctx, acct, "tok-7", "signalcaptcha://solved"); err != nil {
		t.Fatal(err)
	}
	if h := r.sup.Health(); h.State != signalbridge.StateUp {
		t.Fatalf("health after challenge %+v", h)
	}
}

func TestSupervisor_external(t *testing.T) {
	checkNoLeaks(t)
	f := signaltest.New(signaltest.Config{Accounts: []string{acct}})
	sock := filepath.Join(shortDir(t), "s")
	if err := f.ListenUnix(sock); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := runSupervisor(t, signalbridge.SupervisorConfig{Network: "unix", Address: sock, Account: acct})
	waitState(t, r.sup, 10*time.Second, signalbridge.StateUp, nil)
	f.DropConnections() // the socket breaks: reconnect
	waitState(t, r.sup, 10*time.Second, signalbridge.StateUp, func(h signalbridge.Health) bool { return h.Restarts >= 1 })
	if f.Subscribers() != 1 {
		t.Errorf("subscribers after reconnect: %d", f.Subscribers())
	}
	r.stop()
}

func TestSupervisor_stderrFlood(t *testing.T) {
	r := runSupervisor(t, signalbridge.SupervisorConfig{Account: acct, StderrLinesPerMinute: 5,
		ExtraArgs: []string{"--fake-account=" + acct, "--fault=stderr-flood=500"}})
	waitState(t, r.sup, 10*time.Second, signalbridge.StateUp, nil)
	r.stop()
	logs := r.logs.String()
	if n := strings.Count(logs, "Failed to read data for"); n != 1 {
		t.Errorf("flood line logged %d times, want 1 (folded)", n)
	}
	if !strings.Contains(logs, "repeated 499 times") || strings.Contains(logs, "+4915112345678") {
		t.Errorf("fold summary missing or number unmasked:\n%s", logs)
	}
}

// TestSupervisor_real runs the supervisor against the real signal-cli: with an empty config
// the account is unregistered; SIGKILL leaves a stale socket that the restart must remove;
// the stop is a SIGTERM the JVM honours (no SIGKILL needed) and the socket file goes away.
func TestSupervisor_real(t *testing.T) {
	bin := realBin(t)
	r := runSupervisor(t, signalbridge.SupervisorConfig{Binary: bin, Account: acct, ReadyTimeout: 60 * time.Second,
		ProbeInterval: 500 * time.Millisecond, ProbeTimeout: 10 * time.Second, StopTimeout: 10 * time.Second})
	first := waitState(t, r.sup, 60*time.Second, signalbridge.StateUnregistered, nil)
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	second := waitState(t, r.sup, 60*time.Second, signalbridge.StateUnregistered, func(h signalbridge.Health) bool {
		return h.Restarts >= 1 && h.PID != first.PID && h.PID != 0
	})
	if v, err := r.sup.Version(ctxTimeout(t, 10*time.Second)); err != nil || v != "0.13.19" {
		t.Fatalf("Version after restart = %q, %v", v, err)
	}
	r.stop()
	if !processGone(second.PID) {
		t.Errorf("real signal-cli %d still running", second.PID)
	}
	if strings.Contains(r.logs.String(), "ignored SIGTERM") {
		t.Errorf("real signal-cli needed SIGKILL")
	}
	if _, err := os.Stat(filepath.Join(r.dir, "socket")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("real signal-cli left its socket after SIGTERM: %v", err)
	}
}

// TestFakeBinary_control drives the standalone fake from outside through its control socket,
// as an end-to-end test of the relay daemon would: an incoming STOP reaches OnEvent, a scripted
// outcome changes the next send, and the sends are listed.
func TestFakeBinary_control(t *testing.T) {
	ctlDir := shortDir(t)
	ctl := filepath.Join(ctlDir, "ctl")
	evs := make(chan signalbridge.Event, 4)
	r := runSupervisor(t, signalbridge.SupervisorConfig{Account: acct, OnEvent: func(e signalbridge.Event) { evs <- e },
		ExtraArgs: []string{"--fake-account=" + acct, "--fake-control=" + ctl}})
	waitState(t, r.sup, 10*time.Second, signalbridge.StateUp, nil)
	conn, err := net.Dial("unix", ctl)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dec := json.NewDecoder(conn)
	control := func(cmd signaltest.ControlCommand) signaltest.ControlReply {
		t.Helper()
		if err := json.NewEncoder(conn).Encode(cmd); err != nil {
			t.Fatal(err)
		}
		var rep signaltest.ControlReply
		if err := dec.Decode(&rep); err != nil || !rep.OK {
			t.Fatalf("control %+v: %+v %v", cmd, rep, err)
		}
		return rep
	}
	control(signaltest.ControlCommand{Op: "text", Account: acct, Number: alice, Text: " stop "})
	select {
	case e := <-evs:
		if m, ok := e.(*signalbridge.TextMessage); !ok || m.Text != " stop " || m.SenderNumber != alice {
			t.Fatalf("event %#v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	control(signaltest.ControlCommand{Op: "outcome", Recipient: bob, Type: signaltest.UnregisteredFailure, NullUUID: true})
	res, err := r.sup.Send(ctxTimeout(t, 5*time.Second), acct, bob, "x")
	if err != nil || res.Outcome != signalbridge.OutcomeNotOnSignal || !res.MaybeLookupFailure {
		t.Fatalf("Send = %+v, %v", res, err)
	}
	if rep := control(signaltest.ControlCommand{Op: "sent"}); len(rep.Sent) != 1 || rep.Sent[0].Recipient != bob {
		t.Fatalf("sent %+v", rep.Sent)
	}
}

// The protocol over the stdin/stdout of `signal-cli jsonRpc` (multi-account, empty config).
func TestFakeBinary_jsonRpcStdio(t *testing.T) { stdioContract(t, fakeBin) }
func TestContract_realStdio(t *testing.T)      { stdioContract(t, realBin(t)) }

func stdioContract(t *testing.T, bin string) {
	cmd := exec.Command(bin, "--config", shortDir(t), "jsonRpc", "--receive-mode=manual")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := signalbridge.NewClient(stdioConn{stdout, stdin}, signalbridge.ClientOptions{})
	ctx := ctxTimeout(t, 60*time.Second)
	if v, err := c.Version(ctx); err != nil || v != "0.13.19" {
		t.Fatalf("Version = %q, %v", v, err)
	}
	if accs, err := c.ListAccounts(ctx); err != nil || len(accs) != 0 {
		t.Fatalf("ListAccounts = %v, %v", accs, err)
	}
	if _, err := c.Send(ctx, "", alice, "x"); !errors.Is(err, signalbridge.ErrAccount) {
		t.Fatalf("Send without account: %v", err)
	}
	c.Close() // closes stdin: EOF makes jsonRpc exit 0
	if err := cmd.Wait(); err != nil {
		t.Fatalf("jsonRpc exit: %v", err)
	}
}

type stdioConn struct {
	io.ReadCloser
	w io.WriteCloser
}

func (s stdioConn) Write(p []byte) (int, error) { return s.w.Write(p) }
func (s stdioConn) Close() error                { s.w.Close(); return s.ReadCloser.Close() }
