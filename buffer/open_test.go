package buffer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"go/build"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	badger "github.com/dgraph-io/badger/v4"
)

func TestOpen_ClassifyError(t *testing.T) {
	pathErr := func(op string, errno syscall.Errno) error {
		return &os.PathError{Op: op, Path: "/var/lib/relay/outbox/000001.vlog", Err: errno}
	}
	// yWrap formats like Badger's y.Wrapf (%+v, no %w).
	yWrap := func(err error, msg string) error { return fmt.Errorf("%s err: %+v", msg, err) }
	tests := []struct {
		name string
		err  error
		want openClass
	}{
		// Seen in TestCrash_KillNine before the fix (a WAL Badger was deleting).
		{"zero-length WAL", errors.New("while opening memtables err: while opening fid: 11 err: Create a new file"), openRetry},
		{"zero-length vlog", errors.New(`During db.vlog.open err: Open existing file: "/d/000002.vlog" err: Create a new file`), openRetry},
		{"EIO errno", pathErr("read", syscall.EIO), openRetry},
		{"EIO through y.Wrapf", yWrap(pathErr("read", syscall.EIO), "while opening memtables"), openRetry},
		{"EINTR", pathErr("open", syscall.EINTR), openRetry},

		{"lock held", errors.New(`Cannot acquire directory lock on "/d".  Another process is using this Badger database. err: resource temporarily unavailable`), openFail},
		{"key mismatch", badger.ErrEncryptionKeyMismatch, openFail},
		{"key mismatch wrapped", fmt.Errorf("open: %w", badger.ErrEncryptionKeyMismatch), openFail},
		{"key length", yWrap(badger.ErrInvalidEncryptionKey, "During OpenKeyRegistry"), openFail},
		{"EACCES", pathErr("open", syscall.EACCES), openFail},
		{"EACCES through y.Wrapf", yWrap(pathErr("open", syscall.EACCES), "Error while opening key registry."), openFail},
		{"EPERM", pathErr("open", syscall.EPERM), openFail},
		{"ENOSPC", pathErr("write", syscall.ENOSPC), openFail},
		{"ENOSPC through y.Wrapf", yWrap(pathErr("truncate", syscall.ENOSPC), "while truncating last value log file"), openFail},
		{"EDQUOT", pathErr("write", syscall.EDQUOT), openFail},
		{"EROFS", pathErr("open", syscall.EROFS), openFail},
		{"ENOMEM mmap", errors.New("while mmapping /d/000001.vlog with size: 2147483646 cannot allocate memory"), openFail},
		{"EMFILE", pathErr("open", syscall.EMFILE), openFail},
		{"ENFILE", pathErr("open", syscall.ENFILE), openFail},
		{"ENOENT", yWrap(pathErr("open", syscall.ENOENT), "Open existing file"), openFail},
		{"other errno", pathErr("open", syscall.ENODEV), openFail},
		{"unsupported version", errors.New("manifest has unsupported version: 9 (we support 8).\nPlease see https://..."), openFail},
		{"external magic", errors.New("cannot open DB because the external magic number doesn't match, expected: 0, version present in manifest: 1"), openFail},
		{"options", errors.New("Valuethreshold 1048576 greater than max batch size of 629145. Either reduce opt.ValueThreshold or increase opt.BaseTableSize."), openFail},
		{"unknown", errors.New("something Badger 4.10 says"), openFail},
		{"panic on EACCES", fmt.Errorf("%w: badger panicked while opening: %v", ErrCorrupt, pathErr("open", syscall.EACCES)), openFail},

		{"bad magic", errors.New("manifest has bad magic"), openCorrupt},
		{"manifest checksum (not the tail)", errors.New("manifest has checksum mismatch"), openCorrupt},
		{"manifest length", errors.New("Buffer length: 50 greater than file size: 40. Manifest file might be corrupted"), openCorrupt},
		{"manifest double create", errors.New("MANIFEST invalid, table 7 exists"), openCorrupt},
		{"manifest bad op", errors.New("MANIFEST file has invalid manifestChange op"), openCorrupt},
		{"manifest proto", errors.New("proto: cannot parse invalid wire-format data"), openCorrupt},
		{"missing table", errors.New("file does not exist for table 12"), openCorrupt},
		{"bad table", errors.New(`Opening table: "/d/000003.sst" err: failed to initialize table err: checksum length less than zero. Data corrupted`), openCorrupt},
		{"overlapping tables", errors.New("Level validation err: Levels Controller err: Level 1, j=1 numTables=2"), openCorrupt},
		{"empty key registry", errors.New("Error while reading IV for key registry. err: EOF"), openCorrupt},
		{"key registry sanity", errors.New("Error while reading sanity text. err: EOF"), openCorrupt},
		{"key registry checksum", errors.New("Error while checking checksum for data key. err: checksum mismatch"), openCorrupt},
		{"unknown data key", yWrap(badger.ErrInvalidDataKeyID, "Error for the KEY ID 3"), openCorrupt},
		{"panic", fmt.Errorf("%w: badger panicked while opening: %v", ErrCorrupt, "runtime error: slice bounds out of range [-2135981645:]"), openCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classifyOpenError(tt.err); got != tt.want {
				t.Errorf("classifyOpenError(%q) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// TestOpen_ErrorTextsInBadgerSource checks that every Badger message the
// classification matches still occurs in the pinned Badger (and ristretto)
// source, so an upgrade that rewords one fails here instead of turning a
// recoverable crash into a quarantine or the reverse.
func TestOpen_ErrorTextsInBadgerSource(t *testing.T) {
	// Badger's source directory, from where badger.Open was compiled
	// (relative to the module cache under -trimpath).
	pc := reflect.ValueOf(badger.Open).Pointer()
	file, _ := runtime.FuncForPC(pc).FileLine(pc)
	dir := filepath.Dir(file)
	if !filepath.IsAbs(dir) {
		modcache := os.Getenv("GOMODCACHE")
		if modcache == "" {
			modcache = filepath.Join(build.Default.GOPATH, "pkg", "mod")
		}
		dir = filepath.Join(modcache, dir)
	}
	var src []byte
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			b, rerr := os.ReadFile(p)
			src = append(src, b...)
			return rerr
		}
		return err
	})
	if err != nil || len(src) == 0 {
		t.Skipf("Badger's source is not available at %s (%v)", dir, err)
	}
	notBadger := map[string]bool{
		"proto:":                        true, // protobuf's
		"badger panicked while opening": true, // ours
		"Create a new file":             true, // ristretto's z.NewFile; TestOpen_RetryRecovers gets it from real Badger
	}
	var texts []string
	texts = append(texts, openFailTexts...)
	texts = append(texts, openRetryTexts...)
	texts = append(texts, openCorruptTexts...)
	checked := 0
	for _, s := range texts {
		if notBadger[s] || isErrnoText(s) {
			continue
		}
		checked++
		if !bytes.Contains(src, []byte(s)) {
			t.Errorf("%q is not in Badger's source (%s) any more", s, dir)
		}
	}
	t.Logf("%d texts found in %s", checked, dir)
}

func isErrnoText(s string) bool {
	for e := syscall.Errno(1); e < 200; e++ {
		if e.Error() == s {
			return true
		}
	}
	return false
}

// manifestBytes builds a MANIFEST image: the magic, then one record per
// payload in Badger's framing.
func manifestBytes(payloads ...[]byte) []byte {
	b := []byte{'B', 'd', 'g', 'r', 0, 0, 0, 8}
	for _, p := range payloads {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = binary.BigEndian.AppendUint32(b, crc32.Checksum(p, crcTable))
		b = append(b, p...)
	}
	return b
}

func TestOpen_ManifestTornTail(t *testing.T) {
	rec1, rec2 := []byte("\x0a\x04\x08\x01\x10\x00"), []byte("\x0a\x06\x08\x02\x10\x00\x18\x01")
	good := manifestBytes(rec1, rec2)
	cut1 := int64(len(manifestBytes(rec1)))
	cut2 := int64(len(good))
	withBody := func(b []byte, at int, by byte) []byte {
		c := slices.Clone(b)
		c[at] ^= by
		return c
	}
	tests := []struct {
		name     string
		data     []byte
		wantCut  int64
		wantTorn bool
	}{
		{"intact", good, 0, false},
		{"only magic", good[:8], 0, false},
		{"empty", nil, 0, false},
		{"bad magic", append([]byte("Xdgr\x00\x00\x00\x08"), good[8:]...), 0, false},
		{"header cut short", append(slices.Clone(good), 0, 0, 0), cut2, true},
		{"body cut short", good[:len(good)-3], cut1, true},
		{"length past the file", append(slices.Clone(good), binary.BigEndian.AppendUint32(nil, 1<<20)...)[:len(good)+4+4], cut2, true},
		{"last record checksum", withBody(good, len(good)-1, 0xff), cut1, true},
		{"last record zeroed (power cut)", append(slices.Clone(good[:cut1+8]), make([]byte, len(rec2))...), cut1, true},
		{"zero tail accepted by Badger", append(slices.Clone(good), make([]byte, 64)...), 0, false},
		{"damage in the middle", withBody(good, int(8+8+1), 0xff), 0, false},
		{"length flipped in the middle", withBody(good, 8, 0x40), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cut, torn := manifestTornTail(tt.data)
			if cut != tt.wantCut || torn != tt.wantTorn {
				t.Errorf("manifestTornTail = %d, %v; want %d, %v", cut, torn, tt.wantCut, tt.wantTorn)
			}
		})
	}
}

func TestOpen_RegistryTornTail(t *testing.T) {
	header := bytes.Repeat([]byte{0x11}, 28) // IV + encrypted sanity text
	good := append(slices.Clone(header), manifestBytes([]byte("\x08\x01\x12\x20key-one"), []byte("\x08\x02\x12\x20key-two"))[8:]...)
	last := len(manifestBytes([]byte("\x08\x01\x12\x20key-one"))) - 8 + 28
	tests := []struct {
		name     string
		data     []byte
		wantCut  int64
		wantTorn bool
	}{
		{"intact", good, 0, false},
		{"header only", header, 0, false},
		{"shorter than the header", header[:20], 0, false},
		{"new key cut short", good[:len(good)-4], int64(last), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cut, torn := registryTornTail(tt.data)
			if cut != tt.wantCut || torn != tt.wantTorn {
				t.Errorf("registryTornTail = %d, %v; want %d, %v", cut, torn, tt.wantCut, tt.wantTorn)
			}
		})
	}
}

func FuzzManifestTornTail(f *testing.F) {
	good := manifestBytes([]byte("\x0a\x04\x08\x01\x10\x00"), []byte("\x0a\x06\x08\x02\x10\x00\x18\x01"))
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add(append(slices.Clone(good), 0, 0, 0x10, 0, 1, 2, 3, 4, 5))
	f.Add([]byte("Bdgr"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkTornTail(t, data, 8, manifestTornTail)
		checkTornTail(t, data, 28, registryTornTail)
	})
}

// checkTornTail: a cut lies inside the records, keeps only whole valid
// records, and leaves nothing torn.
func checkTornTail(t *testing.T, data []byte, header int, torn func([]byte) (int64, bool)) {
	t.Helper()
	cut, ok := torn(data)
	if !ok {
		if cut != 0 {
			t.Fatalf("cut %d without a torn tail", cut)
		}
		return
	}
	if cut < int64(header) || cut >= int64(len(data)) {
		t.Fatalf("cut %d outside the records of a %d-byte file", cut, len(data))
	}
	for off := header; off < int(cut); {
		end, ok := manifestRecord(data[:cut], off)
		if !ok {
			t.Fatalf("kept record at %d is not valid", off)
		}
		off = end
	}
	if _, again := torn(data[:cut]); again {
		t.Fatal("the cut file still has a torn tail")
	}
}

// crashImage builds a database that has a table on disk and a MANIFEST
// with records (one Close), plus acknowledged Puts that live only in the
// WAL, and copies its files while the store is still open: what a SIGKILL
// leaves. before is the same copy taken one Put earlier, so the bytes of
// that last Put's commit are the difference.
func crashImage(t *testing.T, opts Options) (before, after string, ids []string, last string) {
	t.Helper()
	live := filepath.Join(t.TempDir(), "live")
	s := openT(t, live, opts)
	for i := range 20 {
		id := fmt.Sprintf("flushed-%02d", i)
		mustPut(t, s, Message{ID: id, To: fmt.Sprintf("+49151000%02d", i%3), Payload: []byte(id)})
		ids = append(ids, id)
	}
	if err := s.Close(); err != nil { // flushes the memtable: a table, MANIFEST records
		t.Fatal(err)
	}
	s = openT(t, live, opts)
	defer s.Close() // not only at the end of the test
	for i := range 20 {
		id := fmt.Sprintf("wal-%02d", i)
		mustPut(t, s, Message{ID: id, To: fmt.Sprintf("+49151000%02d", i%3), Payload: []byte(id)})
		ids = append(ids, id)
	}
	before = filepath.Join(t.TempDir(), "before")
	copyDir(t, live, before)
	last = "wal-last"
	mustPut(t, s, Message{ID: last, To: "+4915100099", Payload: bytes.Repeat([]byte("x"), 300)})
	after = filepath.Join(t.TempDir(), "after")
	copyDir(t, live, after)
	return before, after, ids, last
}

// copyDir copies the regular files of src to dst keeping their sizes,
// writing only their non-zero chunks (the logs are large sparse files).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || e.Name() == "LOCK" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		writeSparse(t, filepath.Join(dst, e.Name()), b)
	}
}

var zeroChunk = make([]byte, 64<<10)

// writeSparse writes b to path, skipping all-zero chunks.
func writeSparse(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for off := 0; off < len(b); off += len(zeroChunk) {
		c := b[off:min(off+len(zeroChunk), len(b))]
		if bytes.Equal(c, zeroChunk[:len(c)]) {
			continue
		}
		if _, err := f.WriteAt(c, int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(int64(len(b))); err != nil {
		t.Fatal(err)
	}
}

// dataEnd is the offset after the last non-zero byte of b.
func dataEnd(b []byte) int {
	end := len(b)
	for end > 0 {
		start := max(end-len(zeroChunk), 0)
		if !bytes.Equal(b[start:end], zeroChunk[:end-start]) {
			return len(bytes.TrimRight(b[:end], "\x00"))
		}
		end = start
	}
	return 0
}

// rawOptions are the Badger options Open uses, for opening a state with
// bare badger.Open.
func rawOptions(dir string, key []byte) badger.Options {
	s := &Store{dir: dir, opts: Options{EncryptionKey: key}, log: slog.New(slog.DiscardHandler)}
	return s.badgerOptions()
}

func logFiles(t *testing.T, dir, suffix string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), suffix) {
			out = append(out, e.Name())
		}
	}
	return out
}

func lastRecord(t *testing.T, manifest []byte) (off, end int) {
	t.Helper()
	return lastRecordFrom(t, manifest, 8)
}

// lastRecordFrom finds the last record of a MANIFEST or KEYREGISTRY image
// whose records start at off.
func lastRecordFrom(t *testing.T, data []byte, off int) (int, int) {
	t.Helper()
	for {
		e, ok := manifestRecord(data, off)
		if !ok {
			t.Fatalf("bad record at %d in the image", off)
		}
		if e == len(data) {
			return off, e
		}
		off = e
	}
}

func appendFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

// TestOpen_CrashStates builds on disk the states a SIGKILL or power cut
// leaves and checks that Open recovers every acknowledged (synced) Put and
// moves nothing aside. rawClass is what a bare badger.Open does with the
// state (openFail = it opens): the states Badger refuses are the ones the
// old Open quarantined.
func TestOpen_CrashStates(t *testing.T) {
	tests := []struct {
		name     string
		key      []byte                                          // encryption at rest
		mutate   func(t *testing.T, before, after string) string // returns the dir to open
		rawClass openClass
		lastOK   bool // the last Put survives
		torn     bool // a MANIFEST.torn-* copy is kept
	}{
		{"control: the copy as is", nil, func(t *testing.T, _, after string) string { return after }, openFail, true, false},
		{"WAL with a torn last commit", nil, func(t *testing.T, before, after string) string {
			mem := logFiles(t, after, ".mem")
			wal := mem[len(mem)-1]
			b, _ := os.ReadFile(filepath.Join(before, wal))
			a, _ := os.ReadFile(filepath.Join(after, wal))
			d := 0
			for d < len(b) && b[d] == a[d] {
				d++
			}
			end := dataEnd(a)
			if d >= end {
				t.Fatalf("the last Put left no bytes in %s", wal)
			}
			// the kill came half-way through copying the commit into the mapping
			copy(b[d:], a[d:d+(end-d)/2])
			writeSparse(t, filepath.Join(before, wal), b)
			return before
		}, openFail, false, false},
		{"WAL with garbage after the last commit", nil, func(t *testing.T, _, after string) string {
			mem := logFiles(t, after, ".mem")
			p := filepath.Join(after, mem[len(mem)-1])
			a, _ := os.ReadFile(p)
			end := dataEnd(a)
			copy(a[end+8:], bytes.Repeat([]byte{0x5a, 0xa5, 0x01, 0x7f}, 64))
			writeSparse(t, p, a)
			return after
		}, openFail, true, false},
		{"empty WAL being deleted (seen in the crash test)", nil, func(t *testing.T, _, after string) string {
			// As in the crash test: the WAL a session replayed after a crash
			// was flushed and truncated to 0, not yet unlinked, and the
			// session's own WAL (the next fid) holds its Puts.
			mem := logFiles(t, after, ".mem")
			live := mem[len(mem)-1]
			var fid int
			fmt.Sscanf(live, "%05d.mem", &fid)
			if err := os.Rename(filepath.Join(after, live), filepath.Join(after, fmt.Sprintf("%05d.mem", fid+1))); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(after, live), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return after
		}, openRetry, true, false},
		{"empty WAL being created", nil, func(t *testing.T, _, after string) string {
			if err := os.WriteFile(filepath.Join(after, "00099.mem"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return after
		}, openRetry, true, false},
		{"empty value log at the end", nil, func(t *testing.T, _, after string) string {
			vl := logFiles(t, after, ".vlog")
			var fid int
			fmt.Sscanf(vl[len(vl)-1], "%06d.vlog", &fid)
			if err := os.WriteFile(filepath.Join(after, fmt.Sprintf("%06d.vlog", fid+1)), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return after
		}, openRetry, true, false},
		{"MANIFEST: last record cut, its length past the file", nil, func(t *testing.T, _, after string) string {
			p := filepath.Join(after, badger.ManifestFilename)
			m, _ := os.ReadFile(p)
			off, end := lastRecord(t, m)
			rec := slices.Clone(m[off:end])
			binary.BigEndian.PutUint32(rec, uint32(len(m)+len(rec)+100)) // a big change set being appended
			appendFile(t, p, rec)
			return after
		}, openCorrupt, true, true},
		{"MANIFEST: last record zeroed (power cut)", nil, func(t *testing.T, _, after string) string {
			p := filepath.Join(after, badger.ManifestFilename)
			m, _ := os.ReadFile(p)
			off, end := lastRecord(t, m)
			rec := append(slices.Clone(m[off:off+8]), make([]byte, end-off-8)...)
			appendFile(t, p, rec)
			return after
		}, openCorrupt, true, true},
		{"all of it at once", nil, func(t *testing.T, before, after string) string {
			for _, f := range []string{"00098.mem", "000099.vlog"} {
				if err := os.WriteFile(filepath.Join(after, f), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			p := filepath.Join(after, badger.ManifestFilename)
			m, _ := os.ReadFile(p)
			off, end := lastRecord(t, m)
			appendFile(t, p, append(slices.Clone(m[off:off+8]), make([]byte, end-off-8)...))
			return after
		}, openCorrupt, true, true},
		{"encrypted: control", bytes.Repeat([]byte{3}, 32), func(t *testing.T, _, after string) string { return after }, openFail, true, false},
		{"encrypted: KEYREGISTRY with a torn new data key", bytes.Repeat([]byte{3}, 32), func(t *testing.T, _, after string) string {
			p := filepath.Join(after, badger.KeyRegistryFileName)
			r, _ := os.ReadFile(p)
			off, end := lastRecordFrom(t, r, 28)
			rec := slices.Clone(r[off:end])
			appendFile(t, p, rec[:len(rec)/2]) // the rotation's O_DSYNC write cut short
			return after
		}, openCorrupt, true, true},
	}
	type image struct {
		before, after string
		ids           []string
		last          string
	}
	images := map[bool]image{}
	for _, enc := range []bool{false, true} {
		var key []byte
		if enc {
			key = bytes.Repeat([]byte{3}, 32)
		}
		var im image
		im.before, im.after, im.ids, im.last = crashImage(t, Options{EncryptionKey: key})
		images[enc] = im
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			im := images[tt.key != nil]
			before, after := filepath.Join(t.TempDir(), "before"), filepath.Join(t.TempDir(), "after")
			copyDir(t, im.before, before)
			copyDir(t, im.after, after)
			ids, last := im.ids, im.last
			dir := tt.mutate(t, before, after)

			raw := filepath.Join(t.TempDir(), "raw")
			copyDir(t, dir, raw)
			db, err := openBadger(raw, rawOptions(raw, tt.key))
			if err == nil {
				_ = db.Close()
			}
			if got := classifyOpenError(err); (err == nil) != (tt.rawClass == openFail) || (err != nil && got != tt.rawClass) {
				t.Errorf("bare badger.Open of the state: %v (class %v), want class %v", err, got, tt.rawClass)
			}

			var logs logBuffer
			s, err := Open(dir, Options{EncryptionKey: tt.key, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
			if err != nil {
				t.Fatalf("Open: %v\n%s", err, logs.String())
			}
			if q := s.Quarantined(); q != "" {
				t.Fatalf("moved aside to %s:\n%s", q, logs.String())
			}
			for _, id := range ids {
				if _, _, ok, err := s.Outcome(id); err != nil || !ok {
					t.Errorf("acknowledged %s lost (%v)", id, err)
				}
			}
			if _, _, ok, _ := s.Outcome(last); ok != tt.lastOK {
				t.Errorf("last Put present = %v, want %v", ok, tt.lastOK)
			}
			if got, want := s.Depth(), len(ids)+map[bool]int{true: 1}[tt.lastOK]; got != want {
				t.Errorf("Depth = %d, want %d", got, want)
			}
			mustPut(t, s, Message{ID: "after-repair", To: "+4915100001"})
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if torn, _ := filepath.Glob(filepath.Join(dir, "*.torn-*")); (len(torn) == 1) != tt.torn {
				t.Errorf(".torn copies: %v, want one: %v", torn, tt.torn)
			}
			if moved, _ := filepath.Glob(dir + ".corrupt-*"); len(moved) != 0 {
				t.Errorf("moved aside: %v", moved)
			}
			s = openT(t, dir, Options{EncryptionKey: tt.key}) // and it stays openable
			if _, _, ok, _ := s.Outcome("after-repair"); !ok || s.Quarantined() != "" {
				t.Errorf("second reopen: after-repair present %v, quarantined %q", ok, s.Quarantined())
			}
		})
	}
}

// TestOpen_DamagedManifestStillQuarantined: a bad MANIFEST record with
// good ones after it is damage, not a torn tail; Open does not cut it and
// moves the database aside as before.
func TestOpen_DamagedManifestStillQuarantined(t *testing.T) {
	_, dir, _, _ := crashImage(t, Options{})
	p := filepath.Join(dir, badger.ManifestFilename)
	m, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	off, end := lastRecord(t, m)
	// one more, valid record after the damaged one
	m = append(m, m[off:end]...)
	m[off+8] ^= 0xff
	if err := os.WriteFile(p, m, 0o600); err != nil {
		t.Fatal(err)
	}
	s := openT(t, dir, Options{})
	if s.Quarantined() == "" {
		t.Fatal("a MANIFEST damaged in the middle was not quarantined")
	}
	if torn, _ := filepath.Glob(filepath.Join(s.Quarantined(), "MANIFEST.torn-*")); len(torn) != 0 {
		t.Errorf("a damaged MANIFEST was cut: %v", torn)
	}
	kept, err := os.ReadFile(filepath.Join(s.Quarantined(), badger.ManifestFilename))
	if err != nil || !bytes.Equal(kept, m) {
		t.Errorf("the moved-aside MANIFEST was changed (%v)", err)
	}
}

// TestOpen_LockedDebrisUntouched: while another store has the database
// open, Open fails without quarantining and without repairing anything in
// it (an empty log file may be one the owner is creating right now).
func TestOpen_LockedDebrisUntouched(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	mustPut(t, s, Message{ID: "a", To: "+4915100001"})
	debris := filepath.Join(dir, "00099.mem")
	if err := os.WriteFile(debris, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, Options{})
	var oe *OpenError
	if !errors.As(err, &oe) || classifyOpenError(err) != openFail || !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("second Open: %v, want an OpenError for the held lock", err)
	}
	if _, err := os.Stat(debris); err != nil {
		t.Errorf("the empty log file was touched under another owner's lock: %v", err)
	}
	if moved, _ := filepath.Glob(dir + ".corrupt-*"); len(moved) != 0 {
		t.Errorf("moved aside: %v", moved)
	}
}

// TestOpen_RetryRecovers: the retry class is real. Badger refuses a
// directory with an empty WAL once and opens it on the next attempt, with
// everything in it (what openDB's retry relies on should debris repair
// ever miss one).
func TestOpen_RetryRecovers(t *testing.T) {
	_, dir, ids, _ := crashImage(t, Options{})
	if err := os.WriteFile(filepath.Join(dir, "00099.mem"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	o := rawOptions(dir, nil)
	_, err := openBadger(dir, o)
	if classifyOpenError(err) != openRetry {
		t.Fatalf("first attempt: %v (class %v), want class retry", err, classifyOpenError(err))
	}
	db, err := openBadger(dir, o)
	if err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s := openT(t, dir, Options{})
	for _, id := range ids {
		if _, _, ok, _ := s.Outcome(id); !ok {
			t.Errorf("%s lost", id)
		}
	}
}
