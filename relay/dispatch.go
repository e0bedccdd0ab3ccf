package relay

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/shopkit/relay/relay/backoff"
	"github.com/shopkit/relay/relay/redact"
	"golang.org/x/time/rate"
)

// Consent decides whether a job may go to its number now. code explains a refusal
// ("opted_out", "no_consent") for the suppressed event.
type Consent interface {
	Allow(ctx context.Context, to string, kind Kind, proof *ConsentProof) (ok bool, code string, err error)
}

// DispatcherConfig is the delivery policy (config [policy]).
type DispatcherConfig struct {
	Concurrency      int
	RatePerMinute    int
	RateBurst        int
	RetryMin         time.Duration
	RetryMax         time.Duration
	SMSFallback      bool
	TrustNewIdentity bool          // signal.trust_policy = "always"
	Quiet            QuietHours    // zero value: none
	PollEvery        time.Duration // how often the outbox is asked for due jobs without a kick; default 1s
	ExpireEvery      time.Duration // default 30s
	CaptchaRecheck   time.Duration // how long a job waits while Signal sending is paused; default 5m
	LeaseMargin      time.Duration // a send is cut off this long before its lease ends; default 30s
}

// Dispatcher leases due jobs from the outbox and sends them, one goroutine per job up to
// Concurrency; the outbox keeps each customer's jobs in order, so parallel sends are always to
// different customers.
type Dispatcher struct {
	cfg     DispatcherConfig
	outbox  Outbox
	signal  Signal
	sms     SMS // nil when there is no modem
	consent Consent
	health  *Health
	log     *slog.Logger
	now     func() time.Time
	limiter *rate.Limiter

	kick chan struct{}

	mu      sync.Mutex
	paused  bool      // Signal sending paused for a captcha
	token   string    // the captcha challenge token staff must solve
	probeAt time.Time // while paused: when one job may try Signal again
}

// DispatcherDeps are the parts a Dispatcher drives. The dispatcher's events, journal lines and
// sent records are stored by the Outbox with the state change they belong to (Effects).
type DispatcherDeps struct {
	Outbox  Outbox
	Signal  Signal
	SMS     SMS
	Consent Consent
	Health  *Health
	Logger  *slog.Logger
	Now     func() time.Time
}

// NewDispatcher returns a Dispatcher; Run starts it.
func NewDispatcher(cfg DispatcherConfig, deps DispatcherDeps) *Dispatcher {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = time.Second
	}
	if cfg.ExpireEvery <= 0 {
		cfg.ExpireEvery = 30 * time.Second
	}
	if cfg.LeaseMargin <= 0 {
		cfg.LeaseMargin = 30 * time.Second
	}
	if cfg.CaptchaRecheck <= 0 {
		cfg.CaptchaRecheck = 5 * time.Minute
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 5 * time.Second
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = cfg.RetryMin
	}
	lim := rate.Inf
	if cfg.RatePerMinute > 0 {
		lim = rate.Limit(float64(cfg.RatePerMinute) / 60)
	}
	burst := max(cfg.RateBurst, 1)
	if lim == rate.Inf {
		burst = max(burst, cfg.Concurrency) // no limit: lease as many as there are free workers
	}
	d := &Dispatcher{
		cfg: cfg, outbox: deps.Outbox, signal: deps.Signal, sms: deps.SMS, consent: deps.Consent,
		health: deps.Health,
		log:    orDiscard(deps.Logger).With("component", "dispatcher"), now: deps.Now,
		limiter: rate.NewLimiter(lim, burst), kick: make(chan struct{}, 1),
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.health == nil {
		d.health = NewHealth(d.now)
	}
	return d
}

// Kick tells the dispatcher a job may be due now (a new job was accepted), so it does not wait
// for the next poll.
func (d *Dispatcher) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// Resume lifts a captcha pause once staff solved the challenge.
func (d *Dispatcher) Resume() {
	d.mu.Lock()
	d.paused, d.token = false, ""
	d.mu.Unlock()
	d.health.Set(ComponentSignal, StateOK, "")
	d.Kick()
}

// Paused reports whether Signal sending waits for a captcha, and the challenge token.
func (d *Dispatcher) Paused() (bool, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.paused, d.token
}

// signalPaused reports whether this job must not try Signal because of a captcha pause. Once
// every CaptchaRecheck one job is let through as a probe: Signal lifts many challenges by itself
// after a while, and a box nobody attends must find that out.
func (d *Dispatcher) signalPaused() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.paused {
		return false
	}
	if now := d.now(); !now.Before(d.probeAt) {
		d.probeAt = now.Add(d.cfg.CaptchaRecheck)
		return false
	}
	return true
}

// Run leases and sends until ctx is cancelled, then waits for the sends in flight. Cancellation
// is how it stops; it returns nil then.
func (d *Dispatcher) Run(ctx context.Context) error {
	done := make(chan struct{}, d.cfg.Concurrency)
	inflight := 0
	var wg sync.WaitGroup
	defer wg.Wait()
	poll := time.NewTimer(0)
	defer poll.Stop()
	nextExpire := d.now()
	for {
		if now := d.now(); !now.Before(nextExpire) {
			d.expire(ctx, now)
			nextExpire = now.Add(d.cfg.ExpireEvery)
		}
		wait := d.cfg.PollEvery
		if free := d.cfg.Concurrency - inflight; free > 0 {
			// The rate limit is taken before leasing, not while holding a lease: a job never
			// waits for a token with its lease running out (a lease that expires mid-send would
			// hand the job to a second worker).
			now := d.now()
			n := min(free, int(d.limiter.TokensAt(now)))
			if n == 0 {
				r := d.limiter.ReserveN(now, 1)
				wait = min(wait, max(r.DelayFrom(now), time.Millisecond))
				r.CancelAt(now)
			}
			var jobs []Stored
			var err error
			if n > 0 {
				jobs, err = d.outbox.Lease(ctx, n, now)
				d.limiter.AllowN(now, len(jobs))
			}
			if err != nil && ctx.Err() == nil {
				d.log.Error("lease failed", "err", err)
				d.health.Set(ComponentOutbox, StateDegraded, err.Error())
			}
			for _, s := range jobs {
				inflight++
				wg.Add(1)
				go func() {
					defer wg.Done()
					d.process(context.WithoutCancel(ctx), s)
					done <- struct{}{}
				}()
			}
		}
		poll.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-done:
			inflight--
		case <-d.kick:
		case <-poll.C:
		}
	}
}

func (d *Dispatcher) expire(ctx context.Context, now time.Time) {
	// Each job's expired (or unknown) event commits with its removal from the outbox.
	_, err := d.outbox.Expire(ctx, now, func(s Stored) Effects { return d.effects(s, expiryEvent(s), "") })
	if err != nil && ctx.Err() == nil {
		d.log.Error("expire failed", "err", err)
	}
}

// expiryEvent is the terminal event of a job the expiry sweep removed.
func expiryEvent(s Stored) Event {
	e := Event{Event: EventExpired, Attempt: s.Attempts,
		Error: &EventError{Code: "expired", Detail: "not sent before expires_at " + s.Job.ExpiresAt.Format(time.RFC3339)}}
	if s.SendStarted {
		// relay stopped while this job's send was in flight, and the job expired before it
		// could be looked at again (rule 6).
		if s.Job.Delivery == AtMostOnce {
			return Event{Event: EventUnknown, Attempt: s.Attempts + 1,
				Error: &EventError{Code: "unknown_outcome", Detail: "relay stopped while the send was in flight; at_most_once: not resent"}}
		}
		e.Error.Detail += "; the last send's outcome is unknown (relay stopped while it was in flight): it may have been delivered"
	}
	return e
}

// process takes one leased job to its next state. It runs detached from Run's cancellation so
// that a send in flight is finished and recorded during shutdown (bounded by the caller's
// shutdown deadline through the Signal and SMS adapters' own call deadlines).
func (d *Dispatcher) process(ctx context.Context, s Stored) {
	j := s.Job
	// Calls that talk to Signal or the modem end before the lease does, with a margin for the
	// bookkeeping after them: a send must never outlive its lease (the job would be leased and
	// sent a second time). Bookkeeping itself (Ack, Retry, events) uses ctx.
	callCtx := ctx
	if !s.LeaseDeadline.IsZero() {
		var cancel context.CancelFunc
		callCtx, cancel = context.WithDeadline(ctx, s.LeaseDeadline.Add(-d.cfg.LeaseMargin))
		defer cancel()
	}
	attempt := s.Attempts + 1
	if s.SendStarted {
		if j.Delivery == AtMostOnce {
			d.finish(ctx, s, Event{Event: EventUnknown, Attempt: s.Attempts + 1, Channel: d.channelFor(s),
				Error: &EventError{Code: "unknown_outcome", Detail: "relay stopped while the send was in flight; at_most_once: not resent"}})
			return
		}
		d.log.Info("resending after an unknown outcome", "id", j.ID, "to", redact.Number(j.To))
	}
	// The expiry sweep runs every ExpireEvery; a job whose retry came due after its expires_at
	// must not be sent in between (rule 5: retries until the expiry, then expired).
	if d.expiredNow(ctx, s) {
		return
	}
	if !(s.System && s.OptOutConfirmation) {
		kind, proof := j.Kind, j.Consent
		if s.System {
			// The box's own replies need no recorded consent, but an opted-out number receives
			// nothing but the opt-out confirmation (a HELP answer queued just before a STOP).
			kind, proof = KindTransactional, nil
		}
		ok, code, err := d.consent.Allow(ctx, j.To, kind, proof)
		if err != nil {
			d.retry(ctx, s, d.backoff(s.Attempts), "consent_store", err.Error())
			return
		}
		if !ok && (!s.System || code == codeOptedOut) {
			d.finish(ctx, s, Event{Event: EventSuppressed, Error: &EventError{Code: code, Detail: suppressDetail(code)}})
			return
		}
	}
	if !s.System { // the box's own replies bypass quiet hours
		if until, quiet := d.cfg.Quiet.Until(d.now()); quiet && !(j.Priority == PriorityHigh && d.cfg.Quiet.HighPasses) {
			d.defer_(ctx, s, until, "quiet_hours", "quiet hours in the shop's time zone")
			return
		}
	}
	if s.Via == ChannelSMS {
		d.sendSMS(ctx, callCtx, s, attempt)
		return
	}
	if d.signalPaused() {
		d.sendWhilePaused(ctx, callCtx, s, attempt)
		return
	}
	if err := d.outbox.MarkSending(ctx, j.ID); err != nil {
		// Without the marker a crash mid-send could not be told from "never sent": do not send.
		d.log.Error("mark sending failed", "id", j.ID, "err", err)
		d.health.Set(ComponentOutbox, StateDegraded, err.Error())
		d.retry(ctx, s, d.backoff(s.Attempts), "outbox_error", err.Error())
		return
	}
	res := d.signal.Send(callCtx, j.To, s.Body)
	switch res.Outcome {
	case OutcomeSent:
		d.health.Set(ComponentSignal, StateOK, "")
		e := Event{Event: EventSent, Channel: ChannelSignal, Attempt: attempt, SignalTimestamp: res.Timestamp}
		fx := d.effects(s, e, s.Body)
		if !s.System { // the box's own replies are not the shop's jobs: no receipts events for them
			// Remembered with the Ack: a receipt can always find the job its send belongs to.
			fx.Sent = &SentSend{Timestamp: res.Timestamp, Record: SentRecord{ID: j.ID, To: j.To, SentAt: d.now()}}
		}
		if res.UUID != "" { // remembered with the Ack: a STOP from this account without its number finds it
			fx.Recipient = &SignalRecipient{Number: j.To, UUID: res.UUID}
		}
		d.ack(ctx, s, e.Event, fx)
	case OutcomeNotOnSignal:
		if res.MaybeLookupFailure && s.Attempts == 0 {
			d.retry(ctx, s, d.cfg.RetryMin, "not_on_signal", "lookup may have failed; trying once more before deciding")
			return
		}
		if d.smsAllowed(s) {
			d.sendSMS(ctx, callCtx, s, attempt)
			return
		}
		d.finish(ctx, s, Event{Event: EventFailed, Channel: ChannelSignal, Attempt: attempt,
			Error: &EventError{Code: "not_on_signal", Detail: notOnSignalDetail(j, s, d.cfg.SMSFallback, d.sms != nil)}})
	case OutcomeIdentityChanged:
		if !d.cfg.TrustNewIdentity {
			d.finish(ctx, s, Event{Event: EventFailed, Channel: ChannelSignal, Attempt: attempt,
				Error: &EventError{Code: "identity_changed", Detail: "the customer's safety number changed and trust_policy is never"}})
			return
		}
		if err := d.signal.Trust(callCtx, j.To); err != nil {
			d.retry(ctx, s, d.backoff(s.Attempts), "identity_changed", "trusting the new identity failed: "+err.Error())
			return
		}
		trusted := JournalEntry{At: d.now(), ID: j.ID, To: j.To, Event: EventRetrying, Attempt: attempt,
			Code: "identity_changed", Detail: "trusted the customer's new safety number (trust_policy always)"}
		d.retry(ctx, s, 0, "identity_changed", "trusted the new safety number; sending again", trusted)
	case OutcomeRateLimited:
		d.health.Set(ComponentSignal, StateDegraded, "rate limited by Signal")
		d.retry(ctx, s, max(res.RetryAfter, d.backoff(s.Attempts)), "rate_limited", res.Detail)
	case OutcomeCaptcha:
		d.mu.Lock()
		d.paused, d.token, d.probeAt = true, res.ChallengeToken, d.now().Add(d.cfg.CaptchaRecheck)
		d.mu.Unlock()
		d.health.Set(ComponentSignal, StateStaffNeeded, "captcha required: relayctl captcha")
		d.log.Warn("Signal asks for a captcha: Signal sending paused until staff solve it", "token", res.ChallengeToken)
		d.sendWhilePaused(ctx, callCtx, s, attempt)
	case OutcomeUnknown:
		if j.Delivery == AtMostOnce {
			d.finish(ctx, s, Event{Event: EventUnknown, Channel: ChannelSignal, Attempt: attempt,
				Error: &EventError{Code: "unknown_outcome", Detail: res.Detail}})
			return
		}
		d.retry(ctx, s, d.backoff(s.Attempts), "unknown_outcome", res.Detail)
	case OutcomeTransient:
		d.health.Set(ComponentSignal, StateDegraded, res.Detail)
		d.retry(ctx, s, d.backoff(s.Attempts), "transient", res.Detail)
	default:
		d.finish(ctx, s, Event{Event: EventFailed, Channel: ChannelSignal, Attempt: attempt,
			Error: &EventError{Code: "signal_error", Detail: res.Detail}})
	}
}

// expiredNow ends a leased job that is past its expires_at with an expired event.
func (d *Dispatcher) expiredNow(ctx context.Context, s Stored) bool {
	if s.Job.ExpiresAt.IsZero() || d.now().Before(s.Job.ExpiresAt) {
		return false
	}
	// The same event as the sweep's (a resend after an unknown outcome says it may have been
	// delivered; at_most_once never gets here, process ended it before).
	d.finish(ctx, s, expiryEvent(s))
	return true
}

// sendWhilePaused handles a job while Signal sending waits for a captcha: by SMS when it may
// go there, else it waits for the next probe.
func (d *Dispatcher) sendWhilePaused(ctx, callCtx context.Context, s Stored, attempt int) {
	if d.smsAllowed(s) {
		d.sendSMS(ctx, callCtx, s, attempt)
		return
	}
	d.defer_(ctx, s, d.now().Add(d.cfg.CaptchaRecheck), "captcha_required", "Signal sending is paused until staff solve a captcha (relayctl captcha)")
}

func (d *Dispatcher) smsAllowed(s Stored) bool {
	if s.System {
		return d.sms != nil && s.Mobile
	}
	return d.sms != nil && d.cfg.SMSFallback && s.Job.Fallback == FallbackSMS && s.Mobile
}

func (d *Dispatcher) channelFor(s Stored) Channel {
	if s.Via != "" {
		return s.Via
	}
	return ChannelSignal
}

func (d *Dispatcher) sendSMS(ctx, callCtx context.Context, s Stored, attempt int) {
	if d.sms == nil || !s.Mobile {
		d.finish(ctx, s, Event{Event: EventFailed, Channel: ChannelSMS, Attempt: attempt,
			Error: &EventError{Code: "sms_unavailable", Detail: "no modem, or the number is not a mobile number"}})
		return
	}
	if err := d.outbox.MarkSending(ctx, s.Job.ID); err != nil {
		d.retry(ctx, s, d.backoff(s.Attempts), "outbox_error", err.Error())
		return
	}
	parts, err := d.sms.SendSMS(callCtx, s.Job.To, s.Body)
	switch {
	case err == nil:
		d.finish(ctx, s, Event{Event: EventSent, Channel: ChannelSMS, Attempt: attempt, SMSParts: parts})
	case errors.Is(err, ErrOutcomeUnknown):
		// Written to the modem, never confirmed: it may have gone out (rule 6).
		if s.Job.Delivery == AtMostOnce {
			d.finish(ctx, s, Event{Event: EventUnknown, Channel: ChannelSMS, Attempt: attempt,
				Error: &EventError{Code: "unknown_outcome", Detail: err.Error()}})
			return
		}
		d.retry(ctx, s, d.backoff(s.Attempts), "unknown_outcome", err.Error())
	case errors.Is(err, ErrPermanent):
		d.finish(ctx, s, Event{Event: EventFailed, Channel: ChannelSMS, Attempt: attempt,
			Error: &EventError{Code: "sms_failed", Detail: err.Error()}})
	default:
		d.retry(ctx, s, d.backoff(s.Attempts), "sms_transient", err.Error())
	}
}

// finish ends the job with a terminal event: the Ack, the event and the journal line commit in
// one outbox transaction.
func (d *Dispatcher) finish(ctx context.Context, s Stored, e Event) {
	d.ack(ctx, s, e.Event, d.effects(s, e, s.Body))
}

func (d *Dispatcher) ack(ctx context.Context, s Stored, outcome EventType, fx Effects) {
	if err := d.outbox.Ack(ctx, s.Job.ID, outcome, fx); err != nil {
		// Nothing was stored: the lease will expire and the job comes back, and the backend
		// never hears two terminal events for one job.
		d.log.Error("ack failed; the job will be tried again", "id", s.Job.ID, "err", err)
		d.health.Set(ComponentOutbox, StateDegraded, err.Error())
	}
}

// retry puts the job back with a due time (an attempt counted) and its retrying event;
// journal lines given are stored before the event's own.
func (d *Dispatcher) retry(ctx context.Context, s Stored, after time.Duration, code, detail string, journal ...JournalEntry) {
	at := d.now().Add(after)
	fx := d.effects(s, Event{Event: EventRetrying, Attempt: s.Attempts + 1, Channel: d.channelFor(s), NextAttemptAt: tsp(at),
		Error: &EventError{Code: code, Detail: detail}}, "")
	fx.Journal = append(journal, fx.Journal...)
	if err := d.outbox.Retry(ctx, s.Job.ID, at, code, fx); err != nil {
		d.log.Error("retry failed; the lease will expire and the job comes back", "id", s.Job.ID, "err", err)
		return
	}
	d.log.Info("retrying", "id", s.Job.ID, "to", redact.Number(s.Job.To), "code", code, "in", after.Round(time.Millisecond))
}

// defer_ waits without counting an attempt (quiet hours, captcha pause).
func (d *Dispatcher) defer_(ctx context.Context, s Stored, until time.Time, code, detail string) {
	fx := d.effects(s, Event{Event: EventDeferred, NextAttemptAt: tsp(until), Error: &EventError{Code: code, Detail: detail}}, "")
	if err := d.outbox.Defer(ctx, s.Job.ID, until, code, fx); err != nil {
		d.log.Error("defer failed; the lease will expire and the job comes back", "id", s.Job.ID, "err", err)
	}
}

// effects is what a state change of s to e stores with it: the event, and the journal line
// with the text sent. System replies are journaled, not published: they are not the shop's
// jobs. It may run inside the outbox's transaction (Expire): it must not call the outbox.
func (d *Dispatcher) effects(s Stored, e Event, text string) Effects {
	e.ID, e.To, e.At = s.Job.ID, s.Job.To, ts(d.now())
	var fx Effects
	if !s.System {
		fx.Events = []Event{e}
	}
	je := JournalEntry{At: time.Time(e.At), ID: e.ID, To: e.To, Channel: e.Channel, Event: e.Event, Attempt: e.Attempt, Text: text}
	if e.Error != nil {
		je.Code, je.Detail = e.Error.Code, e.Error.Detail
	}
	fx.Journal = []JournalEntry{je}
	return fx
}

// backoff is exponential from RetryMin, capped at RetryMax, with jitter in [d/2, d] so that
// jobs failing together do not retry together.
func (d *Dispatcher) backoff(failures int) time.Duration {
	return backoff.Delay(failures, d.cfg.RetryMin, d.cfg.RetryMax, rand.Float64())
}

// codeOptedOut is the Consent refusal of an opted-out number.
const codeOptedOut = "opted_out"

func suppressDetail(code string) string {
	switch code {
	case codeOptedOut:
		return "the customer opted out (STOP)"
	case "no_consent":
		return "no recorded consent for this number"
	case "marketing_needs_opt_in":
		return "marketing needs an explicit opt-in"
	}
	return code
}

func notOnSignalDetail(j Job, s Stored, fallbackOn, haveModem bool) string {
	switch {
	case j.Fallback != FallbackSMS:
		return "the number is not on Signal and the job has fallback none"
	case !fallbackOn:
		return "the number is not on Signal and SMS fallback is off (policy.sms_fallback)"
	case !haveModem:
		return "the number is not on Signal and the box has no modem for SMS"
	case !s.Mobile:
		return "the number is not on Signal and is not a mobile number (no SMS)"
	}
	return "the number is not on Signal"
}
