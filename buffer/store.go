package buffer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Options configure a Store. The zero value is usable.
type Options struct {
	DedupWindow   time.Duration    // default 7*24h: a Put of an id seen within it is Duplicate
	LeaseTimeout  time.Duration    // default 5m: a lease not Acked/Retried by then becomes due again
	CommitWindow  time.Duration    // group-commit coalescing window, default 2ms
	EncryptionKey []byte           // nil or 32 bytes (AES-256)
	Logger        *slog.Logger     // nil = discard; Badger's own logs go here at debug
	Now           func() time.Time // injected clock; nil = time.Now
	// MinFreeSpace: writes are refused with ErrDiskFull while the
	// filesystem holding dir has less free space than this. Badger writes
	// through mmapped, sparse files, so running out of space inside them is a
	// SIGBUS rather than an error; this reserve keeps us away from that edge.
	// Default 64 MiB; negative disables the check.
	MinFreeSpace int64
	// TrimInterval: the longest time between two page-outs of Badger's
	// file mappings (.sst, .mem, .vlog; see trim.go); a page-out also runs
	// as soon as they have grown by 2 MiB (checked every 20 ms). Default
	// 1s; negative disables.
	TrimInterval time.Duration
}

// Priority orders recipients' heads: lower value leases first.
type Priority uint8

const (
	PriorityHigh   Priority = 0
	PriorityNormal Priority = 1
	PriorityLow    Priority = 2
)

// Delivery is what the relay does with a send whose outcome is unknown.
type Delivery uint8

const (
	AtLeastOnce Delivery = 0
	AtMostOnce  Delivery = 1
)

// Message is one queued job. The first block is set by the caller, the
// second by the store.
type Message struct {
	ID         string
	To         string
	Priority   Priority
	Delivery   Delivery
	AcceptedAt time.Time // zero = the store's clock at Put
	NotBefore  time.Time
	ExpiresAt  time.Time // zero = never expires
	Payload    []byte    // opaque to the buffer

	Seq           uint64    // acceptance order, assigned by Put
	Attempts      int       // number of Retry calls so far
	NextAttempt   time.Time // set by Retry
	LastError     string    // set by Retry
	SendStarted   bool      // MarkSending was called by a lease that never resolved
	LeaseDeadline time.Time // set on leased messages
}

// due is when the message may be leased next (0 = now).
func (m *Message) due() int64 {
	d := timeToNanos(m.NotBefore)
	if n := timeToNanos(m.NextAttempt); n > d {
		d = n
	}
	return d
}

// PutResult says whether a Put stored a new message.
type PutResult int

const (
	Accepted PutResult = iota
	Duplicate
)

func (r PutResult) String() string {
	switch r {
	case Accepted:
		return "accepted"
	case Duplicate:
		return "duplicate"
	}
	return "PutResult(" + strconv.Itoa(int(r)) + ")"
}

// Outcome values the store itself records in the dedup index.
const (
	OutcomeQueued  = "queued"  // Outcome() of a message still in the queue
	OutcomeExpired = "expired" // recorded by Expire
	OutcomeCorrupt = "corrupt" // the record was undecodable and quarantined
)

// Limits enforced by Put.
const (
	MaxIDLen      = 1024
	MaxToLen      = 256
	MaxPayloadLen = 96 << 10 // MQTT jobs are at most 64 KiB

	valueThreshold = 128 << 10 // > any record; <= 15% of MemTableSize
)

// Store is the durable outbox. All methods are safe for concurrent use.
type Store struct {
	opts       Options
	dir        string
	absDir     string // dir made absolute (as in /proc/self/maps)
	trimStop   chan struct{}
	trimDone   chan struct{}
	db         *badger.DB
	log        *slog.Logger
	now        func() time.Time
	quarantine string

	closeMu    sync.RWMutex // held (R) while an operation runs; (W) by Close
	closed     bool
	ops        chan *op
	writerDone chan struct{}
	inflight   atomic.Int64 // ops submitted whose caller has not yet returned

	// statistics for benchmarks/tests
	commits atomic.Uint64
	splits  atomic.Uint64 // batches split because the transaction grew too big

	// test hooks (internal tests only)
	commitHook func() error
	statfs     func(dir string) (free int64, err error)

	mu     sync.Mutex // guards everything below
	sched  scheduler
	meta   meta // persisted counters/cursors as of the last commit
	oldest struct {
		valid bool
		seq   uint64
		at    time.Time
	}
	spools map[string]*spoolMeta
	jLow   uint64
}

// Open opens (creating if needed) the outbox in dir. A database that Badger
// cannot open because it is damaged is moved to <dir>.corrupt-<timestamp>
// and a fresh one is created; Quarantined reports that.
func Open(dir string, opts Options) (*Store, error) {
	if strconv.IntSize != 64 {
		return nil, ErrNot64Bit
	}
	if opts.DedupWindow <= 0 {
		opts.DedupWindow = 7 * 24 * time.Hour
	}
	if opts.LeaseTimeout <= 0 {
		opts.LeaseTimeout = 5 * time.Minute
	}
	if opts.CommitWindow <= 0 {
		opts.CommitWindow = 2 * time.Millisecond
	}
	if opts.TrimInterval == 0 {
		opts.TrimInterval = time.Second
	}
	if opts.MinFreeSpace == 0 {
		opts.MinFreeSpace = 64 << 20
	}
	if opts.EncryptionKey != nil && len(opts.EncryptionKey) != 32 {
		return nil, &InvalidError{Field: "EncryptionKey", Reason: fmt.Sprintf("must be 32 bytes (AES-256), got %d", len(opts.EncryptionKey))}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log = log.With("component", "buffer")
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Store{opts: opts, dir: dir, log: log, now: now, statfs: statfsFree, spools: map[string]*spoolMeta{}}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, &OpenError{Dir: dir, Err: err}
	}
	db, err := s.openDB() // open.go: crash repair, retries, quarantine
	if err != nil {
		return nil, err
	}
	s.db = db
	if err := s.load(); err != nil {
		db.Close()
		return nil, err
	}
	s.ops = make(chan *op, 1024)
	s.writerDone = make(chan struct{})
	go s.writer()
	s.absDir = dir // the trimmer matches /proc/self/maps paths: absolute
	if abs, err := filepath.Abs(dir); err == nil {
		s.absDir = abs
	}
	s.trimStop, s.trimDone = make(chan struct{}), make(chan struct{})
	if opts.TrimInterval > 0 && filepath.IsAbs(s.absDir) {
		go s.trimmer(opts.TrimInterval, s.trimStop, s.trimDone)
	} else {
		close(s.trimDone)
	}
	return s, nil
}

func (s *Store) badgerOptions() badger.Options {
	o := badger.DefaultOptions(s.dir).
		WithLogger(badgerLogger{s.log}).
		WithSyncWrites(true).
		WithMemTableSize(4 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(4).
		WithBaseTableSize(1 << 20).
		WithBaseLevelSize(8 << 20).
		// Every record stays in the LSM tree and its WAL: Badger only logs a
		// failed value-log sync (value.go, "Error while curlf sync") but
		// returns a failed WAL sync, and we must not acknowledge a Put whose
		// sync failed. MaxPayloadLen keeps records below this.
		WithValueThreshold(valueThreshold).
		WithValueLogFileSize(16 << 20).
		WithNumCompactors(2).
		WithBlockCacheSize(4 << 20).
		WithIndexCacheSize(4 << 20). // mandatory with encryption (else a panic on first read)
		// No compression: with it every table builder holds extra block
		// buffers (half of the heap in a profile of a 1M fill), and the
		// payloads are small JSON that Snappy barely shrinks.
		WithCompression(options.None).
		WithMetricsEnabled(false).
		WithNumGoroutines(2).
		WithDetectConflicts(false) // one writer goroutine: there are no conflicts
	// 1 MB tables on every level (default doubles per level): a builder
	// allocates twice its table size and compactions run several at once.
	o.TableSizeMultiplier = 1
	if s.opts.EncryptionKey != nil {
		o = o.WithEncryptionKey(s.opts.EncryptionKey)
	}
	return o
}

// Quarantined is non-empty when Open moved a damaged database aside; it is
// the path it was moved to.
func (s *Store) Quarantined() string { return s.quarantine }

// Close stops the writer after it has committed what was already
// submitted, then closes Badger. Later calls return ErrClosed.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return ErrClosed
	}
	s.closed = true
	close(s.ops)
	s.closeMu.Unlock()
	<-s.writerDone
	close(s.trimStop)
	<-s.trimDone
	return s.db.Close()
}

// enter guards an operation against Close; the returned func releases it.
func (s *Store) enter() (func(), error) {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return nil, ErrClosed
	}
	return s.closeMu.RUnlock, nil
}

// Stats are counters for tests, benchmarks and metrics.
type Stats struct {
	Commits uint64 // synced Badger transactions committed by the writer
}

// Stats returns the writer's counters.
func (s *Store) Stats() Stats { return Stats{Commits: s.commits.Load()} }

func statfsFree(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) log(level, f string, a ...any) {
	b.l.Debug(strings.TrimSpace(fmt.Sprintf(f, a...)), "badger_level", level)
}
func (b badgerLogger) Errorf(f string, a ...any)   { b.log("error", f, a...) }
func (b badgerLogger) Warningf(f string, a ...any) { b.log("warning", f, a...) }
func (b badgerLogger) Infof(f string, a ...any)    { b.log("info", f, a...) }
func (b badgerLogger) Debugf(f string, a ...any)   { b.log("debug", f, a...) }

// waitOp submits o to the writer and waits for its result.
func (s *Store) waitOp(ctx context.Context, o *op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	release, err := s.enter()
	if err != nil {
		return err
	}
	o.done = make(chan struct{})
	s.inflight.Add(1)
	s.ops <- o
	release()
	// inflight drops only when the caller has woken up: until then the
	// writer expects it back with its next write and keeps the batch open
	// (at most CommitWindow), which is what coalesces a busy producer pool.
	defer s.inflight.Add(-1)
	select {
	case <-o.done:
		return o.err
	case <-ctx.Done():
		// The op may still commit; callers rely on idempotency (dedup).
		return ctx.Err()
	}
}
