package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/shopkit/relay/modem"
	"github.com/shopkit/relay/relay"
)

// TestSMSError maps the modem's send failures onto what the dispatcher decides on: an unknown
// outcome (never resent for at_most_once), a permanent failure, or a transient one.
func TestSMSError(t *testing.T) {
	cms := func(code int) *modem.ResultError {
		return &modem.ResultError{Command: "AT+CMGS=23", Kind: modem.KindCMS, Code: code}
	}
	cases := []struct {
		name               string
		err                error
		unknown, permanent bool
	}{
		{"nil", nil, false, false},
		{"timeout after the PDU", &modem.SendError{Part: 1, Parts: 1, OutcomeUnknown: true, Err: modem.ErrTimeout}, true, false},
		{"context ended after the PDU", &modem.SendError{Part: 1, Parts: 1, OutcomeUnknown: true, Err: context.DeadlineExceeded}, true, false},
		{"partial delivery, later part refused for good", &modem.SendError{Part: 2, Parts: 3, Sent: 1, OutcomeUnknown: true, Err: cms(21)}, true, false},
		{"first part refused for good", &modem.SendError{Part: 1, Parts: 1, Err: cms(21)}, false, true},
		{"first part refused for now", &modem.SendError{Part: 1, Parts: 1, Err: cms(38)}, false, false},
		{"modem not ready", fmt.Errorf("%w: recovering", modem.ErrUnavailable), false, false},
		{"no prompt", &modem.SendError{Part: 1, Parts: 1, Err: modem.ErrTimeout}, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := smsError(c.err)
			if (got == nil) != (c.err == nil) {
				t.Fatalf("smsError(%v) = %v", c.err, got)
			}
			if u := errors.Is(got, relay.ErrOutcomeUnknown); u != c.unknown {
				t.Errorf("unknown = %v, want %v (%v)", u, c.unknown, got)
			}
			if p := errors.Is(got, relay.ErrPermanent); p != c.permanent {
				t.Errorf("permanent = %v, want %v (%v)", p, c.permanent, got)
			}
			if c.err != nil && !errors.Is(got, c.err) {
				t.Errorf("%v does not wrap the modem's error", got)
			}
		})
	}
}
