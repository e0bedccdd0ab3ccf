package buffer

import (
	"context"
	"fmt"
	"strings"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

func validate(m *Message) error {
	switch {
	case m.ID == "" || len(m.ID) > MaxIDLen:
		return &InvalidError{Field: "ID", Reason: fmt.Sprintf("must be 1..%d bytes", MaxIDLen)}
	case m.To == "" || len(m.To) > MaxToLen || strings.IndexByte(m.To, 0) >= 0:
		return &InvalidError{Field: "To", Reason: fmt.Sprintf("must be 1..%d bytes without NUL", MaxToLen)}
	case m.Priority > PriorityLow:
		return &InvalidError{Field: "Priority", Reason: "must be PriorityHigh, PriorityNormal or PriorityLow"}
	case m.Delivery > AtMostOnce:
		return &InvalidError{Field: "Delivery", Reason: "must be AtLeastOnce or AtMostOnce"}
	case len(m.Payload) > MaxPayloadLen:
		return &InvalidError{Field: "Payload", Reason: fmt.Sprintf("must be at most %d bytes", MaxPayloadLen)}
	}
	return nil
}

// Put stores m durably (fsync'd, group-committed with concurrent Puts).
// It returns Duplicate, storing nothing, when m.ID is queued or reached a
// terminal outcome within DedupWindow. If ctx ends first Put returns
// ctx.Err() and the message may or may not be stored (a retried Put is
// then a Duplicate).
func (s *Store) Put(ctx context.Context, m Message) (PutResult, error) {
	if err := validate(&m); err != nil {
		return 0, err
	}
	var res PutResult
	o := &op{grows: true}
	o.apply = func(b *batch) error {
		r, err := b.put(m)
		res = r
		return err
	}
	if err := s.waitOp(ctx, o); err != nil {
		return 0, err
	}
	return res, nil
}

func (b *batch) put(m Message) (PutResult, error) {
	s := b.s
	ik := dedupKey(m.ID)
	v, found, err := b.get(ik)
	if err != nil {
		return 0, err
	}
	if found {
		d, derr := decodeDedup(ik, v)
		if derr != nil || !d.terminal || b.now.Sub(d.at) < s.opts.DedupWindow {
			// An undecodable dedup entry is treated as seen: never a second copy.
			return Duplicate, nil
		}
	}
	if m.AcceptedAt.IsZero() {
		m.AcceptedAt = b.now
	}
	if b.m.nextSeq == 0 {
		b.m.nextSeq = 1
	}
	m.Seq = b.m.nextSeq
	m.Attempts, m.NextAttempt, m.LastError, m.SendStarted, m.LeaseDeadline = 0, time.Time{}, "", false, time.Time{}
	if err := b.set(msgKey(m.Seq), encodeRecord(&m)); err != nil {
		return 0, err
	}
	if err := b.set(ik, encodeDedup(dedupEntry{seq: m.Seq})); err != nil {
		return 0, err
	}
	if err := b.set(queueKey(m.To, m.Seq), []byte(m.ID)); err != nil {
		return 0, err
	}
	if exp := timeToNanos(m.ExpiresAt); exp != 0 {
		k := expiryKey(exp, m.Seq)
		if err := b.set(k, nil); err != nil {
			return 0, err
		}
		sx := sortable(exp)
		b.xMin = min(b.xMin, sx)
		b.effect(func() { s.sched.xLow = min(s.sched.xLow, sx) })
	}
	hk := headKey(m.To)
	_, hasHead, err := b.get(hk)
	if err != nil {
		return 0, err
	}
	if !hasHead {
		if err := b.makeHead(m.To, m.ID, m.Seq, m.Priority, m.due()); err != nil {
			return 0, err
		}
	}
	b.m.nextSeq++
	b.m.depth++
	b.dirty = true
	seq, at := m.Seq, m.AcceptedAt
	b.effect(func() {
		if !s.oldest.valid && s.meta.depth == 0 {
			s.oldest.valid, s.oldest.seq, s.oldest.at = true, seq, at
		}
	})
	return Accepted, nil
}

// makeHead records seq as the head of to's queue.
func (b *batch) makeHead(to, id string, seq uint64, p Priority, due int64) error {
	if err := b.set(headKey(to), u64(nil, seq)); err != nil {
		return err
	}
	if err := b.set(schedKey(p, seq), encodeRef(headRef{due: due, to: to, id: id})); err != nil {
		return err
	}
	b.sMin[p] = min(b.sMin[p], seq)
	sc := &b.s.sched
	if due != 0 {
		wk := waitKey(due, p, seq)
		if err := b.set(wk, nil); err != nil {
			return err
		}
		if b.wMin == nil || string(wk) < string(b.wMin) {
			b.wMin = wk
		}
		b.effect(func() { sc.noteWait(wk) })
		return nil
	}
	b.effect(func() { sc.addReady(p, seq) })
	return nil
}

// removeMessage deletes a queued message and every index entry of it,
// records outcome in the dedup index, and promotes the recipient's next
// message when it was the head. exp is the record's expiry (0 = none or
// unknown).
func (b *batch) removeMessage(seq uint64, p Priority, to, id string, due, exp int64, outcome string) error {
	s := b.s
	if err := b.del(msgKey(seq)); err != nil {
		return err
	}
	if err := b.del(queueKey(to, seq)); err != nil {
		return err
	}
	if exp != 0 {
		if err := b.del(expiryKey(exp, seq)); err != nil {
			return err
		}
	}
	if id != "" {
		e := badger.NewEntry(dedupKey(id), encodeDedup(dedupEntry{terminal: true, seq: seq, at: b.now, outcome: outcome})).
			WithTTL(s.opts.DedupWindow)
		if err := b.txn.SetEntry(e); err != nil {
			return err
		}
	}
	hv, hasHead, err := b.get(headKey(to))
	if err != nil {
		return err
	}
	if hasHead && len(hv) == 8 && seqSuffix(hv) == seq {
		if err := b.del(schedKey(p, seq)); err != nil {
			return err
		}
		if due != 0 {
			if err := b.del(waitKey(due, p, seq)); err != nil {
				return err
			}
		}
		next, nextID, ok := b.nextInQueue(to, seq)
		if ok {
			np, ndue := PriorityNormal, int64(0)
			mk := msgKey(next)
			if v, found, err := b.get(mk); err != nil {
				return err
			} else if found {
				if rec, err := decodeRecord(mk, v); err == nil {
					np, ndue = rec.Priority, rec.due()
				}
				// A corrupt next record still becomes head; Lease quarantines it.
			}
			if err := b.makeHead(to, nextID, next, np, ndue); err != nil {
				return err
			}
		} else if err := b.del(headKey(to)); err != nil {
			return err
		}
	}
	b.m.depth--
	b.dirty = true
	b.removed = append(b.removed, seq)
	s.sched.removing[seq] = true
	b.effect(func() {
		s.sched.removeReady(p, seq)
		if s.oldest.valid && s.oldest.seq == seq {
			s.oldest.valid = false
		}
	})
	return nil
}

// nextInQueue finds the recipient's next message after seq by Seek, so
// the tombstones of its earlier messages are never walked.
func (b *batch) nextInQueue(to string, seq uint64) (uint64, string, bool) {
	prefix := queuePrefix(to)
	it := b.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
	defer it.Close()
	it.Seek(queueKey(to, seq+1))
	if !it.ValidForPrefix(prefix) {
		return 0, "", false
	}
	item := it.Item()
	k := item.Key()
	if len(k) != len(prefix)+8 {
		return 0, "", false
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return 0, "", false
	}
	return seqSuffix(k), string(v), true
}

// leasedOp looks up the lease of id for an op inside a batch.
func (b *batch) leasedOp(id string) (*lease, Message, error) {
	s := b.s
	l := s.sched.leasedByID[id]
	if l == nil || l.done {
		ik := dedupKey(id)
		v, found, err := b.get(ik)
		if err != nil {
			return nil, Message{}, err
		}
		if !found {
			return nil, Message{}, fail(fmt.Errorf("%w: %q", ErrNotFound, id))
		}
		if d, derr := decodeDedup(ik, v); derr == nil && d.terminal {
			return nil, Message{}, fail(fmt.Errorf("%w: %q", ErrNotFound, id))
		}
		return nil, Message{}, fail(fmt.Errorf("%w: %q", ErrNotLeased, id))
	}
	mk := msgKey(l.seq)
	v, found, err := b.get(mk)
	if err != nil {
		return nil, Message{}, err
	}
	if !found {
		return nil, Message{}, fail(fmt.Errorf("%w: %q", ErrNotFound, id))
	}
	rec, err := decodeRecord(mk, v)
	if err != nil {
		return nil, Message{}, fail(err)
	}
	return l, rec, nil
}

// MarkSending durably records that the request for a leased message is
// about to be written. If neither Ack nor Retry follows (crash, broken
// connection, lease timeout), the message is leased again with
// SendStarted=true.
func (s *Store) MarkSending(ctx context.Context, id string) error {
	o := &op{}
	o.apply = func(b *batch) error {
		l, rec, err := b.leasedOp(id)
		if err != nil {
			return err
		}
		rec.SendStarted = true
		if err := b.set(msgKey(rec.Seq), encodeRecord(&rec)); err != nil {
			return err
		}
		b.touch(l, false)
		b.effect(func() { l.sendStarted = true })
		return nil
	}
	return s.waitOp(ctx, o)
}

// Ack removes a leased message for good and keeps outcome in the dedup
// index for DedupWindow. The extras commit with it (see Extra).
func (s *Store) Ack(ctx context.Context, id string, outcome string, extras ...Extra) error {
	if err := checkExtras(extras); err != nil {
		return err
	}
	o := &op{}
	o.apply = func(b *batch) error {
		l, rec, err := b.leasedOp(id)
		if err != nil {
			return err
		}
		if err := b.removeMessage(rec.Seq, rec.Priority, rec.To, rec.ID, rec.due(), timeToNanos(rec.ExpiresAt), outcome); err != nil {
			return err
		}
		if err := b.writeExtras(extras); err != nil {
			return err
		}
		b.touch(l, true)
		b.effect(func() { b.s.dropLease(l) })
		return nil
	}
	return s.waitOp(ctx, o)
}

// Retry ends a lease without delivery: Attempts+1, LastError=reason, due
// again at `at` (still the head of its recipient's queue), SendStarted
// cleared. The extras commit with it (see Extra).
func (s *Store) Retry(ctx context.Context, id string, at time.Time, reason string, extras ...Extra) error {
	return s.reschedule(ctx, id, at, reason, true, extras)
}

// Defer ends a lease like Retry, for a message that was not tried (quiet
// hours, a paused channel): due again at `until`, LastError=reason,
// SendStarted cleared, but Attempts unchanged. The extras commit with it.
func (s *Store) Defer(ctx context.Context, id string, until time.Time, reason string, extras ...Extra) error {
	return s.reschedule(ctx, id, until, reason, false, extras)
}

func (s *Store) reschedule(ctx context.Context, id string, at time.Time, reason string, attempt bool, extras []Extra) error {
	if err := checkExtras(extras); err != nil {
		return err
	}
	o := &op{}
	o.apply = func(b *batch) error {
		l, rec, err := b.leasedOp(id)
		if err != nil {
			return err
		}
		oldDue := rec.due()
		if attempt {
			rec.Attempts++
		}
		rec.NextAttempt = at
		rec.LastError = reason
		rec.SendStarted = false
		if err := b.set(msgKey(rec.Seq), encodeRecord(&rec)); err != nil {
			return err
		}
		if oldDue != 0 {
			if err := b.del(waitKey(oldDue, rec.Priority, rec.Seq)); err != nil {
				return err
			}
		}
		if err := b.makeHead(rec.To, rec.ID, rec.Seq, rec.Priority, rec.due()); err != nil {
			return err
		}
		// makeHead queued the re-add; it must run after the lease is gone.
		last := len(b.effects) - 1
		readd := b.effects[last]
		b.effects[last] = func() { b.s.dropLease(l); readd() }
		if err := b.writeExtras(extras); err != nil {
			return err
		}
		b.touch(l, true)
		return nil
	}
	return s.waitOp(ctx, o)
}

func (s *Store) dropLease(l *lease) {
	delete(s.sched.leasedByID, l.id)
	delete(s.sched.leasedBySeq, l.seq)
}

// Lease returns up to n due messages and leases them until
// now+LeaseTimeout: per recipient only the head (strict acceptance order),
// across recipients higher priority first, then acceptance order. Lease
// does not write to disk: a crash simply makes every lease due again.
func (s *Store) Lease(ctx context.Context, n int, now time.Time) ([]Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, nil
	}
	release, err := s.enter()
	if err != nil {
		return nil, err
	}
	var out []Message
	var corrupt []uint64
	var corruptPrio []Priority
	s.mu.Lock()
	err = s.db.View(func(txn *badger.Txn) error {
		sc := &s.sched
		for _, l := range sc.leasedByID {
			if !l.pending && !now.Before(l.deadline) {
				s.dropLease(l)
				sc.addReady(l.prio, l.seq)
			}
		}
		s.promote(txn, now)
		var skipped [3][]uint64
		for p := PriorityHigh; p <= PriorityLow && len(out) < n; p++ {
			for len(out) < n {
				if len(sc.ready[p]) == 0 {
					if sc.frontier[p] == ^uint64(0) {
						break
					}
					s.loadChunk(txn, p, now)
					continue
				}
				seq := sc.ready[p][0]
				sc.ready[p] = sc.ready[p][1:]
				if sc.removing[seq] || sc.leasedBySeq[seq] != nil {
					continue
				}
				mk := msgKey(seq)
				v, found, err := getValue(txn, mk)
				if err != nil {
					return err
				}
				if !found {
					continue
				}
				rec, err := decodeRecord(mk, v)
				if err != nil {
					s.log.Error("corrupt outbox record; quarantining", "seq", seq, "err", err)
					corrupt = append(corrupt, seq)
					corruptPrio = append(corruptPrio, p)
					continue
				}
				if d := rec.due(); d != 0 && d > now.UnixNano() {
					skipped[p] = append(skipped[p], seq)
					continue
				}
				rec.LeaseDeadline = now.Add(s.opts.LeaseTimeout)
				l := &lease{id: rec.ID, seq: seq, prio: rec.Priority, to: rec.To, deadline: rec.LeaseDeadline, sendStarted: rec.SendStarted}
				sc.leasedByID[rec.ID] = l
				sc.leasedBySeq[seq] = l
				out = append(out, rec)
			}
		}
		for p := range skipped {
			for _, seq := range skipped[p] {
				sc.addReady(Priority(p), seq)
			}
		}
		return nil
	})
	s.mu.Unlock()
	// Released before quarantining: that submits to the writer, which
	// takes the read lock again, and a Close waiting in between would
	// deadlock a nested read lock.
	release()
	if err != nil {
		return out, fmt.Errorf("buffer: lease: %w", err)
	}
	for i, seq := range corrupt {
		if qerr := s.quarantineHead(ctx, seq, corruptPrio[i]); qerr != nil {
			s.log.Error("quarantining corrupt record failed", "seq", seq, "err", qerr)
		}
	}
	if len(corrupt) > 0 && len(out) < n {
		more, err := s.Lease(ctx, n-len(out), now)
		return append(out, more...), err
	}
	return out, nil
}

// promote moves heads whose due time has come from w/ into memory.
func (s *Store) promote(txn *badger.Txn, now time.Time) {
	sc := &s.sched
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pWait}})
	defer it.Close()
	nowN := now.UnixNano()
	n := 0
	for it.Seek(sc.wCursor); it.ValidForPrefix([]byte{pWait}) && n < promoteMax; it.Next() {
		n++
		k := it.Item().Key()
		due, p, seq, ok := parseWaitKey(k)
		if ok && due > nowN {
			break
		}
		if ok && p <= PriorityLow && !sc.removing[seq] {
			sc.addReady(p, seq)
		}
		sc.wCursor = append(append([]byte(nil), k...), 0)
	}
}

// loadChunk reads the next heads of priority p at or above the frontier.
func (s *Store) loadChunk(txn *badger.Txn, p Priority, now time.Time) {
	sc := &s.sched
	prefix := []byte{pSched, byte(p)}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
	defer it.Close()
	from := sc.frontier[p]
	n := 0
	last := from
	nowN := now.UnixNano()
	for it.Seek(schedKey(p, from)); it.ValidForPrefix(prefix) && n < readyChunk; it.Next() {
		item := it.Item()
		seq := seqSuffix(item.Key())
		last = seq
		n++
		if sc.leasedBySeq[seq] != nil || sc.removing[seq] {
			continue
		}
		due := int64(0)
		_ = item.Value(func(v []byte) error {
			if r, err := decodeRef(item.Key(), v); err == nil {
				due = r.due
			}
			return nil
		})
		if due != 0 && due > nowN {
			continue // w/ promotes it when due
		}
		sc.ready[p] = append(sc.ready[p], seq) // ascending, all >= frontier > ready
	}
	if n < readyChunk {
		sc.frontier[p] = ^uint64(0)
	} else {
		sc.frontier[p] = last + 1
	}
}

// quarantineHead moves an undecodable head record to b/ and unblocks its
// recipient, using the head reference for the recipient and id.
func (s *Store) quarantineHead(ctx context.Context, seq uint64, p Priority) error {
	o := &op{}
	o.apply = func(b *batch) error {
		mk := msgKey(seq)
		raw, found, err := b.get(mk)
		if err != nil {
			return err
		}
		if !found {
			return nil
		}
		if _, derr := decodeRecord(mk, raw); derr == nil {
			return nil // rewritten meanwhile
		}
		sk := schedKey(p, seq)
		rv, found, err := b.get(sk)
		if err != nil {
			return err
		}
		if err := b.set(badKey(mk), raw); err != nil {
			return err
		}
		ref, rerr := decodeRef(sk, rv)
		if !found || rerr != nil {
			// Nothing to find the recipient by: drop the record only.
			if err := b.del(mk); err != nil {
				return err
			}
			if err := b.del(sk); err != nil {
				return err
			}
			b.m.depth--
			b.dirty = true
			return nil
		}
		return b.removeMessage(seq, p, ref.to, ref.id, ref.due, 0, OutcomeCorrupt)
	}
	return s.waitOp(ctx, o)
}

// Expire removes every queued message whose ExpiresAt is at or before now
// and returns each exactly once (the removal is durable before Expire
// returns). Leased messages are left alone until their lease ends.
//
// extras (may be nil) gives the writes that commit with each message's
// removal (see Extra): every expired message has them stored, none is
// stored for a message that was not expired. It runs inside the writer's
// transaction: it must be quick and must not call the Store. Extras it
// returns that are invalid fail the Expire (nothing of that chunk is
// written).
func (s *Store) Expire(ctx context.Context, now time.Time, extras func(Message) []Extra) ([]Message, error) {
	const chunk = 256
	var all []Message
	for {
		var got []Message
		var more bool
		o := &op{}
		o.apply = func(b *batch) error {
			got, more = got[:0], false
			return b.expire(now, chunk, extras, &got, &more)
		}
		if err := s.waitOp(ctx, o); err != nil {
			return all, err
		}
		all = append(all, got...)
		if !more {
			return all, nil
		}
	}
}

func (b *batch) expire(now time.Time, limit int, extras func(Message) []Extra, got *[]Message, more *bool) error {
	s := b.s
	type cand struct {
		key []byte
		seq uint64
		exp int64
	}
	var cands []cand
	skippedFirst := []byte(nil)
	it := b.txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pExpiry}, PrefetchValues: false})
	nowN := now.UnixNano()
	for it.Seek(u64([]byte{pExpiry}, s.sched.xLow)); it.ValidForPrefix([]byte{pExpiry}); it.Next() {
		k := it.Item().KeyCopy(nil)
		if len(k) != 17 {
			continue
		}
		exp := unsortable(seqSuffix(k[:9]))
		if exp > nowN {
			break
		}
		if len(cands) == limit {
			*more = true
			break
		}
		seq := seqSuffix(k)
		if s.sched.leasedBySeq[seq] != nil {
			if skippedFirst == nil {
				skippedFirst = k
			}
			continue
		}
		cands = append(cands, cand{k, seq, exp})
	}
	it.Close()
	// Read and build every candidate's extras before writing anything, so
	// that invalid extras fail this op alone with nothing written.
	type exp struct {
		cand
		rec    Message
		ok     bool
		extras []Extra
	}
	todo := make([]exp, 0, len(cands))
	for _, c := range cands {
		e := exp{cand: c}
		mk := msgKey(c.seq)
		v, found, err := b.get(mk)
		if err != nil {
			return err
		}
		if found {
			rec, derr := decodeRecord(mk, v)
			// An undecodable record is left to Lease's quarantine; expiry just stops tracking it.
			if derr == nil {
				e.rec, e.ok = rec, true
				if extras != nil {
					e.extras = extras(rec)
					if err := checkExtras(e.extras); err != nil {
						return fail(fmt.Errorf("buffer: expire %q: %w", rec.ID, err))
					}
				}
			}
		}
		todo = append(todo, e)
	}
	for _, e := range todo {
		if !e.ok {
			if err := b.del(e.key); err != nil {
				return err
			}
			continue
		}
		rec := e.rec
		if err := b.removeMessage(rec.Seq, rec.Priority, rec.To, rec.ID, rec.due(), e.exp, OutcomeExpired); err != nil {
			return err
		}
		if err := b.writeExtras(e.extras); err != nil {
			return err
		}
		*got = append(*got, rec)
	}
	if !*more {
		// Everything before the first skipped (leased) key or before now is gone.
		var low uint64
		if skippedFirst != nil {
			low = seqSuffix(skippedFirst[:9])
		} else {
			low = sortable(nowN)
		}
		b.effect(func() {
			if low > s.sched.xLow {
				s.sched.xLow = low
			}
		})
		b.dirty = true
	}
	return nil
}

// Depth is the number of queued messages (leased ones included).
func (s *Store) Depth() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.meta.depth)
}

// OldestAge is now minus the AcceptedAt of the oldest queued message, or 0.
func (s *Store) OldestAge(now time.Time) time.Duration {
	release, err := s.enter()
	if err != nil {
		return 0
	}
	defer release()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.meta.depth == 0 {
		return 0
	}
	if !s.oldest.valid {
		s.findOldestLocked()
	}
	if !s.oldest.valid {
		return 0
	}
	return now.Sub(s.oldest.at)
}

func (s *Store) lowSeqLocked(m meta) uint64 {
	if m.depth == 0 {
		return m.nextSeq
	}
	if s.oldest.valid {
		return s.oldest.seq
	}
	return s.meta.lowSeq
}

// findOldestLocked seeks the first message record from the persisted lower
// bound.
func (s *Store) findOldestLocked() {
	_ = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pMsg}, PrefetchValues: false})
		defer it.Close()
		for it.Seek(msgKey(s.meta.lowSeq)); it.ValidForPrefix([]byte{pMsg}); it.Next() {
			item := it.Item()
			var rec Message
			err := item.Value(func(v []byte) error {
				var err error
				rec, err = decodeRecord(item.Key(), v)
				return err
			})
			if err != nil {
				continue
			}
			s.oldest.valid, s.oldest.seq, s.oldest.at = true, rec.Seq, rec.AcceptedAt
			return nil
		}
		return nil
	})
}

// Each calls fn for every queued message in acceptance order until fn
// returns false. Leased messages carry their LeaseDeadline. Undecodable
// records are skipped (Lease quarantines them). fn runs inside a read
// transaction and must not call the Store (collect, then act).
func (s *Store) Each(fn func(Message) bool) error {
	release, err := s.enter()
	if err != nil {
		return err
	}
	defer release()
	s.mu.Lock()
	low := s.meta.lowSeq
	s.mu.Unlock()
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pMsg}})
		defer it.Close()
		for it.Seek(msgKey(low)); it.ValidForPrefix([]byte{pMsg}); it.Next() {
			item := it.Item()
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			rec, err := decodeRecord(item.Key(), v)
			if err != nil {
				continue
			}
			s.mu.Lock()
			if l := s.sched.leasedBySeq[rec.Seq]; l != nil {
				rec.LeaseDeadline = l.deadline
			}
			s.mu.Unlock()
			if !fn(rec) {
				return nil
			}
		}
		return nil
	})
}

// Outcome looks id up in the dedup index: the terminal outcome and when it
// was recorded, or OutcomeQueued and the acceptance time while queued. ok
// is false when the id is unknown or its entry is older than DedupWindow.
func (s *Store) Outcome(id string) (outcome string, at time.Time, ok bool, err error) {
	release, err := s.enter()
	if err != nil {
		return "", time.Time{}, false, err
	}
	defer release()
	err = s.db.View(func(txn *badger.Txn) error {
		ik := dedupKey(id)
		v, found, err := getValue(txn, ik)
		if err != nil || !found {
			return err
		}
		d, err := decodeDedup(ik, v)
		if err != nil {
			return err
		}
		if d.terminal {
			if s.now().Sub(d.at) >= s.opts.DedupWindow {
				return nil
			}
			outcome, at, ok = d.outcome, d.at, true
			return nil
		}
		mk := msgKey(d.seq)
		v, found, err = getValue(txn, mk)
		if err == nil && !found {
			err = badger.ErrKeyNotFound // the index names a record that is gone
		}
		if err != nil {
			return err
		}
		rec, err := decodeRecord(mk, v)
		if err != nil {
			return err
		}
		outcome, at, ok = OutcomeQueued, rec.AcceptedAt, true
		return nil
	})
	return outcome, at, ok, err
}

// load reads the meta record; it never scans the queue unless the meta
// record itself is damaged.
func (s *Store) load() error {
	err := s.db.View(func(txn *badger.Txn) error {
		v, found, err := getValue(txn, keyMeta)
		if err != nil {
			return err
		}
		if !found {
			s.meta = meta{nextSeq: 1, lowSeq: 1}
			return nil
		}
		m, err := decodeMeta(keyMeta, v)
		if err != nil {
			s.log.Error("outbox meta record is corrupt; rebuilding counters by a full scan", "err", err)
			m = rebuildMeta(txn)
		}
		s.meta = m
		return nil
	})
	if err != nil {
		return &OpenError{Dir: s.dir, Err: err}
	}
	s.sched.init(s.meta)
	s.jLow = s.meta.jLow
	return nil
}

// rebuildMeta recounts from scratch (damaged meta only).
func rebuildMeta(txn *badger.Txn) meta {
	m := meta{nextSeq: 1}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pMsg}, PrefetchValues: false})
	first := true
	for it.Rewind(); it.ValidForPrefix([]byte{pMsg}); it.Next() {
		seq := seqSuffix(it.Item().Key())
		if first {
			m.lowSeq, first = seq, false
		}
		m.depth++
		m.nextSeq = seq + 1
	}
	it.Close()
	if first {
		m.lowSeq = m.nextSeq
	}
	it = txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pJournal}, PrefetchValues: false})
	for it.Rewind(); it.ValidForPrefix([]byte{pJournal}); it.Next() {
		if n := seqSuffix(it.Item().Key()); n >= m.jNext {
			m.jNext = n + 1
		}
	}
	it.Close()
	return m
}
