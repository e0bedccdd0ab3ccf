package backoff

import (
	"math"
	"time"
)

// Delay is the wait before retry number attempt (0 = the first retry): minD doubled attempt
// times, capped at maxD, with "equal jitter": half of it fixed and half random, i.e. a value in
// [d/2, d] for the capped d. Boxes or jobs that failed together (a shared outage) therefore
// retry spread out instead of all at once, while each still waits at least d/2.
//
// r is the random part, from [0, 1) (e.g. rand.Float64()); values outside are clamped (NaN
// counts as 0). A negative attempt counts as 0. The cap wins over the minimum: with maxD < minD
// every delay is at most maxD. With minD <= 0 or maxD <= 0 the delay is 0 (retry at once).
func Delay(attempt int, minD, maxD time.Duration, r float64) time.Duration {
	if minD <= 0 || maxD <= 0 {
		return 0
	}
	d := min(minD, maxD)
	for i := 0; i < attempt && d < maxD; i++ {
		if d > maxD/2 { // doubling would pass the cap (or overflow): the cap it is
			d = maxD
			break
		}
		d *= 2
	}
	switch {
	case r > 0 && r < 1:
	case r >= 1:
		r = 1
	default: // r <= 0 or NaN
		r = 0
	}
	half := d / 2
	fixed := d - half // ceil(d/2): an odd d keeps its last nanosecond in the fixed part
	j := time.Duration(math.Floor(r * float64(half)))
	if j > half { // float64 rounding near the top of the range
		j = half
	}
	return fixed + j
}
