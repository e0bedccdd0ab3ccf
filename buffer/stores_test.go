package buffer

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestJournal_AppendRange(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	s := openT(t, dir, Options{Now: clk.Now})
	t0 := clk.Now()
	j := s.Journal()
	add := func(off time.Duration, id string) {
		t.Helper()
		if err := j.Append(ctx, Entry{At: t0.Add(off), ID: id, To: "+4915112345678", Channel: "signal", Outcome: "sent", Text: "hallo"}); err != nil {
			t.Fatal(err)
		}
	}
	add(2*time.Minute, "c")
	add(0, "a")
	add(time.Minute, "b")
	add(time.Minute, "b2") // same time: append order
	clk.Add(10 * time.Minute)
	if err := j.Append(ctx, Entry{ID: "now"}); err != nil { // zero At = store clock
		t.Fatal(err)
	}
	_ = s.Close()
	s = openT(t, dir, Options{Now: clk.Now})
	j = s.Journal()
	tests := []struct {
		from, to time.Duration
		limit    int
		want     []string
	}{
		{0, time.Hour, 0, []string{"a", "b", "b2", "c", "now"}},
		{time.Minute, 2 * time.Minute, 0, []string{"b", "b2"}}, // to is exclusive
		{-time.Hour, 0, 0, nil},
		{0, time.Hour, 2, []string{"a", "b"}},
	}
	for _, tt := range tests {
		var got []string
		err := j.Range(t0.Add(tt.from), t0.Add(tt.to), func(e Entry) bool {
			got = append(got, e.ID)
			return tt.limit == 0 || len(got) < tt.limit
		})
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("Range(%v,%v) = %v, %v; want %v", tt.from, tt.to, got, err, tt.want)
		}
	}
	var e Entry
	_ = j.Range(t0, t0.Add(time.Second), func(x Entry) bool { e = x; return false })
	if e.To != "+4915112345678" || e.Text != "hallo" || e.Channel != "signal" || !e.At.Equal(t0) {
		t.Errorf("entry fields: %+v", e)
	}
}

func TestJournal_Prune(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	s := openT(t, dir, Options{Now: clk.Now})
	t0 := clk.Now()
	parallel(t, 2500, 32, func(i int) error {
		return s.Journal().Append(ctx, Entry{At: t0.Add(time.Duration(i) * time.Second), ID: fmt.Sprint(i)})
	})
	tests := []struct {
		before time.Duration
		want   int
	}{
		{0, 0},
		{10 * time.Second, 10},
		{10 * time.Second, 0},
		{2100 * time.Second, 2090}, // more than one internal chunk
	}
	for _, tt := range tests {
		n, err := s.Journal().Prune(t0.Add(tt.before))
		if err != nil || n != tt.want {
			t.Errorf("Prune(%v) = %d, %v; want %d", tt.before, n, err, tt.want)
		}
	}
	_ = s.Close()
	s = openT(t, dir, Options{Now: clk.Now})
	var first string
	count := 0
	_ = s.Journal().Range(t0.Add(-time.Hour), t0.Add(time.Hour), func(e Entry) bool {
		if count == 0 {
			first = e.ID
		}
		count++
		return true
	})
	if first != "2100" || count != 400 {
		t.Errorf("after prune+reopen: first %q count %d, want 2100 400", first, count)
	}
	// An entry older than the prune cursor is still found.
	if err := s.Journal().Append(ctx, Entry{At: t0, ID: "late"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	_ = s.Journal().Range(t0, t0.Add(time.Second), func(e Entry) bool { got = append(got, e.ID); return true })
	if !slices.Equal(got, []string{"late"}) {
		t.Errorf("late entry: %v", got)
	}
}

func TestKV_Ops(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	c := s.KV("consent")
	other := s.KV("consent2")
	for k, v := range map[string]string{"+491": "opt_in", "+492": "opt_out", "+481": "opt_in"} {
		if err := c.Set(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.Set(ctx, "+493", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "+481"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "missing"); err != nil {
		t.Errorf("Delete missing = %v", err)
	}
	_ = s.Close()
	s = openT(t, dir, Options{})
	c = s.KV("consent")
	tests := []struct {
		key   string
		want  string
		found bool
	}{
		{"+491", "opt_in", true},
		{"+492", "opt_out", true},
		{"+481", "", false},
		{"+493", "", false}, // other namespace
	}
	for _, tt := range tests {
		v, found, err := c.Get(tt.key)
		if err != nil || found != tt.found || string(v) != tt.want {
			t.Errorf("Get(%s) = %q %v %v", tt.key, v, found, err)
		}
	}
	var keys []string
	_ = c.Each("+49", func(k string, v []byte) bool { keys = append(keys, k+"="+string(v)); return true })
	if !slices.Equal(keys, []string{"+491=opt_in", "+492=opt_out"}) {
		t.Errorf("Each = %v", keys)
	}
	keys = nil
	_ = c.Each("", func(k string, v []byte) bool { keys = append(keys, k); return false })
	if !slices.Equal(keys, []string{"+491"}) {
		t.Errorf("Each stop = %v", keys)
	}
}

func TestSpool_Ops(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	sp := s.Spool("events")
	for i := range 5 {
		seq, err := sp.Append(ctx, []byte(fmt.Sprint("e", i)))
		if err != nil || seq != uint64(i+1) {
			t.Fatalf("Append = %d, %v", seq, err)
		}
	}
	if _, err := s.Spool("other").Append(ctx, []byte("o")); err != nil {
		t.Fatal(err)
	}
	if err := sp.Remove(ctx, 2); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	s = openT(t, dir, Options{})
	sp = s.Spool("events")
	if sp.Len() != 3 {
		t.Errorf("Len = %d, want 3", sp.Len())
	}
	items, err := sp.Peek(2)
	if err != nil || len(items) != 2 || items[0].Seq != 3 || string(items[0].Data) != "e2" || items[1].Seq != 4 {
		t.Errorf("Peek = %+v, %v", items, err)
	}
	seq, _ := sp.Append(ctx, []byte("e5"))
	if seq != 6 {
		t.Errorf("Append after reopen: seq %d, want 6", seq)
	}
	if err := sp.Remove(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if items, _ := sp.Peek(10); sp.Len() != 0 || len(items) != 0 {
		t.Errorf("after Remove all: Len %d Peek %v", sp.Len(), items)
	}
	if o := s.Spool("other"); o.Len() != 1 {
		t.Errorf("other spool Len = %d", o.Len())
	}
}

// PeekAfter reads past what a reader already holds, never before the head.
func TestSpool_PeekAfter(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	sp := s.Spool("e")
	for i := range 10 {
		if _, err := sp.Append(ctx, []byte{byte('a' + i)}); err != nil {
			t.Fatal(err)
		}
	}
	seqs := func(after uint64, n int) (got []uint64) {
		t.Helper()
		items, err := sp.PeekAfter(after, n)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if want := byte('a' + it.Seq - 1); len(it.Data) != 1 || it.Data[0] != want {
				t.Errorf("item %d holds %q, want %q", it.Seq, it.Data, want)
			}
			got = append(got, it.Seq)
		}
		return got
	}
	if got := seqs(0, 3); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Errorf("PeekAfter(0, 3) = %v", got)
	}
	if got := seqs(3, 3); !slices.Equal(got, []uint64{4, 5, 6}) {
		t.Errorf("PeekAfter(3, 3) = %v", got)
	}
	if got := seqs(8, 5); !slices.Equal(got, []uint64{9, 10}) {
		t.Errorf("PeekAfter(8, 5) = %v", got)
	}
	if got := seqs(10, 5); len(got) != 0 {
		t.Errorf("PeekAfter(10, 5) = %v, want nothing", got)
	}
	if err := sp.Remove(ctx, 5); err != nil {
		t.Fatal(err)
	}
	if got := seqs(2, 2); !slices.Equal(got, []uint64{6, 7}) {
		t.Errorf("PeekAfter(2, 2) after Remove(5) = %v, want the head on", got)
	}
}

func TestSpool_RemoveMany(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	sp := s.Spool("e")
	parallel(t, 2500, 32, func(i int) error {
		_, err := sp.Append(ctx, []byte{byte(i)})
		return err
	})
	if err := sp.Remove(ctx, 2400); err != nil {
		t.Fatal(err)
	}
	items, _ := sp.Peek(1)
	if sp.Len() != 100 || len(items) != 1 || items[0].Seq != 2401 {
		t.Errorf("Len %d Peek %+v", sp.Len(), items)
	}
}
