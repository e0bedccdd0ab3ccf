package gpio

import (
	"sync"
	"sync/atomic"
)

// DefaultQueueSize is how many changes an input holds for a slow consumer. A UPS contact
// changes a few times an hour; 16 covers a burst of bounces that got past the debounce.
const DefaultQueueSize = 16

// Queue hands changes from one producer (go-gpiocdev's watcher goroutine, or a fake) to one
// consumer without ever blocking the producer. When full, it drops the oldest change and counts
// it, so the newest level always gets through.
type Queue struct {
	ch      chan Change
	dropped atomic.Uint64
	once    sync.Once
}

// NewQueue returns a Queue holding up to size changes (DefaultQueueSize when size < 1).
func NewQueue(size int) *Queue {
	if size < 1 {
		size = DefaultQueueSize
	}
	return &Queue{ch: make(chan Change, size)}
}

// Offer queues c without blocking. Only one goroutine may call Offer, and never after Close.
func (q *Queue) Offer(c Change) {
	for {
		select {
		case q.ch <- c:
			return
		default:
		}
		select { // full: make room by dropping the oldest
		case <-q.ch:
			q.dropped.Add(1)
		default:
		}
	}
}

// Lost counts n changes lost before they reached the queue (kernel sequence-number gaps).
func (q *Queue) Lost(n uint64) { q.dropped.Add(n) }

// C is the consumer's side; it is closed by Close.
func (q *Queue) C() <-chan Change { return q.ch }

// Dropped is the number of changes dropped or lost so far.
func (q *Queue) Dropped() uint64 { return q.dropped.Load() }

// Close closes C. Call it only once the producer has stopped; later calls do nothing.
func (q *Queue) Close() { q.once.Do(func() { close(q.ch) }) }
