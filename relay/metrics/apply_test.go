package metrics

import (
	"context"
	"errors"
	"testing"

	"github.com/shopkit/relay/relay"
)

// applyOutbox answers Apply with err.
type applyOutbox struct {
	relay.Outbox
	err error
}

func (f *applyOutbox) Apply(context.Context, *relay.Stored, relay.Effects) error { return f.err }

// A consent change's event is counted once its commit (record, event, reply) succeeded.
func TestEvents_CountsApply(t *testing.T) {
	ev := NewEvents()
	out := &applyOutbox{}
	o := ev.Outbox(out)
	ctx := context.Background()
	if err := o.Apply(ctx, &relay.Stored{}, fxOf(relay.EventOptedOut)); err != nil {
		t.Fatal(err)
	}
	if err := o.Apply(ctx, nil, fxOf(relay.EventOptInRequested)); err != nil {
		t.Fatal(err)
	}
	out.err = errors.New("disk full")
	if err := o.Apply(ctx, nil, fxOf(relay.EventOptedOut)); err == nil {
		t.Fatal("the wrapper lost the error")
	}
	base := serve(t, New(ev, Sources{}, nil).Handler())
	check(t, scrape(t, base), []sample{
		{"relay_events_total", []string{"event", "opted_out"}, 1},
		{"relay_events_total", []string{"event", "optin_requested"}, 1},
	})
}
