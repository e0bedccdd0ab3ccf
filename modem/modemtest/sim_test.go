package modemtest_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopkit/relay/modem/modemtest"
	"go.bug.st/serial"
)

// client is a bare serial client: it checks the simulator's dialect byte for byte, without the
// modem package's engine in between.
type client struct {
	t *testing.T
	p serial.Port
	r *bufio.Reader
}

func dial(t *testing.T, path string) *client {
	t.Helper()
	p, err := serial.Open(path, &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := p.SetReadTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	return &client{t: t, p: p, r: bufio.NewReader(p)}
}

// newSim starts a simulator that is closed when the test ends.
func newSim(t *testing.T, opts modemtest.Options) *modemtest.Sim {
	t.Helper()
	sim, err := modemtest.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := c.p.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// prompt reads the "> " that asks for a PDU.
func (c *client) prompt() {
	c.t.Helper()
	if p, _ := c.r.ReadString(' '); strings.TrimSpace(p) != ">" {
		c.t.Fatalf("prompt = %q", p)
	}
}

// until reads lines up to and including one equal to final.
func (c *client) until(final string) []string {
	c.t.Helper()
	var out []string
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read: %v (so far %q)", err, out)
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			continue
		}
		out = append(out, l)
		if l == final || strings.HasPrefix(l, "+CME ERROR") || strings.HasPrefix(l, "+CMS ERROR") || l == "ERROR" {
			return out
		}
	}
}

func TestSim_Dialogue(t *testing.T) {
	link := filepath.Join(t.TempDir(), "modem")
	sim := newSim(t, modemtest.Options{Link: link})
	c := dial(t, link)
	c.send("AT\r")
	if got := strings.Join(c.until("OK"), "|"); got != "AT|OK" {
		t.Errorf("echo on: %q", got)
	}
	c.send("ATE0\r")
	c.until("OK")
	c.send("AT+CSQ\r")
	if got := strings.Join(c.until("OK"), "|"); got != "+CSQ: 20,99|OK" {
		t.Errorf("csq: %q", got)
	}
	if _, err := sim.Deliver("+4917600000001", "hi"); err != nil {
		t.Fatal(err)
	}
	if got := c.until(`+CMTI: "ME",0`); len(got) != 1 {
		t.Errorf("cmti: %q", got)
	}
	c.send("AT+CMGL=4\r")
	got := c.until("OK")
	if len(got) != 3 || !strings.HasPrefix(got[0], "+CMGL: 0,0,,") {
		t.Errorf("cmgl: %q", got)
	}
	c.send("AT+CMGD=0\r")
	c.until("OK")
	if n := len(sim.Stored()); n != 0 {
		t.Errorf("stored after delete: %d", n)
	}
	// PDU send: prompt, then the PDU and Ctrl-Z.
	c.send("AT+CMGS=17\r")
	c.prompt()
	c.send("0001000B914171000000F1000004C8F71D14\x1a") // to +14170000001, "How " (GSM 7-bit)
	if got := strings.Join(c.until("OK"), "|"); got != "+CMGS: 1|OK" {
		t.Errorf("cmgs: %q", got)
	}
	if s := sim.Sent(); len(s) != 1 || s[0].To != "+14170000001" || s[0].Text != "How " {
		t.Errorf("sent = %+v", s)
	}
	// A full reset comes back under a new name, the link follows it.
	first := sim.Path()
	// The OK of a reset may be lost when the device drops off the bus (on real modems too): the
	// simulator tries to let it be read first, the test accepts either.
	c.send("AT+CFUN=1,1\r")
	if l, err := c.r.ReadString('\n'); err == nil && strings.TrimSpace(l) == "" {
		_, _ = c.r.ReadString('\n')
	}
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	linked := func() bool { r, err := filepath.EvalSymlinks(link); return err == nil && r == sim.Path() }
	for sim.Path() == first || len(sim.Names()) < 2 || !linked() {
		select {
		case <-deadline:
			t.Fatal("no re-enumeration after AT+CFUN=1,1")
		case <-tick.C:
		}
	}
	real, err := filepath.EvalSymlinks(link)
	if err != nil || real != sim.Path() {
		t.Errorf("link → %q, %v; want %q", real, err, sim.Path())
	}
	if _, err := os.Stat(first); err == nil {
		t.Errorf("old path %s still exists", first)
	}
}

func TestSim_SIMMissing(t *testing.T) {
	sim := newSim(t, modemtest.Options{SIM: modemtest.SIMMissing})
	c := dial(t, sim.Path())
	c.send("ATE0\r")
	c.until("OK")
	for cmd, want := range map[string]string{"AT+CPIN?": "+CME ERROR: 10", "AT+CMGL=4": "+CMS ERROR: 310", "AT+CIMI": "+CME ERROR: 10"} {
		c.send(cmd + "\r")
		if got := c.until("OK"); got[len(got)-1] != want {
			t.Errorf("%s → %q, want %s", cmd, got, want)
		}
	}
}

// The send faults: a refused part, a PDU sent but never answered, a modem that drops off the bus
// after taking a PDU.
func TestSim_SendFaults(t *testing.T) {
	sim := newSim(t, modemtest.Options{})
	c := dial(t, sim.Path())
	c.send("ATE0\r")
	c.until("OK")
	const pdu = "0001000B914171000000F1000004C8F71D14\x1a" // a single-part SMS: part 1
	submit := func() {
		t.Helper()
		c.send("AT+CMGS=17\r")
		c.prompt()
		c.send(pdu)
	}

	sim.FailPart(2, 331) // not this message's part: no effect
	sim.FailPart(1, 500)
	submit()
	if got := strings.Join(c.until("OK"), "|"); got != "+CMS ERROR: 500" {
		t.Errorf("failed part: %q", got)
	}
	if n := len(sim.Sent()); n != 0 {
		t.Errorf("refused part was sent: %d", n)
	}

	sim.StallAfterPDU(1)
	var mu sync.Mutex
	var pdus []string
	sim.OnPDU(func(h string) {
		mu.Lock()
		pdus = append(pdus, h)
		mu.Unlock()
	})
	submit()
	// The modem answers the next command, and no +CMGS came before its OK.
	c.send("AT\r")
	if got := strings.Join(c.until("OK"), "|"); got != "OK" {
		t.Errorf("after a stalled send: %q", got)
	}
	if s := sim.Sent(); len(s) != 1 || s[0].Text != "How " {
		t.Errorf("stalled send was not sent: %+v", s)
	}

	sim.UnplugAfterPDU()
	submit()
	if l, err := c.r.ReadString('\n'); err == nil {
		t.Errorf("read after the modem dropped off = %q, want an error", l)
	}
	if n, u := len(sim.Sent()), sim.Unplugs(); n != 2 || u != 1 {
		t.Errorf("sent %d unplugs %d; want 2 and 1", n, u)
	}
	sim.OnPDU(nil)
	mu.Lock()
	defer mu.Unlock()
	if len(pdus) != 2 || pdus[0] != strings.TrimSuffix(pdu, "\x1a") {
		t.Errorf("OnPDU saw %q", pdus)
	}
}
