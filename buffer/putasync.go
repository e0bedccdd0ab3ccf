package buffer

import (
	"context"
	"fmt"
)

// SpoolAppend is an item to add to a spool in the same transaction as a Put.
type SpoolAppend struct {
	Spool string
	Data  []byte
}

// PutAsync submits a Put to the writer now and returns a wait for its result. Puts submitted
// one after another from one goroutine get increasing sequence numbers in that order (what keeps
// one customer's jobs in arrival order while the caller goes on receiving), and share one synced
// commit with whatever else is waiting. When the message is accepted, the also items are
// appended to their spools in the same transaction (an accepted job never lacks its accepted
// event); a Duplicate appends nothing.
//
// The wait blocks until the batch is durable or ctx ends; after ctx ends the Put may still
// commit (a retried Put is then a Duplicate).
func (s *Store) PutAsync(ctx context.Context, m Message, also ...SpoolAppend) func() (PutResult, error) {
	if err := validate(&m); err != nil {
		return func() (PutResult, error) { return 0, err }
	}
	type appendTo struct {
		sp        *Spool
		committed *spoolMeta
		data      []byte
	}
	var apps []appendTo
	for _, a := range also {
		if len(a.Data) > MaxPayloadLen {
			err := &InvalidError{Field: "spool data", Reason: fmt.Sprintf("must be at most %d bytes", MaxPayloadLen)}
			return func() (PutResult, error) { return 0, err }
		}
		sp := s.Spool(a.Spool)
		release, err := s.enter()
		if err != nil {
			return func() (PutResult, error) { return 0, err }
		}
		committed, err := sp.state()
		release()
		if err != nil {
			return func() (PutResult, error) { return 0, err }
		}
		apps = append(apps, appendTo{sp, committed, append([]byte(nil), a.Data...)})
	}
	var res PutResult
	o := &op{grows: true}
	o.apply = func(b *batch) error {
		r, err := b.put(m)
		if err != nil || r == Duplicate {
			res = r
			return err
		}
		for _, a := range apps {
			w := b.spool(a.sp.name, a.committed)
			if err := b.set(spoolKey(a.sp.name, w.next), a.data); err != nil {
				return err
			}
			w.next++
			if err := b.set(spoolMetaKey(a.sp.name), encodeSpoolMeta(*w)); err != nil {
				return err
			}
		}
		res = r
		return nil
	}
	if err := ctx.Err(); err != nil {
		return func() (PutResult, error) { return 0, err }
	}
	release, err := s.enter()
	if err != nil {
		return func() (PutResult, error) { return 0, err }
	}
	o.done = make(chan struct{})
	s.ops <- o
	release()
	return func() (PutResult, error) {
		select {
		case <-o.done:
			if o.err != nil {
				return 0, o.err
			}
			return res, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}
