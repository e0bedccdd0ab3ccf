package modem_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shopkit/relay/modem"
	"github.com/shopkit/relay/modem/modemtest"
)

// A send whose outcome is unknown says so (ErrOutcomeUnknown), and one that surely failed does
// not: the relay resends only what it must (ARCHITECTURE section 3 rule 6).
func TestModem_SendSMSOutcome(t *testing.T) {
	short := "Your order 1042 has shipped."
	long := strings.Repeat("Your order 1042 has shipped with DHL. ", 10) // 3 parts
	tests := []struct {
		name  string
		text  string
		fault func(r *rig, cancel context.CancelFunc)
		is    []error // the error must match these
		isNot []error // and must not match these
		cms   int     // the +CMS cause it must carry, 0 for none
		refs  int     // references returned (parts the network accepted)
		sent  int     // PDUs the simulator took and sent
		part  int     // the part the *SendError names
		msg   string  // in the error text
	}{
		{name: "stall after the PDU", text: short,
			fault: func(r *rig, _ context.CancelFunc) { r.sim.StallAfterPDU(1) },
			is:    []error{modem.ErrOutcomeUnknown, modem.ErrTimeout}, sent: 1, part: 1,
			msg: "outcome unknown"},
		{name: "stall before the prompt", text: short,
			fault: func(r *rig, _ context.CancelFunc) {
				r.sim.OnCommand(func(cmd string) {
					if strings.HasPrefix(cmd, "AT+CMGS=") {
						r.sim.Stall(1) // this command only: no prompt
					}
				})
			},
			is: []error{modem.ErrTimeout}, isNot: []error{modem.ErrOutcomeUnknown}, part: 1},
		{name: "+CMS ERROR after the PDU", text: short,
			fault: func(r *rig, _ context.CancelFunc) { r.sim.FailPart(1, 500) },
			is:    []error{modem.ErrCommandFailed}, isNot: []error{modem.ErrOutcomeUnknown, modem.ErrTimeout},
			cms: 500, part: 1},
		{name: "unplug after the PDU", text: short,
			fault: func(r *rig, _ context.CancelFunc) { r.sim.UnplugAfterPDU() },
			is:    []error{modem.ErrOutcomeUnknown, modem.ErrPortGone}, sent: 1, part: 1},
		{name: "unplug before the prompt", text: short,
			fault: func(r *rig, _ context.CancelFunc) {
				r.sim.OnCommand(func(cmd string) {
					if strings.HasPrefix(cmd, "AT+CMGS=") {
						r.sim.Unplug()
					}
				})
			},
			is: []error{modem.ErrPortGone}, isNot: []error{modem.ErrOutcomeUnknown}, part: 1},
		{name: "context ends after the PDU", text: short,
			fault: func(r *rig, cancel context.CancelFunc) {
				r.sim.StallAfterPDU(1)
				r.sim.OnPDU(func(string) { cancel() })
			},
			is: []error{modem.ErrOutcomeUnknown, context.Canceled}, sent: 1, part: 1},
		{name: "part 2 of 3 fails: partial delivery", text: long,
			fault: func(r *rig, _ context.CancelFunc) { r.sim.FailPart(2, 331) },
			is:    []error{modem.ErrOutcomeUnknown, modem.ErrCommandFailed}, isNot: []error{modem.ErrTimeout},
			cms: 331, refs: 1, sent: 1, part: 2, msg: "partial delivery: 1 of 3 parts already sent"},
		{name: "part 3 of 3 stalls after the PDU", text: long,
			fault: func(r *rig, _ context.CancelFunc) {
				r.sim.OnPDU(func(string) {
					if len(r.sim.Sent()) == 2 {
						r.sim.StallAfterPDU(1)
					}
				})
			},
			is: []error{modem.ErrOutcomeUnknown, modem.ErrTimeout}, refs: 2, sent: 3, part: 3},
		{name: "part 1 of 3 fails: nothing sent", text: long,
			fault: func(r *rig, _ context.CancelFunc) { r.sim.FailPart(1, 331) },
			is:    []error{modem.ErrCommandFailed}, isNot: []error{modem.ErrOutcomeUnknown}, cms: 331, part: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The deadline only has to cover a prompt on an idle pty; the stalls run into it.
			r := newRig(t, modemtest.Options{}, func(c *modem.Config) { c.SendTimeout = time.Second })
			r.waitReady()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tt.fault(r, cancel)
			refs, err := r.m.SendSMS(ctx, "+4915112345678", tt.text)
			r.sim.OnCommand(nil)
			r.sim.OnPDU(nil)
			if err == nil {
				t.Fatalf("send succeeded (refs %v)", refs)
			}
			for _, want := range tt.is {
				if !errors.Is(err, want) {
					t.Errorf("err = %v; want it to match %v", err, want)
				}
			}
			for _, not := range tt.isNot {
				if errors.Is(err, not) {
					t.Errorf("err = %v; must not match %v", err, not)
				}
			}
			if tt.cms != 0 && !modem.IsCMS(err, tt.cms) {
				t.Errorf("err = %v; want +CMS ERROR %d", err, tt.cms)
			}
			if len(refs) != tt.refs {
				t.Errorf("refs = %v; want %d", refs, tt.refs)
			}
			// The simulator records a PDU on its own goroutine, after the OnPDU hook: with the
			// context cancelled from the hook, SendSMS may return first.
			waitFor(t, "the simulator to record the PDUs", 5*time.Second, func() bool { return len(r.sim.Sent()) >= tt.sent })
			if got := len(r.sim.Sent()); got != tt.sent {
				t.Errorf("simulator sent %d PDUs; want %d", got, tt.sent)
			}
			var se *modem.SendError
			if !errors.As(err, &se) {
				t.Fatalf("err = %#v; want a *modem.SendError", err)
			}
			if se.Part != tt.part || se.Sent != tt.refs || se.OutcomeUnknown != errors.Is(err, modem.ErrOutcomeUnknown) {
				t.Errorf("SendError = %+v; want part %d, sent %d", se, tt.part, tt.refs)
			}
			if tt.msg != "" && !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err text %q lacks %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), "15112345678") {
				t.Errorf("err text %q shows the full number", err)
			}
		})
	}
}
