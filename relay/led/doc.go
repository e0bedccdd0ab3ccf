// Package led drives the one status LED staff look at.
//
// It owns the patterns (what the LED does for each appliance state), their timing, and the
// goroutine that blinks the output. It does not decide the state: the health roll-up calls Set
// (Highest helps it pick when several states hold at once).
//
// Every pattern keeps the LED changing at least every two seconds, so an LED stuck on or stuck
// off always means "relayd is not running (or hung)", never a state. Patterns differ in rhythm,
// not only speed, so staff can tell them apart without a stopwatch: a short dark wink (healthy),
// an even 2 Hz blink (starting), an even slow 1 s blink (degraded), a double flash (staff
// needed), a short blip in the dark (on battery, which also saves the battery), a rapid flicker
// (shutting down).
//
// Set never blocks and a new pattern starts at once, from its first step. Errors driving the
// output are logged on change (not per blink) and the driver keeps going: a LED is not worth
// stopping for. When Run ends it turns the LED off.
package led
