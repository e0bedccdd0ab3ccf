package relay

import "time"

// QuietHours is a daily window in the shop's time zone during which normal and low priority
// jobs wait. Start and End are offsets from midnight; the window may wrap midnight
// (21:00-08:00). The zero value has no quiet hours.
type QuietHours struct {
	Start, End time.Duration
	Location   *time.Location
	HighPasses bool // high priority jobs may be sent during quiet hours
}

// Until reports whether t is inside the window and, if so, when the window ends. Daylight
// saving changes are handled by computing wall-clock times in the location on the day itself.
func (q QuietHours) Until(t time.Time) (time.Time, bool) {
	if q.Start == q.End || q.Location == nil {
		return time.Time{}, false
	}
	local := t.In(q.Location)
	day := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, q.Location)
	at := func(d time.Time, off time.Duration) time.Time {
		return time.Date(d.Year(), d.Month(), d.Day(), int(off/time.Hour), int(off%time.Hour/time.Minute), 0, 0, q.Location)
	}
	if q.Start < q.End { // same-day window, e.g. 12:00-14:00
		s, e := at(day, q.Start), at(day, q.End)
		if !local.Before(s) && local.Before(e) {
			return e, true
		}
		return time.Time{}, false
	}
	// Wrapping window, e.g. 21:00-08:00: quiet from Start to midnight and from midnight to End.
	if e := at(day, q.End); local.Before(e) {
		return e, true
	}
	if s := at(day, q.Start); !local.Before(s) {
		return at(day.AddDate(0, 0, 1), q.End), true
	}
	return time.Time{}, false
}
