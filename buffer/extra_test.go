package buffer

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"syscall"
	"testing"
	"time"
)

// extrasFor is what the tests commit with an operation on id: one of each kind.
func extrasFor(id, what string) []Extra {
	return []Extra{
		SpoolExtra("ev", []byte(what+" "+id)),
		JournalExtra(Entry{ID: id, Kind: what}),
		KVExtra("sent", id, []byte(what)),
	}
}

// stored lists what extras left in the store: spool "ev" items, journal "id kind" lines, KV
// "sent" "key=value" pairs, each sorted.
func stored(t testing.TB, s *Store) (spool, journal, kv []string) {
	t.Helper()
	items, err := s.Spool("ev").Peek(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		spool = append(spool, string(it.Data))
	}
	err = s.Journal().Range(time.Unix(0, 0), time.Now().Add(1000*time.Hour), func(e Entry) bool {
		journal = append(journal, e.ID+" "+e.Kind)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.KV("sent").Each("", func(k string, v []byte) bool {
		kv = append(kv, k+"="+string(v))
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(spool)
	sort.Strings(journal)
	sort.Strings(kv)
	return spool, journal, kv
}

func wantStored(t testing.TB, s *Store, spool, journal, kv []string) {
	t.Helper()
	gs, gj, gk := stored(t, s)
	if !slices.Equal(gs, spool) || !slices.Equal(gj, journal) || !slices.Equal(gk, kv) {
		t.Errorf("stored\n spool %q journal %q kv %q\nwant\n spool %q journal %q kv %q", gs, gj, gk, spool, journal, kv)
	}
}

// Every state change commits its extras with it, and a change that fails on its own writes none.
func TestStore_OpExtras(t *testing.T) {
	type opFn func(s *Store, id string, xs ...Extra) error
	ops := map[string]opFn{
		"Ack": func(s *Store, id string, xs ...Extra) error { return s.Ack(ctx, id, "sent", xs...) },
		"Retry": func(s *Store, id string, xs ...Extra) error {
			return s.Retry(ctx, id, time.Now().Add(time.Hour), "transient", xs...)
		},
		"Defer": func(s *Store, id string, xs ...Extra) error {
			return s.Defer(ctx, id, time.Now().Add(time.Hour), "quiet_hours", xs...)
		},
	}
	tests := []struct {
		name    string
		setup   func(t *testing.T, s *Store) // a and b are queued for one recipient; a is leased unless setup says otherwise
		id      string
		extras  func(id string) []Extra
		wantErr error // nil: the op and its extras commit
	}{
		{name: "leased", id: "a", extras: func(id string) []Extra { return extrasFor(id, "x") }},
		{name: "no extras", id: "a", extras: func(string) []Extra { return nil }},
		{name: "not leased", id: "b", extras: func(id string) []Extra { return extrasFor(id, "x") }, wantErr: ErrNotLeased},
		{name: "unknown id", id: "zz", extras: func(id string) []Extra { return extrasFor(id, "x") }, wantErr: ErrNotFound},
		{name: "already acked", id: "a", setup: func(t *testing.T, s *Store) {
			if err := s.Ack(ctx, "a", "sent"); err != nil {
				t.Fatal(err)
			}
		}, extras: func(id string) []Extra { return extrasFor(id, "x") }, wantErr: ErrNotFound},
		{name: "oversized extra", id: "a", extras: func(id string) []Extra {
			return append(extrasFor(id, "x"), SpoolExtra("ev", make([]byte, MaxPayloadLen+1)))
		}, wantErr: ErrInvalid},
		{name: "zero extra", id: "a", extras: func(id string) []Extra { return append(extrasFor(id, "x"), Extra{}) }, wantErr: ErrInvalid},
	}
	for opName, op := range ops {
		for _, tt := range tests {
			t.Run(opName+"/"+tt.name, func(t *testing.T) {
				s := openT(t, t.TempDir(), Options{})
				mustPut(t, s, Message{ID: "a", To: "+49"})
				mustPut(t, s, Message{ID: "b", To: "+49"})
				if got := leaseIDs(t, s, 10, time.Now()); !slices.Equal(got, []string{"a"}) {
					t.Fatalf("leased %v", got)
				}
				if tt.setup != nil {
					tt.setup(t, s)
				}
				_, j0, _ := stored(t, s)
				xs := tt.extras(tt.id)
				err := op(s, tt.id, xs...)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("%s = %v, want %v", opName, err, tt.wantErr)
				}
				if tt.wantErr != nil {
					wantStored(t, s, nil, j0, nil)
					return
				}
				var spool, journal, kv []string
				if len(xs) > 0 {
					spool, journal, kv = []string{"x " + tt.id}, []string{tt.id + " x"}, []string{tt.id + "=x"}
				}
				wantStored(t, s, spool, journal, kv)
				// The op itself happened: a is no longer leased (acked or waiting an hour).
				if err := op(s, tt.id); !errors.Is(err, ErrNotLeased) && !errors.Is(err, ErrNotFound) {
					t.Errorf("second %s = %v, want the lease gone", opName, err)
				}
			})
		}
	}
}

// A commit that fails (the disk is full) stores neither the change nor its extras; after the
// disk is freed the same change commits with them.
func TestStore_OpExtrasCommitFails(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	mustPut(t, s, Message{ID: "a", To: "+49"})
	leaseIDs(t, s, 1, time.Now())
	s.commitHook = func() error { return fmt.Errorf("write wal: %w", syscall.ENOSPC) }
	if err := s.Ack(ctx, "a", "sent", extrasFor("a", "sent")...); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Ack = %v, want ErrDiskFull", err)
	}
	if err := s.Apply(ctx, extrasFor("b", "read")...); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Apply = %v, want ErrDiskFull", err)
	}
	s.commitHook = nil
	wantStored(t, s, nil, nil, nil)
	if out, _, _, _ := s.Outcome("a"); out != OutcomeQueued {
		t.Fatalf("outcome %q after a failed Ack, want queued", out)
	}
	if err := s.Ack(ctx, "a", "sent", extrasFor("a", "sent")...); err != nil {
		t.Fatal(err)
	}
	wantStored(t, s, []string{"sent a"}, []string{"a sent"}, []string{"a=sent"})
}

// Defer ends the lease without counting an attempt; Retry counts one. Both clear SendStarted
// and keep the recipient's later messages waiting.
func TestStore_Defer(t *testing.T) {
	clk := newClock()
	s := openT(t, t.TempDir(), Options{Now: clk.Now})
	now := clk.Now()
	mustPut(t, s, Message{ID: "a", To: "+49"})
	mustPut(t, s, Message{ID: "b", To: "+49"})
	lease := func(at time.Time) Message {
		t.Helper()
		ms, err := s.Lease(ctx, 10, at)
		if err != nil || len(ms) != 1 || ms[0].ID != "a" {
			t.Fatalf("Lease at %v = %v, %v; want a alone", at.Sub(now), ms, err)
		}
		return ms[0]
	}
	lease(now)
	if err := s.MarkSending(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Defer(ctx, "a", now.Add(time.Hour), "quiet_hours"); err != nil {
		t.Fatal(err)
	}
	if got := leaseIDs(t, s, 10, now.Add(59*time.Minute)); len(got) != 0 {
		t.Fatalf("leased %v while a is deferred (b must wait behind it)", got)
	}
	m := lease(now.Add(time.Hour))
	if m.Attempts != 0 || m.SendStarted || m.LastError != "quiet_hours" {
		t.Errorf("after Defer: Attempts %d SendStarted %v LastError %q; want 0 false quiet_hours", m.Attempts, m.SendStarted, m.LastError)
	}
	if err := s.Defer(ctx, "a", now.Add(2*time.Hour), "captcha_required"); err != nil {
		t.Fatal(err)
	}
	m = lease(now.Add(2 * time.Hour))
	if m.Attempts != 0 {
		t.Errorf("two Defers counted %d attempts", m.Attempts)
	}
	if err := s.Retry(ctx, "a", now.Add(3*time.Hour), "transient"); err != nil {
		t.Fatal(err)
	}
	m = lease(now.Add(3 * time.Hour))
	if m.Attempts != 1 || m.LastError != "transient" {
		t.Errorf("after Retry: Attempts %d LastError %q; want 1 transient", m.Attempts, m.LastError)
	}
}

// Expire's extras are built per expired message and commit with its removal: a leased message
// (not expired) gets none, and a second sweep adds nothing.
func TestStore_ExpireExtras(t *testing.T) {
	clk := newClock()
	s := openT(t, t.TempDir(), Options{Now: clk.Now})
	now := clk.Now()
	for i, to := range []string{"A", "B", "C"} {
		mustPut(t, s, Message{ID: fmt.Sprint("x", i), To: to, ExpiresAt: now.Add(time.Minute)})
	}
	mustPut(t, s, Message{ID: "later", To: "D", ExpiresAt: now.Add(time.Hour)})
	if got := leaseIDs(t, s, 1, now); !slices.Equal(got, []string{"x0"}) {
		t.Fatalf("leased %v", got)
	}
	fn := func(m Message) []Extra { return extrasFor(m.ID, "expired") }
	gone, err := s.Expire(ctx, now.Add(2*time.Minute), fn)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range gone {
		ids = append(ids, m.ID)
	}
	if !slices.Equal(ids, []string{"x1", "x2"}) {
		t.Fatalf("expired %v, want [x1 x2]", ids)
	}
	wantStored(t, s, []string{"expired x1", "expired x2"}, []string{"x1 expired", "x2 expired"}, []string{"x1=expired", "x2=expired"})
	if gone, err := s.Expire(ctx, now.Add(2*time.Minute), fn); err != nil || len(gone) != 0 {
		t.Fatalf("second sweep: %v, %v", gone, err)
	}
	wantStored(t, s, []string{"expired x1", "expired x2"}, []string{"x1 expired", "x2 expired"}, []string{"x1=expired", "x2=expired"})

	// Invalid extras fail the sweep with nothing removed and nothing written.
	bad := func(m Message) []Extra { return []Extra{SpoolExtra("ev", make([]byte, MaxPayloadLen+1))} }
	if _, err := s.Expire(ctx, now.Add(2*time.Hour), bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Expire with invalid extras = %v, want ErrInvalid", err)
	}
	if s.Depth() != 2 {
		t.Errorf("Depth %d after a failed sweep, want 2 (x0 leased, later)", s.Depth())
	}
	wantStored(t, s, []string{"expired x1", "expired x2"}, []string{"x1 expired", "x2 expired"}, []string{"x1=expired", "x2=expired"})
}

// Expire returns more than one chunk: every message still gets its extras exactly once.
func TestStore_ExpireExtrasManyChunks(t *testing.T) {
	clk := newClock()
	s := openT(t, t.TempDir(), Options{Now: clk.Now})
	now := clk.Now()
	const n = 600
	parallel(t, n, 16, func(i int) error {
		_, err := s.Put(ctx, Message{ID: fmt.Sprintf("m%03d", i), To: fmt.Sprint(i % 7), ExpiresAt: now.Add(time.Minute)})
		return err
	})
	gone, err := s.Expire(ctx, now.Add(time.Hour), func(m Message) []Extra { return []Extra{SpoolExtra("ev", []byte(m.ID))} })
	if err != nil || len(gone) != n {
		t.Fatalf("Expire = %d, %v; want %d", len(gone), err, n)
	}
	spool, _, _ := stored(t, s)
	if len(spool) != n || len(slices.Compact(spool)) != n {
		t.Errorf("%d spool items (%d distinct), want %d", len(spool), len(slices.Compact(slices.Clone(spool))), n)
	}
}

// Apply commits extras alone, all or none; spool appends from ops and from Spool.Append share
// one sequence.
func TestStore_Apply(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	if _, err := s.Spool("ev").Append(ctx, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, extrasFor("t1", "delivered")...); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, append(extrasFor("t2", "read"), KVExtra("sent", "big", make([]byte, MaxPayloadLen+1)))...); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Apply with an oversized value = %v, want ErrInvalid", err)
	}
	if err := s.Apply(ctx); err != nil {
		t.Fatalf("empty Apply = %v", err)
	}
	if _, err := s.Spool("ev").Append(ctx, []byte("last")); err != nil {
		t.Fatal(err)
	}
	items, err := s.Spool("ev").Peek(10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, it := range items {
		got = append(got, string(it.Data))
		if it.Seq != uint64(i+1) {
			t.Errorf("item %d has Seq %d", i, it.Seq)
		}
	}
	if want := []string{"first", "delivered t1", "last"}; !slices.Equal(got, want) {
		t.Errorf("spool %q, want %q", got, want)
	}
	wantStored(t, s, []string{"delivered t1", "first", "last"}, []string{"t1 delivered"}, []string{"t1=delivered"})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, extrasFor("t3", "read")...); !errors.Is(err, ErrClosed) {
		t.Errorf("Apply after Close = %v, want ErrClosed", err)
	}
}

// PutAsync's extras are written only when the message is accepted.
func TestStore_PutAsyncExtras(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	for _, id := range []string{"a", "a", "b"} {
		if _, err := s.PutAsync(ctx, Message{ID: id, To: "+49"}, SpoolExtra("ev", []byte("accepted "+id)))(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.PutAsync(ctx, Message{ID: "c", To: "+49"}, Extra{})(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("PutAsync with a zero Extra = %v, want ErrInvalid", err)
	}
	wantStored(t, s, []string{"accepted a", "accepted b"}, nil, nil)
	if s.Depth() != 2 {
		t.Errorf("Depth %d, want 2", s.Depth())
	}
}
