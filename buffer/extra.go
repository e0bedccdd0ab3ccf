package buffer

import (
	"context"
	"fmt"
	"strings"
)

// Extra is a write that commits in the same transaction as the operation it is given to (Put,
// Ack, Retry, Defer, Expire, Apply): a spool append, a journal entry or a key-value set. The
// operation's change and its extras are stored together or not at all; an operation that fails
// on its own (ErrNotLeased, ErrNotFound, a Duplicate Put) writes none of its extras. This is how
// a caller keeps a state change and its record of it (an event to publish, a journal line, an
// index entry) from being split by a crash.
//
// Build one with SpoolExtra, JournalExtra or KVExtra; the zero Extra is invalid.
type Extra struct {
	kind  extraKind
	name  string // spool name or KV namespace
	key   string // KV key
	data  []byte // spool item or KV value
	entry Entry  // journal entry
}

type extraKind uint8

const (
	extraSpool extraKind = iota + 1
	extraJournal
	extraKV
)

// SpoolExtra appends data to the spool called name (as Spool(name).Append does).
func SpoolExtra(name string, data []byte) Extra {
	return Extra{kind: extraSpool, name: strings.ReplaceAll(name, "\x00", ""), data: append([]byte(nil), data...)}
}

// JournalExtra appends e to the journal (as Journal().Append does; a zero At becomes the
// commit's time).
func JournalExtra(e Entry) Extra { return Extra{kind: extraJournal, entry: e} }

// KVExtra sets key to val in the key-value area namespace (as KV(namespace).Set does).
func KVExtra(namespace, key string, val []byte) Extra {
	return Extra{kind: extraKV, name: strings.ReplaceAll(namespace, "\x00", ""), key: key, data: append([]byte(nil), val...)}
}

// checkExtras validates extras before anything is written.
func checkExtras(xs []Extra) error {
	for i, x := range xs {
		switch x.kind {
		case extraSpool, extraKV:
			if len(x.data) > MaxPayloadLen {
				return &InvalidError{Field: fmt.Sprintf("extra %d", i), Reason: fmt.Sprintf("must be at most %d bytes", MaxPayloadLen)}
			}
		case extraJournal:
		default:
			return &InvalidError{Field: fmt.Sprintf("extra %d", i), Reason: "zero Extra: build it with SpoolExtra, JournalExtra or KVExtra"}
		}
	}
	return nil
}

// writeExtras writes xs into the batch. It runs after the operation's own checks passed (an
// error here is a batch error: the whole transaction is discarded, so nothing is half-written).
func (b *batch) writeExtras(xs []Extra) error {
	for _, x := range xs {
		switch x.kind {
		case extraSpool:
			w, err := b.spoolByName(x.name)
			if err != nil {
				return err
			}
			if _, err := b.appendSpool(x.name, w, x.data); err != nil {
				return err
			}
		case extraJournal:
			if err := b.appendJournal(x.entry); err != nil {
				return err
			}
		case extraKV:
			if err := b.set(kvKey(x.name, x.key), x.data); err != nil {
				return err
			}
		}
	}
	return nil
}

// spoolByName is the batch's working state of a spool, loaded from the committed state when the
// batch first touches it (s.mu is held while ops apply).
func (b *batch) spoolByName(name string) (*spoolMeta, error) {
	if w := b.spools[name]; w != nil {
		return w, nil
	}
	committed, err := b.s.spoolStateLocked(name)
	if err != nil {
		return nil, err
	}
	return b.spool(name, committed), nil
}

// Apply commits extras alone, atomically and durably (group-committed like every write): all of
// them or none. It is for a record and what it implies that are not a message state change, such
// as an index entry updated together with the events it causes.
func (s *Store) Apply(ctx context.Context, extras ...Extra) error {
	if err := checkExtras(extras); err != nil {
		return err
	}
	if len(extras) == 0 {
		return nil
	}
	o := &op{grows: true}
	o.apply = func(b *batch) error { return b.writeExtras(extras) }
	return s.waitOp(ctx, o)
}
