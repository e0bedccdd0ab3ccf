package buffer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

var ctx = context.Background()

func TestStore_Put(t *testing.T) {
	tests := []struct {
		name    string
		prior   []Message
		in      Message
		want    PutResult
		wantErr string // InvalidError field
	}{
		{name: "new", in: Message{ID: "a", To: "+49"}, want: Accepted},
		{name: "queued id is duplicate", prior: []Message{{ID: "a", To: "+49"}}, in: Message{ID: "a", To: "+48"}, want: Duplicate},
		{name: "other id same recipient", prior: []Message{{ID: "a", To: "+49"}}, in: Message{ID: "b", To: "+49"}, want: Accepted},
		{name: "empty id", in: Message{To: "+49"}, wantErr: "ID"},
		{name: "long id", in: Message{ID: string(make([]byte, MaxIDLen+1)), To: "+49"}, wantErr: "ID"},
		{name: "empty to", in: Message{ID: "a"}, wantErr: "To"},
		{name: "NUL in to", in: Message{ID: "a", To: "+4\x009"}, wantErr: "To"},
		{name: "priority", in: Message{ID: "a", To: "+49", Priority: 3}, wantErr: "Priority"},
		{name: "delivery", in: Message{ID: "a", To: "+49", Delivery: 2}, wantErr: "Delivery"},
		{name: "payload", in: Message{ID: "a", To: "+49", Payload: make([]byte, MaxPayloadLen+1)}, wantErr: "Payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openT(t, t.TempDir(), Options{})
			for _, m := range tt.prior {
				mustPut(t, s, m)
			}
			got, err := s.Put(ctx, tt.in)
			if tt.wantErr != "" {
				var ie *InvalidError
				if !errors.As(err, &ie) || ie.Field != tt.wantErr || !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want InvalidError{Field:%s}", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Put = %v, %v; want %v", got, err, tt.want)
			}
			if want := len(tt.prior) + map[PutResult]int{Accepted: 1}[got]; s.Depth() != want {
				t.Errorf("Depth = %d, want %d", s.Depth(), want)
			}
		})
	}
}

// Large payloads overflow one Badger transaction; the writer splits the
// batch and every Put still gets its own result.
func TestStore_PutLargeBatchSplits(t *testing.T) {
	s := openT(t, t.TempDir(), Options{CommitWindow: 200 * time.Millisecond})
	release, first := holdWriter(t, s) // the Puts below queue up into one batch
	const n = 24
	big := make([]byte, MaxPayloadLen)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			r, err := s.Put(ctx, Message{ID: fmt.Sprint(i), To: "A", Payload: big})
			if err == nil && r != Accepted {
				err = fmt.Errorf("Put %d = %v", i, r)
			}
			errs <- err
		}()
	}
	if !eventually(10*time.Second, func() bool { return s.inflight.Load() >= n+1 }) {
		t.Fatalf("%d ops submitted, want %d", s.inflight.Load(), n+1)
	}
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if s.splits.Load() == 0 {
		t.Error("no batch was split; the test did not exercise ErrTxnTooBig")
	}
	if s.Depth() != n || len(eachIDs(t, s)) != n {
		t.Errorf("Depth %d, want %d", s.Depth(), n)
	}
}

func TestStore_PutStoresFields(t *testing.T) {
	clk := newClock()
	s := openT(t, t.TempDir(), Options{Now: clk.Now})
	in := Message{ID: "a", To: "+49", Priority: PriorityLow, Delivery: AtMostOnce, Payload: []byte("p"),
		ExpiresAt: clk.Now().Add(time.Hour), Attempts: 7, LastError: "ignored", SendStarted: true}
	mustPut(t, s, in)
	var got []Message
	_ = s.Each(func(m Message) bool { got = append(got, m); return true })
	if len(got) != 1 {
		t.Fatalf("Each: %d messages", len(got))
	}
	m := got[0]
	if m.Seq != 1 || !m.AcceptedAt.Equal(clk.Now()) || m.Attempts != 0 || m.LastError != "" || m.SendStarted ||
		m.Priority != PriorityLow || m.Delivery != AtMostOnce || string(m.Payload) != "p" || !m.ExpiresAt.Equal(in.ExpiresAt) {
		t.Errorf("stored %+v", m)
	}
}

// Two Puts of one id committed in the same batch: one Accepted, one Duplicate.
func TestStore_PutDuplicateWithinBatch(t *testing.T) {
	s := openT(t, t.TempDir(), Options{CommitWindow: 200 * time.Millisecond})
	release, first := holdWriter(t, s) // the two Puts queue up behind it
	results := make(chan PutResult, 2)
	for range 2 {
		go func() {
			r, err := s.Put(ctx, Message{ID: "same", To: "+49"})
			if err != nil {
				t.Error(err)
			}
			results <- r
		}()
	}
	// both Puts submitted (the KV Set is the third)
	if !eventually(10*time.Second, func() bool { return s.inflight.Load() >= 3 }) {
		t.Fatalf("%d ops submitted, want 3", s.inflight.Load())
	}
	before := s.Stats().Commits
	s.commitHook = nil
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	got := map[PutResult]int{}
	got[<-results]++
	got[<-results]++
	if got[Accepted] != 1 || got[Duplicate] != 1 {
		t.Errorf("results %v, want one Accepted and one Duplicate", got)
	}
	if c := s.Stats().Commits - before; c != 2 { // the KV batch and one batch for both Puts
		t.Errorf("commits = %d, want 2 (the Puts in one batch)", c)
	}
	if s.Depth() != 1 {
		t.Errorf("Depth = %d, want 1", s.Depth())
	}
}

func TestStore_Lease(t *testing.T) {
	clk := newClock()
	now := clk.Now()
	type put struct {
		id, to string
		prio   Priority
		nb     time.Duration // NotBefore relative to now
	}
	tests := []struct {
		name  string
		puts  []put
		n     int
		at    time.Duration
		want  []string
		want2 []string // a second Lease at the same time, before any Ack
	}{
		{name: "fifo per recipient", puts: []put{{"a1", "A", 1, 0}, {"a2", "A", 1, 0}, {"b1", "B", 1, 0}},
			n: 10, want: []string{"a1", "b1"}, want2: nil},
		{name: "priority across recipients", puts: []put{{"a1", "A", PriorityLow, 0}, {"b1", "B", PriorityNormal, 0}, {"c1", "C", PriorityHigh, 0}},
			n: 10, want: []string{"c1", "b1", "a1"}},
		{name: "n limits", puts: []put{{"a1", "A", 1, 0}, {"b1", "B", 1, 0}, {"c1", "C", 1, 0}},
			n: 2, want: []string{"a1", "b1"}, want2: []string{"c1"}},
		{name: "head priority rules its recipient", puts: []put{{"a1", "A", PriorityLow, 0}, {"a2", "A", PriorityHigh, 0}, {"b1", "B", PriorityNormal, 0}},
			n: 10, want: []string{"b1", "a1"}},
		{name: "not before blocks recipient", puts: []put{{"a1", "A", 1, time.Hour}, {"a2", "A", 1, 0}, {"b1", "B", 1, 0}},
			n: 10, want: []string{"b1"}},
		{name: "not before reached", puts: []put{{"a1", "A", 1, time.Hour}, {"b1", "B", 1, 0}},
			n: 10, at: time.Hour, want: []string{"a1", "b1"}},
		{name: "not before reached, priority order kept", puts: []put{{"a1", "A", PriorityLow, time.Minute}, {"b1", "B", PriorityHigh, 2 * time.Minute}},
			n: 10, at: time.Hour, want: []string{"b1", "a1"}},
		{name: "empty", n: 5, want: nil},
		{name: "zero n", puts: []put{{"a1", "A", 1, 0}}, n: 0, want: nil, want2: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openT(t, t.TempDir(), Options{Now: clk.Now})
			for _, p := range tt.puts {
				m := Message{ID: p.id, To: p.to, Priority: p.prio}
				if p.nb != 0 {
					m.NotBefore = now.Add(p.nb)
				}
				mustPut(t, s, m)
			}
			got := leaseIDs(t, s, tt.n, now.Add(tt.at))
			if !slices.Equal(got, tt.want) {
				t.Errorf("Lease = %v, want %v", got, tt.want)
			}
			if got2 := leaseIDs(t, s, tt.n, now.Add(tt.at)); !slices.Equal(got2, tt.want2) {
				t.Errorf("second Lease = %v, want %v", got2, tt.want2)
			}
		})
	}
}

func TestStore_LeaseTimeout(t *testing.T) {
	clk := newClock()
	s := openT(t, t.TempDir(), Options{Now: clk.Now, LeaseTimeout: time.Minute})
	mustPut(t, s, Message{ID: "a1", To: "A"})
	mustPut(t, s, Message{ID: "a2", To: "A"})
	now := clk.Now()
	ms, _ := s.Lease(ctx, 5, now)
	if len(ms) != 1 || !ms[0].LeaseDeadline.Equal(now.Add(time.Minute)) {
		t.Fatalf("Lease = %+v", ms)
	}
	if got := leaseIDs(t, s, 5, now.Add(59*time.Second)); len(got) != 0 {
		t.Errorf("before deadline: %v, want nothing", got)
	}
	if got := leaseIDs(t, s, 5, now.Add(time.Minute)); !slices.Equal(got, []string{"a1"}) {
		t.Errorf("at deadline: %v, want [a1] again", got)
	}
}

func TestStore_Ack(t *testing.T) {
	tests := []struct {
		name    string
		lease   bool
		id      string
		twice   bool
		wantErr error
	}{
		{name: "leased", lease: true, id: "a1"},
		{name: "not leased", lease: false, id: "a1", wantErr: ErrNotLeased},
		{name: "unknown", lease: true, id: "zz", wantErr: ErrNotFound},
		{name: "twice", lease: true, id: "a1", twice: true, wantErr: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			s := openT(t, t.TempDir(), Options{Now: clk.Now})
			mustPut(t, s, Message{ID: "a1", To: "A"})
			mustPut(t, s, Message{ID: "a2", To: "A"})
			if tt.lease {
				leaseIDs(t, s, 1, clk.Now())
			}
			err := s.Ack(ctx, tt.id, "sent")
			if tt.twice {
				err = s.Ack(ctx, tt.id, "sent")
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Ack = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil && !tt.twice {
				return
			}
			if s.Depth() != 1 {
				t.Errorf("Depth = %d, want 1", s.Depth())
			}
			out, at, ok, err := s.Outcome("a1")
			if err != nil || !ok || out != "sent" || !at.Equal(clk.Now()) {
				t.Errorf("Outcome = %q %v %v %v", out, at, ok, err)
			}
			if got := leaseIDs(t, s, 5, clk.Now()); !slices.Equal(got, []string{"a2"}) {
				t.Errorf("next Lease = %v, want [a2]", got)
			}
		})
	}
}

func TestStore_Retry(t *testing.T) {
	clk := newClock()
	s := openT(t, t.TempDir(), Options{Now: clk.Now})
	now := clk.Now()
	mustPut(t, s, Message{ID: "a1", To: "A"})
	mustPut(t, s, Message{ID: "a2", To: "A"})
	mustPut(t, s, Message{ID: "b1", To: "B"})
	if err := s.Retry(ctx, "a1", now, "x"); !errors.Is(err, ErrNotLeased) {
		t.Fatalf("Retry unleased = %v, want ErrNotLeased", err)
	}
	if err := s.Retry(ctx, "nope", now, "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Retry unknown = %v, want ErrNotFound", err)
	}
	leaseIDs(t, s, 1, now) // a1
	if err := s.MarkSending(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Retry(ctx, "a1", now.Add(time.Minute), "signal-cli down"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(ctx, "a1", "sent"); !errors.Is(err, ErrNotLeased) {
		t.Errorf("Ack after Retry = %v, want ErrNotLeased", err)
	}
	steps := []struct {
		at   time.Duration
		want []string
	}{
		{0, []string{"b1"}},           // a1 waits; a2 must not overtake it
		{59 * time.Second, nil},       // still waiting
		{time.Minute, []string{"a1"}}, // due again
	}
	for _, st := range steps {
		ms, err := s.Lease(ctx, 5, now.Add(st.at))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range ms {
			got = append(got, m.ID)
			if m.ID == "a1" && (m.Attempts != 1 || m.LastError != "signal-cli down" || m.SendStarted || !m.NextAttempt.Equal(now.Add(time.Minute))) {
				t.Errorf("retried message %+v", m)
			}
		}
		if !slices.Equal(got, st.want) {
			t.Errorf("Lease at +%v = %v, want %v", st.at, got, st.want)
		}
	}
	// A Retry into the past is due at once.
	if err := s.Retry(ctx, "a1", now, "again"); err != nil {
		t.Fatal(err)
	}
	if got := leaseIDs(t, s, 5, now.Add(time.Minute)); !slices.Equal(got, []string{"a1"}) {
		t.Errorf("after Retry into the past: %v, want [a1]", got)
	}
}

func TestStore_MarkSending(t *testing.T) {
	tests := []struct {
		name    string
		lease   bool
		id      string
		wantErr error
	}{
		{"leased", true, "a1", nil},
		{"not leased", false, "a1", ErrNotLeased},
		{"unknown", true, "zz", ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			s := openT(t, t.TempDir(), Options{Now: clk.Now, LeaseTimeout: time.Minute})
			mustPut(t, s, Message{ID: "a1", To: "A"})
			if tt.lease {
				leaseIDs(t, s, 1, clk.Now())
			}
			if err := s.MarkSending(ctx, tt.id); !errors.Is(err, tt.wantErr) {
				t.Fatalf("MarkSending = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				return
			}
			// The lease times out: the message comes back marked.
			ms, _ := s.Lease(ctx, 1, clk.Now().Add(time.Minute))
			if len(ms) != 1 || !ms[0].SendStarted {
				t.Fatalf("after lease timeout: %+v, want a1 with SendStarted", ms)
			}
		})
	}
}

// Recovery: leases from before a crash (here: a reopen without Ack) are due
// again, and a started send comes back with SendStarted.
func TestStore_RecoveryOnOpen(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	s := openT(t, dir, Options{Now: clk.Now})
	for _, id := range []string{"a1", "b1", "c1", "a2"} {
		mustPut(t, s, Message{ID: id, To: id[:1]})
	}
	leaseIDs(t, s, 3, clk.Now())
	if err := s.MarkSending(ctx, "b1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(ctx, "c1", "sent"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, Options{Now: clk.Now})
	if s.Depth() != 3 {
		t.Errorf("Depth after reopen = %d, want 3", s.Depth())
	}
	ms, err := s.Lease(ctx, 10, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, m := range ms {
		got[m.ID] = m.SendStarted
	}
	want := map[string]bool{"a1": false, "b1": true}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Lease after reopen = %v, want %v", got, want)
	}
}

func TestStore_Expire(t *testing.T) {
	clk := newClock()
	s := openT(t, t.TempDir(), Options{Now: clk.Now})
	now := clk.Now()
	mustPut(t, s, Message{ID: "a1", To: "A", ExpiresAt: now.Add(time.Hour)})     // head, expires
	mustPut(t, s, Message{ID: "a2", To: "A", ExpiresAt: now.Add(3 * time.Hour)}) // becomes head
	mustPut(t, s, Message{ID: "b1", To: "B", ExpiresAt: now.Add(time.Hour)})     // leased: left alone
	mustPut(t, s, Message{ID: "c1", To: "C", ExpiresAt: now.Add(2 * time.Hour)})
	mustPut(t, s, Message{ID: "c2", To: "C", ExpiresAt: now.Add(time.Hour)}) // not head, expires
	mustPut(t, s, Message{ID: "d1", To: "D"})                                // never expires
	ms, _ := s.Lease(ctx, 2, now)                                            // a1, b1
	if len(ms) != 2 || ms[1].ID != "b1" {
		t.Fatalf("setup lease: %+v", ms)
	}
	if err := s.Retry(ctx, "a1", time.Time{}, "undo"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		at   time.Duration
		want []string
	}{
		{59 * time.Minute, nil},
		{time.Hour, []string{"a1", "c2"}},
		{time.Hour, nil},                       // exactly once
		{24 * time.Hour, []string{"c1", "a2"}}, // expiry order
	}
	for _, tt := range tests {
		exp, err := s.Expire(ctx, now.Add(tt.at), nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range exp {
			got = append(got, m.ID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Expire(+%v) = %v, want %v", tt.at, got, tt.want)
		}
	}
	if out, _, ok, _ := s.Outcome("a1"); !ok || out != OutcomeExpired {
		t.Errorf("Outcome(a1) = %q %v, want expired", out, ok)
	}
	if got := eachIDs(t, s); !slices.Equal(got, []string{"b1", "d1"}) {
		t.Errorf("left %v, want [b1 d1]", got)
	}
	// b1's lease ends: now it expires.
	if err := s.Retry(ctx, "b1", time.Time{}, "x"); err != nil {
		t.Fatal(err)
	}
	exp, _ := s.Expire(ctx, now.Add(24*time.Hour), nil)
	if len(exp) != 1 || exp[0].ID != "b1" {
		t.Errorf("Expire after lease ended = %+v, want b1", exp)
	}
	if got := leaseIDs(t, s, 5, now.Add(24*time.Hour)); !slices.Equal(got, []string{"d1"}) {
		t.Errorf("Lease = %v, want [d1]", got)
	}
}

func TestStore_ExpireMany(t *testing.T) {
	clk := newClock()
	s := openT(t, t.TempDir(), Options{Now: clk.Now})
	parallel(t, 600, 16, func(i int) error { // more than one internal chunk
		_, err := s.Put(ctx, Message{ID: fmt.Sprint(i), To: fmt.Sprint(i % 7), ExpiresAt: clk.Now().Add(time.Duration(i) * time.Second)})
		return err
	})
	exp, err := s.Expire(ctx, clk.Now().Add(time.Hour), nil)
	if err != nil || len(exp) != 600 || s.Depth() != 0 {
		t.Fatalf("Expire: %d, %v, depth %d", len(exp), err, s.Depth())
	}
	for i, m := range exp {
		if m.ID != fmt.Sprint(i) {
			t.Fatalf("expired out of order at %d: %s", i, m.ID)
		}
	}
}

func TestStore_DedupWindow(t *testing.T) {
	clk := newClock()
	s := openT(t, t.TempDir(), Options{Now: clk.Now, DedupWindow: time.Hour})
	mustPut(t, s, Message{ID: "a", To: "A"})
	leaseIDs(t, s, 1, clk.Now())
	if err := s.Ack(ctx, "a", "delivered"); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		advance time.Duration
		want    PutResult
	}{
		{0, Duplicate},
		{59 * time.Minute, Duplicate},
		{time.Minute, Accepted}, // window over
		{0, Duplicate},          // queued again
	}
	for i, st := range steps {
		clk.Add(st.advance)
		got, err := s.Put(ctx, Message{ID: "a", To: "A"})
		if err != nil || got != st.want {
			t.Errorf("step %d: Put = %v, %v; want %v", i, got, err, st.want)
		}
	}
}

func TestStore_Outcome(t *testing.T) {
	clk := newClock()
	s := openT(t, t.TempDir(), Options{Now: clk.Now, DedupWindow: time.Hour})
	acc := clk.Now().Add(-time.Minute)
	mustPut(t, s, Message{ID: "q", To: "A", AcceptedAt: acc})
	mustPut(t, s, Message{ID: "d", To: "B"})
	leaseIDs(t, s, 5, clk.Now())
	if err := s.Ack(ctx, "d", "delivered"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id      string
		advance time.Duration
		out     string
		at      time.Time
		ok      bool
	}{
		{"q", 0, OutcomeQueued, acc, true},
		{"d", 0, "delivered", clk.Now(), true},
		{"nope", 0, "", time.Time{}, false},
		{"d", time.Hour, "", time.Time{}, false},
	}
	for _, tt := range tests {
		clk.Add(tt.advance)
		out, at, ok, err := s.Outcome(tt.id)
		if err != nil || out != tt.out || !at.Equal(tt.at) || ok != tt.ok {
			t.Errorf("Outcome(%s) = %q %v %v %v; want %q %v %v", tt.id, out, at, ok, err, tt.out, tt.at, tt.ok)
		}
	}
}

func TestStore_DepthOldestAge(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	s := openT(t, dir, Options{Now: clk.Now})
	t0 := clk.Now()
	if s.Depth() != 0 || s.OldestAge(t0) != 0 {
		t.Fatalf("empty: %d %v", s.Depth(), s.OldestAge(t0))
	}
	mustPut(t, s, Message{ID: "a", To: "A"})
	clk.Add(time.Minute)
	mustPut(t, s, Message{ID: "b", To: "B"})
	now := t0.Add(time.Hour)
	if s.Depth() != 2 || s.OldestAge(now) != time.Hour {
		t.Errorf("got %d %v, want 2 1h", s.Depth(), s.OldestAge(now))
	}
	leaseIDs(t, s, 1, now)
	if err := s.Ack(ctx, "a", "sent"); err != nil {
		t.Fatal(err)
	}
	if s.Depth() != 1 || s.OldestAge(now) != 59*time.Minute {
		t.Errorf("after Ack: %d %v, want 1 59m", s.Depth(), s.OldestAge(now))
	}
	_ = s.Close()
	s = openT(t, dir, Options{Now: clk.Now})
	if s.Depth() != 1 || s.OldestAge(now) != 59*time.Minute {
		t.Errorf("after reopen: %d %v, want 1 59m", s.Depth(), s.OldestAge(now))
	}
}

func TestStore_Each(t *testing.T) {
	clk := newClock()
	s := openT(t, t.TempDir(), Options{Now: clk.Now})
	for _, id := range []string{"c", "a", "b", "d"} {
		mustPut(t, s, Message{ID: id, To: id})
	}
	leaseIDs(t, s, 1, clk.Now()) // c
	if err := s.Ack(ctx, "c", "sent"); err != nil {
		t.Fatal(err)
	}
	leaseIDs(t, s, 1, clk.Now()) // a
	var ids []string
	var deadline time.Time
	_ = s.Each(func(m Message) bool {
		ids = append(ids, m.ID)
		if m.ID == "a" {
			deadline = m.LeaseDeadline
		}
		return len(ids) < 2
	})
	if !slices.Equal(ids, []string{"a", "b"}) || deadline.IsZero() {
		t.Errorf("Each = %v (deadline %v), want [a b] with a's deadline", ids, deadline)
	}
}

func TestStore_ClosedErrors(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checks := map[string]error{
		"Close":       s.Close(),
		"Ack":         s.Ack(ctx, "a", "x"),
		"Retry":       s.Retry(ctx, "a", time.Time{}, ""),
		"MarkSending": s.MarkSending(ctx, "a"),
		"Each":        s.Each(func(Message) bool { return true }),
		"KV.Set":      s.KV("n").Set(ctx, "k", nil),
		"Journal":     s.Journal().Append(ctx, Entry{}),
	}
	_, checks["Put"] = s.Put(ctx, Message{ID: "a", To: "b"})
	_, checks["Lease"] = s.Lease(ctx, 1, time.Now())
	_, checks["Expire"] = s.Expire(ctx, time.Now(), nil)
	_, _, _, checks["Outcome"] = s.Outcome("a")
	_, checks["Spool.Append"] = s.Spool("s").Append(ctx, nil)
	for name, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func TestStore_ContextCanceled(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	c, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Put(c, Message{ID: "a", To: "b"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Put = %v, want Canceled", err)
	}
	if s.Depth() != 0 {
		t.Errorf("Depth = %d, want 0", s.Depth())
	}
}
