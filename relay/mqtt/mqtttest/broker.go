// Package mqtttest starts a real Mosquitto broker (Debian's mosquitto package) for tests, on a
// free loopback port with persistence in a temporary directory, and can stop, kill and restart
// it on the same port and store — the way a shop's broker restarts under the box.
//
// Readiness is read from the broker's own log on its stderr ("running"), never waited for with
// sleeps. Without the mosquitto program the test is skipped with a visible message, except in CI
// (CI set), where it fails: CI must run against Mosquitto.
package mqtttest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Broker is one Mosquitto process (and its successors after Restart).
type Broker struct {
	t    testing.TB
	dir  string
	port int
	conf string
	tls  *TLSFiles

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Options tune the broker's config.
type Options struct {
	// MaxInflight is mosquitto's max_inflight_messages: QoS 1 messages sent to a client and not
	// yet acknowledged. 0 keeps Mosquitto's default (20).
	MaxInflight int
	// TCPNoDelay sets Mosquitto's set_tcp_nodelay: the broker writes each packet at once instead
	// of letting Nagle's algorithm hold a small packet until the previous one is acknowledged
	// (with the receiver's delayed ACK, that holds a job for up to ~40 ms). false keeps
	// Mosquitto's default (off).
	TCPNoDelay bool
	// TLS makes the listener TLS only, with a certificate for 127.0.0.1 from a throwaway CA, and
	// requires clients to show a certificate from the same CA (Broker.TLS has the files).
	TLS bool
}

// TLSFiles are the PEM files of a TLS broker: its CA, and a client certificate and key the
// broker accepts.
type TLSFiles struct {
	CA, ClientCert, ClientKey string
}

// Start starts a broker and stops it when the test ends.
func Start(t testing.TB, opts Options) *Broker {
	t.Helper()
	if _, err := exec.LookPath("mosquitto"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mosquitto is not installed; CI must run the MQTT tests against it (apt-get install mosquitto)")
		}
		t.Skip("SKIP: mosquitto is not installed (apt-get install mosquitto); MQTT integration tests not run")
	}
	b := &Broker{t: t, dir: t.TempDir(), port: freePort(t)}
	b.conf = filepath.Join(b.dir, "mosquitto.conf")
	var extra string
	if opts.MaxInflight > 0 {
		extra = fmt.Sprintf("max_inflight_messages %d\n", opts.MaxInflight)
	}
	if opts.TCPNoDelay {
		extra += "set_tcp_nodelay true\n"
	}
	if opts.TLS {
		b.tls = writeCertificates(t, b.dir)
		extra += fmt.Sprintf("cafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n",
			b.tls.CA, filepath.Join(b.dir, "server.crt"), filepath.Join(b.dir, "server.key"))
	}
	conf := fmt.Sprintf(`listener %d 127.0.0.1
allow_anonymous true
persistence true
persistence_location %s/
autosave_interval 1
max_queued_messages 100000
user %s
log_dest stderr
log_type error
log_type warning
log_type notice
log_type information
%s`, b.port, b.dir, currentUser(), extra)
	if err := os.WriteFile(b.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	b.start()
	t.Cleanup(func() { b.Stop() })
	return b
}

// URL is the broker's address for paho: tcp://127.0.0.1:PORT, or ssl:// for a TLS broker.
func (b *Broker) URL() string {
	if b.tls != nil {
		return fmt.Sprintf("ssl://127.0.0.1:%d", b.port)
	}
	return fmt.Sprintf("tcp://127.0.0.1:%d", b.port)
}

// TLS returns the certificate files of a broker started with Options.TLS, else nil.
func (b *Broker) TLS() *TLSFiles { return b.tls }

// Addr is host:port.
func (b *Broker) Addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

func (b *Broker) start() {
	b.t.Helper()
	cmd := exec.Command("mosquitto", "-c", b.conf)
	// mosquitto block-buffers stdout when it is not a terminal; its stderr log is unbuffered.
	out, err := cmd.StderrPipe()
	if err != nil {
		b.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("starting mosquitto: %v", err)
	}
	ready := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		var log []string
		sent := false
		for sc.Scan() {
			line := sc.Text()
			log = append(log, line)
			if !sent && strings.Contains(line, " running") {
				ready <- nil
				sent = true
			}
		}
		if !sent {
			ready <- fmt.Errorf("mosquitto exited before it was ready:\n%s", strings.Join(log, "\n"))
		}
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case err := <-ready:
		if err != nil {
			b.t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		b.t.Fatal("mosquitto did not report running within 20s")
	}
	b.mu.Lock()
	b.cmd, b.done = cmd, done
	b.mu.Unlock()
}

// Stop stops the broker with SIGTERM (it saves its persistence file) and waits for it.
func (b *Broker) Stop() { b.signal(syscall.SIGTERM) }

// Kill stops the broker with SIGKILL: what it had not saved (autosave is 1 s) is lost.
func (b *Broker) Kill() { b.signal(syscall.SIGKILL) }

func (b *Broker) signal(sig syscall.Signal) {
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.cmd = nil
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Restart stops the broker (SIGTERM) and starts it again on the same port and store.
func (b *Broker) Restart() {
	b.t.Helper()
	b.Stop()
	b.start()
}

// Start again after Stop or Kill.
func (b *Broker) StartAgain() {
	b.t.Helper()
	b.start()
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// currentUser keeps mosquitto from dropping to the "mosquitto" user when the tests run as root
// (it could not write the test's temporary directory then).
func currentUser() string {
	if os.Geteuid() == 0 {
		return "root"
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "nobody"
}
