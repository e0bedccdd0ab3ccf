package backoff

import (
	"math"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	const maxDur = time.Duration(math.MaxInt64)
	tests := []struct {
		name       string
		attempt    int
		minD, maxD time.Duration
		r          float64
		want       time.Duration
	}{
		{"first, no jitter", 0, time.Second, time.Minute, 0, 500 * time.Millisecond},
		{"first, top jitter", 0, time.Second, time.Minute, 0.999999, 999999500 * time.Nanosecond},
		{"second", 1, time.Second, time.Minute, 0, time.Second},
		{"third, mid jitter", 2, time.Second, time.Minute, 0.5, 3 * time.Second},
		{"fourth", 3, time.Second, time.Minute, 0, 4 * time.Second},
		{"capped", 10, time.Second, time.Minute, 0, 30 * time.Second},
		{"capped, top jitter", 10, time.Second, time.Minute, 0.999999, 59999970 * time.Microsecond},
		{"attempt 100", 100, time.Second, time.Minute, 0, 30 * time.Second},
		{"attempt 1000", 1000, time.Second, 5 * time.Minute, 0.5, 225 * time.Second},
		{"attempt MaxInt", math.MaxInt, 250 * time.Millisecond, time.Hour, 1, time.Hour},
		{"negative attempt", -5, time.Second, time.Minute, 0, 500 * time.Millisecond},
		{"r clamped to 1", 0, time.Second, time.Minute, 7, time.Second},
		{"r negative", 0, time.Second, time.Minute, -1, 500 * time.Millisecond},
		{"r NaN", 0, time.Second, time.Minute, math.NaN(), 500 * time.Millisecond},
		{"cap below min", 3, time.Second, 100 * time.Millisecond, 0, 50 * time.Millisecond},
		{"zero min", 5, 0, time.Minute, 0.5, 0},
		{"zero max", 5, time.Second, 0, 0.5, 0},
		{"odd nanoseconds", 0, 3, 3, 0, 2},
		{"huge cap, attempt 1000", 1000, time.Second, maxDur, 0, maxDur - maxDur/2},
		{"huge cap, top jitter", 1000, time.Second, maxDur, 1, maxDur},
		{"huge min", 1000, maxDur, maxDur, 0.999999, maxDur - maxDur/2 + time.Duration(math.Floor(0.999999*float64(maxDur/2)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Delay(tt.attempt, tt.minD, tt.maxD, tt.r)
			if got != tt.want {
				t.Errorf("Delay(%d, %v, %v, %v) = %v, want %v", tt.attempt, tt.minD, tt.maxD, tt.r, got, tt.want)
			}
		})
	}
}

// TestDelay_spread: with r spanning [0,1) the delays cover [d/2, d) of the capped d.
func TestDelay_spread(t *testing.T) {
	lo := Delay(4, time.Second, time.Hour, 0)
	hi := Delay(4, time.Second, time.Hour, 0.9999999)
	if lo != 8*time.Second || hi < 16*time.Second-time.Millisecond || hi > 16*time.Second {
		t.Errorf("attempt 4: range [%v, %v], want [8s, ~16s]", lo, hi)
	}
}

func FuzzDelay(f *testing.F) {
	f.Add(0, int64(time.Second), int64(time.Minute), 0.5)
	f.Add(1000, int64(time.Second), int64(5*time.Minute), 0.999)
	f.Add(62, int64(1), int64(math.MaxInt64), 1.0)
	f.Add(-1, int64(-1), int64(time.Second), -0.5)
	f.Add(3, int64(time.Hour), int64(time.Millisecond), math.Inf(1))
	f.Fuzz(func(t *testing.T, attempt int, minD, maxD int64, r float64) {
		got := Delay(attempt, time.Duration(minD), time.Duration(maxD), r)
		if got < 0 {
			t.Fatalf("negative delay %v", got)
		}
		if minD <= 0 || maxD <= 0 {
			if got != 0 {
				t.Fatalf("Delay with min %d max %d = %v, want 0", minD, maxD, got)
			}
			return
		}
		if got > time.Duration(maxD) {
			t.Fatalf("delay %v above the cap %v", got, time.Duration(maxD))
		}
		// At least half of the un-jittered delay; never shorter for a later attempt.
		floor := Delay(attempt, time.Duration(minD), time.Duration(maxD), 0)
		if got < floor {
			t.Fatalf("delay %v below its fixed part %v", got, floor)
		}
		if attempt < math.MaxInt {
			if next := Delay(attempt+1, time.Duration(minD), time.Duration(maxD), r); next < got {
				t.Fatalf("attempt %d: %v, attempt %d: %v (shrank)", attempt, got, attempt+1, next)
			}
		}
	})
}
