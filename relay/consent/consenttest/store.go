// Package consenttest provides an in-memory consent.Store with fault hooks, for tests of the
// consent package and of code that wires it.
package consenttest

import (
	"context"
	"errors"
	"sync"
)

// ErrInjected is the error returned by a failing Get or Set.
var ErrInjected = errors.New("consenttest: injected store failure")

// Store is a map-backed store. The zero value is ready to use and safe for concurrent use.
type Store struct {
	mu      sync.Mutex
	m       map[string][]byte
	failGet bool
	failSet bool
	sets    int
}

// Get implements consent.Store.
func (s *Store) Get(key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failGet {
		return nil, false, ErrInjected
	}
	v, ok := s.m[key]
	return append([]byte(nil), v...), ok, nil
}

// Set implements consent.Store.
func (s *Store) Set(ctx context.Context, key string, val []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failSet {
		return ErrInjected
	}
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[key] = append([]byte(nil), val...)
	s.sets++
	return nil
}

// FailGet makes Get fail (true) or work (false).
func (s *Store) FailGet(fail bool) { s.mu.Lock(); s.failGet = fail; s.mu.Unlock() }

// FailSet makes Set fail (true) or work (false).
func (s *Store) FailSet(fail bool) { s.mu.Lock(); s.failSet = fail; s.mu.Unlock() }

// Put stores raw bytes under key, e.g. to plant a corrupt record.
func (s *Store) Put(key string, val []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.m[key] = append([]byte(nil), val...)
}

// Sets returns how many Set calls succeeded.
func (s *Store) Sets() int { s.mu.Lock(); defer s.mu.Unlock(); return s.sets }
