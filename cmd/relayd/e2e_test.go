package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shopkit/relay/signalbridge/signaltest"
)

// stopBetweenJobs sends job first to to and waits for it to be sent, lets the customer's STOP
// (the fake's control command stop) arrive, and checks that it opts to out as a keyword and
// that job second, which carries a consent proof, is then suppressed as opted_out.
func stopBetweenJobs(t *testing.T, s *shop, ctl *fakeCtl, to, first, second string, stop signaltest.ControlCommand) {
	t.Helper()
	s.job(t, textJob(first, to))
	s.waitEvent(t, long, first, "sent")
	mark := s.mark()
	ctl.must(t, stop)
	if ev := s.waitConsentEvent(t, long, mark, to, "opted_out"); ev.Source != "keyword" {
		t.Errorf("opted_out source = %q, want keyword", ev.Source)
	}
	s.job(t, textJob(second, to)) // has a consent proof: still refused
	if ev := s.waitEvent(t, long, second, "suppressed"); ev.code() != "opted_out" {
		t.Errorf("suppressed code = %q, want opted_out", ev.code())
	}
}

// TestE2E_EventTypes runs one relayd against the fake signal-cli and reaches every job and
// consent event of the contract through a real broker. Subtests use their own numbers and run
// in parallel on the one daemon.
func TestE2E_EventTypes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, opts{})
	s, ctl := e.shop, e.ctl

	t.Run("sent_delivered_read", func(t *testing.T) {
		t.Parallel()
		to := num(1, 1)
		id := "ev-sent-1"
		s.job(t, map[string]any{"id": id, "to": "+49 151 " + to[6:], "template": "order_shipped", "lang": "de",
			"vars":    map[string]any{"order": 1042, "carrier": "DHL", "url": "https://t.example/1042"},
			"consent": map[string]any{"at": "2026-01-01T00:00:00Z", "source": "checkout"}})
		acc := s.waitEvent(t, long, id, "accepted")
		if acc.To != to {
			t.Errorf("accepted.to = %q, want the E.164 form %q", acc.To, to)
		}
		sent := s.waitEvent(t, long, id, "sent")
		if sent.Channel != "signal" || sent.SignalTimestamp == 0 || sent.Attempt != 1 {
			t.Errorf("sent = %+v, want channel signal, a signal_timestamp, attempt 1", sent)
		}
		var mine []signaltest.Sent
		for _, x := range ctl.sent(t) {
			if x.Recipient == to {
				mine = append(mine, x)
			}
		}
		if len(mine) != 1 || mine[0].Timestamp != sent.SignalTimestamp {
			t.Fatalf("fake sends to %s = %+v, want one with timestamp %d", to, mine, sent.SignalTimestamp)
		}
		if !strings.Contains(mine[0].Text, "1042") || !strings.Contains(mine[0].Text, shopName) {
			t.Errorf("sent text %q: want the order number and the shop's name", mine[0].Text)
		}
		// The fake sends a delivery receipt 300 ms after a send; a read receipt is injected.
		s.waitEvent(t, long, id, "delivered")
		ctl.must(t, signaltest.ControlCommand{Op: "receipt", Account: shopAccount, Number: to, Kind: "read",
			Timestamps: []int64{sent.SignalTimestamp}})
		read := s.waitEvent(t, long, id, "read")
		if read.SignalTimestamp != sent.SignalTimestamp {
			t.Errorf("read.signal_timestamp = %d, want %d", read.SignalTimestamp, sent.SignalTimestamp)
		}
		// Order of the job's events: accepted, sent, delivered, read; one terminal.
		var kinds []string
		for _, ev := range s.eventsFor(id) {
			kinds = append(kinds, ev.Event)
		}
		if got, want := strings.Join(kinds, ","), "accepted,sent,delivered,read"; got != want {
			t.Errorf("events of %s = %s, want %s", id, got, want)
		}
	})

	t.Run("duplicate", func(t *testing.T) {
		t.Parallel()
		to := num(1, 2)
		j := textJob("ev-dup-1", to)
		s.job(t, j)
		s.waitEvent(t, long, "ev-dup-1", "sent")
		s.job(t, j)
		s.job(t, textJob("ev-dup-1", num(1, 3))) // same id, another number: still a duplicate
		s.wait(t, long, "two duplicate events", func(ms []message) bool {
			n := 0
			for _, m := range ms {
				if m.ev.ID == "ev-dup-1" && m.ev.Event == "duplicate" {
					n++
				}
			}
			return n == 2
		})
		n := 0
		for _, x := range ctl.sent(t) {
			if jobOf(x) == "ev-dup-1" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("ev-dup-1 sent %d times, want 1", n)
		}
	})

	t.Run("rejected", func(t *testing.T) {
		t.Parallel()
		to := num(1, 4)
		big := strings.Repeat("x", 70<<10)
		cases := []struct {
			id, payload, code, field string
		}{
			{"rj-type", `{"id":"rj-type","to":4915112345678,"text":"hi"}`, "wrong_type", "to"},
			{"rj-num", `{"id":"rj-num","to":"+49 12","text":"hi"}`, "invalid_number", "to"},
			{"rj-num2", `{"id":"rj-num2","to":"015112345678","text":"hi"}`, "invalid_number", "to"},
			{"rj-tpl", `{"id":"rj-tpl","to":"` + to + `","template":"no_such_template","vars":{}}`, "unknown_template", "template"},
			{"rj-var", `{"id":"rj-var","to":"` + to + `","template":"order_shipped","vars":{"order":"1","carrier":"DHL"}}`, "missing_variable", "vars.url"},
			{"rj-extra", `{"id":"rj-extra","to":"` + to + `","template":"order_shipped","vars":{"order":"1","carrier":"DHL","url":"u","x":"y"}}`, "unexpected_variable", "vars.x"},
			{"rj-ctl", `{"id":"rj-ctl","to":"` + to + `","text":"hi\u0007there"}`, "control_character", "text"},
			{"rj-ctl2", `{"id":"rj-ctl2","to":"` + to + `","text":"a\u202e\u2028b"}`, "control_character", "text"},
			{"rj-both", `{"id":"rj-both","to":"` + to + `","text":"hi","template":"order_shipped"}`, "conflict", "text"},
			{"rj-none", `{"id":"rj-none","to":"` + to + `"}`, "required", "template"},
			{"rj-kind", `{"id":"rj-kind","to":"` + to + `","text":"hi","kind":"spam"}`, "invalid", "kind"},
			{"rj-exp", `{"id":"rj-exp","to":"` + to + `","text":"hi","expires_at":"2001-01-01T00:00:00Z"}`, "already_expired", "expires_at"},
			{"rj-long", `{"id":"rj-long","to":"` + to + `","text":"` + strings.Repeat("y", 4001) + `"}`, "too_long", "text"},
			{"rj-vars", `{"id":"rj-vars","to":"` + to + `","template":"order_shipped","vars":{"order":{"n":1},"carrier":"DHL","url":"u"}}`, "wrong_type", "vars.order"},
			// Not one JSON object within 64 KiB, but the id is readable at its start.
			{"rj-huge", `{"id":"rj-huge","to":"` + to + `","text":"` + big + `"}`, "too_large", ""},
			{"rj-trail", `{"id":"rj-trail","to":"` + to + `","text":"x"} {}`, "not_json", ""},
		}
		for _, c := range cases {
			s.publish(t, "jobs", []byte(c.payload)) // PUBACKed: a poison message must not loop
		}
		// Payloads without a readable id: logged and counted, no event, still acknowledged.
		for _, p := range []string{`not json at all`, `{"to":"` + to + `","text":"` + big + `","id":"rj-huge-late"}`,
			`["an","array"]`, `{"to":"` + to + `","text":"no id"}`, `{"id":"bad id with spaces","to":"` + to + `","text":"x"}`,
			"\xff\xfe{}", `{"id":"bad id","to":"` + to + `","text":"x"} {}`} {
			s.publish(t, "jobs", []byte(p))
		}
		// A good job after all of them: events are in order, so once it is accepted every
		// rejection above has been answered.
		s.job(t, textJob("rj-after", to))
		s.waitEvent(t, long, "rj-after", "sent")
		for _, c := range cases {
			evs := s.eventsFor(c.id)
			if len(evs) != 1 || evs[0].Event != "rejected" {
				t.Errorf("%s: events %+v, want one rejected", c.id, evs)
				continue
			}
			if evs[0].code() != c.code || evs[0].Error.Field != c.field {
				t.Errorf("%s: rejected with %s/%s (%s), want %s/%s", c.id, evs[0].code(), evs[0].Error.Field, evs[0].Error.Detail, c.code, c.field)
			}
		}
		if evs := s.eventsFor("rj-huge-late"); len(evs) != 0 {
			t.Errorf("rj-huge-late: events %+v, want none (its id lies past the first 4 KiB of a payload over 64 KiB)", evs)
		}
		for _, x := range ctl.sent(t) {
			if x.Recipient == to && jobOf(x) != "rj-after" {
				t.Errorf("a rejected job was sent: %+v", x)
			}
		}
	})

	t.Run("suppressed_no_consent", func(t *testing.T) {
		t.Parallel()
		to := num(1, 5)
		s.job(t, textJob("ev-nocons", to, "consent", nil))
		ev := s.waitEvent(t, long, "ev-nocons", "suppressed")
		if ev.code() != "no_consent" {
			t.Errorf("suppressed code = %q, want no_consent", ev.code())
		}
		s.job(t, textJob("ev-mkt", to, "kind", "marketing"))
		if ev := s.waitEvent(t, long, "ev-mkt", "suppressed"); ev.code() == "" {
			t.Errorf("marketing without opt-in suppressed without a code: %+v", ev)
		}
		for _, x := range ctl.sent(t) {
			if x.Recipient == to {
				t.Errorf("sent to a number without consent: %+v", x)
			}
		}
	})

	t.Run("suppressed_after_STOP", func(t *testing.T) {
		t.Parallel()
		to := num(1, 6)
		stopBetweenJobs(t, s, ctl, to, "ev-stop-1", "ev-stop-2",
			signaltest.ControlCommand{Op: "text", Account: shopAccount, Number: to, Text: "  Stopp! "})
		// A consent record from the shop cannot lift the customer's STOP.
		s.consent(t, to, "opt_in")
		s.job(t, textJob("ev-stop-3", to))
		s.waitEvent(t, long, "ev-stop-3", "suppressed")
		var mine []signaltest.Sent
		waitCond(t, long, "the opt-out confirmation", func() bool {
			mine = mine[:0]
			for _, x := range ctl.sent(t) {
				if x.Recipient == to {
					mine = append(mine, x)
				}
			}
			return len(mine) >= 2
		})
		if len(mine) != 2 || jobOf(mine[0]) != "ev-stop-1" || !strings.Contains(mine[1].Text, shopName) {
			t.Fatalf("sends to %s = %+v, want the first job, then only the opt-out confirmation naming the shop", to, mine)
		}
		// Receipts for the box's own reply are not the shop's business: a read receipt naming the
		// confirmation first and the job second must yield events for the job only.
		ctl.must(t, signaltest.ControlCommand{Op: "receipt", Account: shopAccount, Number: to, Kind: "read",
			Timestamps: []int64{mine[1].Timestamp, mine[0].Timestamp}})
		s.waitEvent(t, long, "ev-stop-1", "read")
		for _, ev := range s.events() {
			if ev.To == to && strings.HasPrefix(ev.ID, "relay-") {
				t.Errorf("event for the box's own reply published: %+v", ev)
			}
		}
	})

	t.Run("STOP_from_a_hidden_number", func(t *testing.T) {
		t.Parallel()
		// Phone number privacy: signal-cli gives only the sender's uuid. relay knows it from the
		// send results of the first job and applies the STOP to the number.
		to := num(1, 14)
		stopBetweenJobs(t, s, ctl, to, "ev-uuid-1", "ev-uuid-2",
			signaltest.ControlCommand{Op: "text", Account: shopAccount, UUID: signaltest.UUIDFor(to), Text: "STOP"})
	})

	t.Run("deferred_not_before", func(t *testing.T) {
		t.Parallel()
		to := num(1, 7)
		nb := time.Now().Add(2 * time.Second).UTC()
		s.job(t, textJob("ev-nb", to, "not_before", nb.Format(time.RFC3339Nano)))
		d := s.waitEvent(t, long, "ev-nb", "deferred")
		if d.code() != "scheduled" || d.NextAttemptAt == "" {
			t.Errorf("deferred = %+v, want code scheduled and next_attempt_at", d)
		}
		sent := s.waitEvent(t, long, "ev-nb", "sent")
		if sent.at().Before(nb) {
			t.Errorf("sent at %s, before not_before %s", sent.At, nb.Format(time.RFC3339Nano))
		}
	})

	t.Run("retrying_then_sent", func(t *testing.T) {
		t.Parallel()
		to := num(1, 8)
		ctl.outcome(t, to, signaltest.NetworkFailure, "")
		s.job(t, textJob("ev-retry", to))
		r := s.waitEvent(t, long, "ev-retry", "retrying")
		if r.code() == "" || r.NextAttemptAt == "" {
			t.Errorf("retrying = %+v, want an error code and next_attempt_at", r)
		}
		ctl.outcome(t, to, signaltest.Success, "")
		sent := s.waitEvent(t, long, "ev-retry", "sent")
		if sent.Attempt < 2 {
			t.Errorf("sent.attempt = %d, want >= 2 after a retry", sent.Attempt)
		}
	})

	t.Run("failed_not_on_signal", func(t *testing.T) {
		t.Parallel()
		to := num(1, 9)
		ctl.outcome(t, to, signaltest.UnregisteredFailure, "")
		s.job(t, textJob("ev-fail", to, "fallback", "none"))
		f := s.waitEvent(t, long, "ev-fail", "failed")
		if f.code() != "not_on_signal" {
			t.Errorf("failed code = %q, want not_on_signal", f.code())
		}
	})

	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		to := num(1, 10)
		ctl.outcome(t, to, signaltest.NetworkFailure, "")
		exp := time.Now().Add(3 * time.Second).UTC()
		s.job(t, textJob("ev-exp", to, "expires_at", exp.Format(time.RFC3339Nano)))
		// Let it fail until its next attempt is due after its expiry (or until it has already
		// ended: a retry due just before expires_at may be leased only after it), then let
		// Signal work: the job must end expired, not be sent late.
		s.wait(t, long, "a retry due after expires_at, or a terminal event", func(ms []message) bool {
			for _, m := range ms {
				if m.ev.ID != "ev-exp" {
					continue
				}
				if terminal(m.ev.Event) {
					return true
				}
				if m.ev.Event == "retrying" {
					if next, err := time.Parse(time.RFC3339Nano, m.ev.NextAttemptAt); err == nil && next.After(exp) {
						return true
					}
				}
			}
			return false
		})
		ctl.outcome(t, to, signaltest.Success, "")
		s.wait(t, 45*time.Second, "a terminal event of ev-exp", func(ms []message) bool {
			for _, m := range ms {
				if m.ev.ID == "ev-exp" && terminal(m.ev.Event) {
					return true
				}
			}
			return false
		})
		tm := terminals(s.eventsFor("ev-exp"))["ev-exp"]
		if len(tm) != 1 || tm[0] != "expired" {
			t.Errorf("terminal events of ev-exp = %v, want [expired] (a job past expires_at must not be sent)", tm)
		}
		for _, x := range successes(ctl.sent(t)) {
			if jobOf(x) == "ev-exp" {
				t.Errorf("ev-exp was sent at %d, after its expires_at %s", x.Timestamp, exp.Format(time.RFC3339Nano))
			}
		}
	})

	t.Run("consent_events_and_double_opt_in", func(t *testing.T) {
		t.Parallel()
		a, b := num(1, 11), num(1, 12)
		mark := s.mark()
		s.consent(t, a, "opt_in")
		if ev := s.waitConsentEvent(t, long, mark, a, "opted_in"); ev.Source != "e2e" {
			t.Errorf("opted_in source = %q, want e2e", ev.Source)
		}
		s.consent(t, a, "opt_out")
		s.waitConsentEvent(t, long, mark, a, "opted_out")
		s.job(t, textJob("ev-cons-a", a))
		if ev := s.waitEvent(t, long, "ev-cons-a", "suppressed"); ev.code() != "opted_out" {
			t.Errorf("after opt_out: suppressed code %q, want opted_out", ev.code())
		}

		s.consent(t, b, "request")
		s.waitConsentEvent(t, long, mark, b, "optin_requested")
		waitCond(t, long, "the opt-in question to be sent", func() bool {
			for _, x := range ctl.sent(t) {
				if x.Recipient == b {
					return true
				}
			}
			return false
		})
		s.job(t, textJob("ev-cons-mkt0", b, "kind", "marketing", "consent", nil))
		s.waitEvent(t, long, "ev-cons-mkt0", "suppressed")
		ctl.text(t, b, "yes")
		if ev := s.waitConsentEvent(t, long, mark, b, "opted_in"); ev.Source != "keyword" {
			t.Errorf("opted_in after YES: source %q, want keyword", ev.Source)
		}
		s.job(t, textJob("ev-cons-mkt", b, "kind", "marketing", "consent", nil))
		s.waitEvent(t, long, "ev-cons-mkt", "sent")
	})

	t.Run("inbound", func(t *testing.T) {
		t.Parallel()
		from := num(1, 13)
		ts := ctl.text(t, from, "Where is my parcel? Order 1042")
		ms := s.wait(t, long, "the inbound message", func(ms []message) bool {
			for _, m := range ms {
				if m.topic == prefix+"/inbound" && strings.Contains(string(m.payload), "parcel") {
					return true
				}
			}
			return false
		})
		for _, m := range ms {
			if m.topic != prefix+"/inbound" {
				continue
			}
			var in struct {
				From, Text, Channel string
				At                  string `json:"at"`
				SignalTimestamp     int64  `json:"signal_timestamp"`
			}
			if err := json.Unmarshal(m.payload, &in); err != nil {
				t.Fatal(err)
			}
			if in.From != from || in.Text != "Where is my parcel? Order 1042" || in.Channel != "signal" || in.SignalTimestamp != ts || in.At == "" {
				t.Errorf("inbound = %s, want from %s, the text, channel signal, signal_timestamp %d", m.payload, from, ts)
			}
		}
		for _, x := range ctl.sent(t) {
			if x.Recipient == from {
				t.Errorf("an ordinary message was answered: %+v", x)
			}
		}
	})

	t.Run("status", func(t *testing.T) {
		t.Parallel()
		st := s.waitStatus(t, 0, long, "online")
		sig, _ := st["signal"].(map[string]any)
		if sig["state"] != "up" || sig["account"] != shopAccount || st["version"] == "" {
			t.Errorf("status = %v, want signal up for %s and a version", st, shopAccount)
		}
	})
}

var _ = fmt.Sprint

// TestE2E_QuietHours: with quiet hours covering now, a normal job is deferred (quiet_hours) and
// a high-priority one passes (quiet_hours_high_passes defaults to true).
func TestE2E_QuietHours(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	qh := now.Add(-time.Hour).Format("15:04") + "-" + now.Add(time.Hour).Format("15:04")
	e := newEnv(t, opts{quietHours: qh})
	s := e.shop
	s.job(t, textJob("qh-normal", num(2, 1)))
	d := s.waitEvent(t, long, "qh-normal", "deferred")
	if d.code() != "quiet_hours" {
		t.Errorf("deferred code = %q, want quiet_hours", d.code())
	}
	if next, err := time.Parse(time.RFC3339Nano, d.NextAttemptAt); err != nil || next.Before(now.Add(50*time.Minute)) {
		t.Errorf("deferred next_attempt_at = %q, want the end of the quiet hours (about %s)", d.NextAttemptAt, now.Add(time.Hour).Format("15:04"))
	}
	s.job(t, textJob("qh-high", num(2, 2), "priority", "high"))
	s.waitEvent(t, long, "qh-high", "sent")
	for _, x := range e.ctl.sent(t) {
		if jobOf(x) == "qh-normal" {
			t.Errorf("a normal job was sent during quiet hours: %+v", x)
		}
	}
	if tm := terminals(s.eventsFor("qh-normal")); len(tm) != 0 {
		t.Errorf("qh-normal ended %v during quiet hours, want it waiting", tm)
	}
}

// TestE2E_Unknown: the fake closes the connection as soon as a send request arrives (the request
// was written, no answer will come). at_most_once ends unknown and is not resent; at_least_once
// is sent again once signal-cli answers.
func TestE2E_Unknown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, opts{firstFakeFlags: []string{"--fault=close-on=send"}})
	s := e.shop
	log := &sendLog{}
	stop := log.watch(e.ctl)
	defer stop()
	s.job(t, textJob("unk-amo", num(3, 1), "delivery", "at_most_once"))
	u := s.waitEvent(t, long, "unk-amo", "unknown")
	if u.code() != "unknown_outcome" || u.Channel != "signal" {
		t.Errorf("unknown = %+v, want code unknown_outcome on signal", u)
	}
	s.job(t, textJob("unk-alo", num(3, 2)))
	s.waitEvent(t, long, "unk-alo", "sent")
	stop()
	if tm := terminals(s.eventsFor("unk-amo"))["unk-amo"]; len(tm) != 1 {
		t.Errorf("unk-amo terminal events %v, want exactly [unknown]", tm)
	}
	for _, x := range successes(log.list()) {
		if jobOf(x) == "unk-amo" {
			t.Errorf("an at_most_once job with an unknown outcome was sent again: %+v", x)
		}
	}
}

// TestE2E_SMSAndCaptcha: the modem simulator carries SMS. A number not on Signal gets its job
// by SMS (fallback sms); then a captcha challenge pauses Signal sending: status says
// captcha_required and staff needed, jobs with fallback sms go by SMS, jobs with fallback none
// wait (deferred).
func TestE2E_SMSAndCaptcha(t *testing.T) {
	t.Parallel()
	e := newEnv(t, opts{modem: true})
	s, ctl := e.shop, e.ctl

	notOn := num(4, 1)
	ctl.outcome(t, notOn, signaltest.UnregisteredFailure, "")
	s.job(t, textJob("sms-1", notOn))
	sent := s.waitEvent(t, long, "sms-1", "sent")
	if sent.Channel != "sms" || sent.SMSParts < 1 {
		t.Errorf("sent = %+v, want channel sms with sms_parts", sent)
	}
	e.modem.waitSent(t, long, "[sms-1]")

	// Captcha.
	c1, c2, c3 := num(4, 2), num(4, 3), num(4, 4)
	ctl.outcome(t, c1, signaltest.RateLimitFailure, "e2e-challenge-token")
	mark := s.mark()
	s.job(t, textJob("cap-1", c1)) // fallback sms: goes by SMS after the challenge
	if ev := s.waitEvent(t, long, "cap-1", "sent"); ev.Channel != "sms" {
		t.Errorf("cap-1 sent on %q, want sms after the captcha challenge", ev.Channel)
	}
	e.modem.waitSent(t, long, "[cap-1]")
	status := s.waitStatusMatch(t, mark, long, "signal captcha_required", func(st map[string]any) bool {
		sig, _ := st["signal"].(map[string]any)
		return sig["state"] == "captcha_required"
	})
	if status["led"] != "staff_needed" {
		t.Errorf("status with a captcha = %v, want led staff_needed", status)
	}
	s.job(t, textJob("cap-2", c2, "fallback", "none"))
	if d := s.waitEvent(t, long, "cap-2", "deferred"); d.code() != "captcha_required" {
		t.Errorf("cap-2 deferred with %q, want captcha_required", d.code())
	}
	s.job(t, textJob("cap-3", c3))
	if ev := s.waitEvent(t, long, "cap-3", "sent"); ev.Channel != "sms" {
		t.Errorf("cap-3 (on Signal, fallback sms) sent on %q while Signal is paused, want sms", ev.Channel)
	}
	for _, x := range ctl.sent(t) {
		if x.Recipient == c2 || x.Recipient == c3 {
			t.Errorf("Signal send while paused for a captcha: %+v", x)
		}
	}
}
