package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/shopkit/relay/modem"
	"github.com/shopkit/relay/modem/modemtest"
)

// The test binary doubles as modem-sim when MODEM_SIM_HELPER is set, so the program is tested
// as a real child process without building it separately.
func TestMain(m *testing.M) {
	if os.Getenv("MODEM_SIM_HELPER") == "1" {
		os.Args = append([]string{"modem-sim"}, flagArgs()...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func flagArgs() []string {
	var out []string
	for i, a := range os.Args {
		if a == "--" {
			return os.Args[i+1:]
		}
	}
	return out
}

func TestModemSim_Program(t *testing.T) {
	link := filepath.Join(t.TempDir(), "relay-modem")
	cmd := exec.Command(os.Args[0], "-test.run=^$", "--", "-link", link)
	cmd.Env = append(os.Environ(), "MODEM_SIM_HELPER=1")
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
	exited := make(chan error, 1)
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("modem-sim exit: %v", err)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("modem-sim did not stop on SIGTERM")
		}
	}()
	out := bufio.NewScanner(stdout)
	if !out.Scan() {
		t.Fatal("no path printed")
	}
	path := out.Text()
	go func() {
		for out.Scan() { // drain the rest of stdout
		}
		exited <- cmd.Wait()
	}()
	if real, err := filepath.EvalSymlinks(link); err != nil || real != path {
		t.Fatalf("link %s → %q (%v), printed %q", link, real, err, path)
	}
	p, err := modem.OpenSerial(link, 115200)
	if err != nil {
		t.Fatal(err)
	}
	e := modem.NewEngine(p, nil)
	defer e.Close()
	ctx := context.Background()
	if _, err := e.Exec(ctx, "ATE0", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	lines, err := e.Exec(ctx, "AT+CSQ", 5*time.Second, "+CSQ:")
	if err != nil || len(lines) != 1 || lines[0] != "+CSQ: 20,99" {
		t.Fatalf("AT+CSQ = %q, %v", lines, err)
	}
	if _, err := stdin.Write([]byte("sms +4917600000001 Your Signal code: 123-456\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case u := <-e.URCs():
		if u.Kind != modem.URCNewSMS {
			t.Errorf("urc = %+v", u)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no +CMTI after the sms command")
	}
}

func TestCommand_Faults(t *testing.T) {
	sim, err := modemtest.New(modemtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	tests := []struct {
		line string
		ok   bool
	}{
		{"failpart 2 331", true},
		{"failpart 2", false},
		{"failpart x 331", false},
		{"stallpdu 1", true},
		{"stallpdu", false},
		{"unplugpdu", true},
		{"failsend 500", true},
		{"stall -1", true},
		{"unstall", true},
		{"frobnicate", false},
		{"", true},
	}
	for _, tt := range tests {
		if err := command(sim, tt.line); (err == nil) != tt.ok {
			t.Errorf("command(%q) = %v; want ok %v", tt.line, err, tt.ok)
		}
	}
}
