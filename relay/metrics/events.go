package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shopkit/relay/relay"
)

// contractEvents are the event types of MQTT contract v1; their series exist (at 0) from the
// start, so a rate() or an alert on them works before the first one happens.
var contractEvents = []relay.EventType{
	relay.EventAccepted, relay.EventDuplicate, relay.EventRejected, relay.EventSuppressed, relay.EventDeferred,
	relay.EventSent, relay.EventRetrying, relay.EventDelivered, relay.EventRead, relay.EventFailed,
	relay.EventExpired, relay.EventUnknown, relay.EventOptedIn, relay.EventOptedOut, relay.EventOptInRequested,
}

// jobResults are the intake's answers to a job, a subset of the events.
var jobResults = []relay.EventType{relay.EventAccepted, relay.EventDuplicate, relay.EventRejected}

// Events counts jobs and events as the pipeline stores them for publication. Create it before
// the pipeline, wrap the pipeline's ports with Sink and Outbox, and give it to New.
type Events struct {
	events  *prometheus.CounterVec
	jobs    *prometheus.CounterVec
	inbound *prometheus.CounterVec
	// Resolved once: the hot path (one count per job at 10k jobs/s) takes no label lookup.
	eventC map[relay.EventType]prometheus.Counter
	jobC   map[relay.EventType]prometheus.Counter
}

// NewEvents returns zeroed counters for every event type of the contract.
func NewEvents() *Events {
	e := &Events{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "relay_events_total",
			Help: "Events stored for publication on P/events, by event type (job and consent events)."}, []string{"event"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "relay_jobs_total",
			Help: "Jobs answered by the intake, by result: accepted (stored durably), duplicate (id seen within the dedup window), rejected (invalid, answered with a rejected event)."},
			[]string{"result"}),
		inbound: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "relay_inbound_total",
			Help: "Customer messages that were not keywords, stored for publication on P/inbound, by channel."}, []string{"channel"}),
		eventC: map[relay.EventType]prometheus.Counter{},
		jobC:   map[relay.EventType]prometheus.Counter{},
	}
	for _, t := range contractEvents {
		e.eventC[t] = e.events.WithLabelValues(string(t))
	}
	for _, t := range jobResults {
		e.jobC[t] = e.jobs.WithLabelValues(string(t))
	}
	for _, c := range []relay.Channel{relay.ChannelSignal, relay.ChannelSMS} {
		e.inbound.WithLabelValues(string(c))
	}
	return e
}

func (e *Events) collectors() []prometheus.Collector {
	return []prometheus.Collector{e.events, e.jobs, e.inbound}
}

// Count records one stored event.
func (e *Events) Count(t relay.EventType) {
	if c, ok := e.eventC[t]; ok {
		c.Inc()
	} else {
		e.events.WithLabelValues(string(t)).Inc() // a type newer than this list
	}
	if c, ok := e.jobC[t]; ok {
		c.Inc()
	}
}

// Sink wraps the pipeline's event sink: every event and inbound message it stores is counted.
func (e *Events) Sink(next relay.EventSink) relay.EventSink { return countingSink{next: next, e: e} }

// Outbox wraps the outbox: the events a change stores with it are counted once the change
// committed. Those are the events given to Submit (accepted, and deferred for a scheduled job;
// counted when the job is durable and was not a duplicate) and the Effects' events of Ack,
// Retry, Defer and Expire (sent, failed, retrying, deferred, expired, unknown, suppressed...)
// and of Apply (a consent change's opted_out, opted_in, optin_requested).
func (e *Events) Outbox(next relay.Outbox) relay.Outbox { return countingOutbox{Outbox: next, e: e} }

// SentIndex wraps the index of Signal sends: the events of a receipt (delivered, read),
// committed with the updated record, are counted once the commit succeeded.
func (e *Events) SentIndex(next relay.SentIndex) relay.SentIndex {
	return countingSent{SentIndex: next, e: e}
}

func (e *Events) countAll(evs []relay.Event) {
	for _, ev := range evs {
		e.Count(ev.Event)
	}
}

type countingSink struct {
	next relay.EventSink
	e    *Events
}

var _ relay.EventSink = countingSink{}

func (s countingSink) Publish(ctx context.Context, ev relay.Event) error {
	err := s.next.Publish(ctx, ev)
	if err == nil {
		s.e.Count(ev.Event)
	}
	return err
}

func (s countingSink) PublishInbound(ctx context.Context, in relay.Inbound) error {
	err := s.next.PublishInbound(ctx, in)
	if err == nil {
		s.e.inbound.WithLabelValues(string(in.Channel)).Inc()
	}
	return err
}

// countIfStored counts evs when err says they were stored with their state change.
func (e *Events) countIfStored(err error, evs []relay.Event) error {
	if err == nil {
		e.countAll(evs)
	}
	return err
}

type countingOutbox struct {
	relay.Outbox
	e *Events
}

var _ relay.Outbox = countingOutbox{}

func (o countingOutbox) Submit(ctx context.Context, s relay.Stored, events ...relay.Event) func() (bool, error) {
	wait := o.Outbox.Submit(ctx, s, events...)
	if len(events) == 0 {
		return wait // the box's own replies: no events, nothing to count
	}
	counted := false
	return func() (bool, error) {
		dup, err := wait()
		if err == nil && !dup && !counted {
			counted = true
			o.e.countAll(events)
		}
		return dup, err
	}
}

func (o countingOutbox) Ack(ctx context.Context, id string, outcome relay.EventType, fx relay.Effects) error {
	return o.e.countIfStored(o.Outbox.Ack(ctx, id, outcome, fx), fx.Events)
}

func (o countingOutbox) Retry(ctx context.Context, id string, at time.Time, reason string, fx relay.Effects) error {
	return o.e.countIfStored(o.Outbox.Retry(ctx, id, at, reason, fx), fx.Events)
}

func (o countingOutbox) Defer(ctx context.Context, id string, until time.Time, reason string, fx relay.Effects) error {
	return o.e.countIfStored(o.Outbox.Defer(ctx, id, until, reason, fx), fx.Events)
}

// Apply counts the events of a consent change (opted_out, opted_in, optin_requested) once it
// committed with its record and reply.
func (o countingOutbox) Apply(ctx context.Context, s *relay.Stored, fx relay.Effects) error {
	return o.e.countIfStored(o.Outbox.Apply(ctx, s, fx), fx.Events)
}

// Expire counts the events of the jobs it returns: those were removed, with their effects, even
// when an error comes back beside them. fx may run more than once for a job (a transaction
// tried again); the last run's events are the ones stored.
func (o countingOutbox) Expire(ctx context.Context, now time.Time, fx func(relay.Stored) relay.Effects) ([]relay.Stored, error) {
	if fx == nil {
		return o.Outbox.Expire(ctx, now, nil)
	}
	var mu sync.Mutex
	events := map[string][]relay.Event{}
	out, err := o.Outbox.Expire(ctx, now, func(s relay.Stored) relay.Effects {
		f := fx(s)
		mu.Lock()
		events[s.Job.ID] = f.Events
		mu.Unlock()
		return f
	})
	for _, s := range out {
		o.e.countAll(events[s.Job.ID])
	}
	return out, err
}

type countingSent struct {
	relay.SentIndex
	e *Events
}

var _ relay.SentIndex = countingSent{}

func (s countingSent) Commit(ctx context.Context, fx relay.Effects) error {
	return s.e.countIfStored(s.SentIndex.Commit(ctx, fx), fx.Events)
}
