package buffer

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

const maxBatchOps = 512

// op is one unit of work for the writer. apply runs with s.mu held inside
// the batch transaction; it must validate before it writes, and return
// fail(err) for a failure of this op alone (nothing written) or any other
// error to fail the whole batch.
type op struct {
	apply func(b *batch) error
	grows bool // adds data: refused while the disk is nearly full
	done  chan struct{}
	err   error
}

type opFailure struct{ err error }

func (f *opFailure) Error() string { return f.err.Error() }

func fail(err error) error { return &opFailure{err} }

// batch is the state of one group commit.
type batch struct {
	s       *Store
	txn     *badger.Txn
	m       meta // working copy, persisted at commit
	dirty   bool // m changed
	now     time.Time
	effects []func() // applied to memory after a successful commit, under s.mu
	touched []*lease
	removed []uint64
	sMin    [3]uint64 // lowest s/ seq inserted by this batch
	wMin    []byte    // lowest w/ key inserted by this batch
	xMin    uint64    // lowest x/ key inserted by this batch (sortable)
	spools  map[string]*spoolMeta
}

func (b *batch) effect(f func()) { b.effects = append(b.effects, f) }

func (b *batch) set(k, v []byte) error { return b.txn.Set(k, v) }
func (b *batch) del(k []byte) error    { return b.txn.Delete(k) }

// get returns the value of k, or nil, false if absent.
func (b *batch) get(k []byte) ([]byte, bool, error) { return getValue(b.txn, k) }

// getValue returns a copy of k's value in txn, or nil, false if absent.
func getValue(txn *badger.Txn, k []byte) ([]byte, bool, error) {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v, err := item.ValueCopy(nil)
	return v, err == nil, err
}

func (b *batch) touch(l *lease, terminal bool) {
	l.pending = true
	if terminal {
		l.done = true
	}
	b.touched = append(b.touched, l)
}

// writer owns all writes: it coalesces submitted ops into one synced
// transaction per batch (group commit).
func (s *Store) writer() {
	defer close(s.writerDone)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	open := true
	for open {
		first, ok := <-s.ops
		if !ok {
			return
		}
		ops := []*op{first}
		timer.Reset(s.opts.CommitWindow)
	collect:
		for len(ops) < maxBatchOps {
			var o *op
			if int64(len(ops)) >= s.inflight.Load() {
				// Everyone currently waiting on the writer is in this batch:
				// nobody can join before they are answered, so commit now
				// (taking only what is already queued).
				select {
				case o, ok = <-s.ops:
				default:
					break collect
				}
			} else {
				select {
				case o, ok = <-s.ops:
				case <-timer.C:
					break collect
				}
			}
			if !ok {
				open = false
				break collect
			}
			ops = append(ops, o)
		}
		timer.Stop() // Go 1.23+ timers: no stale tick survives Stop/Reset
		s.runBatch(ops)
	}
	// Drain: Close closed the channel; answer what is left.
	var rest []*op
	for o := range s.ops {
		rest = append(rest, o)
	}
	if len(rest) > 0 {
		s.runBatch(rest)
	}
}

func (s *Store) finish(o *op, err error) {
	o.err = err
	close(o.done)
}

func (s *Store) runBatch(ops []*op) {
	if s.opts.MinFreeSpace > 0 {
		free, err := s.statfs(s.dir)
		if err == nil && free < s.opts.MinFreeSpace {
			keep := ops[:0]
			for _, o := range ops {
				if o.grows {
					s.finish(o, fmt.Errorf("%w: %d bytes free in %s, %d reserved", ErrDiskFull, free, s.dir, s.opts.MinFreeSpace))
					continue
				}
				keep = append(keep, o)
			}
			ops = keep
		}
	}
	if len(ops) > 0 {
		s.commitOps(ops)
	}
}

// commitOps applies ops in one transaction and commits it; a transaction
// that grows too big is split in halves.
func (s *Store) commitOps(ops []*op) {
	b := &batch{s: s, txn: s.db.NewTransaction(true), now: s.now()}
	for i := range b.sMin {
		b.sMin[i] = ^uint64(0)
	}
	b.xMin = ^uint64(0)
	s.mu.Lock()
	b.m = s.meta
	results := make([]error, len(ops))
	var batchErr error
	for i, o := range ops {
		err := o.apply(b)
		var f *opFailure
		switch {
		case err == nil:
		case errors.As(err, &f):
			results[i] = f.err
		default:
			batchErr = err
		}
		if batchErr != nil {
			break
		}
	}
	if batchErr == nil { // meta is rewritten by every batch: cursors may have moved
		b.m.lowSeq = s.lowSeqLocked(b.m)
		for p := range b.m.sLow {
			b.m.sLow[p] = min(s.sched.sLow(Priority(p), b.m.nextSeq), b.sMin[p])
		}
		w := s.sched.wCursor
		if b.wMin != nil && string(b.wMin) < string(w) {
			w = b.wMin
		}
		b.m.wLow = seqSuffix(w[:9])
		b.m.xLow = min(s.sched.xLow, b.xMin)
		batchErr = b.set(keyMeta, encodeMeta(b.m))
	}
	s.mu.Unlock()

	if batchErr == nil && s.commitHook != nil {
		batchErr = s.commitHook()
	}
	if batchErr == nil {
		batchErr = b.txn.Commit()
		if batchErr == nil {
			s.commits.Add(1)
		}
	} else {
		b.txn.Discard()
	}
	if batchErr != nil {
		s.discard(b)
		if errors.Is(batchErr, badger.ErrTxnTooBig) && len(ops) > 1 {
			s.splits.Add(1)
			s.commitOps(ops[:len(ops)/2])
			s.commitOps(ops[len(ops)/2:])
			return
		}
		err := s.mapWriteErr(batchErr)
		for _, o := range ops {
			s.finish(o, err)
		}
		return
	}
	s.mu.Lock()
	for _, f := range b.effects {
		f()
	}
	for _, l := range b.touched {
		l.pending = false
	}
	for _, seq := range b.removed {
		delete(s.sched.removing, seq)
	}
	s.meta = b.m
	for name, sm := range b.spools {
		*s.spools[name] = *sm
	}
	s.mu.Unlock()
	for i, o := range ops {
		s.finish(o, results[i])
	}
}

// discard forgets the memory marks of a batch that did not commit.
func (s *Store) discard(b *batch) {
	s.mu.Lock()
	for _, l := range b.touched {
		l.pending, l.done = false, false
	}
	for _, seq := range b.removed {
		delete(s.sched.removing, seq)
	}
	s.mu.Unlock()
}

func (s *Store) mapWriteErr(err error) error {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		s.log.Error("outbox write failed: disk full", "err", err)
		return fmt.Errorf("%w: %w", ErrDiskFull, err)
	case errors.Is(err, badger.ErrTxnTooBig):
		return &InvalidError{Field: "size", Reason: "too large for one transaction"}
	case errors.Is(err, badger.ErrDBClosed):
		return ErrClosed
	}
	s.log.Error("outbox write failed", "err", err)
	return fmt.Errorf("buffer: commit: %w", err)
}
