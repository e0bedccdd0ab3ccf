package buffer

import (
	"context"
	"fmt"
	"strings"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// Entry is one journal line: an attempt or state change, kept in full
// (phone numbers included) under the journal's own retention.
type Entry struct {
	At      time.Time
	ID      string
	To      string
	Channel string
	Kind    string
	Outcome string
	Detail  string
	Text    string
}

// Journal is an append-only, time-ordered log in the outbox database.
type Journal struct{ s *Store }

// Journal returns the store's journal.
func (s *Store) Journal() *Journal { return &Journal{s} }

// Append stores e durably (group-committed). A zero At is set to the
// store's clock. Entries with equal At keep their append order.
func (j *Journal) Append(ctx context.Context, e Entry) error {
	o := &op{grows: true}
	o.apply = func(b *batch) error { return b.appendJournal(e) }
	return j.s.waitOp(ctx, o)
}

// appendJournal writes one journal entry into the batch.
func (b *batch) appendJournal(e Entry) error {
	s := b.s
	if e.At.IsZero() {
		e.At = b.now
	}
	k := journalKey(e.At.UnixNano(), b.m.jNext)
	if err := b.set(k, encodeEntry(e)); err != nil {
		return err
	}
	b.m.jNext++
	if sk := sortable(e.At.UnixNano()); sk < b.m.jLow {
		b.m.jLow = sk
		b.effect(func() { s.jLow = min(s.jLow, sk) })
	}
	return nil
}

// Range calls fn for entries with from <= At < to, in time order, until fn
// returns false. Undecodable entries are skipped. fn must not call the
// Store.
func (j *Journal) Range(from, to time.Time, fn func(Entry) bool) error {
	s := j.s
	release, err := s.enter()
	if err != nil {
		return err
	}
	defer release()
	s.mu.Lock()
	start := max(sortable(from.UnixNano()), s.jLow)
	s.mu.Unlock()
	end := sortable(to.UnixNano())
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pJournal}})
		defer it.Close()
		for it.Seek(u64([]byte{pJournal}, start)); it.ValidForPrefix([]byte{pJournal}); it.Next() {
			item := it.Item()
			k := item.Key()
			if len(k) != 17 {
				continue
			}
			if seqSuffix(k[:9]) >= end {
				return nil
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			e, err := decodeEntry(k, v)
			if err != nil {
				s.log.Warn("skipping corrupt journal entry", "err", err)
				continue
			}
			if !fn(e) {
				return nil
			}
		}
		return nil
	})
}

// Prune deletes entries with At before `before` and returns how many. It
// walks from a persisted cursor, so repeated pruning never re-walks
// tombstones.
func (j *Journal) Prune(before time.Time) (int, error) {
	s := j.s
	total := 0
	end := sortable(before.UnixNano())
	for {
		n := 0
		done := false
		o := &op{}
		o.apply = func(b *batch) error {
			n, done = 0, false
			it := b.txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pJournal}, PrefetchValues: false})
			var keys [][]byte
			for it.Seek(u64([]byte{pJournal}, s.jLow)); it.ValidForPrefix([]byte{pJournal}); it.Next() {
				k := it.Item().KeyCopy(nil)
				if len(k) != 17 || seqSuffix(k[:9]) >= end || len(keys) == 1000 {
					break
				}
				keys = append(keys, k)
			}
			it.Close()
			for _, k := range keys {
				if err := b.del(k); err != nil {
					return err
				}
			}
			n = len(keys)
			done = n < 1000
			low := end
			if !done {
				low = seqSuffix(keys[len(keys)-1][:9])
			}
			if low > b.m.jLow {
				b.m.jLow = low
			}
			b.effect(func() { s.jLow = max(s.jLow, low) })
			return nil
		}
		if err := s.waitOp(context.Background(), o); err != nil {
			return total, err
		}
		total += n
		if done {
			return total, nil
		}
	}
}

// KV is a namespaced key-value area (consent records and the like).
type KV struct {
	s  *Store
	ns string
}

// KV returns the key-value area for namespace (which must not contain NUL).
func (s *Store) KV(namespace string) *KV {
	return &KV{s: s, ns: strings.ReplaceAll(namespace, "\x00", "")}
}

// Get returns the value stored under key.
func (kv *KV) Get(key string) ([]byte, bool, error) {
	release, err := kv.s.enter()
	if err != nil {
		return nil, false, err
	}
	defer release()
	var val []byte
	var found bool
	err = kv.s.db.View(func(txn *badger.Txn) error {
		var err error
		val, found, err = getValue(txn, kvKey(kv.ns, key))
		return err
	})
	return val, found, err
}

// Set stores val under key durably (synced before it returns).
func (kv *KV) Set(ctx context.Context, key string, val []byte) error {
	if len(val) > MaxPayloadLen {
		return &InvalidError{Field: "val", Reason: fmt.Sprintf("must be at most %d bytes", MaxPayloadLen)}
	}
	v := append([]byte(nil), val...)
	o := &op{grows: true}
	o.apply = func(b *batch) error { return b.set(kvKey(kv.ns, key), v) }
	return kv.s.waitOp(ctx, o)
}

// Delete removes key durably; deleting a missing key is not an error.
func (kv *KV) Delete(ctx context.Context, key string) error {
	o := &op{}
	o.apply = func(b *batch) error { return b.del(kvKey(kv.ns, key)) }
	return kv.s.waitOp(ctx, o)
}

// Each calls fn for every key with the given prefix, in key order, until
// fn returns false. fn must not call the Store.
func (kv *KV) Each(prefix string, fn func(key string, val []byte) bool) error {
	release, err := kv.s.enter()
	if err != nil {
		return err
	}
	defer release()
	base := kvKey(kv.ns, "")
	p := kvKey(kv.ns, prefix)
	return kv.s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: p})
		defer it.Close()
		for it.Seek(p); it.ValidForPrefix(p); it.Next() {
			item := it.Item()
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if !fn(string(item.Key()[len(base):]), v) {
				return nil
			}
		}
		return nil
	})
}

// Spool is a durable FIFO of opaque items (outbound MQTT events waiting
// for the broker).
type Spool struct {
	s    *Store
	name string
}

// SpoolItem is one spooled item.
type SpoolItem struct {
	Seq  uint64
	Data []byte
}

// Spool returns the FIFO called name (which must not contain NUL).
func (s *Store) Spool(name string) *Spool {
	return &Spool{s: s, name: strings.ReplaceAll(name, "\x00", "")}
}

// state returns the committed head/next of the spool, loading it once.
func (sp *Spool) state() (*spoolMeta, error) {
	s := sp.s
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spoolStateLocked(sp.name)
}

// spoolStateLocked is Spool.state with s.mu held.
func (s *Store) spoolStateLocked(name string) (*spoolMeta, error) {
	if m := s.spools[name]; m != nil {
		return m, nil
	}
	m := &spoolMeta{head: 1, next: 1}
	err := s.db.View(func(txn *badger.Txn) error {
		k := spoolMetaKey(name)
		v, found, err := getValue(txn, k)
		if err != nil || !found {
			return err
		}
		*m, err = decodeSpoolMeta(k, v)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.spools[name] = m
	return m, nil
}

// spool returns the batch's working copy of the spool state.
func (b *batch) spool(name string, committed *spoolMeta) *spoolMeta {
	if b.spools == nil {
		b.spools = map[string]*spoolMeta{}
	}
	w := b.spools[name]
	if w == nil {
		c := *committed
		w = &c
		b.spools[name] = w
	}
	return w
}

// appendSpool writes data as the next item of the spool whose working
// state is w and returns its sequence number.
func (b *batch) appendSpool(name string, w *spoolMeta, data []byte) (uint64, error) {
	seq := w.next
	if err := b.set(spoolKey(name, seq), data); err != nil {
		return 0, err
	}
	w.next++
	return seq, b.set(spoolMetaKey(name), encodeSpoolMeta(*w))
}

// Append adds data durably and returns its sequence number.
func (sp *Spool) Append(ctx context.Context, data []byte) (uint64, error) {
	if len(data) > MaxPayloadLen {
		return 0, &InvalidError{Field: "data", Reason: fmt.Sprintf("must be at most %d bytes", MaxPayloadLen)}
	}
	release, err := sp.s.enter()
	if err != nil {
		return 0, err
	}
	committed, err := sp.state()
	release()
	if err != nil {
		return 0, err
	}
	v := append([]byte(nil), data...)
	var seq uint64
	o := &op{grows: true}
	o.apply = func(b *batch) (err error) {
		seq, err = b.appendSpool(sp.name, b.spool(sp.name, committed), v)
		return err
	}
	if err := sp.s.waitOp(ctx, o); err != nil {
		return 0, err
	}
	return seq, nil
}

// Peek returns up to n items from the head without removing them.
func (sp *Spool) Peek(n int) ([]SpoolItem, error) { return sp.PeekAfter(0, n) }

// PeekAfter returns up to n items with Seq > after, from the head on, without removing them: a
// reader that keeps many items in flight reads each one once.
func (sp *Spool) PeekAfter(after uint64, n int) ([]SpoolItem, error) {
	release, err := sp.s.enter()
	if err != nil {
		return nil, err
	}
	defer release()
	m, err := sp.state()
	if err != nil {
		return nil, err
	}
	sp.s.mu.Lock()
	from := max(m.head, after+1)
	sp.s.mu.Unlock()
	prefix := spoolKey(sp.name, 0)[:len(sp.name)+2]
	var out []SpoolItem
	err = sp.s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Seek(spoolKey(sp.name, from)); it.ValidForPrefix(prefix) && len(out) < n; it.Next() {
			item := it.Item()
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			out = append(out, SpoolItem{Seq: seqSuffix(item.Key()), Data: v})
		}
		return nil
	})
	return out, err
}

// Remove deletes every item with Seq <= uptoSeq durably.
func (sp *Spool) Remove(ctx context.Context, uptoSeq uint64) error {
	release, err := sp.s.enter()
	if err != nil {
		return err
	}
	committed, err := sp.state()
	release()
	if err != nil {
		return err
	}
	for {
		more := false
		o := &op{}
		o.apply = func(b *batch) error {
			w := b.spool(sp.name, committed)
			end := min(uptoSeq+1, w.next)
			if end > w.head+1000 {
				end, more = w.head+1000, true
			}
			for seq := w.head; seq < end; seq++ {
				if err := b.del(spoolKey(sp.name, seq)); err != nil {
					return err
				}
			}
			if end > w.head {
				w.head = end
				return b.set(spoolMetaKey(sp.name), encodeSpoolMeta(*w))
			}
			return nil
		}
		if err := sp.s.waitOp(ctx, o); err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
}

// Len is the number of items in the spool.
func (sp *Spool) Len() int {
	m, err := sp.state()
	if err != nil {
		return 0
	}
	sp.s.mu.Lock()
	defer sp.s.mu.Unlock()
	return int(m.next - m.head)
}
