package buffer

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mappedRSS sums the resident kB of this process's mappings of files in dir
// whose names end in suffix.
func mappedRSS(t *testing.T, dir, suffix string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skipf("no smaps: %v", err)
	}
	var total int64
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			in = len(f) >= 6 && strings.HasPrefix(f[5], dir+"/") && strings.HasSuffix(f[5], suffix)
			continue
		}
		if in && len(f) >= 2 && f[0] == "Rss:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			total += n
		}
	}
	return total
}

func sstRSS(t *testing.T, dir string) int64 { return mappedRSS(t, dir, ".sst") }

func TestStore_TrimTables(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{TrimInterval: -1})
	payload := make([]byte, 900)
	parallel(t, 3000, 32, func(i int) error {
		_, err := s.Put(ctx, Message{ID: fmt.Sprint(i), To: fmt.Sprint(i % 50), Payload: payload})
		return err
	})
	if err := s.Close(); err != nil { // flushes the memtable into tables
		t.Fatal(err)
	}
	s = openT(t, dir, Options{TrimInterval: -1})
	if n := len(eachIDs(t, s)); n != 3000 { // reads every table
		t.Fatalf("Each saw %d", n)
	}
	abs := s.absDir
	before := sstRSS(t, abs)
	if before == 0 {
		t.Fatal("no resident table pages after reading every record")
	}
	wantTrimmed(t, s, "table", before, func() int64 { return sstRSS(t, abs) })
	// Still readable after the page-out.
	if n := len(eachIDs(t, s)); n != 3000 {
		t.Errorf("Each after trim saw %d", n)
	}
}

// wantTrimmed runs one trim pass and wants most of what rss measures (kB;
// before is its value before the pass) paged out. It skips where the kernel
// lacks MADV_PAGEOUT or ignores it.
func wantTrimmed(t *testing.T, s *Store, what string, before int64, rss func() int64) {
	t.Helper()
	if err := s.trimMappings(nil); errors.Is(err, syscall.EINVAL) {
		t.Skip("kernel without MADV_PAGEOUT")
	} else if err != nil {
		t.Fatal(err)
	}
	after := rss()
	if after >= before/2 && !pageoutWorks(t) {
		t.Skip("MADV_PAGEOUT is ignored here (qemu-user does not pass it to the host)")
	}
	if after >= before/2 {
		t.Errorf("%s RSS %d kB before trim, %d kB after; want it mostly paged out", what, before, after)
	}
}

// The memtable WAL (.mem) is written through its mapping and synced by
// every commit; paging it out must neither lose an acknowledged Put nor
// break the next append into a page that was paged out.
func TestStore_TrimWAL(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{TrimInterval: -1})
	payload := make([]byte, 700)
	put := func(from, to int) {
		parallel(t, to-from, 16, func(i int) error {
			_, err := s.Put(ctx, Message{ID: fmt.Sprint(from + i), To: fmt.Sprint(i % 20), Payload: payload})
			return err
		})
	}
	put(0, 1500) // ~1.5 MB of WAL: below the 4 MB memtable, no flush yet
	abs := s.absDir
	before := mappedRSS(t, abs, ".mem")
	if before == 0 {
		t.Fatal("no resident WAL pages after 1500 Puts")
	}
	wantTrimmed(t, s, "WAL", before, func() int64 { return mappedRSS(t, abs, ".mem") })
	put(1500, 2000) // appends continue in the paged-out tail page
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, Options{TrimInterval: -1})
	if n := len(eachIDs(t, s)); n != 2000 {
		t.Errorf("after trim and reopen Each saw %d, want 2000", n)
	}
}

// The trimmer pages out as soon as the mappings grow by trimSlack, long
// before TrimInterval.
func TestStore_TrimmerReactsToGrowth(t *testing.T) {
	if !pageoutWorks(t) {
		t.Skip("MADV_PAGEOUT does not work here")
	}
	dir := t.TempDir()
	s := openT(t, dir, Options{TrimInterval: time.Hour})
	abs := s.absDir
	payload := make([]byte, 700)
	parallel(t, 8000, 16, func(i int) error { // ~8 MB: WAL and flushed tables
		_, err := s.Put(ctx, Message{ID: fmt.Sprint(i), To: fmt.Sprint(i % 20), Payload: payload})
		return err
	})
	// Without the trimmer all of it stays resident (WAL and tables are
	// written through their mappings); with it, at most the slack plus
	// what the last commits added.
	const want = 2 * trimSlack >> 10
	var got int64
	if !eventually(20*time.Second, func() bool {
		got = mappedRSS(t, abs, ".mem") + mappedRSS(t, abs, ".sst")
		return got < want
	}) {
		t.Fatalf("Badger mappings still hold %d kB after 20 s; want < %d kB (TrimInterval is 1h, growth must trigger)", got, want)
	}
}

func TestTrigger_Due(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	const slack = 512 // pages
	tests := []struct {
		name   string
		last   time.Time
		base   int64
		now    time.Time
		shared int64
		want   bool
	}{
		{"first pass", time.Time{}, -1, t0, 100, true},
		{"interval passed", t0, 1000, t0.Add(time.Second), 1000, true},
		{"no growth", t0, 1000, t0.Add(100 * time.Millisecond), 1000, false},
		{"growth below slack", t0, 1000, t0.Add(100 * time.Millisecond), 1000 + slack - 1, false},
		{"growth at slack", t0, 1000, t0.Add(100 * time.Millisecond), 1000 + slack, true},
		{"shrunk", t0, 1000, t0.Add(100 * time.Millisecond), 10, false},
		{"statm unreadable now", t0, 1000, t0.Add(100 * time.Millisecond), -1, false},
		{"statm unreadable at last pass", t0, -1, t0.Add(100 * time.Millisecond), 5000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := trigger{slack: slack, interval: time.Second, base: tt.base, last: tt.last}
			if got := tr.due(tt.now, tt.shared); got != tt.want {
				t.Errorf("due = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStatmShared(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"1052305 19868 4152 1028 0 48932 0\n", 4152},
		{"1 2 3", 3},
		{"1 2", -1},
		{"", -1},
		{"1 2 x 4", -1},
	}
	for _, tt := range tests {
		if got := statmShared([]byte(tt.in)); got != tt.want {
			t.Errorf("statmShared(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestTrimmable(t *testing.T) {
	const p = "/var/lib/relay/outbox/"
	tests := []struct {
		line       string
		start, end uintptr
		ok         bool
	}{
		{"7effb5727000-7effb581b000 rw-s 00000000 fe:00 9998821                    /var/lib/relay/outbox/001394.sst", 0x7effb5727000, 0x7effb581b000, true},
		{"7effaf000000-7effaf800000 rw-s 00000000 fe:00 9994698                    /var/lib/relay/outbox/00004.mem", 0x7effaf000000, 0x7effaf800000, true},
		{"7f0000000000-7f0002000000 rw-s 00000000 fe:00 12                         /var/lib/relay/outbox/000001.vlog", 0x7f0000000000, 0x7f0002000000, true},
		{"7f0000000000-7f0000100000 rw-s 00000000 fe:00 12                         /var/lib/relay/outbox/000007.sst (deleted)", 0x7f0000000000, 0x7f0000100000, true},
		{"7f0000000000-7f0000100000 rw-s 00000000 fe:00 12                         /var/lib/relay/outbox/DISCARD", 0, 0, false},
		{"7f0000000000-7f0000100000 rw-s 00000000 fe:00 12                         /var/lib/relay/outbox2/000001.sst", 0, 0, false},
		{"7f0000000000-7f0000100000 rw-s 00000000 fe:00 12                         /var/lib/relay/outbox/sub/000001.sst", 0, 0, false},
		{"7f0000000000-7f0000100000 r--p 00000000 fe:00 12                         /usr/lib/x.sst", 0, 0, false},
		{"c000000000-c004000000 rw-p 00000000 00:00 0 ", 0, 0, false},
		{"7ffd1000-7ffd2000 rw-p 00000000 00:00 0                          [stack]", 0, 0, false},
		{"7f0000100000-7f0000000000 rw-s 00000000 fe:00 12 /var/lib/relay/outbox/000001.sst", 0, 0, false},
		{"zz-7f0000000000 rw-s 00000000 fe:00 12 /var/lib/relay/outbox/000001.sst", 0, 0, false},
		{"7f0000000000 rw-s 00000000 fe:00 12 /var/lib/relay/outbox/000001.sst", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		start, end, ok := trimmable(tt.line, p)
		if start != tt.start || end != tt.end || ok != tt.ok {
			t.Errorf("trimmable(%q) = %#x, %#x, %v; want %#x, %#x, %v", tt.line, start, end, ok, tt.start, tt.end, tt.ok)
		}
	}
}

func FuzzTrimmable(f *testing.F) {
	const p = "/data/outbox/"
	f.Add("7effb5727000-7effb581b000 rw-s 00000000 fe:00 9998821 /data/outbox/001394.sst")
	f.Add("7effaf000000-7effaf800000 rw-s 00000000 fe:00 9994698 /data/outbox/00004.mem (deleted)")
	f.Add("c000000000-c004000000 rw-p 00000000 00:00 0 ")
	f.Add("1-0 rw-s 0 0:0 1 /data/outbox/1.vlog")
	f.Fuzz(func(t *testing.T, line string) {
		start, end, ok := trimmable(line, p)
		if !ok {
			if start != 0 || end != 0 {
				t.Fatalf("not ok but range %#x-%#x", start, end)
			}
			return
		}
		if end <= start {
			t.Fatalf("empty or inverted range %#x-%#x", start, end)
		}
		i := strings.IndexByte(line, '/')
		path := strings.TrimSuffix(line[i:], " (deleted)")
		if !strings.HasPrefix(path, p) || strings.Contains(path[len(p):], "/") {
			t.Fatalf("accepted %q outside %s", path, p)
		}
		if !strings.HasSuffix(path, ".sst") && !strings.HasSuffix(path, ".mem") && !strings.HasSuffix(path, ".vlog") {
			t.Fatalf("accepted %q, not a Badger table, WAL or value log", path)
		}
	})
}

// pageoutWorks is the control: page out a mapping of our own file.
func pageoutWorks(t *testing.T) bool {
	dir := t.TempDir()
	f, err := os.Create(dir + "/control.sst")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil { // reclaim skips dirty file pages
		t.Fatal(err)
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, 1<<20, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(b)
	sum := 0
	for i := 0; i < len(b); i += 4096 {
		sum += int(b[i])
	}
	before := sstRSS(t, dir)
	s := &Store{absDir: dir}
	if err := s.trimMappings(nil); err != nil {
		return false
	}
	return sum == 0 && before > 0 && sstRSS(t, dir) < before/2
}
