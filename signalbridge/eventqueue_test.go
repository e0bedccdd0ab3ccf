package signalbridge

import (
	"testing"
)

// TestEventQueue_pushPop drives the hysteresis by hand: paused at the high mark, resumed only
// at the low mark, counted once per pause, order kept, nothing dropped past the mark.
func TestEventQueue_pushPop(t *testing.T) {
	type step struct {
		op         string // "push" or "pop"
		n          int
		wantQueued int
		wantPaused bool
		wantPauses uint64
	}
	tests := []struct {
		name      string
		high, low int
		steps     []step
	}{
		{"pause at high, resume at low", 4, 2, []step{
			{"push", 3, 3, false, 0},
			{"push", 1, 4, true, 1},
			{"push", 3, 7, true, 1}, // overshoot is queued, never dropped
			{"pop", 4, 3, true, 1},  // above low: still paused
			{"pop", 1, 2, false, 1}, // at low: resumed
			{"push", 1, 3, false, 1},
			{"push", 1, 4, true, 2},
			{"pop", 4, 0, false, 2},
		}},
		{"defaults low to half", 10, 0, []step{
			{"push", 10, 10, true, 1},
			{"pop", 4, 6, true, 1},
			{"pop", 1, 5, false, 1},
		}},
		{"low not below high is halved", 6, 9, []step{
			{"push", 6, 6, true, 1},
			{"pop", 3, 3, false, 1},
		}},
		{"zero high is the default", 0, 0, []step{
			{"push", DefaultEventQueueHigh - 1, DefaultEventQueueHigh - 1, false, 0},
			{"push", 1, DefaultEventQueueHigh, true, 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newEventQueue(func(Event) {}, tt.high, tt.low)
			pushed, popped := 0, 0
			for i, s := range tt.steps {
				_, changed := q.state()
				before := q.Stats().Paused
				for range s.n {
					switch s.op {
					case "push":
						q.push(&TextMessage{Timestamp: int64(pushed)})
						pushed++
					case "pop":
						ev, ok := q.pop()
						if !ok {
							t.Fatalf("step %d: pop on an empty queue", i)
						}
						if got := ev.(*TextMessage).Timestamp; got != int64(popped) {
							t.Fatalf("step %d: popped %d, want %d (order)", i, got, popped)
						}
						popped++
					}
				}
				st := q.Stats()
				if st.Queued != s.wantQueued || st.Paused != s.wantPaused || st.Pauses != s.wantPauses {
					t.Fatalf("step %d (%s %d): queued %d paused %v pauses %d, want %d %v %d",
						i, s.op, s.n, st.Queued, st.Paused, st.Pauses, s.wantQueued, s.wantPaused, s.wantPauses)
				}
				select {
				case <-changed:
					if before == st.Paused {
						t.Errorf("step %d: change signalled without a flip", i)
					}
				default:
					if before != st.Paused {
						t.Errorf("step %d: flip not signalled", i)
					}
				}
			}
		})
	}
}

// TestEventQueue_compacts: a long run through the queue reuses its array instead of growing.
func TestEventQueue_compacts(t *testing.T) {
	q := newEventQueue(func(Event) {}, 1<<20, 0)
	for i := range 100_000 {
		q.push(&TextMessage{Timestamp: int64(i)})
		if i%2 == 1 {
			q.pop()
		}
	}
	if st := q.Stats(); st.Queued != 50_000 {
		t.Fatalf("queued %d, want 50000", st.Queued)
	}
	if c := cap(q.buf); c > 4*50_000 {
		t.Errorf("backing array holds %d slots for 50000 events", c)
	}
	for i := 50_000; i < 100_000; i++ {
		ev, ok := q.pop()
		if !ok || ev.(*TextMessage).Timestamp != int64(i) {
			t.Fatalf("pop %d: %v %v", i, ev, ok)
		}
	}
}

// TestEventQueue_run hands over everything pushed before close, in order, then stops.
func TestEventQueue_run(t *testing.T) {
	var got []int64
	q := newEventQueue(func(e Event) { got = append(got, e.(*TextMessage).Timestamp) }, 3, 1)
	for i := range 10 {
		q.push(&TextMessage{Timestamp: int64(i)})
	}
	q.close()
	q.run()
	<-q.done
	if len(got) != 10 || got[0] != 0 || got[9] != 9 {
		t.Fatalf("handed over %v", got)
	}
	if st := q.Stats(); st.Delivered != 10 || st.Queued != 0 || st.Paused {
		t.Errorf("stats %+v", st)
	}
}
