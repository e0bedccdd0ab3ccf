package buffer

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Badger maps every table file (MAP_SHARED) and never unmaps pages it has
// read, so compaction and reads leave the whole database resident in the
// process: on a 1M-job database that was ~600 MB of RSS, all of it clean
// page cache. The trimmer periodically asks the kernel to page out the
// table mappings (MADV_PAGEOUT, Linux 5.4+). It is non-destructive: a later
// access faults the page back in, and if an address were meanwhile reused
// by another mapping the advice is only a reclaim hint, never a discard.
// Memtable (.mem) and value log (.vlog) mappings are left alone.

const madvPageout = 21 // MADV_PAGEOUT

func (s *Store) trimmer(interval time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := s.trimTables(); err != nil {
				s.log.Debug("trimming table mappings failed; trimmer stopped", "err", err)
				return
			}
		}
	}
}

// trimTables pages out this store's .sst mappings.
func (s *Store) trimTables() error {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return err
	}
	defer f.Close()
	prefix := s.absDirOrDir() + "/"
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		i := strings.IndexByte(line, '/')
		if i < 0 {
			continue
		}
		path := line[i:]
		if !strings.HasPrefix(path, prefix) || !strings.HasSuffix(path, ".sst") {
			continue
		}
		rng, _, _ := strings.Cut(line, " ")
		lo, hi, ok := strings.Cut(rng, "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		_, _, errno := syscall.Syscall(syscall.SYS_MADVISE, uintptr(start), uintptr(end-start), madvPageout)
		if errno == syscall.EINVAL || errno == syscall.ENOSYS {
			return errno // kernel without MADV_PAGEOUT
		}
		// ENOMEM: unmapped meanwhile (table deleted by compaction); fine.
	}
	return sc.Err()
}

// absDirOrDir is the absolute database directory.
func (s *Store) absDirOrDir() string {
	if s.absDir != "" {
		return s.absDir
	}
	if abs, err := filepath.Abs(s.dir); err == nil {
		return abs
	}
	return s.dir
}
