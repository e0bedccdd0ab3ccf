package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The intake's collaborators, faked at the interface: the outbox keeps jobs in memory with a
// dedup index by id, like the real one (relay/store over the Badger buffer, tested there and
// end to end); events are recorded in the order they would be stored.

type intakeRecorder struct {
	mu     sync.Mutex
	events []string // "event id code field"
	stored []string // ids, in submit order
}

func (r *intakeRecorder) add(e Event) {
	s := string(e.Event) + " " + e.ID
	if e.Error != nil {
		s += " " + e.Error.Code + " " + e.Error.Field
	}
	r.mu.Lock()
	r.events = append(r.events, strings.TrimSpace(s))
	r.mu.Unlock()
}

func (r *intakeRecorder) got() (events, stored []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events), slices.Clone(r.stored)
}

// memOutbox implements Submit, Apply and Seen only (the intake uses nothing else).
type memOutbox struct {
	Outbox
	rec       *intakeRecorder
	seen      map[string]bool
	failPut   error
	failApply error
	applied   []applied // what Apply stored, in order
	submitted []Stored  // what Submit stored, in order
}

type applied struct {
	job *Stored
	fx  Effects
}

// Apply stores s (if any) and fx together, or nothing with failApply.
func (o *memOutbox) Apply(_ context.Context, s *Stored, fx Effects) error {
	if o.failApply != nil {
		return o.failApply
	}
	if s != nil {
		if o.seen[s.Job.ID] {
			return fmt.Errorf("duplicate %s", s.Job.ID)
		}
		o.seen[s.Job.ID] = true
		o.rec.mu.Lock()
		o.rec.stored = append(o.rec.stored, s.Job.ID)
		o.rec.mu.Unlock()
		c := *s
		s = &c
	}
	o.applied = append(o.applied, applied{job: s, fx: fx})
	return nil
}

func (o *memOutbox) Submit(_ context.Context, s Stored, events ...Event) func() (bool, error) {
	return func() (bool, error) {
		if o.failPut != nil {
			return false, o.failPut
		}
		if o.seen[s.Job.ID] {
			return true, nil
		}
		o.seen[s.Job.ID] = true
		o.submitted = append(o.submitted, s)
		o.rec.mu.Lock()
		o.rec.stored = append(o.rec.stored, s.Job.ID)
		o.rec.mu.Unlock()
		for _, e := range events {
			o.rec.add(e)
		}
		return false, nil
	}
}

// Seen of a memOutbox knows no id: the outbox's dedup window no longer holds it.
func (o *memOutbox) Seen(string) (bool, error) { return false, nil }

// indexedOutbox answers Seen from the ids it holds.
type indexedOutbox struct {
	*memOutbox
	failSeen error
}

func (o *indexedOutbox) Seen(id string) (bool, error) {
	if o.failSeen != nil {
		return false, o.failSeen
	}
	return o.seen[id], nil
}

type memSink struct {
	EventSink
	rec  *intakeRecorder
	fail error
}

func (s *memSink) Publish(_ context.Context, e Event) error {
	if s.fail != nil {
		return s.fail
	}
	s.rec.add(e)
	return nil
}

// stubRenderer renders "body"; template "needs_x" misses vars.x, template "broken" fails
// without naming a field.
type stubRenderer struct{}

func (stubRenderer) Render(j Job) (string, error) {
	switch j.Template {
	case "needs_x":
		if j.Vars["x"] == "" {
			return "", &FieldError{Field: "vars.x", Code: CodeMissingVar, Detail: "variable x is missing"}
		}
	case "broken":
		return "", errors.New("template file unreadable")
	}
	return "body", nil
}

// stubConsent refuses the proof source "forged" and applies records as scripted.
type stubConsent struct {
	ConsentKeeper
	apply func(ConsentRecord) (ConsentChange, error)
}

func (stubConsent) CheckProof(p ConsentProof) error {
	if p.Source == "forged" {
		return &FieldError{Field: "consent.source", Code: CodeInvalid, Detail: "unknown source"}
	}
	return nil
}

// Apply commits what the script returns, with a record for the number, as the consent policy
// does.
func (c stubConsent) Apply(ctx context.Context, r ConsentRecord, commit ConsentCommit) (ConsentChange, error) {
	ch, err := c.apply(r)
	if err != nil || (ch.Event == "" && ch.Reply == "") {
		return ch, err
	}
	if err := commit(ctx, &ConsentWrite{Number: r.To, Record: []byte(`{"v":1}`)}, ch); err != nil {
		return ConsentChange{}, err
	}
	return ch, nil
}

// logRecords keeps the records an Intake logs.
type logRecords struct {
	mu   sync.Mutex
	recs []string // "LEVEL msg k=v ..."
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecords) WithGroup(string) slog.Handler            { return l }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	s := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool { s += " " + a.Key + "=" + a.Value.String(); return true })
	l.mu.Lock()
	l.recs = append(l.recs, s)
	l.mu.Unlock()
	return nil
}

func (l *logRecords) all() []string { l.mu.Lock(); defer l.mu.Unlock(); return slices.Clone(l.recs) }

type intakeRig struct {
	in     *Intake
	rec    *intakeRecorder
	outbox *memOutbox
	sink   *memSink
	logs   *logRecords
}

func newIntakeRig(indexed bool, apply func(ConsentRecord) (ConsentChange, error)) *intakeRig {
	rec := &intakeRecorder{}
	ob := &memOutbox{rec: rec, seen: map[string]bool{}}
	var outbox Outbox = ob
	if indexed {
		outbox = &indexedOutbox{memOutbox: ob}
	}
	sink := &memSink{rec: rec}
	logs := &logRecords{}
	if apply == nil {
		apply = func(ConsentRecord) (ConsentChange, error) { return ConsentChange{}, nil }
	}
	in := NewIntake(defs, IntakeDeps{Outbox: outbox, Events: sink, Renderer: stubRenderer{},
		Consent: stubConsent{apply: apply}, Logger: slog.New(logs), Now: func() time.Time { return now0 }})
	return &intakeRig{in: in, rec: rec, outbox: ob, sink: sink, logs: logs}
}

const okJob = `{"id":"j1","to":"+4915112345678","text":"hello"}`

func TestIntake_SubmitJob(t *testing.T) {
	huge := strings.Repeat("a", MaxPayload)
	storeErr := errors.New("disk full")
	tests := []struct {
		name        string
		payload     string
		seen        []string // ids the outbox already holds
		indexed     bool     // the outbox's Seen knows the ids it holds (false: it knows none)
		redelivered bool
		failPut     error
		failPublish error
		failSeen    error
		wantErr     error // nil: acknowledge
		events      []string
		stored      []string
		unreadable  int64
	}{
		{name: "accepted", payload: okJob, events: []string{"accepted j1"}, stored: []string{"j1"}},
		{name: "scheduled", payload: `{"id":"j1","to":"+4915112345678","text":"x","not_before":"2026-11-21T13:00:00Z"}`,
			events: []string{"accepted j1", "deferred j1 scheduled"}, stored: []string{"j1"}},
		{name: "too large, id readable", payload: `{"id":"j1","text":"` + huge + `"}`, events: []string{"rejected j1 too_large"}},
		{name: "too large, id after the huge field", payload: `{"text":"` + huge + `","id":"j1"}`, unreadable: 1},
		{name: "too large, invalid id", payload: `{"id":"j 1","text":"` + huge + `"}`, unreadable: 1},
		{name: "not JSON, id readable", payload: `{"id":"j1","to":`, events: []string{"rejected j1 not_json"}},
		{name: "not JSON at all", payload: `hello`, unreadable: 1},
		{name: "no id", payload: `{"to":"+4915112345678","text":"x"}`, unreadable: 1},
		{name: "bad number", payload: `{"id":"j1","to":"+49123","text":"x"}`, events: []string{"rejected j1 invalid_number to"}},
		{name: "blank text", payload: `{"id":"j1","to":"+4915112345678","text":" \n "}`, events: []string{"rejected j1 required text"}},
		{name: "forged consent proof", payload: `{"id":"j1","to":"+4915112345678","text":"x","consent":{"at":"2026-11-20T12:00:00Z","source":"forged"}}`,
			events: []string{"rejected j1 invalid consent.source"}},
		{name: "missing variable", payload: `{"id":"j1","to":"+4915112345678","template":"needs_x"}`, events: []string{"rejected j1 missing_variable vars.x"}},
		{name: "template broken", payload: `{"id":"j1","to":"+4915112345678","template":"broken"}`, events: []string{"rejected j1 invalid template"}},
		{name: "duplicate", payload: okJob, seen: []string{"j1"}, events: []string{"duplicate j1 duplicate"}},
		{name: "duplicate redelivered by the broker", payload: okJob, seen: []string{"j1"}, redelivered: true},
		{name: "invalid copy of an accepted id, indexed", payload: `{"id":"j1","to":"+4915112345678","text":"x","expires_at":"2026-11-21T11:00:00Z"}`,
			seen: []string{"j1"}, indexed: true, events: []string{"duplicate j1 duplicate"}},
		{name: "too large copy of an accepted id, indexed", payload: `{"id":"j1","text":"` + huge + `"}`,
			seen: []string{"j1"}, indexed: true, events: []string{"duplicate j1 duplicate"}},
		{name: "invalid job, indexed, id unknown", payload: `{"id":"j2","to":"+49123","text":"x"}`, seen: []string{"j1"}, indexed: true,
			events: []string{"rejected j2 invalid_number to"}},
		{name: "invalid copy of an id the dedup index no longer holds", payload: `{"id":"j1","to":"+4915112345678","text":"x","expires_at":"2026-11-21T11:00:00Z"}`,
			seen: []string{"j1"}, events: []string{"rejected j1 already_expired expires_at"}},
		{name: "id lookup fails", payload: `{"id":"j1","to":"+49123","text":"x"}`, indexed: true, failSeen: storeErr, wantErr: storeErr},
		{name: "store fails", payload: okJob, failPut: storeErr, wantErr: storeErr},
		{name: "rejection cannot be stored", payload: `{"id":"j1","to":"+49123","text":"x"}`, failPublish: storeErr, wantErr: storeErr},
		{name: "duplicate event cannot be stored", payload: okJob, seen: []string{"j1"}, failPublish: storeErr, wantErr: storeErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newIntakeRig(tt.indexed, nil)
			for _, id := range tt.seen {
				r.outbox.seen[id] = true
			}
			r.outbox.failPut, r.sink.fail = tt.failPut, tt.failPublish
			if ix, ok := r.in.outbox.(*indexedOutbox); ok {
				ix.failSeen = tt.failSeen
			}
			err := r.in.SubmitJob(context.Background(), []byte(tt.payload), tt.redelivered)()
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("wait() = %v, want %v", err, tt.wantErr)
			}
			events, stored := r.rec.got()
			if !slices.Equal(events, tt.events) {
				t.Errorf("events %q, want %q", events, tt.events)
			}
			if !slices.Equal(stored, tt.stored) {
				t.Errorf("stored %q, want %q", stored, tt.stored)
			}
			if got := r.in.Unidentified(); got != tt.unreadable {
				t.Errorf("Unidentified() = %d, want %d", got, tt.unreadable)
			}
		})
	}
}

// A job is stored with its number in E.164 and whether that number can receive SMS.
func TestIntake_SubmitJobNumber(t *testing.T) {
	tests := []struct {
		to, e164 string
		mobile   bool
	}{
		{"+49 151 1234 5678", "+4915112345678", true},
		{"+49 (30) 1234567", "+49301234567", false},
	}
	for _, tt := range tests {
		r := newIntakeRig(false, nil)
		payload := fmt.Sprintf(`{"id":"j1","to":%q,"text":"hello"}`, tt.to)
		if err := r.in.SubmitJob(context.Background(), []byte(payload), false)(); err != nil {
			t.Fatalf("%s: %v", tt.to, err)
		}
		if len(r.outbox.submitted) != 1 {
			t.Fatalf("%s: %d jobs stored, want 1", tt.to, len(r.outbox.submitted))
		}
		if got := r.outbox.submitted[0]; got.Job.To != tt.e164 || got.Mobile != tt.mobile {
			t.Errorf("%s: stored to %q mobile=%v, want %q mobile=%v", tt.to, got.Job.To, got.Mobile, tt.e164, tt.mobile)
		}
	}
}

// The rejected event carries the job id, the reason and a detail for people; the one for a
// payload without a readable id is only logged, with its reason.
func TestIntake_RejectionLogged(t *testing.T) {
	r := newIntakeRig(false, nil)
	big := `{"text":"` + strings.Repeat("a", MaxPayload) + `"}`
	if err := r.in.HandleJob(context.Background(), []byte(big)); err != nil {
		t.Fatal(err)
	}
	logs := r.logs.all()
	if len(logs) != 1 || !strings.Contains(logs[0], "rejected a payload without a readable id") || !strings.Contains(logs[0], "code=too_large") {
		t.Errorf("logs %q, want one warning naming too_large", logs)
	}
}

// One job id published 10,000 times: stored once, accepted once, and every later copy answered
// duplicate (rule 3), none of them rejected or lost.
func TestIntake_TenThousandDuplicates(t *testing.T) {
	r := newIntakeRig(true, nil)
	const n = 10000
	waits := make([]func() error, 0, n)
	for range n {
		waits = append(waits, r.in.SubmitJob(context.Background(), []byte(okJob), false))
	}
	for i, w := range waits {
		if err := w(); err != nil {
			t.Fatalf("copy %d: %v", i, err)
		}
	}
	events, stored := r.rec.got()
	if !slices.Equal(stored, []string{"j1"}) {
		t.Errorf("stored %q, want j1 once", stored)
	}
	want := append([]string{"accepted j1"}, slices.Repeat([]string{"duplicate j1 duplicate"}, n-1)...)
	if !slices.Equal(events, want) {
		t.Errorf("%d events (first %q), want accepted then %d duplicate", len(events), events[:min(3, len(events))], n-1)
	}
}

func TestIntake_Stop(t *testing.T) {
	r := newIntakeRig(false, nil)
	r.in.Stop()
	if err := r.in.SubmitJob(context.Background(), []byte(okJob), false)(); !errors.Is(err, ErrIntakeStopped) {
		t.Errorf("SubmitJob after Stop: %v, want ErrIntakeStopped", err)
	}
	if err := r.in.HandleConsent(context.Background(), []byte(`{"to":"+4915112345678","consent":"opt_in"}`)); !errors.Is(err, ErrIntakeStopped) {
		t.Errorf("HandleConsent after Stop: %v, want ErrIntakeStopped", err)
	}
	if _, stored := r.rec.got(); len(stored) != 0 {
		t.Errorf("stored %q after Stop", stored)
	}
}

func TestIntake_HandleConsent(t *testing.T) {
	applyErr := errors.New("disk full")
	tests := []struct {
		name      string
		payload   string
		apply     func(ConsentRecord) (ConsentChange, error)
		failApply error
		wantErr   error
		events    []string // "event to source"
		stored    int      // system messages queued
		log       string   // a warning containing this, "" for none
	}{
		{name: "opt in", payload: `{"to":"+49 151 87654321","consent":"opt_in","source":"checkout"}`,
			apply:  func(ConsentRecord) (ConsentChange, error) { return ConsentChange{Event: EventOptedIn}, nil },
			events: []string{"opted_in +4915187654321 checkout"}},
		{name: "request asks the customer", payload: `{"to":"+4915187654321","consent":"request"}`,
			apply: func(r ConsentRecord) (ConsentChange, error) {
				return ConsentChange{Event: EventOptInRequested, Reply: "Reply YES"}, nil
			},
			events: []string{"optin_requested +4915187654321 "}, stored: 1},
		{name: "request, the commit fails", payload: `{"to":"+4915187654321","consent":"request"}`,
			apply: func(r ConsentRecord) (ConsentChange, error) {
				return ConsentChange{Event: EventOptInRequested, Reply: "Reply YES"}, nil
			},
			failApply: applyErr, wantErr: applyErr},
		{name: "nothing changed", payload: `{"to":"+4915187654321","consent":"opt_out"}`},
		{name: "not JSON", payload: `opt me in`, log: "code=not_json"},
		{name: "too large", payload: `{"to":"+4915187654321","consent":"opt_in","proof":"` + strings.Repeat("p", MaxPayload) + `"}`, log: "code=too_large"},
		{name: "no number", payload: `{"consent":"opt_in"}`, log: "field=to code=required"},
		{name: "bad number", payload: `{"to":"015112345678","consent":"opt_in"}`, log: "field=to code=invalid_number"},
		{name: "no consent", payload: `{"to":"+4915187654321"}`, log: "field=consent code=required"},
		{name: "unknown consent", payload: `{"to":"+4915187654321","consent":"maybe"}`, log: "field=consent code=invalid"},
		{name: "consent wrong type", payload: `{"to":"+4915187654321","consent":true}`, log: "field=consent code=wrong_type"},
		{name: "bad time", payload: `{"to":"+4915187654321","consent":"opt_in","at":"yesterday"}`, log: "field=at code=invalid"},
		{name: "control character in source", payload: `{"to":"+4915187654321","consent":"opt_in","source":"a\u0007"}`, log: "field=source code=control_character"},
		{name: "refused by the consent store", payload: `{"to":"+4915187654321","consent":"opt_in","at":"2030-01-01T00:00:00Z"}`,
			apply: func(ConsentRecord) (ConsentChange, error) {
				return ConsentChange{}, &FieldError{Field: "at", Code: CodeInvalid, Detail: "in the future"}
			},
			log: "field=at code=invalid detail=in the future to=+49*********21"},
		{name: "consent store fails", payload: `{"to":"+4915187654321","consent":"opt_in"}`,
			apply:   func(ConsentRecord) (ConsentChange, error) { return ConsentChange{}, applyErr },
			wantErr: applyErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newIntakeRig(false, tt.apply)
			r.outbox.failApply = tt.failApply
			r.in.events = eventFunc(func(e Event) { t.Errorf("event %+v published alone; it must commit with the change", e) })
			err := r.in.HandleConsent(context.Background(), []byte(tt.payload))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("HandleConsent = %v, want %v", err, tt.wantErr)
			}
			var events []string
			for _, a := range r.outbox.applied {
				if a.fx.Consent == nil || a.fx.Consent.Number != "+4915187654321" {
					t.Errorf("a change committed without its record: %+v", a.fx)
				}
				if len(a.fx.Journal) != len(a.fx.Events) {
					t.Errorf("%d journal lines for %d events, want one each", len(a.fx.Journal), len(a.fx.Events))
				}
				if (a.job != nil) != (tt.stored > 0) || (a.job != nil && (!a.job.System || a.job.OptOutConfirmation)) {
					t.Errorf("committed job %+v, want a System reply: %v", a.job, tt.stored > 0)
				}
				for _, e := range a.fx.Events {
					events = append(events, string(e.Event)+" "+e.To+" "+e.Source)
				}
			}
			if !slices.Equal(events, tt.events) {
				t.Errorf("events %q, want %q", events, tt.events)
			}
			_, stored := r.rec.got()
			if len(stored) != tt.stored {
				t.Errorf("%d system messages queued, want %d", len(stored), tt.stored)
			}
			logs := r.logs.all()
			if tt.log == "" {
				if r.in.Unidentified() != 0 {
					t.Errorf("Unidentified() = %d for a valid record", r.in.Unidentified())
				}
				return
			}
			if len(logs) != 1 || !strings.Contains(logs[0], "rejected a consent record") || !strings.Contains(logs[0], tt.log) {
				t.Errorf("logs %q, want one rejection containing %q", logs, tt.log)
			}
			if r.in.Unidentified() != 1 {
				t.Errorf("Unidentified() = %d, want 1", r.in.Unidentified())
			}
			if strings.Contains(strings.Join(logs, "\n"), "15187654321") {
				t.Errorf("a log shows the whole number: %q", logs)
			}
		})
	}
}

// Consent events name the number and where the change came from.
func TestIntake_ConsentEvent(t *testing.T) {
	r := newIntakeRig(false, func(ConsentRecord) (ConsentChange, error) { return ConsentChange{Event: EventOptedOut}, nil })
	if err := r.in.HandleConsent(context.Background(), []byte(`{"to":"+48 601 234 567","consent":"opt_out","source":"crm"}`)); err != nil {
		t.Fatal(err)
	}
	var got []Event
	for _, a := range r.outbox.applied {
		got = append(got, a.fx.Events...)
	}
	if len(got) != 1 || got[0].Event != EventOptedOut || got[0].To != "+48601234567" || got[0].Source != "crm" || time.Time(got[0].At) != now0 {
		t.Errorf("events %+v", got)
	}
}

type eventFunc func(Event)

func (f eventFunc) Publish(_ context.Context, e Event) error    { f(e); return nil }
func (eventFunc) PublishInbound(context.Context, Inbound) error { return fmt.Errorf("unexpected") }

// A duplicate whose event could not be stored is not acknowledged; the broker redelivers it
// with the DUP flag, and that redelivery is still answered duplicate (a redelivery of a job
// relay itself stored is not).
func TestIntake_DuplicateEventOwedAcrossRedelivery(t *testing.T) {
	r := newIntakeRig(false, nil)
	r.outbox.seen["j1"] = true
	storeErr := errors.New("disk full")
	r.sink.fail = storeErr
	if err := r.in.SubmitJob(context.Background(), []byte(okJob), false)(); !errors.Is(err, storeErr) {
		t.Fatalf("first delivery: %v, want %v (not acknowledged)", err, storeErr)
	}
	r.sink.fail = nil
	if err := r.in.SubmitJob(context.Background(), []byte(okJob), true)(); err != nil {
		t.Fatalf("redelivery: %v", err)
	}
	if err := r.in.SubmitJob(context.Background(), []byte(okJob), true)(); err != nil {
		t.Fatalf("second redelivery: %v", err)
	}
	if events, _ := r.rec.got(); !slices.Equal(events, []string{"duplicate j1 duplicate"}) {
		t.Errorf("events %q, want one duplicate (the owed one; the later redelivery is the same message)", events)
	}
}
