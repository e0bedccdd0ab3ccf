package modem_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopkit/relay/modem"
	"github.com/shopkit/relay/modem/modemtest"
)

func TestModem_InitFromCold(t *testing.T) {
	r := newRig(t, modemtest.Options{Own: "+4915112345678"}, nil)
	// A message waiting in storage before we start is drained at start-up.
	if _, err := r.sim.Deliver("+4917600000001", "STOP"); err != nil {
		t.Fatal(err)
	}
	r.waitReady()
	got := r.nextSMS(5 * time.Second)
	if got.From != "+4917600000001" || got.Text != "STOP" || got.Parts != 1 {
		t.Errorf("sms = %+v", got)
	}
	h := r.m.Health()
	if h.Identity.IMEI != "861234567890123" || h.Identity.ICCID != "89490200001234567890" ||
		h.Identity.IMSI != "262011234567890" || h.Identity.Number != "+4915112345678" || h.Identity.Model != "EC25" {
		t.Errorf("identity = %+v", h.Identity)
	}
	if h.SIM != modem.SIMReady || h.Registration != modem.RegHome || h.Operator != "Telekom.de" || h.Tech != "4G" {
		t.Errorf("health = %+v", h)
	}
	if h.Signal.RSSI != -73 || h.Signal.Bars != 5 || !h.Signal.HasLTE || h.Signal.RSRP != -96 {
		t.Errorf("signal = %+v", h.Signal)
	}
	waitFor(t, "storage emptied", 5*time.Second, func() bool { return len(r.sim.Stored()) == 0 })
	for _, want := range []string{"ATE0", "AT+CMEE=1", "AT+CMGF=0", "AT+CNMI=2,1,0,1,0", `AT+CPMS="ME","ME","ME"`} {
		if r.sim.CountCommand(want) != 1 {
			t.Errorf("command %q sent %d times, want 1", want, r.sim.CountCommand(want))
		}
	}
}

func TestModem_SendSMS(t *testing.T) {
	r := newRig(t, modemtest.Options{Reports: true}, nil)
	r.waitReady()
	refs, err := r.m.SendSMS(context.Background(), "+4915112345678", "Your order 1042 has shipped.")
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 1 {
		t.Fatalf("refs = %v", refs)
	}
	if got := r.sim.SentTexts(); len(got) != 1 || got[0] != "Your order 1042 has shipped." {
		t.Errorf("sent = %q", got)
	}
	waitFor(t, "delivery report", 5*time.Second, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.reports) == 1
	})
	r.mu.Lock()
	rep := r.reports[0]
	r.mu.Unlock()
	if rep.Ref != refs[0] || !rep.Delivered || rep.To != "+4915112345678" {
		t.Errorf("report = %+v, refs %v", rep, refs)
	}
}

func TestModem_MultipartInterleavedWithSend(t *testing.T) {
	r := newRig(t, modemtest.Options{}, nil)
	r.waitReady()
	gsm := strings.Repeat("Please STOP sending me offers. ", 12) // 372 chars: 3 GSM-7 parts
	ucs := strings.Repeat("Пожалуйста, СТОП. ", 8)               // 144 chars: 3 UCS-2 parts
	at := time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)
	g, err := modemtest.EncodeDeliver("+4917600000001", gsm, at, 41)
	if err != nil {
		t.Fatal(err)
	}
	u, err := modemtest.EncodeDeliver("+4917600000002", ucs, at, 41)
	if err != nil {
		t.Fatal(err)
	}
	if len(g) != 3 || len(u) != 3 {
		t.Fatalf("parts %d/%d", len(g), len(u))
	}
	// Parts arrive (with +CMTI) while our own 3-part send is on the line, out of order and mixed.
	incoming := []string{g[1], u[2], g[0], u[0], g[2], u[1]}
	var mu sync.Mutex
	r.sim.OnCommand(func(cmd string) {
		if !strings.HasPrefix(cmd, "AT+CMGS=") {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for i := 0; i < 2 && len(incoming) > 0; i++ {
			r.sim.StorePDU(incoming[0])
			incoming = incoming[1:]
		}
	})
	out := strings.Repeat("Your order 1042 has shipped with DHL. ", 10) // 380 chars: 3 parts
	refs, err := r.m.SendSMS(context.Background(), "+4915112345678", out)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 3 || refs[0] == refs[1] {
		t.Errorf("refs = %v", refs)
	}
	if got := r.sim.SentTexts(); len(got) != 1 || got[0] != out {
		t.Errorf("sent = %q", got)
	}
	got := map[string]modem.SMS{}
	for i := 0; i < 2; i++ {
		s := r.nextSMS(5 * time.Second)
		got[s.From] = s
	}
	if s := got["+4917600000001"]; s.Text != gsm || s.Parts != 3 || s.Incomplete {
		t.Errorf("gsm-7 message = %+v", s)
	}
	if s := got["+4917600000002"]; s.Text != ucs || s.Parts != 3 || s.Incomplete {
		t.Errorf("ucs-2 message = %+v", s)
	}
	waitFor(t, "storage emptied", 5*time.Second, func() bool { return len(r.sim.Stored()) == 0 })
	r.noMoreSMS()
}

func TestModem_URCFloodAndGarbage(t *testing.T) {
	r := newRig(t, modemtest.Options{}, func(c *modem.Config) { c.HealthEvery = 30 * time.Millisecond })
	r.waitReady()
	r.sim.Flood(6, 40) // six URCs between every two lines of the next 40 replies
	r.sim.GarbageInNextReply([]byte{0x00, 0xff, 0x13, 0x80, 'O', 'K', 0xfe})
	r.sim.Garbage([]byte("\xff\xfe\x00garbage\x01\r\n"))
	r.sim.SetSignal(10)
	if _, err := r.sim.Deliver("+4917600000001", "Your Signal code: 123-456"); err != nil {
		t.Fatal(err)
	}
	s := r.nextSMS(5 * time.Second)
	if code, ok := modem.ExtractSignalCode(s.Text); !ok || code != "123456" {
		t.Errorf("code from %q = %q,%v", s.Text, code, ok)
	}
	if _, err := r.m.SendSMS(context.Background(), "+4915112345678", "flood test"); err != nil {
		t.Fatalf("send during flood: %v", err)
	}
	waitFor(t, "signal poll through the flood", 5*time.Second, func() bool { return r.m.Health().Signal.RSSI == -93 })
	h := r.m.Health()
	if h.State != modem.StateReady || h.Registration != modem.RegHome || h.Operator != "Telekom.de" {
		t.Errorf("health = %+v", h)
	}
	if n := len(h.Recoveries); n != 0 {
		t.Errorf("recoveries during a flood: %v", h.Recoveries)
	}
	r.noMoreSMS()
}

func TestModem_UnplugMidCommandReplugUnderNewName(t *testing.T) {
	r := newRig(t, modemtest.Options{}, nil)
	r.waitReady()
	first := r.m.Health().Device
	r.sim.OnCommand(func(cmd string) {
		if strings.HasPrefix(cmd, "AT+CMGS=") {
			r.sim.Unplug() // mid-command: the command is never answered
		}
	})
	_, err := r.m.SendSMS(context.Background(), "+4915112345678", "hello")
	if !errors.Is(err, modem.ErrPortGone) {
		t.Fatalf("send err = %v, want ErrPortGone", err)
	}
	r.sim.OnCommand(nil)
	waitFor(t, "modem notices the unplug", 5*time.Second, func() bool { return r.m.Health().State != modem.StateReady })
	if _, err := r.m.SendSMS(context.Background(), "+4915112345678", "hello"); !errors.Is(err, modem.ErrUnavailable) {
		t.Errorf("send while gone = %v, want ErrUnavailable", err)
	}
	// An SMS arrives while the modem is off the bus (stored, no +CMTI seen by us).
	if _, err := r.sim.Deliver("+4917600000003", "arrived while unplugged"); err != nil {
		t.Fatal(err)
	}
	if err := r.sim.Replug(); err != nil {
		t.Fatal(err)
	}
	r.waitReady()
	h := r.m.Health()
	if h.Device == first || h.Device != r.sim.Path() {
		t.Errorf("device = %q, first %q, sim now %q", h.Device, first, r.sim.Path())
	}
	if h.Recoveries[modem.StepReopen] != 1 || h.Recoveries[modem.StepResync] != 0 || h.NeedsStaff {
		t.Errorf("recoveries = %v needs staff %v", h.Recoveries, h.NeedsStaff)
	}
	if s := r.nextSMS(5 * time.Second); s.Text != "arrived while unplugged" {
		t.Errorf("sms = %+v", s)
	}
	if _, err := r.m.SendSMS(context.Background(), "+4915112345678", "after replug"); err != nil {
		t.Errorf("send after replug: %v", err)
	}
	r.noMoreSMS()
}

func TestModem_StallRecoveredByReopen(t *testing.T) {
	r := newRig(t, modemtest.Options{}, func(c *modem.Config) { c.HealthEvery = 50 * time.Millisecond })
	r.waitReady()
	// The health poll (1), three resync ATs (2-4) and the first AT after reopening (5) go
	// unanswered; the second AT after reopening is answered.
	r.sim.Stall(5)
	waitFor(t, "recovery by reopen", 10*time.Second, func() bool {
		h := r.m.Health()
		return h.State == modem.StateReady && h.Recoveries[modem.StepReopen] == 1
	})
	h := r.m.Health()
	if h.Recoveries[modem.StepResync] != 1 || h.Recoveries[modem.StepRadio] != 0 || h.NeedsStaff {
		t.Errorf("recoveries = %v", h.Recoveries)
	}
	if !strings.Contains(h.LastError, "timed out") {
		t.Errorf("last error = %q", h.LastError)
	}
}

func TestModem_StallRecoveredByFullReset(t *testing.T) {
	r := newRig(t, modemtest.Options{}, func(c *modem.Config) { c.HealthEvery = 50 * time.Millisecond })
	r.waitReady()
	first := r.m.Health().Device
	// Hung firmware that only a reset brings back; the reset re-enumerates under a new name.
	r.sim.OnCommand(func(cmd string) {
		if cmd == "AT+CFUN=1,1" {
			r.sim.Unstall()
		}
	})
	r.sim.Stall(-1)
	waitFor(t, "recovery by full reset", 15*time.Second, func() bool {
		h := r.m.Health()
		return h.State == modem.StateReady && h.Recoveries[modem.StepReset] == 1
	})
	r.sim.OnCommand(nil)
	h := r.m.Health()
	for _, s := range []string{modem.StepResync, modem.StepReopen, modem.StepRadio, modem.StepReset} {
		if h.Recoveries[s] != 1 {
			t.Errorf("step %s counted %d times, want 1 (%v)", s, h.Recoveries[s], h.Recoveries)
		}
	}
	if h.Device == first || r.sim.Unplugs() != 1 {
		t.Errorf("device %q (first %q), unplugs %d", h.Device, first, r.sim.Unplugs())
	}
	if _, err := r.m.SendSMS(context.Background(), "+4915112345678", "after reset"); err != nil {
		t.Errorf("send after reset: %v", err)
	}
}

func TestModem_StallNeedsStaff(t *testing.T) {
	logs := &logCounter{}
	r := newRig(t, modemtest.Options{}, func(c *modem.Config) {
		c.HealthEvery = 50 * time.Millisecond
		c.RetryEvery = 100 * time.Millisecond
		c.Logger = slog.New(logs)
	})
	r.waitReady()
	r.sim.Stall(-1)
	waitFor(t, "needs staff", 15*time.Second, func() bool { return r.m.Health().NeedsStaff })
	// Let it retry quietly a few times (each retry sends AT twice into the stall).
	n := r.sim.CountCommand("AT")
	waitFor(t, "quiet retries", 10*time.Second, func() bool { return r.sim.CountCommand("AT") >= n+6 })
	for _, msg := range []string{"modem: needs staff", "modem: recovery step resync", "modem: recovery step reopen",
		"modem: recovery step radio_cycle", "modem: recovery step full_reset"} {
		if got := logs.count(msg); got != 1 {
			t.Errorf("%q logged %d times, want 1", msg, got)
		}
	}
	h := r.m.Health()
	if h.State != modem.StateNeedsStaff || !strings.Contains(h.Reason, "does not answer") {
		t.Errorf("health = %+v", h)
	}
	for _, s := range []string{modem.StepResync, modem.StepReopen, modem.StepRadio, modem.StepReset, modem.StepStaff} {
		if h.Recoveries[s] != 1 {
			t.Errorf("step %s counted %d, want 1 (%v)", s, h.Recoveries[s], h.Recoveries)
		}
	}
	// An SMS arrives while the modem is hung; staff power-cycles it (here: it un-hangs).
	if _, err := r.sim.Deliver("+4917600000004", "during recovery"); err != nil {
		t.Fatal(err)
	}
	r.sim.Unstall()
	waitFor(t, "ready again", 10*time.Second, func() bool { return r.m.Health().State == modem.StateReady })
	if s := r.nextSMS(5 * time.Second); s.Text != "during recovery" {
		t.Errorf("sms = %+v", s)
	}
	h = r.m.Health()
	if h.NeedsStaff || h.Recoveries[modem.StepStaff] != 1 {
		t.Errorf("after recovery: %+v", h)
	}
	waitFor(t, "storage emptied", 5*time.Second, func() bool { return len(r.sim.Stored()) == 0 })
	r.noMoreSMS()
}

func TestModem_SIMMissing(t *testing.T) {
	r := newRig(t, modemtest.Options{SIM: modemtest.SIMMissing}, func(c *modem.Config) {
		c.RetryEvery = 100 * time.Millisecond
	})
	waitFor(t, "needs staff", 5*time.Second, func() bool { return r.m.Health().NeedsStaff })
	h := r.m.Health()
	if h.SIM != modem.SIMMissing || h.Reason != "SIM card missing" || h.State != modem.StateNeedsStaff {
		t.Errorf("health = %+v", h)
	}
	if h.Recoveries[modem.StepReset] != 0 {
		t.Errorf("the ladder ran for a missing SIM: %v", h.Recoveries)
	}
	if _, err := r.m.SendSMS(context.Background(), "+4915112345678", "x"); !errors.Is(err, modem.ErrUnavailable) {
		t.Errorf("send = %v", err)
	}
	r.sim.InsertSIM()
	r.waitReady()
	if h := r.m.Health(); h.SIM != modem.SIMReady || h.NeedsStaff {
		t.Errorf("after insert: %+v", h)
	}
	// Removing the SIM at run time is noticed from the URC.
	r.sim.RemoveSIM()
	waitFor(t, "SIM removal noticed", 5*time.Second, func() bool { return r.m.Health().SIM == modem.SIMMissing })
}

// pinFile writes a PIN file with the given content and mode and returns its path.
func pinFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode passes through the umask
		t.Fatal(err)
	}
	return path
}

func TestModem_SIMPIN(t *testing.T) {
	good := pinFile(t, "1234\n", 0o600)
	r := newRig(t, modemtest.Options{SIM: modemtest.SIMPIN, PIN: "1234"}, func(c *modem.Config) { c.PINFile = good })
	r.waitReady()
	if n := r.sim.CountCommand(`AT+CPIN="1234"`); n != 1 {
		t.Errorf("PIN sent %d times", n)
	}
}

func TestModem_SIMPINRefusedIsNotRetried(t *testing.T) {
	bad := pinFile(t, "9999", 0o600)
	r := newRig(t, modemtest.Options{SIM: modemtest.SIMPIN, PIN: "1234"}, func(c *modem.Config) {
		c.PINFile = bad
		c.RetryEvery = 50 * time.Millisecond
	})
	waitFor(t, "needs staff", 5*time.Second, func() bool { return r.m.Health().NeedsStaff })
	// Let it retry a few times: the PIN must have been offered once only.
	waitFor(t, "retries", 5*time.Second, func() bool { return r.sim.CountCommand("AT+CPIN?") >= 4 })
	if n := r.sim.CountCommand(`AT+CPIN="9999"`); n != 1 {
		t.Errorf("refused PIN sent %d times, want 1", n)
	}
	if h := r.m.Health(); h.SIM != modem.SIMPIN || !strings.Contains(h.Reason, "SIM locked") {
		t.Errorf("health = %+v", h)
	}
}

func TestModem_PINFileReadableByOthers(t *testing.T) {
	loose := pinFile(t, "1234", 0o644)
	r := newRig(t, modemtest.Options{SIM: modemtest.SIMPIN, PIN: "1234"}, func(c *modem.Config) { c.PINFile = loose })
	waitFor(t, "needs staff", 5*time.Second, func() bool { return r.m.Health().NeedsStaff })
	if n := r.sim.CountCommand(`AT+CPIN="`); n != 0 {
		t.Errorf("PIN from a world-readable file was used")
	}
	if h := r.m.Health(); !strings.Contains(h.Reason, "chmod 600") {
		t.Errorf("reason = %q", h.Reason)
	}
}

func TestModem_CMSErrorOnSend(t *testing.T) {
	r := newRig(t, modemtest.Options{}, nil)
	r.waitReady()
	r.sim.FailSends(500)
	refs, err := r.m.SendSMS(context.Background(), "+4915112345678", "hello")
	if !modem.IsCMS(err, 500) || !errors.Is(err, modem.ErrCommandFailed) || len(refs) != 0 {
		t.Fatalf("refs %v err %v; want +CMS ERROR 500", refs, err)
	}
	var re *modem.ResultError
	if !errors.As(err, &re) || re.Kind != modem.KindCMS || re.Code != 500 {
		t.Errorf("err = %#v", err)
	}
	// A failure in the second part of a long message returns the first part's reference.
	r.sim.FailSends() // none
	long := strings.Repeat("a", 300)
	r.sim.OnCommand(func(cmd string) {
		if strings.HasPrefix(cmd, "AT+CMGS=") && len(r.sim.Sent()) == 1 {
			r.sim.FailSends(331)
		}
	})
	refs, err = r.m.SendSMS(context.Background(), "+4915112345678", long)
	if !modem.IsCMS(err, 331) || len(refs) != 1 {
		t.Errorf("partial send: refs %v err %v", refs, err)
	}
	r.sim.OnCommand(nil)
	if _, err := r.m.SendSMS(context.Background(), "+4915112345678", "works again"); err != nil {
		t.Errorf("send after CMS error: %v", err)
	}
	if h := r.m.Health(); h.State != modem.StateReady || len(h.Recoveries) != 0 || h.SendErrors != 2 {
		t.Errorf("health = %+v", h)
	}
}

// The relay accepted an SMS, and the modem died before it was deleted: after recovery it is
// read again and must not be handed over a second time.
func TestModem_HandedOverNotDeletedIsNotDoubled(t *testing.T) {
	r := newRig(t, modemtest.Options{}, nil)
	r.waitReady()
	var once sync.Once
	r.setHandler(func(s modem.SMS) error {
		once.Do(func() {
			r.sim.Unplug()
			if err := r.sim.Replug(); err != nil {
				t.Errorf("replug: %v", err)
			}
		})
		return nil
	})
	if _, err := r.sim.Deliver("+4917600000005", "STOP"); err != nil {
		t.Fatal(err)
	}
	s := r.nextSMS(5 * time.Second)
	if s.Text != "STOP" {
		t.Fatalf("sms = %+v", s)
	}
	// The duplicate is counted (and deleted) by the drain inside the reconnect, before the modem
	// says it is ready again: wait for the end of the recovery, not for the count alone.
	waitFor(t, "re-read, deleted and ready after recovery", 10*time.Second, func() bool {
		h := r.m.Health()
		return h.Duplicates == 1 && h.State == modem.StateReady && len(r.sim.Stored()) == 0
	})
	if h := r.m.Health(); h.Received != 1 || h.Recoveries[modem.StepReopen] != 1 {
		t.Errorf("health = %+v", h)
	}
	r.noMoreSMS()
}

func TestModem_HandlerErrorKeepsSMS(t *testing.T) {
	r := newRig(t, modemtest.Options{}, func(c *modem.Config) { c.HealthEvery = 30 * time.Millisecond })
	r.waitReady()
	var calls atomic.Int32
	r.setHandler(func(s modem.SMS) error {
		if calls.Add(1) == 1 {
			return errors.New("outbox full")
		}
		return nil
	})
	if _, err := r.sim.Deliver("+4917600000006", "keep me"); err != nil {
		t.Fatal(err)
	}
	if s := r.nextSMS(5 * time.Second); s.Text != "keep me" {
		t.Errorf("sms = %+v", s)
	}
	if calls.Load() != 2 {
		t.Errorf("handler called %d times, want 2", calls.Load())
	}
	waitFor(t, "storage emptied", 5*time.Second, func() bool { return len(r.sim.Stored()) == 0 })
}

func TestModem_MultipartTimeout(t *testing.T) {
	r := newRig(t, modemtest.Options{}, func(c *modem.Config) {
		c.HealthEvery = 30 * time.Millisecond
		c.MultipartTimeout = 200 * time.Millisecond
	})
	r.waitReady()
	parts, err := modemtest.EncodeDeliver("+4917600000007", strings.Repeat("x", 400), time.Now(), 77)
	if err != nil {
		t.Fatal(err)
	}
	r.sim.StorePDU(parts[0])
	r.sim.StorePDU(parts[2]) // part 2 never comes
	s := r.nextSMS(5 * time.Second)
	if !s.Incomplete || s.Parts != 2 || len(s.Text) != 153+94 {
		t.Errorf("sms = %+v (len %d)", s, len(s.Text))
	}
	waitFor(t, "storage emptied", 5*time.Second, func() bool { return len(r.sim.Stored()) == 0 })
}

func TestModem_RegistrationURC(t *testing.T) {
	r := newRig(t, modemtest.Options{}, nil)
	r.waitReady()
	r.sim.SetRegistration(3)
	waitFor(t, "denied", 5*time.Second, func() bool { return r.m.Health().Registration == modem.RegDenied })
	r.sim.SetRegistration(5)
	waitFor(t, "roaming", 5*time.Second, func() bool { return r.m.Health().Registration == modem.RegRoaming })
}

func TestNew_Invalid(t *testing.T) {
	if _, err := modem.New(modem.Config{}); !errors.Is(err, modem.ErrInvalidInput) {
		t.Errorf("New without device = %v", err)
	}
	if _, err := modem.New(modem.Config{USB: modem.USBMatch{VID: "2c7c"}}); !errors.Is(err, modem.ErrInvalidInput) {
		t.Errorf("New with VID only = %v", err)
	}
}

func TestModem_NoGoroutineLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	r := newRig(t, modemtest.Options{}, nil)
	r.waitReady()
	if _, err := r.sim.Deliver("+4917600000001", "hi"); err != nil {
		t.Fatal(err)
	}
	r.nextSMS(5 * time.Second)
	if _, err := r.m.SendSMS(context.Background(), "+4915112345678", "bye"); err != nil {
		t.Fatal(err)
	}
	r.stop()
	r.sim.Close()
	if h := r.m.Health(); h.State != modem.StateStopped {
		t.Errorf("state after Run = %s", h.State)
	}
	waitFor(t, "goroutines to end", 5*time.Second, func() bool { return runtime.NumGoroutine() <= base })
}

func TestModem_SendTimeoutStartsLadder(t *testing.T) {
	r := newRig(t, modemtest.Options{}, func(c *modem.Config) { c.SendTimeout = 500 * time.Millisecond })
	r.waitReady()
	r.sim.OnCommand(func(cmd string) {
		if strings.HasPrefix(cmd, "AT+CMGS=") {
			r.sim.Stall(2) // this command and the link check after it go unanswered
		}
	})
	_, err := r.m.SendSMS(context.Background(), "+4915112345678", "hello")
	if !errors.Is(err, modem.ErrTimeout) {
		t.Fatalf("send = %v, want ErrTimeout", err)
	}
	r.sim.OnCommand(nil)
	waitFor(t, "resync after the send timeout", 10*time.Second, func() bool {
		h := r.m.Health()
		return h.Recoveries[modem.StepResync] == 1 && h.State == modem.StateReady
	})
	if _, err := r.m.SendSMS(context.Background(), "+4915112345678", "hello again"); err != nil {
		t.Errorf("send after resync: %v", err)
	}
	if got := r.sim.SentTexts(); len(got) != 1 || got[0] != "hello again" {
		t.Errorf("sent = %q", got)
	}
}

// The modem is gone (at start or just after) and the ladder gives up: it needs staff, and it is
// found as soon as it is plugged in again, without waiting for RetryEvery.
func TestModem_NotPluggedAtStart(t *testing.T) {
	link := filepath.Join(t.TempDir(), "by-id", "usb-Quectel_EC25-if02-port0")
	r := newRig(t, modemtest.Options{Link: link}, func(c *modem.Config) {
		c.DeviceWait = 100 * time.Millisecond
		c.ResetWait = 100 * time.Millisecond
		c.RetryEvery = time.Hour // only the device poll can bring it back in time
	})
	r.sim.Unplug()
	waitFor(t, "needs staff", 10*time.Second, func() bool { return r.m.Health().NeedsStaff })
	if h := r.m.Health(); !strings.HasPrefix(h.Reason, "modem not found") {
		t.Errorf("reason = %q", h.Reason)
	}
	if err := r.sim.Replug(); err != nil {
		t.Fatal(err)
	}
	r.waitReady()
}
