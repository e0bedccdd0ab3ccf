package signalbridge

import (
	"sync"
)

// Defaults for the incoming event queue (ClientOptions.EventQueueHigh / EventQueueLow).
const (
	DefaultEventQueueHigh = 1000
)

// EventStats describes the incoming event queue between signal-cli and OnEvent.
type EventStats struct {
	// Queued is the number of events waiting for OnEvent now (not counting one being handled).
	Queued int
	// MaxQueued is the most that ever waited at once. It stays at or a little above the high
	// mark: events already on the wire when receiving paused are queued too (never dropped).
	MaxQueued int
	// Paused is true while the queue is full: it reached the high mark and has not yet drained
	// to the low mark. Receiving from signal-cli is paused meanwhile (unsubscribed), so new
	// messages wait at signal-cli / the Signal server.
	Paused bool
	// Pauses counts how often the queue filled up (paused receiving).
	Pauses uint64
	// Delivered counts events handed to OnEvent.
	Delivered uint64
}

// eventQueue holds incoming events between the connection reader(s) and OnEvent. It never
// blocks the reader and never drops an event; it is kept small by flow control instead: when it
// reaches high it turns paused (the Client then unsubscribes), and when it drains to low it
// turns unpaused again (the Client subscribes again). One queue may outlive many connections
// (the Supervisor shares one across restarts).
type eventQueue struct {
	handler   func(Event)
	high, low int

	mu      sync.Mutex
	buf     []Event
	head    int
	paused  bool
	changed chan struct{} // closed and replaced whenever paused flips
	closed  bool
	stats   EventStats

	wake chan struct{} // to the dispatcher: something was pushed, or closed
	done chan struct{} // closed when the dispatcher has handed over everything and stopped
}

func newEventQueue(handler func(Event), high, low int) *eventQueue {
	if high <= 0 {
		high = DefaultEventQueueHigh
	}
	if low <= 0 || low >= high {
		low = high / 2
	}
	return &eventQueue{handler: handler, high: high, low: low, changed: make(chan struct{}),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func (q *eventQueue) lenLocked() int { return len(q.buf) - q.head }

// flipLocked sets paused and wakes whoever waits for a change.
func (q *eventQueue) flipLocked(paused bool) {
	q.paused = paused
	if paused {
		q.stats.Pauses++
	}
	close(q.changed)
	q.changed = make(chan struct{})
}

// push appends ev. It never blocks and never drops.
func (q *eventQueue) push(ev Event) {
	q.mu.Lock()
	q.buf = append(q.buf, ev)
	n := q.lenLocked()
	if n > q.stats.MaxQueued {
		q.stats.MaxQueued = n
	}
	if n >= q.high && !q.paused {
		q.flipLocked(true)
	}
	q.mu.Unlock()
	q.wakeRun()
}

// wakeRun tells run to look again (without blocking: one pending wake-up is enough).
func (q *eventQueue) wakeRun() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop takes the oldest event, or reports false when the queue is empty.
func (q *eventQueue) pop() (Event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.lenLocked() == 0 {
		return nil, false
	}
	ev := q.buf[q.head]
	q.buf[q.head] = nil // let the handled event be collected
	q.head++
	switch {
	case q.head == len(q.buf):
		q.buf, q.head = q.buf[:0], 0
	case q.head >= 256 && q.head*2 >= len(q.buf):
		// Most of the backing array is handled events: move the rest down so the array is
		// reused instead of growing with every burst.
		n := copy(q.buf, q.buf[q.head:])
		clear(q.buf[n:])
		q.buf, q.head = q.buf[:n], 0
	}
	if q.paused && q.lenLocked() <= q.low {
		q.flipLocked(false)
	}
	return ev, true
}

// state tells whether the queue is paused, and gives a channel closed at the next change.
func (q *eventQueue) state() (paused bool, changed <-chan struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.paused, q.changed
}

func (q *eventQueue) Stats() EventStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.stats
	s.Queued, s.Paused = q.lenLocked(), q.paused
	return s
}

// run hands events to the handler in order until close, then hands over what is left and
// closes done.
func (q *eventQueue) run() {
	defer close(q.done)
	for {
		if ev, ok := q.pop(); ok {
			q.handler(ev)
			q.mu.Lock()
			q.stats.Delivered++
			q.mu.Unlock()
			continue
		}
		q.mu.Lock()
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return
		}
		<-q.wake
	}
}

// close makes run return once the queue is empty. Events pushed before close are delivered.
func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.wakeRun()
}
