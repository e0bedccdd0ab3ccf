package modem

import (
	"context"
	"log/slog"
	"strconv"

	"github.com/shopkit/relay/relay/redact"
	"github.com/warthog618/sms/encoding/tpdu"
)

// drain lists everything stored (AT+CMGL=4) and processes it: at start-up, after recovery, on
// every health tick (so a +CMTI lost in a flood or during recovery is found), and when a +CMTI
// could not be parsed.
func (m *Modem) drain(ctx context.Context) error {
	lines, err := m.execLong(ctx, "AT+CMGL=4", "+CMGL:")
	if err != nil {
		if fatal(err) {
			return err
		}
		m.logLimited(slog.LevelWarn, "list: "+errClass(err), repeatLogEvery, "modem: listing messages failed", "err", err)
		return nil
	}
	var parts []part
	for i := 0; i < len(lines); i++ {
		e, err := parseCMGL(lines[i])
		if err != nil {
			continue
		}
		if i+1 >= len(lines) || !isHex(lines[i+1]) {
			m.logLimited(slog.LevelWarn, "list entry", repeatLogEvery, "modem: listing entry without PDU", "index", e.Index)
			continue
		}
		i++
		if m.rx.holds(e.Index) {
			continue
		}
		t, err := decodePDU(lines[i])
		if err != nil {
			m.badPDU(lines[i], err)
			m.delete(ctx, e.Index)
			continue
		}
		parts = append(parts, part{Index: e.Index, T: t})
	}
	for _, p := range parts {
		if err := m.one(ctx, p); err != nil {
			return err
		}
	}
	for _, ps := range m.rx.expired(m.cfg.Now()) {
		m.log.Warn("modem: multipart SMS incomplete at timeout; handing over what arrived",
			"from", redact.Number(ps[0].T.OA.Number()), "parts", len(ps))
		if err := m.take(ctx, ps, true); err != nil {
			return err
		}
	}
	m.prune()
	return nil
}

// readIndex reads one stored message after +CMTI.
func (m *Modem) readIndex(ctx context.Context, idx int) error {
	if m.rx.holds(idx) {
		return nil
	}
	lines, err := m.exec(ctx, "AT+CMGR="+strconv.Itoa(idx), "+CMGR:")
	if err != nil {
		if fatal(err) {
			return err
		}
		m.log.Debug("modem: read failed", "index", idx, "err", err)
		return nil
	}
	for i, l := range lines {
		if _, perr := parseCMGR(l); perr == nil && i+1 < len(lines) && isHex(lines[i+1]) {
			t, err := decodePDU(lines[i+1])
			if err != nil {
				m.badPDU(lines[i+1], err)
				m.delete(ctx, idx)
				return nil
			}
			return m.one(ctx, part{Index: idx, T: t})
		}
	}
	return nil
}

// one routes one stored PDU: status reports to OnReport, SMS parts to reassembly.
func (m *Modem) one(ctx context.Context, p part) error {
	if p.T.SmsType() == tpdu.SmsStatusReport {
		m.report(p.T)
		return m.deleteFatal(ctx, p.Index)
	}
	if p.T.SmsType() != tpdu.SmsDeliver {
		// Our own stored submits or other types: not ours to consume; leave them.
		return nil
	}
	if whole := m.rx.add(p, m.cfg.Now()); whole != nil {
		return m.take(ctx, whole, false)
	}
	return nil
}

func (m *Modem) report(t *tpdu.TPDU) {
	r, err := reportFrom(t)
	if err != nil {
		return
	}
	m.log.Info("modem: delivery report", "ref", r.Ref, "to", redact.Number(r.To), "status", r.Status, "delivered", r.Delivered)
	if m.cfg.OnReport != nil {
		m.cfg.OnReport(r)
	}
}

// take hands a complete (or timed-out) message to OnSMS and deletes its parts only after OnSMS
// returned nil. A message already handed over within DedupWindow (read again because the modem
// died between hand-over and delete) is deleted without a second hand-over.
func (m *Modem) take(ctx context.Context, parts []part, incomplete bool) error {
	msg, err := message(parts, incomplete)
	if err != nil {
		for _, p := range parts {
			m.badPDU(strconv.Itoa(p.Index), err)
			if err := m.deleteFatal(ctx, p.Index); err != nil {
				return err
			}
		}
		return nil
	}
	if at, dup := m.seen[msg.ID]; dup && m.cfg.Now().Sub(at) < m.cfg.DedupWindow {
		m.update(func(h *Health) { h.Duplicates++ })
		m.logLimited(slog.LevelInfo, "reread", repeatLogEvery, "modem: sms read again after recovery; deleting without a second hand-over",
			"from", redact.Number(msg.From), "id", msg.ID)
		return m.deleteParts(ctx, parts)
	}
	if m.cfg.OnSMS == nil {
		return nil
	}
	if err := m.cfg.OnSMS(ctx, msg); err != nil {
		// Offered again on every drain until the relay takes it: once per window is enough.
		m.logLimited(slog.LevelWarn, "handover", repeatLogEvery, "modem: sms hand-over failed; kept on the modem",
			"from", redact.Number(msg.From), "err", err)
		return nil
	}
	m.seen[msg.ID] = m.cfg.Now()
	m.update(func(h *Health) { h.Received++ })
	m.log.Info("modem: sms received", "from", redact.Number(msg.From), "parts", msg.Parts, "id", msg.ID)
	return m.deleteParts(ctx, parts)
}

func (m *Modem) deleteParts(ctx context.Context, parts []part) error {
	for _, p := range parts {
		if err := m.deleteFatal(ctx, p.Index); err != nil {
			return err
		}
	}
	return nil
}

// deleteFatal deletes a stored message; it returns only link failures.
func (m *Modem) deleteFatal(ctx context.Context, idx int) error {
	if idx < 0 {
		return nil // delivered directly (+CMT), never stored
	}
	if _, err := m.exec(ctx, "AT+CMGD="+strconv.Itoa(idx)); err != nil {
		if fatal(err) {
			return err
		}
		m.logLimited(slog.LevelWarn, "delete: "+errClass(err), repeatLogEvery, "modem: delete failed", "index", idx, "err", err)
	}
	return nil
}

func (m *Modem) delete(ctx context.Context, idx int) { _ = m.deleteFatal(ctx, idx) }

// prune forgets hand-overs older than the dedup window.
func (m *Modem) prune() {
	now := m.cfg.Now()
	for id, at := range m.seen {
		if now.Sub(at) >= m.cfg.DedupWindow {
			delete(m.seen, id)
		}
	}
}
