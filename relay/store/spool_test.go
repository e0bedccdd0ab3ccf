package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/shopkit/relay/relay"
	"github.com/shopkit/relay/relay/mqtt"
)

// An unreadable spool entry comes back from Peek with Err set, in its place: the MQTT client
// removes it in order with its neighbours. Left out, a batch made only of such entries would
// look like an empty spool and stall every event behind it.
func TestStore_PeekUnreadable(t *testing.T) {
	b, st := openStore(t)
	ctx := context.Background()
	if err := st.Publish(ctx, relay.Event{ID: "good-1", Event: relay.EventAccepted}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Spool("mqtt").Append(ctx, []byte("\x00garbage")); err != nil {
		t.Fatal(err)
	}
	if err := st.Publish(ctx, relay.Event{ID: "good-2", Event: relay.EventAccepted}); err != nil {
		t.Fatal(err)
	}
	items, err := st.PeekAfter(0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 3 {
		t.Fatalf("Peek returned %d items, want 3 (the unreadable one in its place)", len(items))
	}
	for i, wantBad := range []bool{false, true, false} {
		if bad := items[i].Err != nil; bad != wantBad {
			t.Errorf("item %d: Err = %v, want unreadable %v", i, items[i].Err, wantBad)
		}
	}
	if !errors.Is(items[1].Err, mqtt.ErrBadItem) {
		t.Errorf("unreadable item's Err = %v, want mqtt.ErrBadItem", items[1].Err)
	}
	if !(items[0].Seq < items[1].Seq && items[1].Seq < items[2].Seq) {
		t.Errorf("seqs %d %d %d, want increasing", items[0].Seq, items[1].Seq, items[2].Seq)
	}
}

// Seen answers from the dedup index: queued and finished jobs are seen, unknown ids are not.
func TestStore_Seen(t *testing.T) {
	_, st := openStore(t)
	var ix relay.Outbox = st
	if _, err := st.Submit(context.Background(), relay.Stored{Job: relay.Job{ID: "known", To: alice}})(); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"known": true, "unknown": false} {
		got, err := ix.Seen(id)
		if err != nil || got != want {
			t.Errorf("Seen(%q) = %v, %v; want %v", id, got, err, want)
		}
	}
}
