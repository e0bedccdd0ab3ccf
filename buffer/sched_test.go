package buffer

import (
	"fmt"
	"sort"
	"testing"
	"time"
)

// More heads than the in-memory ready set holds (readyCap) and than one
// chunk (readyChunk), across priorities, some not yet due, with a reopen
// in the middle: every message is leased exactly once, in priority then
// acceptance order among those due.
func TestStore_LeaseManyHeads(t *testing.T) {
	if testing.Short() {
		t.Skip("puts 6000 messages")
	}
	clk := newClock()
	dir := t.TempDir()
	s := openT(t, dir, Options{Now: clk.Now})
	t0 := clk.Now()
	const n = 6000
	parallel(t, n, 64, func(i int) error {
		m := Message{ID: fmt.Sprintf("m%05d", i), To: fmt.Sprintf("+49%05d", i), Priority: Priority(i % 3)}
		if i%10 == 0 {
			m.NotBefore = t0.Add(time.Hour) // waits
		}
		_, err := s.Put(ctx, m)
		return err
	})
	type key struct {
		prio Priority
		seq  uint64
	}
	var leased []key
	ids := map[string]bool{}
	sortedPhase := func(name string) {
		t.Helper()
		ok := sort.SliceIsSorted(leased, func(i, j int) bool {
			if leased[i].prio != leased[j].prio {
				return leased[i].prio < leased[j].prio
			}
			return leased[i].seq < leased[j].seq
		})
		if !ok {
			t.Errorf("%s: due messages not leased in priority, then acceptance order", name)
		}
		leased = leased[:0]
	}
	lease := func(s *Store, at time.Time, max int) int {
		got := 0
		for got < max {
			ms, err := s.Lease(ctx, 250, at)
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) == 0 {
				break
			}
			for _, m := range ms {
				if ids[m.ID] {
					t.Fatalf("%s leased twice", m.ID)
				}
				ids[m.ID] = true
				leased = append(leased, key{m.Priority, m.Seq})
			}
			got += len(ms)
			parallel(t, len(ms), 32, func(i int) error { return s.Ack(ctx, ms[i].ID, "sent") })
		}
		return got
	}
	first := lease(s, t0, 2000)
	sortedPhase("before more puts")
	// High-priority heads arriving now overflow the in-memory ready set
	// (readyCap), which must spill back to disk and be read again.
	const extra = readyCap + 1000
	parallel(t, extra, 64, func(i int) error {
		_, err := s.Put(ctx, Message{ID: fmt.Sprintf("x%05d", i), To: fmt.Sprintf("+48%05d", i), Priority: PriorityHigh})
		return err
	})
	first += lease(s, t0, 3000)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, Options{Now: clk.Now})
	due := first + lease(s, t0, n+extra)
	if due != n-n/10+extra {
		t.Errorf("leased %d due messages, want %d", due, n-n/10+extra)
	}
	sortedPhase("after more puts and a reopen")
	if later := lease(s, t0.Add(time.Hour), n); later != n/10 {
		t.Errorf("after NotBefore: leased %d, want %d", later, n/10)
	}
	if s.Depth() != 0 {
		t.Errorf("Depth = %d", s.Depth())
	}
}
