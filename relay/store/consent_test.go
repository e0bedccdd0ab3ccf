package store_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/shopkit/relay/relay"
)

// A consent record or a job proof that the consent policy refuses must be answered at intake
// (acknowledged; a rejected event for a job), never left unacknowledged: an unacknowledged
// message holds one of the broker's few in-flight slots until the next reconnect, and a handful
// of them would stop all intake.
func TestIntake_InvalidConsentIsAcknowledged(t *testing.T) {
	r := newRig(t, t.TempDir(), &fakeSignal{outcome: map[string][]relay.SendOutcome{}})
	defer r.close(t)
	ctx := context.Background()
	for _, rec := range []string{
		`{"to":"+4915112345678","consent":"opt_in"}`,                                          // an opt_in needs its source
		`{"to":"+4915112345678","consent":"opt_in","source":"a","at":"2099-01-01T00:00:00Z"}`, // in the future
		`{"to":"+4915112345678","consent":"opt_in","source":"a\tb"}`,                          // control character
	} {
		if err := r.intake.HandleConsent(ctx, []byte(rec)); err != nil {
			t.Errorf("HandleConsent(%s) = %v, want nil (acknowledge and count)", rec, err)
		}
	}
	if got := r.intake.Unidentified(); got != 3 {
		t.Errorf("counted %d refused records, want 3", got)
	}
	for _, tc := range []struct{ proof, field string }{
		{`{"at":"2099-01-01T00:00:00Z","source":"checkout"}`, "consent.at"},
		{`{"at":"2026-11-20T12:00:00Z","source":" "}`, "consent.source"},
	} {
		p := []byte(`{"id":"p1","to":"+4915112345678","text":"hi","consent":` + tc.proof + `}`)
		if err := r.intake.HandleJob(ctx, p); err != nil {
			t.Fatalf("HandleJob = %v, want nil (rejected and acknowledged)", err)
		}
		items, err := r.st.PeekAfter(0, 10)
		if err != nil || len(items) == 0 {
			t.Fatalf("no event: %v", err)
		}
		var e relay.Event
		if err := json.Unmarshal(items[len(items)-1].Payload, &e); err != nil {
			t.Fatal(err)
		}
		if e.Event != relay.EventRejected || e.Error == nil || e.Error.Field != tc.field {
			t.Errorf("proof %s: event %+v, want rejected naming %s", tc.proof, e, tc.field)
		}
		if err := r.st.Remove(ctx, items[len(items)-1].Seq); err != nil {
			t.Fatal(err)
		}
	}
	if d := r.st.Depth(); d != 0 {
		t.Errorf("outbox depth %d, want 0: a job with a bad proof must not be queued", d)
	}
}
