package signalbridge_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shopkit/relay/signalbridge"
)

// The contract suite runs the same checks against the standalone fake (always) and the real
// signal-cli 0.13.19 (when RELAY_SIGNAL_CLI points at its launcher), both as
// `daemon --socket PATH --receive-mode=manual --no-receive-stdout` with an empty config, offline.

var fakeBin string // built once by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fakebin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fakeBin = filepath.Join(dir, "fake-signal-cli")
	build := exec.Command("go", "build", "-o", fakeBin, "./signaltest/cmd/fake-signal-cli")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building fake-signal-cli:", err)
		os.Exit(1)
	}
	code := m.Run()
	stopReal()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemonProc is a signal-cli (real or fake) child serving a Unix socket.
type daemonProc struct {
	cmd    *exec.Cmd
	socket string
	exited chan struct{}
	state  *os.ProcessState
}

func startDaemon(t testing.TB, bin, dir string, extra ...string) *daemonProc {
	t.Helper()
	sock := filepath.Join(dir, "socket")
	args := append([]string{"--config", filepath.Join(dir, "cfg"), "daemon", "--socket", sock,
		"--receive-mode=manual", "--no-receive-stdout"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	if testing.Verbose() == false {
		cmd.Stderr = nil
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemonProc{cmd: cmd, socket: sock, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); d.state = cmd.ProcessState; close(d.exited) }()
	return d
}

// waitReady polls connect until the socket accepts or the deadline passes.
func (d *daemonProc) waitReady(t testing.TB, within time.Duration) {
	t.Helper()
	waitFor(t, within, "daemon socket", func() bool {
		select {
		case <-d.exited:
			t.Fatalf("daemon exited during start-up: %v", d.state)
		default:
		}
		c, err := net.Dial("unix", d.socket)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

var (
	realOnce sync.Once
	realProc *daemonProc
	realErr  error
	realDir  string
)

func realBin(t testing.TB) string {
	bin := os.Getenv("RELAY_SIGNAL_CLI")
	if bin == "" {
		t.Skip("RELAY_SIGNAL_CLI is not set: skipping the contract test against the real signal-cli " +
			"(install with ../shared/tools/install-signal-cli.sh and export RELAY_SIGNAL_CLI=/opt/signal-cli-real/bin/signal-cli)")
	}
	return bin
}

// sharedReal starts one real daemon for the whole test binary (the JVM needs 2–4 s to start).
func sharedReal(t *testing.T) string {
	bin := realBin(t)
	realOnce.Do(func() {
		realDir, realErr = os.MkdirTemp("", "realsc")
		if realErr != nil {
			return
		}
		realProc = startDaemon(t, bin, realDir)
	})
	if realErr != nil {
		t.Fatal(realErr)
	}
	realProc.waitReady(t, 60*time.Second)
	return realProc.socket
}

func stopReal() {
	if realProc != nil {
		_ = realProc.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-realProc.exited:
		case <-time.After(10 * time.Second):
			_ = realProc.cmd.Process.Kill()
		}
		os.RemoveAll(realDir)
	}
}

func sharedFake(t *testing.T) string {
	dir := shortDir(t)
	d := startDaemon(t, fakeBin, dir, "--fake-offline")
	t.Cleanup(func() { _ = d.cmd.Process.Signal(syscall.SIGTERM); <-d.exited })
	d.waitReady(t, 10*time.Second)
	return d.socket
}

func TestContract_fake(t *testing.T) { runContract(t, sharedFake(t)) }
func TestContract_real(t *testing.T) { runContract(t, sharedReal(t)) }

func runContract(t *testing.T, sock string) {
	dial := func(t *testing.T) *signalbridge.Client {
		c, err := signalbridge.Dial(context.Background(), "unix", sock, signalbridge.ClientOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	t.Run("version", func(t *testing.T) {
		v, err := dial(t).Version(ctxTimeout(t, 10*time.Second))
		if err != nil || v != "0.13.19" {
			t.Fatalf("Version = %q, %v", v, err)
		}
	})
	t.Run("listAccounts empty", func(t *testing.T) {
		accs, err := dial(t).ListAccounts(ctxTimeout(t, 10*time.Second))
		if err != nil || len(accs) != 0 {
			t.Fatalf("ListAccounts = %v, %v", accs, err)
		}
	})
	t.Run("account errors", func(t *testing.T) {
		c := dial(t)
		ctx := ctxTimeout(t, 10*time.Second)
		tests := []struct {
			name, account, msg string
		}{
			{"missing", "", "Method requires valid account parameter"},
			{"unknown", "+4930123456", "Specified account does not exist"},
		}
		for _, tt := range tests {
			r, err := c.Send(ctx, tt.account, "+4915112345678", "x")
			var re *signalbridge.RPCError
			if !errors.As(err, &re) || re.Code != signalbridge.CodeInvalidParams || re.Message != tt.msg || !errors.Is(err, signalbridge.ErrAccount) {
				t.Errorf("%s: err = %v", tt.name, err)
			}
			if r.Outcome != signalbridge.OutcomeFailed {
				t.Errorf("%s: outcome %v", tt.name, r.Outcome)
			}
		}
		if _, err := c.SubscribeReceive(ctx, "+4930123456"); !errors.Is(err, signalbridge.ErrAccount) {
			t.Errorf("subscribeReceive unknown account: %v", err)
		}
		if err := c.Register(ctx, "", signalbridge.RegisterOptions{}); !errors.Is(err, signalbridge.ErrAccount) {
			t.Errorf("register without account: %v", err)
		}
		if err := c.Call(ctx, "Version", nil, nil); !errors.Is(err, signalbridge.ErrMethodNotFound) {
			t.Errorf("case-mismatched method: %v", err)
		}
		id, err := c.SubscribeReceive(ctx, "")
		if err != nil || id < 0 {
			t.Errorf("subscribeReceive = %d, %v", id, err)
		}
		var re *signalbridge.RPCError
		if err := c.UnsubscribeReceive(ctx, "", id+1000); !errors.As(err, &re) || re.Code != -1 || re.Message != "Unknown subscription id" {
			t.Errorf("unsubscribe unknown: %v", err)
		}
		if err := c.UnsubscribeReceive(ctx, "", id); err != nil {
			t.Errorf("unsubscribe: %v", err)
		}
	})
	// The calls flow control makes (pause = unsubscribe, resume = subscribe again), as signal-cli
	// answers them: ids from one counter, only the owner can end a subscription, ending it twice
	// is -1 "Unknown subscription id" (which flow control takes as "already gone").
	t.Run("subscription cycle", func(t *testing.T) {
		c, other := dial(t), dial(t)
		ctx := ctxTimeout(t, 10*time.Second)
		id1, err := c.SubscribeReceive(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		var re *signalbridge.RPCError
		if err := other.UnsubscribeReceive(ctx, "", id1); !errors.As(err, &re) || re.Code != -1 || re.Message != "Unknown subscription id" {
			t.Errorf("another connection ended the subscription: %v", err)
		}
		if err := c.UnsubscribeReceive(ctx, "", id1); err != nil {
			t.Fatalf("unsubscribe: %v", err)
		}
		if err := c.UnsubscribeReceive(ctx, "", id1); !errors.As(err, &re) || re.Code != -1 || re.Message != "Unknown subscription id" {
			t.Errorf("second unsubscribe: %v", err)
		}
		id2, err := c.SubscribeReceive(ctx, "")
		if err != nil || id2 <= id1 {
			t.Fatalf("resubscribe = %d, %v (first id %d): ids come from one growing counter", id2, err, id1)
		}
		if err := c.UnsubscribeReceive(ctx, "", id2); err != nil {
			t.Errorf("unsubscribe after resubscribe: %v", err)
		}
	})
	t.Run("malformed input", func(t *testing.T) { rawContract(t, sock) })
	t.Run("concurrency", func(t *testing.T) {
		c := dial(t)
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for i := 0; i < 64; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				var err error
				if i%2 == 0 {
					_, err = c.Version(ctx)
				} else {
					_, err = c.ListAccounts(ctx)
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if n := signalbridge.PendingCount(c); n != 0 {
			t.Errorf("pending %d", n)
		}
	})
	t.Run("out of order", func(t *testing.T) {
		// startLink offline fails with -3 after 0.5–0.8 s; version sent after it is answered first.
		c := dial(t)
		slow := make(chan error, 1)
		go func() { _, err := c.StartLink(ctxTimeout(t, 20*time.Second)); slow <- err }()
		waitFor(t, 5*time.Second, "startLink pending", func() bool { return signalbridge.PendingCount(c) == 1 })
		if _, err := c.Version(ctxTimeout(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-slow:
			t.Fatalf("startLink answered before version: %v", err)
		default:
		}
		if err := <-slow; !errors.Is(err, signalbridge.ErrIO) {
			t.Fatalf("startLink offline: %v", err)
		}
	})
}

// rawContract writes hand-made lines and checks codes (not Jackson's texts, reference 8).
func rawContract(t *testing.T, sock string) {
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(conn)
	type resp struct {
		ID     json.RawMessage `json:"id"`
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code int             `json:"code"`
			Data json.RawMessage `json:"data"`
		} `json:"error"`
	}
	roundTrip := func(line string) (resp, string) {
		t.Helper()
		if _, err := conn.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", line, err)
		}
		var r resp
		if err := json.Unmarshal([]byte(l), &r); err != nil && l[0] != '[' {
			t.Fatalf("reply %q: %v", l, err)
		}
		return r, l
	}
	tests := []struct {
		line   string
		code   int    // 0: success expected
		wantID string // the echoed id, as raw JSON
	}{
		{`{"jsonrpc":"2.0","method":"version","id":"s-1"}`, 0, `"s-1"`},
		{`{"jsonrpc":"2.0","method":"version","id":1.5}`, 0, `1.5`},
		{`{"jsonrpc":"2.0","method":"version","id":12345678901234567890}`, 0, `12345678901234567890`},
		{`{"jsonrpc":"2.0","method":"version","id":null}`, 0, `null`},
		{`{"jsonrpc":"2.0","method":"version","params":null,"id":2}`, 0, `2`},
		{`{"jsonrpc":"2.0","method":"version","id":{}}`, -32600, `null`},
		{`{"jsonrpc":"1.0","method":"version","id":3}`, -32600, `3`},
		{`{"jsonrpc":"2.0","id":4}`, -32600, `4`},
		{`{"jsonrpc":"2.0","method":"Version","id":5}`, -32601, `5`},
		{`{"jsonrpc":"2.0","method":"daemon","id":6}`, -32601, `6`},
		{`{"jsonrpc":"2.0","method":"version","id":7,"extra":true}`, -32600, `7`},
		{`{"jsonrpc":"2.0","method":"version","params":"x","id":8}`, -32600, `8`},
		{`{"jsonrpc":"2.0","method":"version","params":[1],"id":9}`, -32600, `9`},
		{`{"jsonrpc":"2.0","method":"send","params":[],"id":10}`, -32602, `10`},
		{`{"jsonrpc":"2.0","method":"version","params":{"account":"+4930123456"},"id":11}`, -32602, `11`},
		{`{"jsonrpc":"2.0","method":"unsubscribeReceive","params":{},"id":12}`, -32603, `12`},
		{`{"jsonrpc":"2.0","method":"finishLink","params":{},"id":13}`, -1, `13`},
		{`not json`, -32700, `null`},
		{``, -32700, `null`},
		{"   \t", -32700, `null`},
		{`[]`, -32600, `null`},
		{`42`, -32600, `null`},
		{`"s"`, -32600, `null`},
	}
	for _, tt := range tests {
		r, raw := roundTrip(tt.line)
		gotCode := 0
		if r.Error != nil {
			gotCode = r.Error.Code
			if string(r.Error.Data) != "null" {
				t.Errorf("%q: error.data = %s, want null", tt.line, r.Error.Data)
			}
		}
		if gotCode != tt.code || string(r.ID) != tt.wantID {
			t.Errorf("%q:\n got code %d id %s (%s)\nwant code %d id %s", tt.line, gotCode, r.ID, raw, tt.code, tt.wantID)
		}
	}

	// Only the first value on a line is read.
	if r, _ := roundTrip(`{"jsonrpc":"2.0","method":"version","id":20}{"jsonrpc":"2.0","method":"version","id":21}`); string(r.ID) != "20" {
		t.Errorf("two values on a line: id %s", r.ID)
	}
	// A notification (no id) gets no reply, not even for an error: the next line read is the
	// reply to the request after it.
	if r, _ := roundTrip(`{"jsonrpc":"2.0","method":"Nope"}` + "\n" + `{"jsonrpc":"2.0","method":"version","id":22}`); string(r.ID) != "22" {
		t.Errorf("notification answered: next id %s", r.ID)
	}
	// An object with a result or error member is a response to the server: ignored, whatever
	// else it holds (checked on 0.13.19).
	for _, l := range []string{`{"jsonrpc":"2.0","result":{},"id":1}`, `{"jsonrpc":"2.0","error":{"code":1,"message":"x"},"id":2}`,
		`{"jsonrpc":"2.0","method":"version","result":1,"id":3,"extra":true}`, `{"result":5}`} {
		if r, raw := roundTrip(l + "\n" + `{"jsonrpc":"2.0","method":"version","id":26}`); string(r.ID) != "26" {
			t.Errorf("response %s answered: %s", l, raw)
		}
	}
	// \r\n and a lone \r end lines too.
	if r, _ := roundTrip("{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":23}\r"); string(r.ID) != "23" {
		t.Errorf("CRLF line: id %s", r.ID)
	}
	r1, _ := roundTrip("{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":24}\r{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":25}")
	l2, err := br.ReadString('\n')
	var r2 resp
	if err != nil || json.Unmarshal([]byte(l2), &r2) != nil {
		t.Fatalf("lone CR: second reply %q, %v", l2, err)
	}
	if ids := string(r1.ID) + "," + string(r2.ID); ids != "24,25" && ids != "25,24" {
		t.Errorf("lone CR: ids %s", ids)
	}
	// A batch is answered on one line, as an array, in any order; malformed elements get errors.
	_, raw := roundTrip(`[{"jsonrpc":"2.0","method":"version","id":30},{"jsonrpc":"2.0","method":"Nope","id":31},5]`)
	var batch []resp
	if err := json.Unmarshal([]byte(raw), &batch); err != nil || len(batch) != 3 {
		t.Fatalf("batch reply %q: %v", raw, err)
	}
	codes := map[string]int{}
	for _, r := range batch {
		c := 0
		if r.Error != nil {
			c = r.Error.Code
		}
		codes[string(r.ID)] = c
	}
	if codes["30"] != 0 || codes["31"] != -32601 || codes["null"] != -32600 {
		t.Errorf("batch codes %v", codes)
	}
	// A batch of notifications only: no reply at all.
	if r, _ := roundTrip(`[{"jsonrpc":"2.0","method":"version"}]` + "\n" + `{"jsonrpc":"2.0","method":"version","id":40}`); string(r.ID) != "40" {
		t.Errorf("notification batch answered: %s", r.ID)
	}
	// Invalid UTF-8 makes the server close the connection.
	if _, err := conn.Write([]byte("{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":\"\xff\"}\n")); err != nil {
		t.Fatal(err)
	}
	if l, err := br.ReadString('\n'); err == nil {
		t.Errorf("connection still open after invalid UTF-8, got %q", l)
	}
}
