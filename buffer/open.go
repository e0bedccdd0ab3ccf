package buffer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// How Open treats a database Badger will not open.
//
// A SIGKILL, a crash or a power cut (with SyncWrites) must never make the
// outbox quarantine a database Badger can recover: that would drop every
// acknowledged job. Open therefore
//
//  1. repairs, under the directory lock, the states a crash leaves that
//     Badger v4.9.6 refuses although they hold nothing (repairCrashDebris),
//  2. opens Badger, and on failure classifies the error (classifyOpenError):
//     - openRetry: Badger fixed the file during the failed attempt, or the
//     error is a transient I/O error; Open tries again (maxOpenAttempts),
//     - openCorrupt: the data itself is damaged; the directory is moved to
//     <dir>.corrupt-<timestamp> and a fresh database started,
//     - openFail: anything else (lock held, permissions, full or read-only
//     disk, out of memory or descriptors, wrong key or version, unknown
//     errors); Open returns an *OpenError and moves nothing.
//
// Only errors known from Badger's source to mean damaged data quarantine;
// an unknown error leaves relay down with a loud error rather than empty.

type openClass int

const (
	openFail    openClass = iota // return *OpenError, touch nothing
	openRetry                    // open again
	openCorrupt                  // move aside, start fresh
)

func (c openClass) String() string {
	switch c {
	case openFail:
		return "fail"
	case openRetry:
		return "retry"
	case openCorrupt:
		return "corrupt"
	}
	return fmt.Sprintf("openClass(%d)", int(c))
}

// maxOpenAttempts bounds the openRetry loop.
const maxOpenAttempts = 3

// Badger v4.9.6 wraps most errors with y.Wrapf, which formats them with
// %+v instead of %w: errors.Is does not see through it, so the causes are
// matched by their text as well. Each string below is quoted from Badger's
// (or the kernel's) source.
var (
	// Refusals and environment errors: the data may be fine, so never
	// quarantine. syscall.Errno texts are what the kernel reports
	// through os.PathError and survive y.Wrapf's formatting.
	openFailTexts = []string{
		"Cannot acquire directory lock",    // dir_unix.go: another process has it open
		"Encryption key mismatch",          // badger.ErrEncryptionKeyMismatch
		"Encryption key's length",          // badger.ErrInvalidEncryptionKey
		"manifest has unsupported version", // manifest.go: another Badger version wrote it
		"external magic number doesn't match",
		"Invalid ValueLogFileSize", // options
		"Valuethreshold",           // options: "Valuethreshold %d greater than max batch size"
		"Cannot have 1 compactor",  // options
		"BlockCacheSize should be set",
		syscall.EACCES.Error(), // permission denied
		syscall.EPERM.Error(),  // operation not permitted
		syscall.ENOSPC.Error(), // no space left on device
		syscall.EDQUOT.Error(), // disk quota exceeded
		syscall.EROFS.Error(),  // read-only file system
		syscall.ENOMEM.Error(), // cannot allocate memory (mmap)
		syscall.EMFILE.Error(), // too many open files
		syscall.ENFILE.Error(), // too many open files in system
		syscall.ENOENT.Error(), // a file vanished or was misnamed: not damage we can name
		syscall.EBUSY.Error(),
	}
	// Transient I/O errors: worth one more attempt, never a quarantine.
	openRetryErrnos = []syscall.Errno{syscall.EIO, syscall.EINTR, syscall.EAGAIN}
	openRetryTexts  = []string{
		// ristretto z.NewFile: z.OpenMmapFile treats a zero-length file as
		// new, truncates and bootstraps it, and Badger's openMemTables and
		// vlog.open then fail with it. The file is fixed by then; a second
		// Open succeeds. (Crash debris repair normally removes such files
		// first; this is the safety net.)
		"Create a new file",
		syscall.EIO.Error(), // input/output error
		syscall.EINTR.Error(),
		syscall.EAGAIN.Error(),
	}
	// Damaged data, quoted from Badger's source.
	openCorruptTexts = []string{
		"manifest has bad magic",           // manifest.go errBadMagic
		"manifest has checksum mismatch",   // manifest.go errBadChecksum (a torn tail is repaired before)
		"Manifest file might be corrupted", // manifest.go: record length > file size
		"MANIFEST invalid",                 // manifest.go: "MANIFEST invalid, table %d exists"
		"MANIFEST file has invalid manifestChange op",
		"proto:",                        // a MANIFEST or key registry record that checksums but does not decode
		"file does not exist for table", // levels.go revertToManifest
		"Opening table:",                // levels.go: a table Badger cannot read
		"Level validation",              // levels.go: overlapping tables
		"Error while reading IV for key registry",
		"Error while reading sanity text",
		"checksum mismatch", // y.ErrChecksumMismatch (key registry, tables)
		"While unmarshal of datakey",
		"Invalid datakey id", // badger.ErrInvalidDataKeyID: a table or log names a key the registry lacks
		"badger panicked while opening",
	}
)

// classifyOpenError says what Open does with an error from badger.Open.
func classifyOpenError(err error) openClass {
	if err == nil {
		return openFail
	}
	if errors.Is(err, badger.ErrEncryptionKeyMismatch) ||
		errors.Is(err, badger.ErrInvalidEncryptionKey) ||
		errors.Is(err, os.ErrPermission) {
		return openFail
	}
	msg := err.Error()
	for _, s := range openFailTexts {
		if strings.Contains(msg, s) {
			return openFail
		}
	}
	for _, e := range openRetryErrnos {
		if errors.Is(err, e) {
			return openRetry
		}
	}
	for _, s := range openRetryTexts {
		if strings.Contains(msg, s) {
			return openRetry
		}
	}
	if errno := syscall.Errno(0); errors.As(err, &errno) {
		return openFail // any other errno is the environment, not the data
	}
	for _, s := range openCorruptTexts {
		if strings.Contains(msg, s) {
			return openCorrupt
		}
	}
	return openFail
}

// openDB opens Badger in s.dir: repairs crash debris, retries what can be
// retried, quarantines what is damaged (setting s.quarantine).
func (s *Store) openDB() (*badger.DB, error) {
	dir := s.dir
	if err := repairCrashDebris(dir, s.now, s.log); err != nil {
		return nil, &OpenError{Dir: dir, Err: err}
	}
	var err error
	for attempt := 1; ; attempt++ {
		var db *badger.DB
		db, err = openBadger(dir, s.badgerOptions())
		if err == nil {
			if attempt > 1 {
				s.log.Warn("outbox database opened on a later attempt", "dir", dir, "attempt", attempt)
			}
			return db, nil
		}
		class := classifyOpenError(err)
		s.log.Warn("outbox database did not open", "dir", dir, "attempt", attempt, "class", class.String(), "err", err)
		if class == openRetry && attempt < maxOpenAttempts {
			continue
		}
		if class != openCorrupt {
			return nil, &OpenError{Dir: dir, Err: err}
		}
		break
	}
	aside := dir + ".corrupt-" + s.now().UTC().Format("20060102T150405.000000000Z")
	if rerr := os.Rename(dir, aside); rerr != nil {
		return nil, &OpenError{Dir: dir, Err: fmt.Errorf("%w (and moving it aside failed: %v)", err, rerr)}
	}
	s.log.Error("outbox database would not open; moved aside and started empty",
		"dir", dir, "moved_to", aside, "err", err)
	s.quarantine = aside
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, &OpenError{Dir: dir, Err: err}
	}
	db, err := openBadger(dir, s.badgerOptions())
	if err != nil {
		return nil, &OpenError{Dir: dir, Err: err}
	}
	return db, nil
}

// openBadger turns a panic inside badger.Open (seen with damaged tables)
// into an error.
func openBadger(dir string, o badger.Options) (db *badger.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("%w: badger panicked while opening: %v", ErrCorrupt, r)
		}
	}()
	return badger.Open(o)
}

// repairCrashDebris fixes, while holding Badger's directory lock, what a
// crash leaves behind that Badger v4.9.6 refuses to open although nothing
// in it was ever acknowledged:
//
//   - a zero-length *.mem or *.vlog file. Badger deletes a flushed WAL or
//     an empty value log by truncating it to 0 and then unlinking it
//     (ristretto z.MmapFile.Delete), and creates one by creating it and
//     then truncating it to its size. A SIGKILL between the two steps
//     leaves an empty file, which the next badger.Open rejects with
//     "Create a new file". It holds no data: it is removed.
//   - a MANIFEST whose last record is torn (a length that runs past the
//     end of the file, or a record reaching the end whose checksum does
//     not match). Badger syncs the MANIFEST after each record and acts on
//     a change only after that sync returned, so an unsynced last record
//     changed nothing yet; Badger itself drops a short tail, but not one
//     whose length field exceeds the file or whose bytes are wrong. The
//     original is kept as MANIFEST.torn-<timestamp> and the record is cut.
//   - the same for KEYREGISTRY (encryption only), to which Badger appends
//     a new data key every EncryptionKeyRotationDuration with the same
//     framing, O_DSYNC, before any file uses the key; Badger refuses a
//     torn one with "checksum mismatch".
//
// A lock held by another process is returned as an error (openFail).
func repairCrashDebris(dir string, now func() time.Time, log *slog.Logger) error {
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || !(strings.HasSuffix(name, ".mem") || strings.HasSuffix(name, ".vlog")) {
			continue
		}
		fi, err := e.Info()
		if err != nil || fi.Size() != 0 {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("removing empty %s left by a crash: %w", name, err)
		}
		log.Warn("removed an empty log file left by a crash", "dir", dir, "file", name)
	}
	if err := repairTornTail(dir, badger.ManifestFilename, manifestTornTail, now, log); err != nil {
		return err
	}
	return repairTornTail(dir, badger.KeyRegistryFileName, registryTornTail, now, log)
}

// repairTornTail cuts a torn last record off dir/name as found by torn,
// keeping the original as name.torn-<timestamp>.
func repairTornTail(dir, name string, torn func([]byte) (int64, bool), now func() time.Time, log *slog.Logger) error {
	path := filepath.Join(dir, name)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	cut, ok := torn(data)
	if !ok {
		return nil
	}
	keep := path + ".torn-" + now().UTC().Format("20060102T150405.000000000Z")
	if err := writeFileSync(keep, data); err != nil {
		return fmt.Errorf("keeping the torn %s: %w", name, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if err := f.Truncate(cut); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	log.Warn("cut a torn last record left by a crash", "dir", dir, "file", name,
		"size", len(data), "cut_at", cut, "original_kept", keep)
	return nil
}

// manifestTornTail parses Badger's MANIFEST format (manifest.go: 8 bytes of
// magic, then records of [len uint32 BE][crc32c uint32 BE][len bytes]) and
// reports whether its last record is torn and where to cut it off. A record
// is torn when it is bad (runs past the end of the file, or its checksum
// does not match) and no valid record starts anywhere after it: a bad
// record followed by a good one is damage in the middle (a flipped length
// field, say), and cutting there would drop changes that were synced, so it
// is left for badger.Open to report. A bad magic is not a torn tail either.
func manifestTornTail(data []byte) (cut int64, torn bool) {
	const magicLen = 8
	if len(data) < magicLen || !bytes.Equal(data[:4], []byte("Bdgr")) {
		return 0, false
	}
	return tornTail(data, magicLen)
}

// registryTornTail is manifestTornTail for KEYREGISTRY (key_registry.go:
// a 16-byte IV and the 12-byte encrypted sanity text, then data keys in the
// MANIFEST's record framing). A file shorter than that header is not torn
// (Badger writes it whole, by rename).
func registryTornTail(data []byte) (cut int64, torn bool) {
	const headerLen = 16 + len("Hello Badger")
	if len(data) < headerLen {
		return 0, false
	}
	return tornTail(data, headerLen)
}

// tornTail walks the records from off (see manifestTornTail).
func tornTail(data []byte, off int) (cut int64, torn bool) {
	for off < len(data) {
		end, ok := manifestRecord(data, off)
		if !ok {
			for p := off + 1; p < len(data); p++ {
				if end, ok := manifestRecord(data, p); ok && end > p+8 {
					return 0, false // a real record after the bad one
				}
			}
			return int64(off), true
		}
		off = end
	}
	return 0, false
}

// manifestRecord checks the record at off: its end, and whether it is
// complete with a matching checksum.
func manifestRecord(data []byte, off int) (end int, ok bool) {
	if len(data)-off < 8 {
		return 0, false
	}
	n := uint64(binary.BigEndian.Uint32(data[off:]))
	sum := binary.BigEndian.Uint32(data[off+4:])
	if uint64(len(data)-off-8) < n {
		return 0, false
	}
	end = off + 8 + int(n)
	return end, crc32.Checksum(data[off+8:end], crcTable) == sum
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// lockDir takes the flock Badger takes (dir_unix.go acquireDirectoryLock)
// so no other process has the database open while crash debris is
// repaired. Badger takes it again after unlock.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("Cannot acquire directory lock on %q. Another process is using this Badger database: %w", dir, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
