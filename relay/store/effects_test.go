package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/shopkit/relay/buffer"
	"github.com/shopkit/relay/relay"
)

// The adapter stores a state change's Effects in the change's transaction: the events on the
// MQTT spool, the journal lines, the sent record; a change that fails stores none of them.
func TestStore_Effects(t *testing.T) {
	b, st := openStore(t)
	notified := 0
	st.OnSpool(func() { notified++ })
	ctx := context.Background()
	now := time.Now()
	for _, id := range []string{"e1", "e2"} {
		if _, err := st.Submit(ctx, relay.Stored{Job: relay.Job{ID: id, To: alice}})(); err != nil {
			t.Fatal(err)
		}
	}
	fx := func(id string, ev relay.EventType, ts int64) relay.Effects {
		f := relay.Effects{Events: []relay.Event{{ID: id, Event: ev}}, Journal: []relay.JournalEntry{{At: now, ID: id, Event: ev, Attempt: 1}}}
		if ts != 0 {
			f.Sent = &relay.SentSend{Timestamp: ts, Record: relay.SentRecord{ID: id, To: alice, SentAt: now}}
		}
		return f
	}
	// e2 waits behind e1 (one recipient): it is not leased, so its Ack fails and stores nothing.
	if _, err := st.Lease(ctx, 10, now); err != nil {
		t.Fatal(err)
	}
	if err := st.Ack(ctx, "e2", relay.EventSent, fx("e2", relay.EventSent, 2)); !errors.Is(err, buffer.ErrNotLeased) {
		t.Fatalf("Ack of a job not leased = %v, want ErrNotLeased", err)
	}
	if err := st.Ack(ctx, "e1", relay.EventSent, fx("e1", relay.EventSent, 1)); err != nil {
		t.Fatal(err)
	}
	if notified != 1 {
		t.Errorf("publisher notified %d times, want 1", notified)
	}
	if _, ok, _ := st.Lookup(2); ok {
		t.Error("the failed Ack stored its sent record")
	}
	rec, ok, err := st.Lookup(1)
	if err != nil || !ok || rec.ID != "e1" {
		t.Fatalf("Lookup(1) = %v, %v, %v; want e1's send", rec, ok, err)
	}
	// A receipt: the record and its events in one Commit.
	rec.Delivered = true
	if err := st.Commit(ctx, relay.Effects{Sent: &relay.SentSend{Timestamp: 1, Record: rec},
		Events: []relay.Event{{ID: "e1", Event: relay.EventDelivered}}}); err != nil {
		t.Fatal(err)
	}
	if rec, _, _ := st.Lookup(1); !rec.Delivered {
		t.Error("Commit did not update the sent record")
	}
	items, err := st.PeekAfter(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 {
		t.Fatalf("%d events spooled, want 2 (e1 sent, e1 delivered)", len(items))
	}
	var journal []string
	_ = b.Journal().Range(now.Add(-time.Hour), now.Add(time.Hour), func(e buffer.Entry) bool {
		journal = append(journal, e.ID+" "+e.Kind+" "+e.Detail)
		return true
	})
	if len(journal) != 1 || journal[0] != "e1 sent attempt 1: " {
		t.Errorf("journal %q, want [e1 sent attempt 1: ]", journal)
	}
}

// A record this relay cannot read is finished as failed, and the backend hears it (the failed
// event commits with the Ack).
func TestStore_UnreadableRecordFailed(t *testing.T) {
	b, st := openStore(t)
	ctx := context.Background()
	if _, err := b.Put(ctx, buffer.Message{ID: "u1", To: alice, Payload: []byte(`{"job":`)}); err != nil {
		t.Fatal(err)
	}
	got, err := st.Lease(ctx, 10, time.Now())
	if err != nil || len(got) != 0 {
		t.Fatalf("Lease = %v, %v; want nothing", got, err)
	}
	if o, _, _, _ := b.Outcome("u1"); o != "failed_unreadable" {
		t.Errorf("outcome %q, want failed_unreadable", o)
	}
	items, err := st.PeekAfter(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var e relay.Event
	if len(items) != 1 || json.Unmarshal(items[0].Payload, &e) != nil || e.ID != "u1" || e.Event != relay.EventFailed || e.Error == nil || e.Error.Code != "unreadable" {
		t.Errorf("spooled %d items (first %+v), want u1's failed event with code unreadable", len(items), e)
	}
}
