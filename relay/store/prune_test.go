package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/shopkit/relay/relay"
)

// Retention: sent-index entries and recipients' uuids older than the cut go, newer ones stay,
// and an unreadable entry goes too (it could never be matched anyway).
func TestStore_Prune(t *testing.T) {
	b, st := openStore(t)
	ctx := context.Background()
	cut := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	old, recent := cut.Add(-time.Hour), cut.Add(time.Hour)

	for ts, at := range map[int64]time.Time{1: old, 2: recent} {
		if err := st.Commit(ctx, relay.Effects{Sent: &relay.SentSend{Timestamp: ts, Record: relay.SentRecord{ID: "j", To: alice, SentAt: at}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.KV("sent").Set(ctx, "3", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if n, err := st.PruneSent(ctx, cut); err != nil || n != 2 {
		t.Fatalf("PruneSent = %d, %v; want 2 (the old one and the unreadable one)", n, err)
	}
	for ts, want := range map[int64]bool{1: false, 2: true, 3: false} {
		if _, ok, err := st.Lookup(ts); err != nil || ok != want {
			t.Errorf("Lookup(%d) after prune: found %v, %v; want %v", ts, ok, err, want)
		}
	}

	recipients := b.KV("recipients")
	for uuid, at := range map[string]time.Time{"u-old": old, "u-new": recent} {
		v, _ := json.Marshal(map[string]any{"number": alice, "at": at})
		if err := recipients.Set(ctx, uuid, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := recipients.Set(ctx, "u-bad", []byte("?")); err != nil {
		t.Fatal(err)
	}
	if n, err := st.PruneRecipients(ctx, cut); err != nil || n != 2 {
		t.Fatalf("PruneRecipients = %d, %v; want 2", n, err)
	}
	for uuid, want := range map[string]bool{"u-old": false, "U-NEW": true, "u-bad": false} {
		if _, ok, err := st.Recipient(uuid); err != nil || ok != want {
			t.Errorf("Recipient(%s) after prune: found %v, %v; want %v", uuid, ok, err, want)
		}
	}
}
