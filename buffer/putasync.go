package buffer

import (
	"context"
)

// PutAsync submits a Put to the writer now and returns a wait for its result. Puts submitted
// one after another from one goroutine get increasing sequence numbers in that order (what keeps
// one customer's jobs in arrival order while the caller goes on receiving), and share one synced
// commit with whatever else is waiting. When the message is accepted, the extras are written in
// the same transaction (an accepted job never lacks its accepted event); a Duplicate writes
// nothing.
//
// The wait blocks until the batch is durable or ctx ends; after ctx ends the Put may still
// commit (a retried Put is then a Duplicate).
func (s *Store) PutAsync(ctx context.Context, m Message, extras ...Extra) func() (PutResult, error) {
	if err := validate(&m); err != nil {
		return func() (PutResult, error) { return 0, err }
	}
	if err := checkExtras(extras); err != nil {
		return func() (PutResult, error) { return 0, err }
	}
	var res PutResult
	o := &op{grows: true}
	o.apply = func(b *batch) error {
		r, err := b.put(m)
		if err != nil || r == Duplicate {
			res = r
			return err
		}
		if err := b.writeExtras(extras); err != nil {
			return err
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
