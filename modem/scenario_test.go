package modem_test

import (
	"context"
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
