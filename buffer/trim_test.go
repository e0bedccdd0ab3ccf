package buffer

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// sstRSS sums the resident kB of this process's mappings of .sst files in dir.
func sstRSS(t *testing.T, dir string) int64 {
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
			in = len(f) >= 6 && strings.HasPrefix(f[5], dir+"/") && strings.HasSuffix(f[5], ".sst")
			continue
		}
		if in && len(f) >= 2 && f[0] == "Rss:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			total += n
		}
	}
	return total
}

func TestStore_TrimTables(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{TrimInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
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
	abs := s.absDirOrDir()
	before := sstRSS(t, abs)
	if before == 0 {
		t.Fatal("no resident table pages after reading every record")
	}
	if err := s.trimTables(); errors.Is(err, syscall.EINVAL) {
		t.Skip("kernel without MADV_PAGEOUT")
	} else if err != nil {
		t.Fatal(err)
	}
	after := sstRSS(t, abs)
	if after >= before/2 && !pageoutWorks(t) {
		t.Skip("MADV_PAGEOUT is ignored here (qemu-user does not pass it to the host)")
	}
	if after >= before/2 {
		t.Errorf("table RSS %d kB before trim, %d kB after; want it mostly paged out", before, after)
	}
	// Still readable after the page-out.
	if n := len(eachIDs(t, s)); n != 3000 {
		t.Errorf("Each after trim saw %d", n)
	}
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
	if err := s.trimTables(); err != nil {
		return false
	}
	return sum == 0 && before > 0 && sstRSS(t, dir) < before/2
}
