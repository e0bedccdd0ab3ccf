package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/shopkit/relay/relay"
)

// TestPipeline_RandomConsent drives thousands of jobs and consent changes (keywords from
// customers on Signal, records from the backend) through the real intake, outbox and dispatcher
// and checks the property the shop is liable for: no job is ever sent to a number that is opted
// out, or that never consented when the job carries no proof of consent. Consent changes and
// sends alternate in phases, so that the model's view at the moment of each send is exact; jobs
// accepted before a STOP in the same phase are sent after it and must be suppressed.
func TestPipeline_RandomConsent(t *testing.T) {
	phases, opsPerPhase := 20, 150
	if testing.Short() {
		phases = 10
	}
	sig := &checkingSignal{fakeSignal: fakeSignal{outcome: map[string][]relay.SendOutcome{}}}
	r := newRigWith(t, t.TempDir(), sig, nil, relay.DispatcherConfig{Concurrency: 8, RetryMin: time.Second, RetryMax: time.Minute})
	defer r.close(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(2026, 11))

	var numbers []string
	for i := range 12 {
		numbers = append(numbers, fmt.Sprintf("+49151000770%02d", i))
	}
	// The conservative model: a number is opted out when its last change was STOP or opt_out,
	// and has consented when any opt_in or START came after that. The policy may be stricter
	// (it is never asked to send more than the model allows; only to send no more).
	sig.optedOut = map[string]bool{}
	sig.consented = map[string]bool{}
	sig.proof = map[string]bool{}
	sig.marketing = map[string]bool{}
	jobs := 0
	for phase := range phases {
		for range opsPerPhase {
			to := numbers[rng.IntN(len(numbers))]
			now := time.Now()
			switch op := rng.IntN(10); {
			case op < 6: // a job
				jobs++
				id := fmt.Sprintf("j%d", jobs)
				var payload string
				switch rng.IntN(3) {
				case 0: // transactional with proof of consent
					payload = fmt.Sprintf(`{"id":%q,"to":%q,"text":"Order %s shipped","consent":{"at":"2026-11-20T12:00:00Z","source":"checkout"}}`, id, to, id)
					sig.proof[id] = true
				case 1: // transactional without proof
					payload = fmt.Sprintf(`{"id":%q,"to":%q,"text":"Order %s ready"}`, id, to, id)
				default: // marketing without proof
					payload = fmt.Sprintf(`{"id":%q,"to":%q,"text":"Order %s: new offers","kind":"marketing"}`, id, to, id)
					sig.marketing[id] = true
				}
				if err := r.intake.HandleJob(ctx, []byte(payload)); err != nil {
					t.Fatal(err)
				}
			case op < 8: // a customer's keyword
				kw := []string{"STOP", "stop", "Стоп", "START", "Anmelden"}[rng.IntN(5)]
				if err := r.resp.HandleMessage(ctx, relay.Message{From: to, Text: kw, At: now, Channel: relay.ChannelSignal}); err != nil {
					t.Fatal(err)
				}
				stop := strings.EqualFold(kw, "stop") || kw == "Стоп"
				sig.optedOut[to] = stop
				sig.consented[to] = !stop
			default: // a record from the backend
				c := []string{"opt_in", "opt_out"}[rng.IntN(2)]
				rec := fmt.Sprintf(`{"to":%q,"consent":%q,"at":%q,"source":"crm"}`, to, c, now.UTC().Format(time.RFC3339Nano))
				if err := r.intake.HandleConsent(ctx, []byte(rec)); err != nil {
					t.Fatal(err)
				}
				// A backend opt_in may or may not lift a customer's STOP; the model allows it
				// (conservative), an opt_out always applies.
				sig.optedOut[to] = c == "opt_out"
				sig.consented[to] = c == "opt_in"
			}
		}
		stop := runDispatcher(t, r.disp)
		eventually(t, fmt.Sprintf("phase %d: every job and reply finished", phase), func() bool { return r.b.Depth() == 0 })
		stop()
	}
	sig.mu.Lock()
	defer sig.mu.Unlock()
	for _, v := range sig.violations {
		t.Error(v)
	}
	// The test must be able to fail: sends happened, and some jobs were held back.
	if sig.jobSends < jobs/10 || sig.jobSends == jobs {
		t.Errorf("%d of %d jobs sent; want a mix of sends and suppressions", sig.jobSends, jobs)
	}
	t.Logf("%d jobs, %d sent, %d consent changes", jobs, sig.jobSends, phases*opsPerPhase-jobs)
}

// checkingSignal is the fake Signal that checks each job send against the consent model.
type checkingSignal struct {
	fakeSignal
	optedOut, consented map[string]bool // by number
	proof, marketing    map[string]bool // by job id
	jobSends            int
	violations          []string
}

func (c *checkingSignal) Send(ctx context.Context, to, text string) relay.SendResult {
	res := c.fakeSignal.Send(ctx, to, text)
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := jobID(text)
	if !ok {
		return res // the box's own reply to a keyword (checked by TestDispatcher_SystemRepliesAfterOptOut)
	}
	c.jobSends++
	switch {
	case c.optedOut[to]:
		c.violations = append(c.violations, fmt.Sprintf("job %s sent to opted-out %s", id, to))
	case !c.consented[to] && !c.proof[id]:
		c.violations = append(c.violations, fmt.Sprintf("job %s sent to %s, which never consented, without proof", id, to))
	}
	return res
}

// jobID finds the test's job id in a sent text ("Order j17 shipped").
func jobID(text string) (string, bool) {
	_, rest, ok := strings.Cut(text, "Order j")
	if !ok {
		return "", false
	}
	n, _, _ := strings.Cut(rest, " ")
	return "j" + n, true
}
