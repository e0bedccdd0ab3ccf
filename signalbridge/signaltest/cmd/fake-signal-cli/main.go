// Command fake-signal-cli is a stand-in for signal-cli 0.13.19 that accepts its command line
// (`[--config DIR] [-a ACC] daemon --socket[=PATH]|--tcp[=HOST:PORT] [--receive-mode MODE]
// [--no-receive-stdout]` and `jsonRpc`) and serves the JSON-RPC protocol of
// signalbridge/signaltest, so a supervisor or the whole relay daemon can run against it.
//
// Accounts are read from DIR/data/accounts.json (the real layout: {"accounts":[{"number":…}]}),
// every listed account counting as registered, and from --fake-account flags.
//
// Fake-only flags (anywhere on the line):
//
//	--fake-account=+E164        a registered account (repeatable)
//	--fake-offline              register/startLink/submitRateLimitChallenge fail like offline
//	--fake-outcome=NUM=TYPE     scripted send result (TYPE[:token[:retryAfterSeconds]], or UNREGISTERED_FAILURE:null-uuid)
//	--fake-receipt-after=DUR    delivery receipt this long after each successful send
//	--fake-delivery-interval=DUR  pace incoming messages: one per DUR (a server backlog drains at that rate)
//	--fake-delay=METHOD=DUR     delay replies to METHOD
//	--fake-control=PATH         Unix socket taking JSON control lines (signaltest.ControlCommand):
//	                            inject messages/receipts, script outcomes, hang, list sends
//	--slow-start=DUR            wait before listening (JVM start-up)
//	--fault=exit-at-start       exit 2 after the start-up delay, like an account that fails to load
//	--fault=hang-after=N        stop answering after N replies (a wedged JVM)
//	--fault=close-on=METHOD     close the connection when METHOD arrives, without a reply
//	--fault=ignore-sigterm      ignore SIGTERM (only SIGKILL stops it)
//	--fault=leave-socket        do not remove the socket file on exit (stale socket)
//	--fault=stderr-flood=N      write N identical warning lines to stderr at start
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shopkit/relay/signalbridge/signaltest"
)

type stdio struct{}

func (stdio) Read(p []byte) (int, error)  { return os.Stdin.Read(p) }
func (stdio) Write(p []byte) (int, error) { return os.Stdout.Write(p) }
func (stdio) Close() error                { return os.Stdin.Close() }

func main() { os.Exit(run(os.Args[1:])) }

func logf(level, format string, args ...any) {
	// The real one writes "LEVEL  Class - message" without a timestamp by default.
	fmt.Fprintf(os.Stderr, "%-5s FakeSignalCli - %s\n", level, fmt.Sprintf(format, args...))
}

func run(args []string) int {
	var (
		cfg         signaltest.Config
		configDir   = filepath.Join(os.Getenv("HOME"), ".local/share/signal-cli")
		command     string
		socketPath  string
		useSocket   bool
		tcpAddr     string
		useTCP      bool
		slowStart   time.Duration
		controlSock string
		faults      = map[string]string{}
		outcomes    = map[string]signaltest.Outcome{}
		delays      = map[string]time.Duration{}
	)
	value := func(i *int, a, name string) string {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
		if *i+1 < len(args) {
			*i++
			return args[*i]
		}
		return ""
	}
	// duration parses the DUR of argument a into *p; false (logged) when it is not one.
	duration := func(a, dur string, p *time.Duration) bool {
		d, err := time.ParseDuration(dur)
		if err != nil {
			logf("ERROR", "bad %s: %v", a, err)
			return false
		}
		*p = d
		return true
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--version" || a == "-v" && command == "":
			fmt.Println("signal-cli 0.13.19")
			return 0
		case a == "--config" || strings.HasPrefix(a, "--config=") || a == "-c":
			configDir = value(&i, a, "--config")
		case a == "-a" || a == "--account" || strings.HasPrefix(a, "--account="):
			cfg.SingleAccount = value(&i, a, "--account")
		case a == "-o" || a == "--output" || strings.HasPrefix(a, "--output="):
			value(&i, a, "--output")
		case a == "daemon" || a == "jsonRpc":
			command = a
		case a == "--socket" || strings.HasPrefix(a, "--socket="):
			useSocket = true
			if v, ok := strings.CutPrefix(a, "--socket="); ok {
				socketPath = v
			} else if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
				socketPath = args[i]
			}
		case a == "--tcp" || strings.HasPrefix(a, "--tcp="):
			useTCP = true
			if v, ok := strings.CutPrefix(a, "--tcp="); ok {
				tcpAddr = v
			} else if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
				tcpAddr = args[i]
			}
		case a == "--receive-mode" || strings.HasPrefix(a, "--receive-mode="):
			cfg.ReceiveMode = value(&i, a, "--receive-mode")
		case a == "--no-receive-stdout", a == "--ignore-attachments", a == "--ignore-stories",
			a == "--send-read-receipts", a == "--verbose", a == "--trust-new-identities" || strings.HasPrefix(a, "--trust-new-identities="):
			if a == "--trust-new-identities" {
				i++
			}
		case strings.HasPrefix(a, "--fake-account="):
			cfg.Accounts = append(cfg.Accounts, strings.TrimPrefix(a, "--fake-account="))
		case a == "--fake-offline":
			cfg.Offline = true
		case strings.HasPrefix(a, "--fake-delivery-interval="):
			if !duration(a, strings.TrimPrefix(a, "--fake-delivery-interval="), &cfg.DeliveryInterval) {
				return 1
			}
		case strings.HasPrefix(a, "--fake-receipt-after="):
			if !duration(a, strings.TrimPrefix(a, "--fake-receipt-after="), &cfg.DeliveryReceiptAfter) {
				return 1
			}
		case strings.HasPrefix(a, "--fake-outcome="):
			num, spec, ok := strings.Cut(strings.TrimPrefix(a, "--fake-outcome="), "=")
			if !ok {
				logf("ERROR", "bad %s", a)
				return 1
			}
			parts := strings.Split(spec, ":")
			o := signaltest.Outcome{Type: parts[0]}
			if len(parts) > 1 && parts[1] == "null-uuid" {
				o.NullUUID = true
			} else if len(parts) > 1 {
				o.Token = parts[1]
			}
			if len(parts) > 2 {
				o.RetryAfterSeconds, _ = strconv.ParseInt(parts[2], 10, 64)
			}
			outcomes[num] = o
		case strings.HasPrefix(a, "--fake-delay="):
			m, ds, _ := strings.Cut(strings.TrimPrefix(a, "--fake-delay="), "=")
			var d time.Duration
			if !duration(a, ds, &d) {
				return 1
			}
			delays[m] = d
		case strings.HasPrefix(a, "--fake-control="):
			controlSock = strings.TrimPrefix(a, "--fake-control=")
		case strings.HasPrefix(a, "--slow-start="):
			if !duration(a, strings.TrimPrefix(a, "--slow-start="), &slowStart) {
				return 1
			}
		case strings.HasPrefix(a, "--fault="):
			k, v, _ := strings.Cut(strings.TrimPrefix(a, "--fault="), "=")
			faults[k] = v
		default:
			logf("ERROR", "unknown argument %q", a)
			return 1
		}
	}
	if command == "" {
		logf("ERROR", "missing command (daemon or jsonRpc)")
		return 1
	}
	cfg.Accounts = append(cfg.Accounts, readAccounts(configDir)...)

	if n, err := strconv.Atoi(faults["stderr-flood"]); err == nil {
		for range n {
			logf("WARN", "Failed to read data for +4915112345678: EOF")
		}
	}
	logf("INFO", "Starting %s (fake)", command)
	if slowStart > 0 {
		time.Sleep(slowStart)
	}
	if _, ok := faults["exit-at-start"]; ok {
		logf("ERROR", "Failed to load account file")
		return 2
	}
	if cfg.SingleAccount != "" && !slices.Contains(cfg.Accounts, cfg.SingleAccount) {
		logf("ERROR", "User %s is not registered.", cfg.SingleAccount)
		return 1
	}

	f := signaltest.New(cfg)
	for num, o := range outcomes {
		f.SetOutcome(num, o)
	}
	for m, d := range delays {
		f.SetDelay(m, d)
	}
	if m, ok := faults["close-on"]; ok {
		f.CloseOn(m, true)
	}
	if v, ok := faults["hang-after"]; ok {
		n, _ := strconv.ParseInt(v, 10, 64)
		f.HangAfter(n)
	}

	if controlSock != "" {
		_ = os.Remove(controlSock)
		l, err := net.Listen("unix", controlSock)
		if err != nil {
			logf("ERROR", "control socket: %v", err)
			return 3
		}
		f.ServeControl(l)
	}

	sigs := make(chan os.Signal, 1)
	if _, ok := faults["ignore-sigterm"]; ok {
		signal.Ignore(syscall.SIGTERM)
		signal.Notify(sigs, syscall.SIGINT)
	} else {
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	}

	if command == "jsonRpc" {
		done := make(chan struct{})
		go func() { f.ServeConn(stdio{}); close(done) }()
		select {
		case <-done:
		case <-sigs:
		}
		_ = f.Close()
		return 0
	}

	if !useSocket && !useTCP {
		logf("ERROR", "the fake supports only --socket and --tcp")
		return 1
	}
	if useSocket {
		if socketPath == "" {
			socketPath = filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "signal-cli", "socket")
		}
		if err := os.MkdirAll(filepath.Dir(socketPath), 0o700); err != nil {
			logf("ERROR", "%v", err)
			return 3
		}
		l, err := net.Listen("unix", socketPath)
		if err != nil {
			logf("ERROR", "Failed to bind socket %s: Address already in use", socketPath)
			return 3
		}
		if _, ok := faults["leave-socket"]; ok {
			l.(*net.UnixListener).SetUnlinkOnClose(false)
		}
		f.Serve(l)
		logf("INFO", "Listening on socket: %s", socketPath)
	}
	if useTCP {
		if tcpAddr == "" {
			tcpAddr = "localhost:7583"
		}
		addr, err := f.ListenTCP(tcpAddr)
		if err != nil {
			logf("ERROR", "Failed to bind tcp %s: %v", tcpAddr, err)
			return 3
		}
		logf("INFO", "Listening on tcp: %s", addr)
	}
	<-sigs
	_ = f.Close()
	return 0
}

// readAccounts lists the numbers in DIR/data/accounts.json (signal-cli's own layout).
func readAccounts(dir string) []string {
	b, err := os.ReadFile(filepath.Join(dir, "data", "accounts.json"))
	if err != nil {
		return nil
	}
	var f struct {
		Accounts []struct {
			Number string `json:"number"`
		} `json:"accounts"`
	}
	if json.Unmarshal(b, &f) != nil {
		return nil
	}
	var out []string
	for _, a := range f.Accounts {
		if a.Number != "" {
			out = append(out, a.Number)
		}
	}
	return out
}
