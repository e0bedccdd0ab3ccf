package modem

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shopkit/relay/relay/redact"
)

// Config configures a Modem. Zero durations take the defaults named beside them.
type Config struct {
	// Device is the serial device, preferably /dev/serial/by-id/... (a symlink that follows the
	// modem when it re-enumerates). It wins over USB.
	Device string
	// USB selects the modem by USB ids when Device is empty; USBPort picks among the matching
	// ttys in name order (Quectel EC25 and SIMCom SIM7600 expose AT on the third: USBPort 2).
	USB     USBMatch
	USBPort int
	Baud    int // default 115200

	// PINFile holds the SIM PIN, used only when the SIM asks for one. It must not be readable by
	// group or others. A PIN the SIM refused is never retried (that would burn the PUK).
	PINFile string
	// Storage is the message storage for AT+CPMS (default "ME"; "SM" is the SIM).
	Storage string
	// NoDeliveryReports turns off the status-report request on sent SMS.
	NoDeliveryReports bool
	// ResetCommand is the full reset of the ladder (default "AT+CFUN=1,1").
	ResetCommand string

	HealthEvery      time.Duration // health poll and storage drain (30s)
	CommandTimeout   time.Duration // fixed deadline of one ordinary command (5s)
	SendTimeout      time.Duration // fixed deadline of one AT+CMGS, prompt to +CMGS (60s)
	MultipartTimeout time.Duration // hold incomplete multipart SMS this long, then hand over what came (10m)
	DedupWindow      time.Duration // remember handed-over SMS this long against re-reads (48h)
	DeviceWait       time.Duration // how long the reopen step waits for the device to come back (30s)
	ResetWait        time.Duration // how long the reset step waits for the modem to come back (90s)
	DevicePoll       time.Duration // how often to look for the device while waiting (500ms)
	RetryEvery       time.Duration // while it needs staff, try again this often (5m)

	// OnSMS receives every SMS. The message is deleted from the modem only after OnSMS returns
	// nil; an error keeps it stored and it is offered again on the next drain. It runs on the
	// modem's goroutine: hand off quickly. With OnSMS nil messages stay on the modem.
	OnSMS func(ctx context.Context, m SMS) error
	// OnReport receives delivery reports for sent SMS (also on the modem's goroutine).
	OnReport func(r DeliveryReport)

	Logger *slog.Logger
	// Now is the clock for time stamps and windows (default time.Now).
	Now func() time.Time
	// Open opens the device (default OpenSerial); tests may wrap it.
	Open func(path string, baud int) (Port, error)
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.HealthEvery, 30*time.Second)
	def(&c.CommandTimeout, 5*time.Second)
	def(&c.SendTimeout, 60*time.Second)
	def(&c.MultipartTimeout, 10*time.Minute)
	def(&c.DedupWindow, 48*time.Hour)
	def(&c.DeviceWait, 30*time.Second)
	def(&c.ResetWait, 90*time.Second)
	def(&c.DevicePoll, 500*time.Millisecond)
	def(&c.RetryEvery, 5*time.Minute)
	if c.Baud == 0 {
		c.Baud = 115200
	}
	if c.Storage == "" {
		c.Storage = "ME"
	}
	if c.ResetCommand == "" {
		c.ResetCommand = "AT+CFUN=1,1"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Open == nil {
		c.Open = OpenSerial
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// State is the modem's life-cycle state as staff see it.
type State string

// States.
const (
	StateStarting   State = "starting"
	StateReady      State = "ready"
	StateRecovering State = "recovering"
	StateNeedsStaff State = "needs_staff"
	StateStopped    State = "stopped"
)

// Identity is what the modem and SIM say about themselves.
type Identity struct {
	IMEI, ICCID, IMSI   string
	Number              string // own number, when the SIM knows it (often it does not)
	Manufacturer, Model string
	Revision            string
}

// Steps of the recovery ladder, in order.
const (
	StepResync = "resync"
	StepReopen = "reopen"
	StepRadio  = "radio_cycle"
	StepReset  = "full_reset"
	StepStaff  = "needs_staff"
)

// Health is a snapshot for status reports, the LED and metrics.
type Health struct {
	State        State
	NeedsStaff   bool
	Reason       string // why it needs staff, in words
	Device       string // the tty in use now
	Identity     Identity
	SIM          SIMState
	Signal       Signal
	Registration RegState
	Operator     string
	Tech         string // "2G".."5G"
	LastError    string
	LastErrorAt  time.Time
	PolledAt     time.Time
	// Counters since New.
	Recoveries  map[string]int // by step name
	Received    int            // SMS handed over
	Duplicates  int            // SMS re-read after a recovery and not handed over again
	Sent        int            // PDUs accepted by the network
	SendErrors  int
	BadPDUs     int
	DroppedURCs int64
}

// Modem owns one USB LTE modem: New, then Run until ctx ends. SendSMS and Health may be called
// from any goroutine.
type Modem struct {
	cfg Config
	log *slog.Logger
	enc encoder

	mu      sync.Mutex
	eng     *Engine
	h       Health
	running bool

	trouble chan error // SendSMS reports timeouts here so the Run loop starts the ladder

	// Owned by the Run goroutine.
	rx        *reassembler
	seen      map[string]time.Time
	pinBad    bool
	bootMark  int64 // URCs up to this Seq predate the last initialisation
	staffLog  bool
	netLogged netState // the network state last logged
	netEver   bool     // netLogged is set

	limit *logLimiter // rate limit of repeating log lines (any goroutine)
}

// New checks cfg and returns a Modem; it does not touch the device until Run.
func New(cfg Config) (*Modem, error) {
	if cfg.Device == "" && (cfg.USB.VID == "" || cfg.USB.PID == "") {
		return nil, fmt.Errorf("%w: set Device or USB vendor and product", ErrInvalidInput)
	}
	cfg.defaults()
	m := &Modem{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "modem"),
		trouble: make(chan error, 1),
		limit:   newLogLimiter(cfg.Now),
		rx:      newReassembler(cfg.MultipartTimeout),
		seen:    map[string]time.Time{},
	}
	m.enc.ref.n.Store(cfg.Now().UnixNano() % 255) // different concatenation refs after a restart
	m.h = Health{State: StateStarting, Recoveries: map[string]int{}}
	return m, nil
}

// Health returns a snapshot.
func (m *Modem) Health() Health {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.h
	h.Recoveries = make(map[string]int, len(m.h.Recoveries))
	for k, v := range m.h.Recoveries {
		h.Recoveries[k] = v
	}
	if m.eng != nil {
		_, d, _ := m.eng.Stats()
		h.DroppedURCs = d
	}
	return h
}

func (m *Modem) update(f func(h *Health)) {
	m.mu.Lock()
	f(&m.h)
	m.mu.Unlock()
}

func (m *Modem) noteError(err error) {
	m.update(func(h *Health) {
		h.LastError = err.Error()
		h.LastErrorAt = m.cfg.Now()
	})
}

func (m *Modem) engine() *Engine {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.eng
}

// SendSMS sends text to the E.164 number to in PDU mode, split into concatenated parts when
// long, and returns the message reference of each part (what delivery reports carry).
//
// Errors: ErrUnavailable while the modem is not ready (retry later), ErrInvalidInput, or a
// *SendError naming the part that failed and wrapping its cause (a *ResultError with the +CMS
// cause; a *CommandError with ErrTimeout, ErrPortGone or the context's error). A *SendError
// matches ErrOutcomeUnknown when sending again could duplicate what the customer gets:
//   - the failing part's PDU reached the modem (after the "> " prompt) and the command then
//     timed out, lost its port, was cancelled, or got OK without +CMGS: the SMS may have gone;
//   - an earlier part of a multipart message was accepted (+CMGS) and a later one failed, even
//     definitively (+CMS ERROR): a partial delivery. We treat it as unknown rather than as a
//     failure, because a resend repeats the parts the customer already has; the references of
//     the parts sent are returned with the error.
//
// A failure before the PDU was written (no prompt, an error answer to AT+CMGS=) or a +CMS ERROR
// for the first part is a definite failure: nothing was sent, and it does not match
// ErrOutcomeUnknown.
func (m *Modem) SendSMS(ctx context.Context, to, text string) (refs []int, err error) {
	pdus, err := m.enc.EncodeSubmit(to, text, !m.cfg.NoDeliveryReports)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	eng, state := m.eng, m.h.State
	m.mu.Unlock()
	if eng == nil || state != StateReady {
		return nil, fmt.Errorf("%w: %s", ErrUnavailable, state)
	}
	for i, p := range pdus {
		lines, err := eng.ExecPDU(ctx, "AT+CMGS="+strconv.Itoa(p.Len), p.Hex, m.cfg.SendTimeout, "+CMGS:")
		unknown := false
		if err == nil {
			var mr int
			mr, err = firstParsed(lines, "+CMGS:", parseCMGS)
			if err == nil {
				refs = append(refs, mr)
				m.update(func(h *Health) { h.Sent++ })
				continue
			}
			unknown = true // the modem said OK to the PDU: it went out, we only lack its reference
		}
		m.update(func(h *Health) { h.SendErrors++ })
		serr := &SendError{To: redact.Number(to), Part: i + 1, Parts: len(pdus), Sent: i,
			OutcomeUnknown: unknown || i > 0 || errors.Is(err, ErrOutcomeUnknown), Err: err}
		// One line per kind of failure per repeatLogEvery: with the network gone, every queued job
		// fails the same way on every retry.
		m.logLimited(slog.LevelWarn, fmt.Sprintf("send failed: %s unknown=%v", errClass(err), serr.OutcomeUnknown),
			repeatLogEvery, "modem: send failed", "to", serr.To, "part", serr.Part, "parts", serr.Parts,
			"outcome_unknown", serr.OutcomeUnknown, "err", err)
		if errors.Is(err, ErrTimeout) || errors.Is(err, ErrPortGone) {
			select {
			case m.trouble <- err:
			default:
			}
		}
		return refs, serr
	}
	m.log.Info("modem: sms sent", "to", redact.Number(to), "parts", len(pdus), "refs", refs)
	return refs, nil
}

// firstParsed parses the first line with prefix; no such line is a *ParseError.
func firstParsed[T any](lines []string, prefix string, parse func(string) (T, error)) (T, error) {
	if l, ok := first(lines, prefix); ok {
		return parse(l)
	}
	var zero T
	return zero, &ParseError{prefix, strings.Join(lines, "|")}
}

// Run owns the modem until ctx ends: it finds and opens the device, initialises it, polls
// health, receives SMS, and climbs the recovery ladder when the modem fails. It returns nil
// when ctx ends; an error only for misuse (Run called twice).
func (m *Modem) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.running {
		m.mu.Unlock()
		return errors.New("modem: Run called twice")
	}
	m.running = true
	m.mu.Unlock()
	defer func() {
		m.closeEngine()
		m.update(func(h *Health) { h.State = StateStopped })
	}()
	err := m.connect(ctx, true)
	for ctx.Err() == nil {
		if err == nil {
			err = m.serve(ctx)
			continue
		}
		err = m.recover(ctx, err)
	}
	return nil
}

func (m *Modem) closeEngine() {
	m.mu.Lock()
	eng := m.eng
	m.eng = nil
	m.mu.Unlock()
	if eng != nil {
		_ = eng.Close()
	}
}

// open resolves and opens the device and starts an engine on it.
func (m *Modem) open() error {
	m.closeEngine()
	path, err := resolve(m.cfg.Device, m.cfg.USB, m.cfg.USBPort)
	if err != nil {
		return err
	}
	p, err := m.cfg.Open(path, m.cfg.Baud)
	if err != nil {
		return err
	}
	eng := NewEngine(p, m.log)
	m.mu.Lock()
	m.eng = eng
	m.h.Device = path
	m.mu.Unlock()
	return nil
}

// connect opens (when asked) and initialises the modem, then drains its storage.
func (m *Modem) connect(ctx context.Context, reopen bool) error {
	if reopen || m.engine() == nil {
		if err := m.open(); err != nil {
			return err
		}
	}
	if err := m.initialise(ctx); err != nil {
		return err
	}
	if eng := m.engine(); eng != nil {
		m.bootMark = eng.URCSeq() // RDY/+CFUN from the boot we just initialised are old news
	}
	m.rx.reset() // the storage listing is the truth after a (re)connect
	m.poll(ctx)
	if err := m.drain(ctx); err != nil {
		return err
	}
	m.update(func(h *Health) {
		h.State, h.NeedsStaff, h.Reason = StateReady, false, ""
	})
	return nil
}

// exec runs an ordinary command on the current engine within CommandTimeout.
func (m *Modem) exec(ctx context.Context, cmd string, prefixes ...string) ([]string, error) {
	return m.execWithin(ctx, cmd, m.cfg.CommandTimeout, prefixes...)
}

// execLong runs a command whose answer may be long (a full storage listing).
func (m *Modem) execLong(ctx context.Context, cmd string, prefixes ...string) ([]string, error) {
	return m.execWithin(ctx, cmd, 3*m.cfg.CommandTimeout, prefixes...)
}

func (m *Modem) execWithin(ctx context.Context, cmd string, timeout time.Duration, prefixes ...string) ([]string, error) {
	eng := m.engine()
	if eng == nil {
		return nil, &CommandError{Command: cmd, Err: ErrPortGone}
	}
	return eng.Exec(ctx, cmd, timeout, prefixes...)
}

// fatal reports whether err means the link to the modem is broken (ladder), as opposed to the
// modem refusing one command.
func fatal(err error) bool {
	return errors.Is(err, ErrTimeout) || errors.Is(err, ErrPortGone) || errors.Is(err, ErrClosed)
}

// initialise runs the init sequence on an open engine.
func (m *Modem) initialise(ctx context.Context) error {
	// The first AT may meet a half-typed line or garbage: one retry.
	if _, err := m.exec(ctx, "AT"); err != nil {
		if _, err = m.exec(ctx, "AT"); err != nil {
			return err
		}
	}
	for _, c := range []string{"ATE0", "AT+CMEE=1"} {
		if _, err := m.exec(ctx, c); err != nil {
			return err
		}
	}
	if err := m.unlockSIM(ctx); err != nil {
		return err
	}
	m.identify(ctx)
	if _, err := m.exec(ctx, "AT+CMGF=0"); err != nil {
		return err
	}
	st := strconv.Quote(m.cfg.Storage)
	if _, err := m.exec(ctx, "AT+CPMS="+st+","+st+","+st, "+CPMS:"); err != nil {
		return err
	}
	if _, err := m.exec(ctx, "AT+CNMI=2,1,0,1,0"); err != nil {
		if fatal(err) {
			return err
		}
		if _, err := m.exec(ctx, "AT+CNMI=2,1,0,0,0"); err != nil {
			return err
		}
	}
	for _, c := range []string{"AT+CREG=2", "AT+CEREG=2"} {
		if _, err := m.exec(ctx, c); fatal(err) {
			return err
		}
	}
	return nil
}

func (m *Modem) unlockSIM(ctx context.Context) error {
	state, err := m.simState(ctx)
	if err != nil {
		return err
	}
	if state == SIMPIN && !m.pinBad && m.cfg.PINFile != "" {
		pin, perr := readPIN(m.cfg.PINFile)
		if perr != nil {
			m.setSIM(SIMPIN)
			return fmt.Errorf("%w: %w", ErrSIMLocked, perr)
		}
		if _, err := m.exec(ctx, "AT+CPIN="+strconv.Quote(pin)); err != nil {
			if fatal(err) {
				return err
			}
			if IsCME(err, 16) {
				m.pinBad = true
				m.log.Error("modem: SIM refused the PIN; not retrying (would burn the PUK)")
			}
			return fmt.Errorf("%w: %w", ErrSIMLocked, err)
		}
		m.log.Info("modem: SIM PIN accepted")
		state, err = m.simState(ctx)
		if err != nil {
			return err
		}
	}
	m.setSIM(state)
	switch state {
	case SIMReady:
		return nil
	case SIMMissing:
		return ErrSIMMissing
	}
	return fmt.Errorf("%w: %s", ErrSIMLocked, state)
}

func (m *Modem) setSIM(s SIMState) { m.update(func(h *Health) { h.SIM = s }) }

func (m *Modem) simState(ctx context.Context) (SIMState, error) {
	lines, err := m.exec(ctx, "AT+CPIN?", "+CPIN:")
	if err != nil {
		if errors.Is(err, ErrSIMMissing) {
			m.setSIM(SIMMissing)
			return SIMMissing, nil
		}
		return SIMUnknown, err
	}
	return firstParsed(lines, "+CPIN:", parseCPIN)
}

func readPIN(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("PIN file %s is readable by others (mode %v); chmod 600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	pin := strings.TrimSpace(string(b))
	if len(pin) < 4 || len(pin) > 8 || strings.Trim(pin, "0123456789") != "" {
		return "", fmt.Errorf("PIN file %s: want 4 to 8 digits", path)
	}
	return pin, nil
}

// identify reads the identity; failures leave fields empty (not every modem knows every one).
func (m *Modem) identify(ctx context.Context) {
	var id Identity
	one := func(cmd string, prefixes ...string) string {
		lines, err := m.exec(ctx, cmd, prefixes...)
		if err != nil || len(lines) == 0 {
			return ""
		}
		l := lines[0]
		for _, p := range prefixes {
			l = strings.TrimSpace(strings.TrimPrefix(l, p))
		}
		return strings.Trim(l, `"`)
	}
	id.IMEI = one("AT+CGSN")
	id.Manufacturer = one("AT+CGMI")
	id.Model = one("AT+CGMM")
	id.Revision = one("AT+CGMR")
	if id.ICCID = one("AT+QCCID", "+QCCID:"); id.ICCID == "" {
		id.ICCID = one("AT+CCID", "+CCID:", "+ICCID:")
	}
	id.IMSI = one("AT+CIMI")
	if lines, err := m.exec(ctx, "AT+CNUM", "+CNUM:"); err == nil {
		for _, l := range lines {
			if f, ok := params(l, "+CNUM:"); ok && len(f) >= 2 {
				id.Number = unquote(f[1])
			}
		}
	}
	m.update(func(h *Health) { h.Identity = id })
}

// poll reads signal, registration and operator, and logs what changed.
func (m *Modem) poll(ctx context.Context) error {
	var sig Signal
	var reg RegState = RegUnknown
	var op Operator
	var tech AccessTech = -1
	lines, err := m.exec(ctx, "AT+CSQ", "+CSQ:")
	if err != nil {
		return err
	}
	if sig, err = firstParsed(lines, "+CSQ:", parseCSQ); err != nil {
		m.log.Debug("modem: csq", "err", err)
	}
	if lines, err := m.exec(ctx, "AT+CESQ", "+CESQ:"); err == nil {
		if l, ok := first(lines, "+CESQ:"); ok {
			_ = parseCESQ(l, &sig)
		}
	} else if fatal(err) {
		return err
	}
	for _, c := range []string{"CEREG", "CREG"} {
		lines, err := m.exec(ctx, "AT+"+c+"?", "+"+c+":")
		if fatal(err) {
			return err
		}
		if l, ok := first(lines, "+"+c+":"); ok && err == nil {
			if r, perr := parseReg(l, true); perr == nil {
				if r.State.Registered() || reg == RegUnknown {
					reg = r.State
					if r.Tech >= 0 {
						tech = r.Tech
					}
				}
				if r.State.Registered() {
					break
				}
			}
		}
	}
	if lines, err := m.exec(ctx, "AT+COPS?", "+COPS:"); err == nil {
		if l, ok := first(lines, "+COPS:"); ok {
			op, _ = parseCOPS(l)
			if op.Tech >= 0 {
				tech = op.Tech
			}
		}
	} else if fatal(err) {
		return err
	}
	now := m.cfg.Now()
	m.update(func(h *Health) {
		h.Signal, h.Registration, h.Operator, h.Tech, h.PolledAt = sig, reg, op.Name, tech.String(), now
	})
	m.logNetwork()
	return nil
}

// netState is what the "modem: network" line reports.
type netState struct {
	reg            RegState
	operator, tech string
	bars           int
	known          bool
}

// logNetwork logs the network state when it differs from what was last logged. A flapping
// network must not flood the journal: registration, operator and technology changes go out at
// most every netLogEvery, a change of the signal bars alone at most every signalLogEvery. What
// is held back is not lost: every health poll compares with the last line logged, so the state
// the network settles in is logged once the window has passed.
func (m *Modem) logNetwork() {
	m.mu.Lock()
	h := m.h
	m.mu.Unlock()
	cur := netState{h.Registration, h.Operator, h.Tech, h.Signal.Bars, h.Signal.Known}
	last := m.netLogged
	if m.netEver && cur == last {
		return
	}
	key, every := "signal", signalLogEvery
	if !m.netEver || cur.reg != last.reg || cur.operator != last.operator || cur.tech != last.tech {
		key, every = "network", netLogEvery
	}
	if m.logLimited(slog.LevelInfo, key, every, "modem: network", "registration", cur.reg.String(),
		"operator", cur.operator, "tech", cur.tech, "bars", cur.bars, "rssi_dbm", h.Signal.RSSI, "rsrp_dbm", h.Signal.RSRP) {
		m.netLogged, m.netEver = cur, true
	}
}

// first returns the first line with prefix.
func first(lines []string, prefix string) (string, bool) {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return l, true
		}
	}
	return "", false
}

// serve runs the connected modem until something breaks.
func (m *Modem) serve(ctx context.Context) error {
	eng := m.engine()
	if eng == nil {
		return ErrPortGone
	}
	tick := time.NewTicker(m.cfg.HealthEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-eng.Done():
			return eng.Err()
		case err := <-m.trouble:
			// A send timed out: check the link before the next send meets the same wall.
			if _, aerr := m.exec(ctx, "AT"); aerr != nil {
				return fmt.Errorf("after send failure (%v): %w", err, aerr)
			}
		case u := <-eng.URCs():
			if err := m.urc(ctx, u); err != nil {
				return err
			}
		case <-tick.C:
			if err := m.poll(ctx); err != nil {
				return err
			}
			if err := m.drain(ctx); err != nil {
				return err
			}
		}
	}
}

// errRebooted says the modem announced a reboot (RDY): it must be initialised again.
var errRebooted = errors.New("modem: rebooted by itself")

func (m *Modem) urc(ctx context.Context, u URC) error {
	switch u.Kind {
	case URCNewSMS:
		_, idx, err := parseIndexURC(u.Line)
		if err != nil {
			m.log.Debug("modem: bad +CMTI", "line", u.Line)
			return m.drain(ctx)
		}
		return m.readIndex(ctx, idx)
	case URCReportIdx:
		_, idx, err := parseIndexURC(u.Line)
		if err == nil {
			return m.readIndex(ctx, idx)
		}
	case URCReport, URCDeliver:
		t, err := decodePDU(u.Data)
		if err != nil {
			m.badPDU(u.Data, err)
			return nil
		}
		if u.Kind == URCReport {
			m.report(t)
			return nil
		}
		return m.take(ctx, []part{{Index: -1, T: t}}, false)
	case URCReg:
		if r, err := parseReg(u.Line, false); err == nil {
			m.update(func(h *Health) { h.Registration = r.State })
			m.logNetwork()
		}
	case URCSIM:
		if st, err := parseCPIN(u.Line); err == nil && st == SIMMissing {
			m.setSIM(SIMMissing)
			return ErrSIMMissing
		}
	case URCBoot:
		if u.Line == "RDY" && u.Seq > m.bootMark {
			return errRebooted
		}
	}
	return nil
}

func (m *Modem) badPDU(h string, err error) {
	m.update(func(x *Health) { x.BadPDUs++ })
	m.logLimited(slog.LevelWarn, "bad pdu", repeatLogEvery, "modem: undecodable PDU", "pdu", clip(h), "err", err)
}
