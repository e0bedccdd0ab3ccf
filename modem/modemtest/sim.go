package modemtest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"
	"golang.org/x/sys/unix"
)

// SIM states of the simulated card.
const (
	SIMReady   = "READY"
	SIMPIN     = "SIM PIN"
	SIMMissing = "NOT INSERTED"
)

// Options configure a simulator. The zero value is a cold Quectel-like modem: echo on, SIM
// ready, registered at home on LTE with a fair signal.
type Options struct {
	// Link, when set, is a symlink kept pointing at the current slave (like
	// /dev/serial/by-id/usb-Quectel_EC25-if02-port0): removed on unplug, recreated on replug.
	Link     string
	SIM      string // SIMReady (default), SIMPIN or SIMMissing
	PIN      string // the PIN the card wants when SIM is SIMPIN
	IMEI     string
	ICCID    string
	IMSI     string
	Own      string // own number (AT+CNUM); empty: the SIM does not know it
	Operator string
	// Reports: answer SMS-SUBMITs that ask for a status report with a +CDS URC.
	Reports bool
	// Now stamps delivered SMS; nil means time.Now.
	Now func() time.Time
}

// Sim is a modem simulator on a real pseudo-terminal: the code under test opens Path() (or
// Options.Link) through go.bug.st/serial exactly as it would open /dev/ttyUSB2. It speaks enough
// of 3GPP TS 27.005/27.007 in PDU mode for relay's modem package, like a Quectel EC25 / SIMCom
// SIM7600, and can misbehave on demand.
//
// All methods are safe for concurrent use. Hooks run on the simulator's goroutine.
type Sim struct {
	opts Options

	fdMu     sync.RWMutex // held for reading while writing to master; for writing while closing it
	mu       sync.Mutex
	master   int
	keep     int
	slave    string
	wakeR    int
	wakeW    int
	running  chan struct{} // closed when the current reader stops
	plugged  bool
	unplugs  int
	names    []string
	commands []string

	echo      bool
	sim       string
	cfun      int
	reg       int
	tech      int
	csq       int
	rsrp      int
	rsrq      int
	store     map[int]stored
	nextMR    int
	cmgsLen   int // >0 while in PDU entry after AT+CMGS=<n>
	pduBuf    []byte
	stall     int // commands still to ignore; <0 forever
	flood     int // URCs between reply lines
	floodFor  int // replies still flooded
	garbage   []byte
	failSend  []int       // +CMS causes for the next sends
	failPart  map[int]int // concatenation seq → +CMS cause, once
	stallPDU  int         // PDUs still to take (and send) without an answer
	unplugPDU bool        // drop off the bus after taking the next PDU
	pduHook   func(pdu string)
	sent      []SentPDU
	hook      func(cmd string)
	inHook    atomic.Bool
	unplugRq  bool
}

type stored struct {
	pdu  string // hex with SMSC field
	stat int
}

// SentPDU is one SMS-SUBMIT the modem accepted.
type SentPDU struct {
	To     string
	Text   string // this part's text
	MR     int    // the reference the simulator returned in +CMGS
	Ref    int    // concatenation reference (0 for a single SMS)
	Seq    int    // 1..Total
	Total  int
	Report bool // status report requested
	PDU    string
}

// New creates a simulator and plugs it in.
func New(opts Options) (*Sim, error) {
	if opts.SIM == "" {
		opts.SIM = SIMReady
	}
	if opts.IMEI == "" {
		opts.IMEI = "861234567890123"
	}
	if opts.ICCID == "" {
		opts.ICCID = "89490200001234567890"
	}
	if opts.IMSI == "" {
		opts.IMSI = "262011234567890"
	}
	if opts.Operator == "" {
		opts.Operator = "Telekom.de"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Sim{opts: opts, echo: true, sim: opts.SIM, cfun: 1, reg: 1, tech: 7, csq: 20, rsrp: 45, rsrq: 20,
		store: map[int]stored{}, nextMR: 1, master: -1, keep: -1}
	if err := s.plug(false); err != nil {
		return nil, err
	}
	return s, nil
}

// Path is the current slave device (/dev/pts/N); it changes on every replug.
func (s *Sim) Path() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.slave
}

// Names lists every slave path the simulator has used, in order.
func (s *Sim) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.names...)
}

// Commands lists the commands received (without CR), in order.
func (s *Sim) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

// CountCommand says how many received commands start with prefix.
func (s *Sim) CountCommand(prefix string) int {
	n := 0
	for _, c := range s.Commands() {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func (s *Sim) plug(boot bool) error {
	master, slave, keep, err := openPTY()
	if err != nil {
		return err
	}
	// Make sure the modem comes back under another name, as a re-enumerated ttyUSB does.
	s.mu.Lock()
	same := len(s.names) > 0 && s.names[len(s.names)-1] == slave
	s.mu.Unlock()
	if same {
		m2, sl2, k2, err := openPTY()
		unix.Close(keep)
		unix.Close(master)
		if err != nil {
			return err
		}
		master, slave, keep = m2, sl2, k2
	}
	s.mu.Lock()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		s.mu.Unlock()
		unix.Close(master)
		unix.Close(keep)
		return err
	}
	s.master, s.keep, s.slave, s.wakeR, s.wakeW = master, keep, slave, p[0], p[1]
	s.names = append(s.names, slave)
	s.plugged = true
	s.unplugRq = false
	s.running = make(chan struct{})
	running := s.running
	if boot {
		s.echo, s.cfun, s.cmgsLen, s.pduBuf = true, 1, 0, nil
		if s.sim == SIMReady {
			s.reg = 1
		}
	}
	link := s.opts.Link
	s.mu.Unlock()
	if link != "" {
		_ = os.MkdirAll(filepath.Dir(link), 0o755)
		_ = os.Remove(link)
		if err := os.Symlink(slave, link); err != nil {
			return fmt.Errorf("symlink %s: %w", link, err)
		}
	}
	if boot {
		s.urc("RDY")
		s.urc("+CFUN: 1")
		s.urc("+CPIN: " + s.simState())
	}
	go s.reader(master, p[0], running)
	return nil
}

func (s *Sim) simState() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sim
}

// Unplug pulls the modem off the bus: the master side closes (the client's reads fail with
// go.bug.st/serial's PortClosed, its writes with EIO), the slave path disappears, and the link
// is removed. Safe from a hook (the command being processed stays unanswered).
func (s *Sim) Unplug() { s.unplug(!s.inHook.Load()) }

// unplug requests the unplug; wait says to wait for the reader to stop (never on its own goroutine).
func (s *Sim) unplug(wait bool) {
	s.mu.Lock()
	if !s.plugged {
		s.mu.Unlock()
		return
	}
	s.plugged = false
	s.unplugRq = true
	running, wake, link := s.running, s.wakeW, s.opts.Link
	s.mu.Unlock()
	if link != "" {
		_ = os.Remove(link)
	}
	_, _ = unix.Write(wake, []byte{1})
	if wait {
		<-running
	}
}

// Replug brings the modem back as after a USB re-enumeration: a new pty under a new name
// (and the link re-pointed), a rebooted modem (echo on, RDY/+CFUN/+CPIN URCs), SMS storage kept.
func (s *Sim) Replug() error {
	s.mu.Lock()
	plugged := s.plugged
	s.mu.Unlock()
	if plugged {
		return errors.New("modemtest: already plugged")
	}
	return s.plug(true)
}

// Unplugs counts how often the modem went off the bus (Unplug or its own reset).
func (s *Sim) Unplugs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unplugs
}

// Close unplugs the simulator for good and removes the link.
func (s *Sim) Close() error {
	s.Unplug()
	return nil
}

// OnCommand installs a hook called with every command line before it is answered (nil removes
// it). It runs on the simulator's goroutine and may call any method, including Unplug.
func (s *Sim) OnCommand(f func(cmd string)) {
	s.mu.Lock()
	s.hook = f
	s.mu.Unlock()
}

// Stall makes the modem ignore the next n commands (n < 0: all of them, until Unstall).
func (s *Sim) Stall(n int) {
	s.mu.Lock()
	s.stall = n
	s.mu.Unlock()
}

// Unstall ends a stall.
func (s *Sim) Unstall() { s.Stall(0) }

// Flood inserts n URCs (^RSSI, +CREG, RING, ^BOOT, +CMTI-free noise) between every two lines of
// the next replies replies, including before the final result.
func (s *Sim) Flood(n, replies int) {
	s.mu.Lock()
	s.flood, s.floodFor = n, replies
	s.mu.Unlock()
}

// Garbage writes raw bytes to the line now (line noise, a baud mismatch).
func (s *Sim) Garbage(b []byte) { s.write(b) }

// GarbageInNextReply puts b in the middle of the next reply.
func (s *Sim) GarbageInNextReply(b []byte) {
	s.mu.Lock()
	s.garbage = append([]byte(nil), b...)
	s.mu.Unlock()
}

// FailSends makes the next sends fail with +CMS ERROR: code, once per code given.
func (s *Sim) FailSends(codes ...int) {
	s.mu.Lock()
	s.failSend = append(s.failSend, codes...)
	s.mu.Unlock()
}

// FailPart makes the next PDU that is part seq of its message (1 for a single-part SMS) fail
// with +CMS ERROR: code, once. The other parts go through.
func (s *Sim) FailPart(seq, code int) {
	s.mu.Lock()
	if s.failPart == nil {
		s.failPart = map[int]int{}
	}
	s.failPart[seq] = code
	s.mu.Unlock()
}

// StallAfterPDU makes the modem take the next n PDUs after their Ctrl-Z and send them (they show
// in Sent) but never answer +CMGS: the firmware hangs between the radio and the reply. Other
// commands are answered as usual.
func (s *Sim) StallAfterPDU(n int) {
	s.mu.Lock()
	s.stallPDU = n
	s.mu.Unlock()
}

// UnplugAfterPDU makes the modem take the next PDU, send it (it shows in Sent), and drop off the
// bus before answering +CMGS, as a modem that resets while sending does.
func (s *Sim) UnplugAfterPDU() {
	s.mu.Lock()
	s.unplugPDU = true
	s.mu.Unlock()
}

// OnPDU installs a hook called with every PDU (hex, as received) when its Ctrl-Z arrives, before
// the modem acts on it (nil removes it). It runs on the simulator's goroutine and may call any
// method: Stall (the PDU is then neither sent nor answered), StallAfterPDU, FailPart, Unplug.
func (s *Sim) OnPDU(f func(pdu string)) {
	s.mu.Lock()
	s.pduHook = f
	s.mu.Unlock()
}

// SetSignal sets the CSQ rssi (0..31, 99 unknown).
func (s *Sim) SetSignal(csq int) {
	s.mu.Lock()
	s.csq = csq
	s.mu.Unlock()
}

// SetRegistration sets the registration state (0..5) and emits +CREG/+CEREG URCs.
func (s *Sim) SetRegistration(stat int) {
	s.mu.Lock()
	s.reg = stat
	s.mu.Unlock()
	s.urc(fmt.Sprintf("+CREG: %d", stat))
	s.urc(fmt.Sprintf(`+CEREG: %d,"1A2B","01C4D2E3",7`, stat))
}

// RemoveSIM takes the card out; InsertSIM puts a ready one back.
func (s *Sim) RemoveSIM() {
	s.mu.Lock()
	s.sim, s.reg = SIMMissing, 0
	s.mu.Unlock()
	s.urc("+CPIN: NOT INSERTED")
}

// InsertSIM puts a ready card in.
func (s *Sim) InsertSIM() {
	s.mu.Lock()
	s.sim, s.reg = SIMReady, 1
	s.mu.Unlock()
	s.urc("+CPIN: READY")
}

// Stored returns the storage indices that hold a message, in order.
func (s *Sim) Stored() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for i := range s.store {
		out = append(out, i)
	}
	sort.Ints(out)
	return out
}

// Sent returns the SMS-SUBMIT PDUs accepted so far.
func (s *Sim) Sent() []SentPDU {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SentPDU(nil), s.sent...)
}

// SentTexts reassembles the sent PDUs per recipient and concatenation reference.
func (s *Sim) SentTexts() []string {
	var out []string
	parts := map[string][]SentPDU{}
	for _, p := range s.Sent() {
		if p.Total <= 1 {
			out = append(out, p.Text)
			continue
		}
		k := p.To + "/" + strconv.Itoa(p.Ref)
		parts[k] = append(parts[k], p)
		if len(parts[k]) == p.Total {
			ps := parts[k]
			sort.Slice(ps, func(i, j int) bool { return ps[i].Seq < ps[j].Seq })
			var b strings.Builder
			for _, q := range ps {
				b.WriteString(q.Text)
			}
			out = append(out, b.String())
			delete(parts, k)
		}
	}
	return out
}

// EncodeDeliver encodes text from sender as SMS-DELIVER PDUs in modem form (hex with an SMSC
// field): one for a short text, several concatenated ones for a long text (GSM 7-bit, or UCS-2
// when the text needs it).
func EncodeDeliver(from, text string, at time.Time, ref int) ([]string, error) {
	t, err := tpdu.NewDeliver()
	if err != nil {
		return nil, err
	}
	t.SCTS = tpdu.Timestamp{Time: at.Truncate(time.Second)}
	enc := sms.NewEncoder(sms.WithTemplate(*t), sms.From(from))
	c := fixedCounter(ref)
	enc.ConcatRef = &c
	tpdus, err := enc.Encode([]byte(text))
	if err != nil {
		return nil, err
	}
	smsc := pdumode.SMSCAddress{}
	smsc.SetNumber("+491710760000")
	var out []string
	for i := range tpdus {
		b, err := tpdus[i].MarshalBinary()
		if err != nil {
			return nil, err
		}
		p := pdumode.PDU{SMSC: smsc, TPDU: b}
		h, err := p.MarshalHexString()
		if err != nil {
			return nil, err
		}
		out = append(out, strings.ToUpper(h))
	}
	return out, nil
}

type fixedCounter int

func (c *fixedCounter) Count() int { return int(*c) }

var deliverRef atomic.Int64

// Deliver receives an SMS: it is encoded, stored part by part, and announced with +CMTI per
// part (when the modem is plugged, not stalled, radio on, SIM ready). It returns the indices.
func (s *Sim) Deliver(from, text string) ([]int, error) {
	pdus, err := EncodeDeliver(from, text, s.opts.Now(), int(deliverRef.Add(1)%250)+1)
	if err != nil {
		return nil, err
	}
	var idx []int
	for _, p := range pdus {
		idx = append(idx, s.StorePDU(p))
	}
	return idx, nil
}

// StorePDU stores one received PDU (hex, with SMSC field) and announces it with +CMTI.
func (s *Sim) StorePDU(pdu string) int {
	s.mu.Lock()
	i := 0
	for {
		if _, used := s.store[i]; !used {
			break
		}
		i++
	}
	s.store[i] = stored{pdu: pdu, stat: 0}
	notify := s.plugged && s.stall == 0 && s.sim == SIMReady
	s.mu.Unlock()
	if notify {
		s.urc(fmt.Sprintf(`+CMTI: "ME",%d`, i))
	}
	return i
}

func (s *Sim) urc(line string) { s.write([]byte("\r\n" + line + "\r\n")) }

func (s *Sim) write(b []byte) {
	s.fdMu.RLock()
	defer s.fdMu.RUnlock()
	s.mu.Lock()
	fd, ok := s.master, s.plugged
	s.mu.Unlock()
	if !ok {
		return
	}
	_ = writeAll(fd, b)
}

// reader is the modem's firmware loop for one plug-in period.
func (s *Sim) reader(master, wake int, running chan struct{}) {
	defer func() {
		s.fdMu.Lock()
		defer s.fdMu.Unlock()
		s.mu.Lock()
		s.plugged = false
		unix.Close(s.wakeR)
		unix.Close(s.wakeW)
		unix.Close(s.keep)
		unix.Close(master)
		s.master, s.keep = -1, -1
		s.unplugs++
		s.mu.Unlock()
		close(running)
	}()
	buf := make([]byte, 1024)
	var line []byte
	fds := []unix.PollFd{{Fd: int32(master), Events: unix.POLLIN}, {Fd: int32(wake), Events: unix.POLLIN}}
	for {
		fds[0].Revents, fds[1].Revents = 0, 0
		if _, err := unix.Poll(fds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			return
		}
		if fds[1].Revents != 0 {
			return
		}
		n, err := unix.Read(master, buf)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return
		}
		// Only this goroutine enters or leaves PDU entry, so the state is read once per change.
		inPDU := s.inPDU()
		for _, c := range buf[:n] {
			if inPDU {
				switch c {
				case 0x1a:
					if s.submit() {
						return
					}
					inPDU = false
				case 0x1b:
					s.mu.Lock()
					s.cmgsLen, s.pduBuf = 0, nil
					s.mu.Unlock()
					inPDU = false
				case '\r', '\n':
				default:
					s.mu.Lock()
					s.pduBuf = append(s.pduBuf, c)
					s.mu.Unlock()
				}
				continue
			}
			if c == '\r' {
				if s.command(string(line)) {
					return
				}
				line = line[:0]
				inPDU = s.inPDU()
				continue
			}
			switch {
			case c == 0x1b: // ESC aborts whatever was typed
				line = line[:0]
			case c != '\n':
				line = append(line, c)
			}
		}
	}
}

func (s *Sim) inPDU() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmgsLen > 0
}

// command handles one command line; it returns true when the modem went off the bus.
func (s *Sim) command(raw string) (gone bool) {
	cmd := strings.TrimSpace(raw)
	if cmd == "" {
		return false
	}
	s.mu.Lock()
	s.commands = append(s.commands, cmd)
	hook := s.hook
	s.mu.Unlock()
	s.runHook(hook, cmd)
	s.mu.Lock()
	if s.unplugRq {
		s.mu.Unlock()
		return true
	}
	if s.stall != 0 {
		if s.stall > 0 {
			s.stall--
		}
		s.mu.Unlock()
		return false
	}
	echo := s.echo
	s.mu.Unlock()
	if echo {
		s.write([]byte(raw + "\r"))
	}
	lines, final, after := s.answer(cmd)
	s.reply(lines, final)
	if after != nil {
		after()
	}
	s.mu.Lock()
	gone = s.unplugRq
	s.mu.Unlock()
	return gone
}

// runHook calls a test's hook, if any, on the reader goroutine; while it runs, Unplug knows
// not to wait for the reader.
func (s *Sim) runHook(hook func(string), arg string) {
	if hook == nil {
		return
	}
	s.inHook.Store(true)
	defer s.inHook.Store(false)
	hook(arg)
}

var floodLines = []string{"^RSSI: 17", "+CREG: 1", "RING", "^BOOT:12345,0,0,0,72", "+QIND: \"csq\",20,99", "^MODE:5,4"}

func (s *Sim) reply(lines []string, final string) {
	s.mu.Lock()
	flood := 0
	if s.floodFor > 0 {
		flood = s.flood
		s.floodFor--
	}
	garbage := s.garbage
	s.garbage = nil
	s.mu.Unlock()
	var b strings.Builder
	noise := func() {
		for i := 0; i < flood; i++ {
			b.WriteString("\r\n" + floodLines[i%len(floodLines)] + "\r\n")
		}
	}
	for i, l := range lines {
		if i > 0 {
			noise()
		}
		b.WriteString("\r\n" + l + "\r\n")
		if i == 0 && garbage != nil {
			b.Write(garbage)
		}
	}
	if final == "" {
		s.write([]byte(b.String()))
		return
	}
	noise()
	if len(lines) == 0 && garbage != nil {
		b.Write(garbage)
	}
	b.WriteString("\r\n" + final + "\r\n")
	s.write([]byte(b.String()))
}

// answer computes the reply to one command: info lines, the final result ("" for none yet,
// e.g. the "> " prompt) and an action to run after the reply is written.
func (s *Sim) answer(cmd string) (lines []string, final string, after func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	up := strings.ToUpper(cmd)
	simErr := func() string {
		switch s.sim {
		case SIMMissing:
			return "+CME ERROR: 10"
		case SIMPIN:
			return "+CME ERROR: 11"
		}
		return ""
	}
	smsErr := func() string {
		switch s.sim {
		case SIMMissing:
			return "+CMS ERROR: 310"
		case SIMPIN:
			return "+CMS ERROR: 311"
		}
		return ""
	}
	switch {
	case up == "AT" || up == "ATZ":
		return nil, "OK", nil
	case up == "ATE0" || up == "ATE1":
		s.echo = up == "ATE1"
		return nil, "OK", nil
	case strings.HasPrefix(up, "AT+CMEE="), strings.HasPrefix(up, "AT+CREG="), strings.HasPrefix(up, "AT+CEREG="),
		strings.HasPrefix(up, "AT+CGREG="), strings.HasPrefix(up, "AT+CSCS="), strings.HasPrefix(up, "AT+COPS=3"):
		return nil, "OK", nil
	case up == "AT+CGMI":
		return []string{"Quectel"}, "OK", nil
	case up == "AT+CGMM":
		return []string{"EC25"}, "OK", nil
	case up == "AT+CGMR":
		return []string{"EC25EFAR06A09M4G"}, "OK", nil
	case up == "AT+CGSN" || up == "AT+GSN":
		return []string{s.opts.IMEI}, "OK", nil
	case up == "AT+CPIN?":
		if s.sim == SIMMissing {
			return nil, "+CME ERROR: 10", nil
		}
		return []string{"+CPIN: " + s.sim}, "OK", nil
	case strings.HasPrefix(up, "AT+CPIN="):
		if s.sim == SIMMissing {
			return nil, "+CME ERROR: 10", nil
		}
		if s.sim != SIMPIN {
			return nil, "+CME ERROR: 3", nil
		}
		if strings.Trim(cmd[len("AT+CPIN="):], `"`) != s.opts.PIN {
			return nil, "+CME ERROR: 16", nil
		}
		s.sim = SIMReady
		s.reg = 1
		return nil, "OK", func() { s.urc("+CPIN: READY") }
	case up == "AT+QCCID" || up == "AT+CCID" || up == "AT+ICCID":
		if e := simErr(); e != "" {
			return nil, e, nil
		}
		return []string{"+QCCID: " + s.opts.ICCID}, "OK", nil
	case up == "AT+CIMI":
		if e := simErr(); e != "" {
			return nil, e, nil
		}
		return []string{s.opts.IMSI}, "OK", nil
	case up == "AT+CNUM":
		if e := simErr(); e != "" {
			return nil, e, nil
		}
		if s.opts.Own == "" {
			return nil, "OK", nil
		}
		return []string{fmt.Sprintf(`+CNUM: "","%s",145`, s.opts.Own)}, "OK", nil
	case strings.HasPrefix(up, "AT+CMGF="):
		if up != "AT+CMGF=0" {
			return nil, "+CMS ERROR: 303", nil
		}
		return nil, "OK", nil
	case strings.HasPrefix(up, "AT+CNMI="):
		return nil, "OK", nil
	case strings.HasPrefix(up, "AT+CPMS="):
		if e := smsErr(); e != "" {
			return nil, e, nil
		}
		n := len(s.store)
		return []string{fmt.Sprintf("+CPMS: %d,50,%d,50,%d,50", n, n, n)}, "OK", nil
	case up == "AT+CSQ":
		rssi := s.csq
		if s.cfun != 1 {
			rssi = 99
		}
		return []string{fmt.Sprintf("+CSQ: %d,99", rssi)}, "OK", nil
	case up == "AT+CESQ":
		if s.cfun != 1 || s.tech != 7 {
			return []string{"+CESQ: 99,99,255,255,255,255"}, "OK", nil
		}
		return []string{fmt.Sprintf("+CESQ: 99,99,255,255,%d,%d", s.rsrq, s.rsrp)}, "OK", nil
	case up == "AT+CREG?" || up == "AT+CEREG?" || up == "AT+CGREG?":
		name := "+" + up[3:len(up)-1]
		reg := s.reg
		if s.cfun != 1 || s.sim != SIMReady {
			reg = 0
		}
		if reg == 1 || reg == 5 {
			return []string{fmt.Sprintf(`%s: 2,%d,"1A2B","01C4D2E3",%d`, name, reg, s.tech)}, "OK", nil
		}
		return []string{fmt.Sprintf("%s: 2,%d", name, reg)}, "OK", nil
	case up == "AT+COPS?":
		if s.cfun != 1 || s.sim != SIMReady || (s.reg != 1 && s.reg != 5) {
			return []string{"+COPS: 0"}, "OK", nil
		}
		return []string{fmt.Sprintf(`+COPS: 0,0,"%s",%d`, s.opts.Operator, s.tech)}, "OK", nil
	case up == "AT+CFUN?":
		return []string{fmt.Sprintf("+CFUN: %d", s.cfun)}, "OK", nil
	case strings.HasPrefix(up, "AT+CFUN="):
		switch strings.TrimPrefix(up, "AT+CFUN=") {
		case "0", "4":
			s.cfun = 0
			return nil, "OK", nil
		case "1":
			s.cfun = 1
			return nil, "OK", nil
		case "1,1":
			// A full reset: the modem answers, drops off USB and comes back under a new name.
			return nil, "OK", func() {
				go func() {
					s.waitDrained(time.Second) // a tty hangup discards unread input: let the OK be read
					s.Unplug()
					_ = s.Replug()
				}()
			}
		}
		return nil, "ERROR", nil
	case strings.HasPrefix(up, "AT+CMGL="):
		if e := smsErr(); e != "" {
			return nil, e, nil
		}
		want := strings.TrimPrefix(up, "AT+CMGL=")
		var idx []int
		for i := range s.store {
			idx = append(idx, i)
		}
		sort.Ints(idx)
		for _, i := range idx {
			m := s.store[i]
			if want != "4" && strconv.Itoa(m.stat) != want {
				continue
			}
			lines = append(lines, fmt.Sprintf("+CMGL: %d,%d,,%d", i, m.stat, tpduLen(m.pdu)), m.pdu)
			if m.stat == 0 {
				m.stat = 1
				s.store[i] = m
			}
		}
		return lines, "OK", nil
	case strings.HasPrefix(up, "AT+CMGR="):
		if e := smsErr(); e != "" {
			return nil, e, nil
		}
		i, err := strconv.Atoi(strings.TrimPrefix(up, "AT+CMGR="))
		m, ok := s.store[i]
		if err != nil || !ok {
			return nil, "+CMS ERROR: 321", nil
		}
		lines = []string{fmt.Sprintf("+CMGR: %d,,%d", m.stat, tpduLen(m.pdu)), m.pdu}
		m.stat = 1
		s.store[i] = m
		return lines, "OK", nil
	case strings.HasPrefix(up, "AT+CMGD="):
		if e := smsErr(); e != "" {
			return nil, e, nil
		}
		i, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(up, "AT+CMGD="), ",", 2)[0])
		if err != nil {
			return nil, "+CMS ERROR: 321", nil
		}
		delete(s.store, i) // deleting an empty index is OK on Quectel/SIMCom
		return nil, "OK", nil
	case strings.HasPrefix(up, "AT+CMGS="):
		if e := smsErr(); e != "" {
			return nil, e, nil
		}
		n, err := strconv.Atoi(strings.TrimPrefix(up, "AT+CMGS="))
		if err != nil || n < 7 || n > 164 {
			return nil, "+CMS ERROR: 304", nil
		}
		s.cmgsLen, s.pduBuf = n, nil
		return nil, "", func() { s.write([]byte("\r\n> ")) }
	}
	return nil, "ERROR", nil
}

func tpduLen(pdu string) int {
	b, err := hex.DecodeString(pdu)
	if err != nil || len(b) == 0 {
		return 0
	}
	return len(b) - 1 - int(b[0])
}

// submit ends PDU entry (Ctrl-Z) and answers +CMGS or +CMS ERROR. It returns true when the
// modem went off the bus.
func (s *Sim) submit() (gone bool) {
	s.mu.Lock()
	want, h := s.cmgsLen, string(s.pduBuf)
	s.cmgsLen, s.pduBuf = 0, nil
	hook := s.pduHook
	s.mu.Unlock()
	s.runHook(hook, h)
	s.mu.Lock()
	if s.unplugRq {
		s.mu.Unlock()
		return true
	}
	if s.stall != 0 {
		s.mu.Unlock()
		return false
	}
	if len(s.failSend) > 0 {
		code := s.failSend[0]
		s.failSend = s.failSend[1:]
		s.mu.Unlock()
		s.reply(nil, fmt.Sprintf("+CMS ERROR: %d", code))
		return false
	}
	s.mu.Unlock()
	t, text, ok := decodeSubmit(h, want)
	if !ok {
		s.reply(nil, "+CMS ERROR: 304") // invalid PDU parameter
		return false
	}
	total, seq, ref, ok := t.ConcatInfo()
	if !ok {
		total, seq, ref = 1, 1, 0
	}
	s.mu.Lock()
	if code, fail := s.failPart[seq]; fail {
		delete(s.failPart, seq)
		s.mu.Unlock()
		s.reply(nil, fmt.Sprintf("+CMS ERROR: %d", code))
		return false
	}
	if s.cfun != 1 || (s.reg != 1 && s.reg != 5) {
		s.mu.Unlock()
		s.reply(nil, "+CMS ERROR: 331")
		return false
	}
	mr := s.nextMR
	s.nextMR = s.nextMR%255 + 1
	sp := SentPDU{To: t.DA.Number(), Text: string(text), MR: mr, Ref: ref, Seq: seq, Total: total,
		Report: t.FirstOctet.SRR(), PDU: h}
	s.sent = append(s.sent, sp)
	reports := s.opts.Reports && sp.Report
	if s.stallPDU > 0 { // sent, but the answer never comes
		s.stallPDU--
		s.mu.Unlock()
		return false
	}
	if s.unplugPDU {
		s.unplugPDU = false
		s.mu.Unlock()
		s.unplug(false) // we are the reader: it stops when we return
		return true
	}
	s.mu.Unlock()
	s.reply([]string{fmt.Sprintf("+CMGS: %d", mr)}, "OK")
	if reports {
		if r, err := statusReport(sp, s.opts.Now()); err == nil {
			s.write([]byte(fmt.Sprintf("\r\n+CDS: %d\r\n%s\r\n", tpduLen(r), r)))
		}
	}
	return false
}

// decodeSubmit decodes the hex PDU (with SMSC field) typed after AT+CMGS=want: an SMS-SUBMIT
// whose TPDU is want octets long, and its text.
func decodeSubmit(h string, want int) (*tpdu.TPDU, []byte, bool) {
	p, err := pdumode.UnmarshalHexString(h)
	if err != nil || len(p.TPDU) != want {
		return nil, nil, false
	}
	t, err := sms.Unmarshal(p.TPDU, sms.AsMO)
	if err != nil || t.SmsType() != tpdu.SmsSubmit {
		return nil, nil, false
	}
	text, err := sms.Decode([]*tpdu.TPDU{t})
	if err != nil {
		return nil, nil, false
	}
	return t, text, true
}

// statusReport builds the SMS-STATUS-REPORT saying message mr to sp.To was delivered.
func statusReport(sp SentPDU, now time.Time) (string, error) {
	var t tpdu.TPDU
	if err := t.SetSmsType(tpdu.SmsStatusReport); err != nil {
		return "", err
	}
	t.MR = byte(sp.MR)
	t.RA = tpdu.NewAddress(tpdu.FromNumber(sp.To))
	t.SCTS = tpdu.Timestamp{Time: now.Truncate(time.Second)}
	t.DT = tpdu.Timestamp{Time: now.Truncate(time.Second)}
	t.ST = 0
	b, err := t.MarshalBinary()
	if err != nil {
		return "", err
	}
	return "00" + strings.ToUpper(hex.EncodeToString(b)), nil
}

// waitDrained waits until the client has read what was written to it, or d has passed. Data
// written to the master reaches the slave's input queue asynchronously (the tty flip buffer),
// so it waits to see the queue non-empty and then empty; a client that read it before we
// looked costs the full d.
func (s *Sim) waitDrained(d time.Duration) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	seen := false
	for {
		s.fdMu.RLock()
		s.mu.Lock()
		keep := s.keep
		s.mu.Unlock()
		n, err := 0, error(nil)
		if keep >= 0 {
			n, err = unix.IoctlGetInt(keep, unix.TIOCINQ)
		}
		s.fdMu.RUnlock()
		if keep < 0 || err != nil || (seen && n == 0) {
			return
		}
		seen = seen || n > 0
		select {
		case <-deadline.C:
			return
		case <-tick.C:
		}
	}
}
