package buffer

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Badger maps its files (MAP_SHARED) and never unmaps pages it has touched:
// tables (.sst) are written through their mapping and read through it by
// compaction and lookups, the memtable WAL (.mem) and value log (.vlog) are
// appended through theirs. Every such page stays in the process's RSS until
// the file is deleted: on a 1M-job database that was ~600 MB, all of it
// page cache. The trimmer asks the kernel to page these mappings out
// (MADV_PAGEOUT, Linux 5.4+). It is non-destructive: a clean page is
// dropped and faulted back in on the next access (from the page cache or
// the disk); a dirty one (a WAL page between an append and its msync) is
// left alone, because reclaim outside kswapd does not write file pages, so
// nothing changes for durability: Badger's msync still writes it. If an address were meanwhile reused
// by another mapping the advice is only a reclaim hint, never a discard.
//
// One compaction can read and write tens of MB of tables in a fraction of
// a second, so a fixed period alone lets RSS spike between two passes. The
// trimmer therefore polls the process's file-backed resident size
// (/proc/self/statm, a few µs) every trimPoll and trims as soon as it has
// grown by trimSlack since the last pass, and at least every TrimInterval.

const (
	madvPageout = 21 // MADV_PAGEOUT

	trimPoll  = 20 * time.Millisecond
	trimSlack = 2 << 20 // bytes of file-backed RSS growth that trigger a pass
	trimChunk = 4 << 20 // bytes per madvise call
)

// trimmedSuffixes are the Badger files whose mappings are paged out.
var trimmedSuffixes = []string{".sst", ".mem", ".vlog"}

func (s *Store) trimmer(interval time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	poll := min(trimPoll, interval)
	t := time.NewTicker(poll)
	defer t.Stop()
	statm, err := os.Open("/proc/self/statm")
	if err == nil {
		defer statm.Close()
	}
	buf := make([]byte, 128)
	shared := func() int64 { // file-backed resident pages; -1 unknown
		if err != nil {
			return -1
		}
		n, rerr := statm.ReadAt(buf, 0)
		if n == 0 && rerr != nil {
			return -1
		}
		return statmShared(buf[:n])
	}
	tr := trigger{slack: trimSlack / int64(os.Getpagesize()), interval: interval, base: -1}
	var mapsBuf bytes.Buffer
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			if !tr.due(now, shared()) {
				continue
			}
			if err := s.trimMappings(&mapsBuf); err != nil {
				s.log.Debug("trimming Badger's file mappings failed; trimmer stopped", "err", err)
				return
			}
			tr.done(now, shared())
		}
	}
}

// trigger decides when the trimmer runs a pass: when the file-backed
// resident pages grew by slack since the last pass, or interval passed.
type trigger struct {
	slack    int64 // pages
	interval time.Duration
	base     int64 // file-backed resident pages after the last pass; -1 unknown
	last     time.Time
}

// due reports whether a pass should run now; shared < 0 means unknown.
func (tr *trigger) due(now time.Time, shared int64) bool {
	if tr.last.IsZero() || now.Sub(tr.last) >= tr.interval {
		return true
	}
	return shared >= 0 && tr.base >= 0 && shared-tr.base >= tr.slack
}

// done records a pass that ended at now with shared resident pages.
func (tr *trigger) done(now time.Time, shared int64) {
	tr.last, tr.base = now, shared
}

// statmShared is the third field of /proc/self/statm: resident pages backed
// by files (RssFile + RssShmem). -1 when unreadable.
func statmShared(b []byte) int64 {
	f := bytes.Fields(b)
	if len(f) < 3 {
		return -1
	}
	n, err := strconv.ParseInt(string(f[2]), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// trimMappings pages out this store's .sst, .mem and .vlog mappings; buf
// (may be nil) is reused for reading /proc/self/maps.
//
// The kernel lays Badger's mappings out next to each other, so adjacent ones
// are advised in one call (a fifth of the calls at 200k jobs). The calls are
// raw, in chunks of trimChunk: with a normal syscall the runtime hands this
// goroutine's P to others while it is in the kernel, and on a busy process
// every return then waited behind the run queue, stretching one pass over
// hundreds of mappings to 0.5 s, while a compaction filled the tables back
// in. A raw madvise of a few MB of clean pages holds the P for well under a
// millisecond.
func (s *Store) trimMappings(buf *bytes.Buffer) error {
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	maps, err := os.Open("/proc/self/maps")
	if err != nil {
		return err
	}
	buf.Reset()
	_, err = buf.ReadFrom(maps)
	maps.Close()
	if err != nil {
		return err
	}
	b := buf.Bytes()
	prefix := s.absDir + "/"
	var runs [][2]uintptr
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		start, end, ok := trimmable(string(line), prefix)
		if !ok {
			continue
		}
		if n := len(runs); n > 0 && runs[n-1][1] == start {
			runs[n-1][1] = end
			continue
		}
		runs = append(runs, [2]uintptr{start, end})
	}
	for _, r := range runs {
		for a := r[0]; a < r[1]; a += trimChunk {
			n := min(r[1]-a, trimChunk)
			_, _, errno := syscall.RawSyscall(syscall.SYS_MADVISE, a, n, madvPageout)
			if errno == syscall.EINVAL || errno == syscall.ENOSYS {
				return errno // kernel without MADV_PAGEOUT
			}
			// ENOMEM: unmapped meanwhile (table deleted by compaction); fine.
		}
	}
	return nil
}

// trimmable parses one line of /proc/self/maps and says whether it maps one
// of Badger's files under prefix (also one deleted but still mapped), and
// where.
func trimmable(line, prefix string) (start, end uintptr, ok bool) {
	i := strings.IndexByte(line, '/')
	if i < 0 {
		return 0, 0, false
	}
	path := strings.TrimSuffix(line[i:], " (deleted)")
	if !strings.HasPrefix(path, prefix) || strings.Contains(path[len(prefix):], "/") {
		return 0, 0, false
	}
	known := false
	for _, suf := range trimmedSuffixes {
		if strings.HasSuffix(path, suf) {
			known = true
			break
		}
	}
	if !known {
		return 0, 0, false
	}
	rng, _, _ := strings.Cut(line, " ")
	lo, hi, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	a, err1 := strconv.ParseUint(lo, 16, 64)
	b, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil || b <= a {
		return 0, 0, false
	}
	return uintptr(a), uintptr(b), true
}
