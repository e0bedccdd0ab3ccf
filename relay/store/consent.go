package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shopkit/relay/buffer"
	"github.com/shopkit/relay/relay"
)

// KV namespaces of consent and of the Signal accounts we sent to.
const (
	consentNS    = "consent"
	recipientsNS = "recipients"
)

// ErrDuplicateReply: a reply job of the box's own came with an id already in the outbox (ids of
// the box's own messages are unique per process, so this is a bug or a clock far in the past);
// nothing of the Apply was stored.
var ErrDuplicateReply = errors.New("a reply of the box's own has the id of a stored job")

// Consent returns the KV area for consent records (the consent package's Store). Changes that
// cause an event or a reply are stored through Apply instead (relay.Effects.Consent), in one
// transaction with them; the consent policy writes here directly only for a job's own consent
// proof, which causes neither.
func (s *Store) Consent() *buffer.KV { return s.b.KV(consentNS) }

// Apply implements relay.Outbox: the job st (nil: none) and fx in one transaction.
func (s *Store) Apply(ctx context.Context, st *relay.Stored, fx relay.Effects) error {
	if s.applyHook != nil {
		if err := s.applyHook(); err != nil {
			return err
		}
	}
	if st == nil {
		return s.Commit(ctx, fx)
	}
	m, err := message(*st)
	if err != nil {
		return err
	}
	return s.commit(fx, func(xs []buffer.Extra) error {
		res, err := s.b.PutAsync(ctx, m, xs...)()
		if err == nil && res == buffer.Duplicate {
			// The buffer stored none of the extras with a duplicate: report it, or the
			// caller would take its consent change for stored.
			err = fmt.Errorf("%w: %s", ErrDuplicateReply, m.ID)
		}
		return err
	})
}

// recipient is the value under a uuid in KV "recipients".
type recipient struct {
	Number string    `json:"number"`
	At     time.Time `json:"at"`
}

// Recipient implements relay.SentIndex: the number a Signal account uuid belongs to, from our
// last send to it.
func (s *Store) Recipient(uuid string) (string, bool, error) {
	key := strings.ToLower(uuid)
	if key == "" {
		return "", false, nil
	}
	b, ok, err := s.b.KV(recipientsNS).Get(key)
	if err != nil || !ok {
		return "", false, err
	}
	var r recipient
	if err := json.Unmarshal(b, &r); err != nil || r.Number == "" {
		// An unreadable entry is as good as none: the STOP goes to the shop on P/inbound.
		s.log.Error("recipients entry unreadable", "err", err)
		return "", false, nil
	}
	return r.Number, true, nil
}

// appendConsentExtras adds fx's consent record and recipient to out.
func appendConsentExtras(out []buffer.Extra, fx relay.Effects) ([]buffer.Extra, error) {
	if fx.Consent != nil {
		out = append(out, buffer.KVExtra(consentNS, fx.Consent.Number, fx.Consent.Record))
	}
	if r := fx.Recipient; r != nil && r.UUID != "" && r.Number != "" {
		b, err := json.Marshal(recipient{Number: r.Number, At: time.Now().UTC()})
		if err != nil {
			return nil, err
		}
		out = append(out, buffer.KVExtra(recipientsNS, strings.ToLower(r.UUID), b))
	}
	return out, nil
}
