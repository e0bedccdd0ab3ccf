package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shopkit/relay/relay"
)

// fakeSMS answers SendSMS with scripted errors (nil = sent, one part) and records every call.
type fakeSMS struct {
	mu    sync.Mutex
	errs  []error
	calls []string // "to|text"
}

func (f *fakeSMS) SendSMS(_ context.Context, to, text string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, to+"|"+text)
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		if err != nil {
			return 0, err
		}
	}
	return 1, nil
}

func (f *fakeSMS) n() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.calls) }

// The modem's answers decide the job's events; an unknown outcome (PDU written, no +CMGS)
// follows rule 6 exactly like Signal's: at_most_once ends unknown, at_least_once sends again.
func TestDispatcher_SendSMSOutcomes(t *testing.T) {
	unknown := fmt.Errorf("modem: no +CMGS after the PDU: %w", relay.ErrOutcomeUnknown)
	for _, tc := range []struct {
		name     string
		delivery string
		errs     []error
		calls    int
		last     string
		want     []string
	}{
		{"sent", "at_least_once", nil, 1, "sent", []string{"accepted", "sent"}},
		{"permanent", "at_least_once", []error{fmt.Errorf("CMS ERROR 1: %w", relay.ErrPermanent)}, 1, "failed", []string{"accepted", "failed"}},
		{"transient then sent", "at_least_once", []error{errors.New("modem gone")}, 2, "sent", []string{"accepted", "retrying", "sent"}},
		{"unknown at_most_once", "at_most_once", []error{unknown}, 1, "unknown", []string{"accepted", "unknown"}},
		{"unknown at_least_once", "at_least_once", []error{unknown}, 2, "sent", []string{"accepted", "retrying", "sent"}},
		{"unknown wins over permanent", "at_most_once", []error{fmt.Errorf("%w: %w", relay.ErrPermanent, relay.ErrOutcomeUnknown)}, 1, "unknown", []string{"accepted", "unknown"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sig := &fakeSignal{outcome: map[string][]relay.SendOutcome{alice: {relay.OutcomeNotOnSignal, relay.OutcomeNotOnSignal}}}
			sms := &fakeSMS{errs: tc.errs}
			r := newRigWith(t, t.TempDir(), sig, sms, relay.DispatcherConfig{Concurrency: 2, SMSFallback: true,
				RetryMin: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond, PollEvery: 10 * time.Millisecond})
			defer r.close(t)
			stop := runDispatcher(t, r.disp)
			if err := r.intake.HandleJob(context.Background(), job("s1", alice, `,"fallback":"sms","delivery":"`+tc.delivery+`"`)); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the job is finished", func() bool {
				o, _, ok, _ := r.b.Outcome("s1")
				return ok && o == tc.last
			})
			stop()
			if got := sms.n(); got != tc.calls {
				t.Errorf("SendSMS called %d times, want %d", got, tc.calls)
			}
			var got []string
			for _, e := range r.events(t) {
				got = append(got, e[len("s1 "):])
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("events %v, want %v", got, tc.want)
			}
		})
	}
}
