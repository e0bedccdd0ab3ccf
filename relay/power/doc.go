// Package power watches the UPS HAT's GPIO lines and turns a power failure into either nothing
// (a glitch), a report (on battery), or a clean, journaled shutdown.
//
// It owns the UPS semantics: what counts as "on battery", when running on battery must end,
// and the order of the shutdown. It does not own the parts it stops: the caller hands those in
// as Steps, and the power-off command runs through an injectable Runner.
//
// # Semantics (Network UPS Tools, minus its false alarms)
//
//   - Glitch filter. A line change counts only once the line has held the new level for
//     Config.Debounce (default 5 s), on top of the kernel's contact debounce. A dip shorter than
//     that is counted (Status.Glitches) and logged, never reported and never acted on. The
//     filter is symmetric: a flicker back to mains during an outage does not cancel the grace.
//     NUT users' false shutdowns come from acting on one stale or glitched reading; here no
//     single reading does anything.
//   - On battery (filtered): Status.State becomes OnBattery, OnChange and the journal hear of it,
//     and the appliance keeps working. Back on mains (filtered): State Mains, reported the same way.
//   - Critical, as NUT's upsmon defines it: on battery AND battery low (both filtered), or on
//     battery for longer than Config.Grace (NUT needs upssched for that). Battery low while on
//     mains (a recharging battery) is reported but never shuts down. Grace 0 means "shut down as
//     soon as on battery is confirmed".
//   - Power back during the grace cancels the timer; a later outage starts a new one.
//
// # The shutdown sequence, and power returning during it
//
// Once critical, the shutdown is latched and runs these steps in order, each at most once, each
// journaled when it starts and when it ends (with its error and duration):
//
//	stop_intake → drain_in_flight (up to Config.DrainDeadline) → close_outbox → stop_signal →
//	publish_shutting_down → power_off (or reboot, see below)
//
// A step that fails or overruns its time (Config.StepTimeout; the drain has DrainDeadline) is
// journaled and the sequence moves on: a dying battery does not wait, and Badger's synced writes
// are the floor under whatever a failed step left. A step that ignores its context is abandoned
// after its deadline.
//
// Power returning at any step does not abort the sequence (like NUT once FSD is latched). Why:
// from stop_intake on, parts of the appliance are being torn down, and resuming means bringing
// each back in-process, a path that would be exercised only by rare real outages; a battery
// that just hit "low" cannot ride a second outage; and the jobs are safe either way (unacked
// ones are redelivered by the broker, acked ones are in the outbox). But powering off while
// mains is present would leave the box dark until someone presses a button: most Pi UPS HATs
// only boot the Pi again on a mains *return*, which, when mains is already back, never comes
// (NUT's "power race"). So at the final step, if the on-battery line says mains is present,
// relay runs Config.RebootCommand instead of Config.PowerOffCommand: the box comes back by itself
// in a minute, with nothing lost. The journal records "power_returned" with the step it
// happened during. Cancelling Run's context after the latch does not stop the sequence either:
// the caller's own shutdown must tolerate parts that are already stopped.
//
// An empty PowerOffCommand disables the final action altogether (no power-off, no reboot); Run
// then returns ErrShutdown and the caller exits.
//
// All timing uses the time package, so tests run it under testing/synctest; nothing sleeps.
package power
