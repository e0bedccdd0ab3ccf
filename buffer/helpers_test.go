package buffer

import (
	"context"
	"sync"
	"testing"
	"time"
)

// fakeClock is an injected clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// openT opens a store in dir and closes it at the end of the test.
func openT(t testing.TB, dir string, o Options) *Store {
	t.Helper()
	s, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustPut(t testing.TB, s *Store, m Message) {
	t.Helper()
	r, err := s.Put(context.Background(), m)
	if err != nil || r != Accepted {
		t.Fatalf("Put(%s) = %v, %v; want Accepted", m.ID, r, err)
	}
}

func leaseIDs(t testing.TB, s *Store, n int, now time.Time) []string {
	t.Helper()
	ms, err := s.Lease(context.Background(), n, now)
	if err != nil {
		t.Fatalf("Lease: %v", err)
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return ids
}

func eachIDs(t testing.TB, s *Store) []string {
	t.Helper()
	var ids []string
	if err := s.Each(func(m Message) bool { ids = append(ids, m.ID); return true }); err != nil {
		t.Fatalf("Each: %v", err)
	}
	return ids
}

// eventually polls cond until it holds or timeout passes and reports
// whether it held.
func eventually(timeout time.Duration, cond func() bool) bool {
	tick := time.NewTicker(time.Millisecond) // a paced poll: some conditions read /proc
	defer tick.Stop()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			return false
		}
	}
	return true
}

// holdWriter occupies the writer with a KV Set whose commit waits until
// release is called (at the latest when the test ends), so ops submitted
// meanwhile queue up into one batch. done yields the Set's result.
func holdWriter(t testing.TB, s *Store) (release func(), done <-chan error) {
	t.Helper()
	gate := make(chan struct{})
	entered := make(chan struct{}, 1)
	s.commitHook = func() error {
		select {
		case entered <- struct{}{}:
			<-gate
		default:
		}
		return nil
	}
	first := make(chan error, 1)
	go func() { first <- s.KV("x").Set(context.Background(), "k", []byte("v")) }()
	<-entered
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release) // runs before openT's Close, which would wait on the writer
	return release, first
}

// parallel runs fn(0..n-1) on workers goroutines (group commit makes bulk
// setup fast) and fails the test on the first error.
func parallel(t testing.TB, n, workers int, fn func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case err := <-errs:
			close(next)
			wg.Wait()
			t.Fatal(err)
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}
