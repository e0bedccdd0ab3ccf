package modem

import (
	"strconv"
	"strings"
)

// This file holds the pure parsers of what the modem sends. Every one of them takes one line
// (without CR/LF) and never panics on any input; each has table tests and a fuzz target.

// parseFinal reports whether line is a final result code. For OK it returns (true, 0, 0);
// for an error result the kind and the numeric cause (-1 when the modem gave unknown text).
func parseFinal(line string) (final bool, kind Kind, code int) {
	switch line {
	case "OK":
		return true, 0, 0
	case "ERROR":
		return true, KindError, 0
	case "NO CARRIER":
		return true, KindNoCarrier, 0
	case "BUSY":
		return true, KindBusy, 0
	case "NO ANSWER":
		return true, KindNoAnswer, 0
	case "NO DIALTONE":
		return true, KindNoDialtone, 0
	}
	if rest, ok := strings.CutPrefix(line, "+CME ERROR:"); ok {
		return true, KindCME, causeCode(rest, cmeText)
	}
	if rest, ok := strings.CutPrefix(line, "+CMS ERROR:"); ok {
		return true, KindCMS, causeCode(rest, cmsText)
	}
	return false, 0, 0
}

// cmeText maps the verbose (+CMEE=2) texts we care about to their numeric causes.
var cmeText = map[string]int{
	"phone failure": 0, "operation not allowed": 3, "operation not supported": 4,
	"ph-sim pin required": 5, "sim not inserted": 10, "sim pin required": 11,
	"sim puk required": 12, "sim failure": 13, "sim busy": 14, "sim wrong": 15,
	"incorrect password": 16, "sim pin2 required": 17, "sim puk2 required": 18,
	"memory full": 20, "invalid index": 21, "not found": 22, "memory failure": 23,
	"no network service": 30, "network timeout": 31, "unknown": 100,
}

var cmsText = map[string]int{
	"me failure": 300, "sms service of me reserved": 301, "operation not allowed": 302,
	"operation not supported": 303, "invalid pdu mode parameter": 304, "invalid text mode parameter": 305,
	"sim not inserted": 310, "sim pin required": 311, "sim failure": 313, "sim busy": 314,
	"memory failure": 320, "invalid memory index": 321, "memory full": 322,
	"smsc address unknown": 330, "no network service": 331, "network timeout": 332,
	"unknown error": 500,
}

func causeCode(rest string, texts map[string]int) int {
	rest = strings.TrimSpace(rest)
	if n, err := strconv.Atoi(rest); err == nil && n >= 0 {
		return n
	}
	if n, ok := texts[strings.ToLower(rest)]; ok {
		return n
	}
	return -1
}

// URCKind names an unsolicited result code.
type URCKind int

// Unsolicited result codes the engine recognises.
const (
	URCOther     URCKind = iota // vendor noise (^BOOT, ^RSSI, +QIND, RDY, ...): logged at debug, counted
	URCNewSMS                   // +CMTI: "<mem>",<index>
	URCReport                   // +CDS: <len> followed by a status-report PDU line
	URCReportIdx                // +CDSI: "<mem>",<index>
	URCDeliver                  // +CMT: ,<len> followed by a deliver PDU line (direct delivery)
	URCReg                      // +CREG / +CEREG / +CGREG in unsolicited form
	URCRing                     // RING / +CRING
	URCSIM                      // +CPIN: ... or +QUSIM / +SIMCARD change
	URCBoot                     // the modem (re)booted: RDY, ^BOOT (Huawei boot is noise), +CFUN: 1 unsolicited
)

func (k URCKind) String() string {
	return [...]string{"other", "new-sms", "report", "report-index", "deliver", "registration",
		"ring", "sim", "boot"}[k]
}

// URC is one unsolicited result code. Data holds the PDU line of +CDS/+CMT.
type URC struct {
	Kind URCKind
	Line string
	Data string
	Seq  int64 // 1, 2, ... in arrival order on this engine (see Engine.URCSeq)
}

// needsPDU reports whether a URC of this kind is followed by a PDU line.
func (k URCKind) needsPDU() bool { return k == URCReport || k == URCDeliver }

// urcPrefixes are matched in order against a line that is not a reply to the pending command.
var urcPrefixes = []struct {
	prefix string
	kind   URCKind
}{
	{"+CMTI:", URCNewSMS},
	{"+CDSI:", URCReportIdx},
	{"+CDS:", URCReport},
	{"+CMT:", URCDeliver},
	{"+CREG:", URCReg},
	{"+CEREG:", URCReg},
	{"+CGREG:", URCReg},
	{"+C5GREG:", URCReg},
	{"+CRING:", URCRing},
	{"+CPIN:", URCSIM},
	{"+QUSIM:", URCSIM},
	{"+SIMCARD:", URCSIM},
	{"+CFUN:", URCBoot},
	{"+QIND:", URCOther},
	{"+CUSD:", URCOther},
	{"+CLIP:", URCOther},
	{"+CGEV:", URCOther},
	{"+CTZV:", URCOther},
	{"+CTZE:", URCOther},
	{"+NITZ:", URCOther},
	{"+PACSP", URCOther},
	{"+QNITZ:", URCOther},
	{"+CPSI:", URCOther},
	{"+STIN:", URCOther},
	{"^", URCOther}, // Huawei ^BOOT, ^RSSI, ^MODE, ^SRVST, ^SIMST ...
}

var urcWords = map[string]URCKind{
	"RING": URCRing, "RDY": URCBoot, "START": URCBoot, "SMS DONE": URCOther, "PB DONE": URCOther,
	"CALL READY": URCOther, "SMS Ready": URCOther, "POWERED DOWN": URCOther, "NORMAL POWER DOWN": URCOther,
}

// classifyURC reports whether line has the shape of an unsolicited result code.
func classifyURC(line string) (URCKind, bool) {
	if k, ok := urcWords[line]; ok {
		return k, true
	}
	for _, p := range urcPrefixes {
		if strings.HasPrefix(line, p.prefix) {
			return p.kind, true
		}
	}
	return 0, false
}

// splitFields splits the parameters after "+XXX:" on commas outside double quotes and trims
// spaces. Quotes are kept so callers can tell "0010" from 0010.
func splitFields(s string) []string {
	var out []string
	start, inQ := 0, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			inQ = !inQ
		case ',':
			if !inQ {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// params returns the fields after prefix (e.g. "+CSQ:") or ok=false when line lacks it.
func params(line, prefix string) ([]string, bool) {
	rest, ok := strings.CutPrefix(line, prefix)
	if !ok {
		return nil, false
	}
	return splitFields(strings.TrimSpace(rest)), true
}

func atoiField(f []string, i int) (int, bool) {
	if i >= len(f) {
		return 0, false
	}
	n, err := strconv.Atoi(unquote(f[i]))
	if err != nil {
		return 0, false
	}
	return n, true
}

// Signal is the radio signal as the modem reports it.
type Signal struct {
	RSSI   int  // dBm (from +CSQ), valid when Known
	Bars   int  // 0..5 for people and the LED
	BER    int  // bit error rate class 0..7, 99 unknown
	Known  bool // false when the modem says 99 (not known or not detectable)
	RSRP   int  // LTE reference signal received power in dBm, valid when HasLTE
	RSRQ   float64
	HasLTE bool
}

// parseCSQ parses "+CSQ: <rssi>,<ber>".
func parseCSQ(line string) (Signal, error) {
	f, ok := params(line, "+CSQ:")
	if !ok || len(f) != 2 {
		return Signal{}, &ParseError{"+CSQ", line}
	}
	rssi, ok1 := atoiField(f, 0)
	ber, ok2 := atoiField(f, 1)
	if !ok1 || !ok2 || rssi < 0 || (rssi > 31 && rssi != 99 && (rssi < 100 || rssi > 191)) {
		return Signal{}, &ParseError{"+CSQ", line}
	}
	s := Signal{BER: ber}
	switch {
	case rssi == 99 || rssi == 199:
		return s, nil
	case rssi >= 100: // TD-SCDMA range 100..191 → -116..-25 dBm
		s.RSSI = -216 + rssi
	default:
		s.RSSI = -113 + 2*rssi
	}
	s.Known = true
	s.Bars = barsFromRSSI(s.RSSI)
	return s, nil
}

func barsFromRSSI(dbm int) int {
	switch {
	case dbm >= -73:
		return 5
	case dbm >= -83:
		return 4
	case dbm >= -93:
		return 3
	case dbm >= -103:
		return 2
	case dbm >= -111:
		return 1
	}
	return 0
}

// parseCESQ parses "+CESQ: <rxlev>,<ber>,<rscp>,<ecno>,<rsrq>,<rsrp>" (3GPP TS 27.007 §8.69) and
// fills the LTE fields of s when the modem is on LTE (rsrq/rsrp not 255).
func parseCESQ(line string, s *Signal) error {
	f, ok := params(line, "+CESQ:")
	if !ok || len(f) != 6 {
		return &ParseError{"+CESQ", line}
	}
	rsrq, ok1 := atoiField(f, 4)
	rsrp, ok2 := atoiField(f, 5)
	if !ok1 || !ok2 || rsrq < 0 || rsrp < 0 || (rsrq > 34 && rsrq != 255) || (rsrp > 97 && rsrp != 255) {
		return &ParseError{"+CESQ", line}
	}
	if rsrq == 255 || rsrp == 255 {
		return nil
	}
	s.HasLTE = true
	s.RSRP = -141 + rsrp
	s.RSRQ = -20 + float64(rsrq)/2
	return nil
}

// RegState is the network registration state (3GPP TS 27.007 +CREG <stat>).
type RegState int

// Registration states.
const (
	RegNotSearching RegState = 0
	RegHome         RegState = 1
	RegSearching    RegState = 2
	RegDenied       RegState = 3
	RegUnknown      RegState = 4
	RegRoaming      RegState = 5
)

// Registered reports whether the modem can send and receive SMS.
func (r RegState) Registered() bool { return r == RegHome || r == RegRoaming }

func (r RegState) String() string {
	switch r {
	case RegNotSearching:
		return "not_registered"
	case RegHome:
		return "home"
	case RegSearching:
		return "searching"
	case RegDenied:
		return "denied"
	case RegRoaming:
		return "roaming"
	}
	return "unknown"
}

// AccessTech is the radio access technology (<AcT> of +CREG/+COPS).
type AccessTech int

// String names the access technology as staff know it.
func (a AccessTech) String() string {
	switch a {
	case 0, 1, 3, 8:
		return "2G"
	case 2, 4, 5, 6:
		return "3G"
	case 7, 9, 10:
		return "4G"
	case 11, 12, 13:
		return "5G"
	case -1:
		return ""
	}
	return "unknown"
}

// Registration is one parsed +CREG/+CEREG/+CGREG line.
type Registration struct {
	Which string // "CREG", "CEREG", "CGREG", "C5GREG"
	State RegState
	LAC   string // location/tracking area code, hex, may be empty
	CI    string // cell id, hex, may be empty
	Tech  AccessTech
}

// parseReg parses a registration line in either form: the reply to AT+CxREG? (solicited,
// "<n>,<stat>[,<lac>,<ci>[,<AcT>]]") or the URC ("<stat>[,<lac>,<ci>[,<AcT>]]").
func parseReg(line string, solicited bool) (Registration, error) {
	var r Registration
	name, rest, ok := strings.Cut(line, ":")
	if !ok || len(name) < 4 || name[0] != '+' {
		return r, &ParseError{"registration", line}
	}
	r.Which = name[1:]
	switch r.Which {
	case "CREG", "CEREG", "CGREG", "C5GREG":
	default:
		return r, &ParseError{"registration", line}
	}
	f := splitFields(strings.TrimSpace(rest))
	if solicited {
		if len(f) < 2 {
			return r, &ParseError{r.Which, line}
		}
		f = f[1:]
	}
	st, ok := atoiField(f, 0)
	if !ok || st < 0 || st > 11 || strings.HasPrefix(f[0], `"`) {
		return r, &ParseError{r.Which, line}
	}
	if st > 5 { // 6..10 are SMS-only / emergency / CSFB variants: map onto home/roaming/unknown
		switch st {
		case 6, 9:
			st = int(RegHome)
		case 7, 10:
			st = int(RegRoaming)
		default:
			st = int(RegUnknown)
		}
	}
	r.State = RegState(st)
	r.Tech = -1
	if len(f) >= 3 {
		r.LAC, r.CI = unquote(f[1]), unquote(f[2])
	}
	if len(f) >= 4 {
		if t, ok := atoiField(f, 3); ok && t >= 0 && t <= 13 {
			r.Tech = AccessTech(t)
		}
	}
	return r, nil
}

// isSolicitedReg tells a reply to AT+CxREG? from a URC with the same prefix: the reply always has
// at least two leading numbers (<n>,<stat>); the URC has <stat> then quoted <lac> or nothing.
func isSolicitedReg(line string) bool {
	_, rest, _ := strings.Cut(line, ":")
	f := splitFields(strings.TrimSpace(rest))
	if len(f) < 2 {
		return false
	}
	_, err := strconv.Atoi(f[1])
	return err == nil
}

// Operator is the answer to AT+COPS?.
type Operator struct {
	Name string // empty when not registered
	Tech AccessTech
}

// parseCOPS parses "+COPS: <mode>[,<format>,<oper>[,<AcT>]]".
func parseCOPS(line string) (Operator, error) {
	f, ok := params(line, "+COPS:")
	if !ok {
		return Operator{}, &ParseError{"+COPS", line}
	}
	if _, ok := atoiField(f, 0); !ok {
		return Operator{}, &ParseError{"+COPS", line}
	}
	op := Operator{Tech: -1}
	if len(f) >= 3 {
		op.Name = unquote(f[2])
	}
	if t, ok := atoiField(f, 3); ok && t >= 0 && t <= 13 {
		op.Tech = AccessTech(t)
	}
	return op, nil
}

// SIMState is what AT+CPIN? says about the SIM.
type SIMState string

// SIM states.
const (
	SIMUnknown SIMState = ""
	SIMReady   SIMState = "ready"
	SIMPIN     SIMState = "pin_required"
	SIMPUK     SIMState = "puk_required"
	SIMMissing SIMState = "missing"
	SIMOther   SIMState = "locked_other"
)

// parseCPIN parses "+CPIN: READY" / "SIM PIN" / "SIM PUK" / "NOT INSERTED" ...
func parseCPIN(line string) (SIMState, error) {
	rest, ok := strings.CutPrefix(line, "+CPIN:")
	if !ok {
		return SIMUnknown, &ParseError{"+CPIN", line}
	}
	switch strings.ToUpper(strings.TrimSpace(rest)) {
	case "READY":
		return SIMReady, nil
	case "SIM PIN":
		return SIMPIN, nil
	case "SIM PUK":
		return SIMPUK, nil
	case "NOT INSERTED", "NOT READY", "SIM REMOVED", "NO SIM":
		return SIMMissing, nil
	case "":
		return SIMUnknown, &ParseError{"+CPIN", line}
	}
	return SIMOther, nil
}

// parseIndexURC parses "+CMTI: "<mem>",<index>" (and +CDSI).
func parseIndexURC(line string) (mem string, index int, err error) {
	_, rest, ok := strings.Cut(line, ":")
	if !ok {
		return "", 0, &ParseError{"+CMTI", line}
	}
	f := splitFields(strings.TrimSpace(rest))
	idx, ok := atoiField(f, 1)
	if len(f) != 2 || !ok || idx < 0 {
		return "", 0, &ParseError{"+CMTI", line}
	}
	return unquote(f[0]), idx, nil
}

// listEntry is the header line of one message in an AT+CMGL (PDU mode) listing:
// "+CMGL: <index>,<stat>,[<alpha>],<length>".
type listEntry struct {
	Index  int
	Stat   int // 0 unread, 1 read, 2 stored unsent, 3 stored sent
	Length int // TPDU length in octets (without the SMSC part)
}

func parseCMGL(line string) (listEntry, error) {
	f, ok := params(line, "+CMGL:")
	if !ok || len(f) != 4 {
		return listEntry{}, &ParseError{"+CMGL", line}
	}
	idx, ok1 := atoiField(f, 0)
	st, ok2 := atoiField(f, 1)
	n, ok3 := atoiField(f, 3)
	if !ok1 || !ok2 || !ok3 || idx < 0 || st < 0 || st > 3 || n < 0 || n > 255 {
		return listEntry{}, &ParseError{"+CMGL", line}
	}
	return listEntry{Index: idx, Stat: st, Length: n}, nil
}

// parseCMGR parses the header of an AT+CMGR reply: "+CMGR: <stat>,[<alpha>],<length>".
func parseCMGR(line string) (listEntry, error) {
	f, ok := params(line, "+CMGR:")
	if !ok || len(f) != 3 {
		return listEntry{}, &ParseError{"+CMGR", line}
	}
	st, ok1 := atoiField(f, 0)
	n, ok2 := atoiField(f, 2)
	if !ok1 || !ok2 || st < 0 || st > 3 || n < 0 || n > 255 {
		return listEntry{}, &ParseError{"+CMGR", line}
	}
	return listEntry{Index: -1, Stat: st, Length: n}, nil
}

// parseCMGS parses "+CMGS: <mr>" (the message reference the network assigned).
func parseCMGS(line string) (int, error) {
	f, ok := params(line, "+CMGS:")
	if !ok || len(f) < 1 {
		return 0, &ParseError{"+CMGS", line}
	}
	mr, ok := atoiField(f, 0)
	if !ok || mr < 0 || mr > 255 {
		return 0, &ParseError{"+CMGS", line}
	}
	return mr, nil
}

// isHex reports whether s is a non-empty even-length hex string (a PDU line).
func isHex(s string) bool {
	if len(s) == 0 || len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// printable reports whether line is plain printable ASCII: anything else is line noise
// (garbage bytes on a USB serial line, a baud mismatch) and is dropped by the engine.
func printable(line []byte) bool {
	for _, c := range line {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}
