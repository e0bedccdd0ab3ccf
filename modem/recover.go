package modem

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// recover climbs the recovery ladder after cause broke the link: resync (AT), reopen the port,
// radio off/on (AT+CFUN=0 / AT+CFUN=1), full reset (ResetCommand, default AT+CFUN=1,1), then
// "needs staff". Each step is logged once and counted in Health.Recoveries. A SIM problem skips
// the ladder (no step fixes a missing card) and needs staff at once. While it needs staff it
// retries a reopen every RetryEvery, quietly. It returns nil once the modem is ready again, or
// the error to feed back into the loop; ctx ending returns ctx.Err().
func (m *Modem) recover(ctx context.Context, cause error) error {
	m.noteError(cause)
	if errors.Is(cause, ErrSIMMissing) || errors.Is(cause, ErrSIMLocked) {
		return m.staff(ctx, cause)
	}
	m.update(func(h *Health) {
		if h.State != StateNeedsStaff {
			h.State = StateRecovering
		}
	})
	steps := []struct {
		name string
		do   func(context.Context) error
	}{
		{StepResync, m.stepResync},
		{StepReopen, m.stepReopen},
		{StepRadio, m.stepRadio},
		{StepReset, m.stepReset},
	}
	if errors.Is(cause, ErrPortGone) || errors.Is(cause, ErrNoDevice) {
		steps = steps[1:] // nothing to resync on a port that is gone
	}
	last := cause
	for _, s := range steps {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		m.update(func(h *Health) { h.Recoveries[s.name]++ })
		// Counted every time; logged once per step per repeatLogEvery (a flapping USB link or a
		// modem rebooting by itself would climb the ladder every few seconds).
		m.logLimited(slog.LevelWarn, "step "+s.name, repeatLogEvery, "modem: recovery step", "step", s.name, "cause", last)
		err := s.do(ctx)
		if err == nil {
			m.recovered(s.name)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrSIMMissing) || errors.Is(err, ErrSIMLocked) {
			return m.staff(ctx, err)
		}
		last = err
		m.noteError(err)
	}
	return m.staff(ctx, last)
}

func (m *Modem) recovered(step string) {
	m.staffLog = false
	m.logLimited(slog.LevelInfo, "recovered "+step, repeatLogEvery, "modem: recovered", "step", step)
}

// staff reports "needs staff" (logged once per episode), then tries again from a reopen every
// RetryEvery, quietly, for as long as the failure stays the same kind. It returns nil when the
// modem is ready again, or a different failure for the ladder.
func (m *Modem) staff(ctx context.Context, cause error) error {
	t := time.NewTimer(m.cfg.RetryEvery)
	defer t.Stop()
	for {
		reason := "modem does not answer: " + cause.Error()
		switch {
		case errors.Is(cause, ErrSIMMissing):
			reason = "SIM card missing"
		case errors.Is(cause, ErrSIMLocked):
			reason = "SIM locked: " + cause.Error()
		case errors.Is(cause, ErrNoDevice):
			reason = "modem not found: " + cause.Error()
		}
		m.update(func(h *Health) {
			h.State, h.NeedsStaff, h.Reason = StateNeedsStaff, true, reason
			if !m.staffLog {
				h.Recoveries[StepStaff]++
			}
		})
		if !m.staffLog { // once per episode, and once per repeatLogEvery when episodes flap
			m.staffLog = true
			m.logLimited(slog.LevelError, "staff "+errClass(cause), repeatLogEvery, "modem: needs staff", "reason", reason)
		}
		if err := m.staffWait(ctx, t, errors.Is(cause, ErrNoDevice)); err != nil {
			return err
		}
		err := m.connect(ctx, !m.linkAlive())
		if err == nil {
			m.recovered(StepStaff)
			return nil
		}
		m.noteError(err)
		if !fatal(err) && !errors.Is(err, ErrNoDevice) && !errors.Is(err, ErrSIMMissing) && !errors.Is(err, ErrSIMLocked) {
			return err
		}
		cause = err
	}
}

// staffWait waits RetryEvery; a modem that was not found is looked for every DevicePoll, so
// plugging it in is noticed at once.
func (m *Modem) staffWait(ctx context.Context, t *time.Timer, lookForDevice bool) error {
	t.Reset(m.cfg.RetryEvery)
	var poll <-chan time.Time
	if lookForDevice {
		tk := time.NewTicker(m.cfg.DevicePoll)
		defer tk.Stop()
		poll = tk.C
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		case <-poll:
			if _, err := resolve(m.cfg.Device, m.cfg.USB, m.cfg.USBPort); err == nil {
				return nil
			}
		}
	}
}

func (m *Modem) linkAlive() bool {
	eng := m.engine()
	if eng == nil {
		return false
	}
	select {
	case <-eng.Done():
		return false
	default:
		return true
	}
}

// stepResync: the port is fine, the modem may have lost track. Up to three ATs, then a full
// initialisation (the modem may have rebooted behind our back).
func (m *Modem) stepResync(ctx context.Context) error {
	if !m.linkAlive() {
		return ErrPortGone
	}
	var err error
	for i := 0; i < 3; i++ {
		if _, err = m.exec(ctx, "AT"); err == nil {
			return m.connect(ctx, false)
		}
		if !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrCommandFailed) {
			break
		}
	}
	return err
}

// stepReopen closes the port, waits for the device (re-resolving the path: after a USB
// re-enumeration the by-id link or the VID/PID match names the new tty) and initialises it.
func (m *Modem) stepReopen(ctx context.Context) error {
	m.closeEngine()
	return m.waitDevice(ctx, m.cfg.DeviceWait)
}

// waitDevice polls for the device and connects, until wait has passed.
func (m *Modem) waitDevice(ctx context.Context, wait time.Duration) error {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	poll := time.NewTicker(m.cfg.DevicePoll)
	defer poll.Stop()
	for {
		err := m.connect(ctx, true)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrNoDevice) && !errors.Is(err, ErrPortGone) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return err
		case <-poll.C:
		}
	}
}

// stepRadio switches the radio off and on, which clears many stuck network/SIM states
// (smstools' check_sim_reset = RADIO_OFF_ON).
func (m *Modem) stepRadio(ctx context.Context) error {
	if !m.linkAlive() {
		if err := m.open(); err != nil {
			return err
		}
	}
	if _, err := m.exec(ctx, "AT+CFUN=0"); err != nil {
		return err
	}
	if _, err := m.exec(ctx, "AT+CFUN=1"); err != nil {
		return err
	}
	return m.connect(ctx, false)
}

// stepReset resets the modem; it drops off USB and comes back, often under another tty name.
func (m *Modem) stepReset(ctx context.Context) error {
	if !m.linkAlive() {
		if err := m.open(); err != nil {
			return err
		}
	}
	before := m.Health().Device
	if _, err := m.exec(ctx, m.cfg.ResetCommand); err != nil && !errors.Is(err, ErrPortGone) {
		return err
	}
	m.closeEngine()
	// Give the old device time to vanish, so we do not reopen it in its last moments.
	gone := time.NewTimer(min(m.cfg.ResetWait, 15*time.Second))
	defer gone.Stop()
	poll := time.NewTicker(m.cfg.DevicePoll)
	defer poll.Stop()
wait:
	for {
		if p, err := resolve(m.cfg.Device, m.cfg.USB, m.cfg.USBPort); err != nil || p != before {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-gone.C:
			break wait
		case <-poll.C:
		}
	}
	return m.waitDevice(ctx, m.cfg.ResetWait)
}
