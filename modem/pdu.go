package modem

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/shopkit/relay/relay/redact"
	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"
)

// submitPDU is one SMS-SUBMIT ready for AT+CMGS: Hex includes the empty SMSC field ("00", the
// modem uses the SIM's SMSC) and Len is the TPDU length AT+CMGS=<n> wants.
type submitPDU struct {
	Hex string
	Len int
}

// encoder builds SMS-SUBMIT PDUs with a concatenation reference that changes per message (the
// library's package-level Encode starts at 1 every time, which a phone would merge).
type encoder struct {
	ref refCounter
}

// refCounter implements tpdu.Counter for the 8-bit concatenation reference.
type refCounter struct{ n atomic.Int64 }

func (c *refCounter) Count() int { return int(c.n.Add(1)%255) + 1 }

// EncodeSubmit splits text into SMS-SUBMIT PDUs to the E.164 number to: GSM 7-bit when the text
// fits the default alphabet (153 characters per part when concatenated), else UCS-2 (67 per
// part). report asks the network for a status report (+CDS).
func (e *encoder) EncodeSubmit(to, text string, report bool) ([]submitPDU, error) {
	if text == "" {
		return nil, fmt.Errorf("%w: empty text", ErrInvalidInput)
	}
	num := strings.TrimPrefix(to, "+")
	if num == "" || len(num) > 20 || strings.Trim(num, "0123456789") != "" {
		return nil, fmt.Errorf("%w: recipient %q is not a phone number", ErrInvalidInput, redact.Number(to))
	}
	t, err := tpdu.NewSubmit()
	if err != nil {
		return nil, err
	}
	if report {
		t.FirstOctet |= tpdu.FoSRR
	}
	enc := sms.NewEncoder(sms.WithTemplate(*t))
	enc.ConcatRef = &e.ref
	tpdus, err := enc.Encode([]byte(text), sms.To(to))
	if err != nil {
		return nil, fmt.Errorf("%w: encode: %w", ErrInvalidInput, err)
	}
	out := make([]submitPDU, 0, len(tpdus))
	for i := range tpdus {
		b, err := tpdus[i].MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("%w: marshal: %w", ErrInvalidInput, err)
		}
		out = append(out, submitPDU{Hex: "00" + strings.ToUpper(hex.EncodeToString(b)), Len: len(b)})
	}
	return out, nil
}

// decodePDU decodes one PDU line as the modem shows it (SMSC field then TPDU) into a mobile-
// terminated TPDU: SMS-DELIVER or SMS-STATUS-REPORT.
func decodePDU(h string) (*tpdu.TPDU, error) {
	p, err := pdumode.UnmarshalHexString(h)
	if err != nil {
		return nil, &ParseError{"PDU", clip(h)}
	}
	t, err := sms.Unmarshal(p.TPDU, sms.AsMT)
	if err != nil {
		return nil, &ParseError{"TPDU (" + err.Error() + ")", clip(h)}
	}
	return t, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// SMS is one received message, reassembled from its parts.
type SMS struct {
	ID         string    // stable hash of sender, time, text and parts: the same SMS read twice has the same ID
	From       string    // E.164 with "+" when international; alphanumeric senders as given
	Text       string    // UTF-8
	At         time.Time // the service centre's time stamp
	Parts      int       // how many PDUs made it (1 for a single SMS)
	Incomplete bool      // parts were missing when the multipart timeout expired
}

// DeliveryReport is a status report (+CDS) for a message this modem sent.
type DeliveryReport struct {
	Ref       int       // the message reference SendSMS returned
	To        string    // the recipient
	Status    int       // TP-ST: 0..31 done, 32..63 still trying, 64.. failed
	Delivered bool      // Status 0..31: the phone has it (0 is "received by the SME")
	Final     bool      // false while the network is still trying (32..63)
	At        time.Time // discharge time
}

func reportFrom(t *tpdu.TPDU) (DeliveryReport, error) {
	if t.SmsType() != tpdu.SmsStatusReport {
		return DeliveryReport{}, &ParseError{"status report", t.SmsType().String()}
	}
	st := int(t.ST)
	return DeliveryReport{Ref: int(t.MR), To: t.RA.Number(), Status: st,
		Delivered: st < 0x20, Final: st < 0x20 || st >= 0x40, At: t.DT.Time}, nil
}

// part is one stored PDU of a received message.
type part struct {
	Index int // storage index in the modem, for AT+CMGD
	T     *tpdu.TPDU
}

// assembly holds the parts of one concatenated message until it is complete.
type assembly struct {
	total int
	parts map[int]part // by sequence number 1..total
	first time.Time
}

// reassembler groups parts by sender, reference and count. It is used from one goroutine only.
type reassembler struct {
	timeout time.Duration
	pending map[string]*assembly
}

func newReassembler(timeout time.Duration) *reassembler {
	return &reassembler{timeout: timeout, pending: map[string]*assembly{}}
}

// add takes one part. It returns the complete parts (in order) when p completes a message, or
// p alone for a single SMS. Duplicate segments (the same index re-read) are ignored.
func (r *reassembler) add(p part, now time.Time) []part {
	segs, seq, ref, ok := p.T.ConcatInfo()
	if !ok || segs <= 1 {
		return []part{p}
	}
	if seq < 1 || seq > segs {
		return []part{p} // inconsistent UDH: deliver the part on its own rather than hold it forever
	}
	key := p.T.OA.Number() + "/" + strconv.Itoa(ref) + "/" + strconv.Itoa(segs)
	a := r.pending[key]
	if a == nil {
		a = &assembly{total: segs, parts: map[int]part{}, first: now}
		r.pending[key] = a
	}
	if _, dup := a.parts[seq]; !dup {
		a.parts[seq] = p
	}
	if len(a.parts) < a.total {
		return nil
	}
	delete(r.pending, key)
	return a.ordered()
}

func (a *assembly) ordered() []part {
	seqs := make([]int, 0, len(a.parts))
	for s := range a.parts {
		seqs = append(seqs, s)
	}
	sort.Ints(seqs)
	out := make([]part, 0, len(seqs))
	for _, s := range seqs {
		out = append(out, a.parts[s])
	}
	return out
}

// expired removes and returns the incomplete assemblies older than the timeout.
func (r *reassembler) expired(now time.Time) [][]part {
	var out [][]part
	for k, a := range r.pending {
		if now.Sub(a.first) >= r.timeout {
			out = append(out, a.ordered())
			delete(r.pending, k)
		}
	}
	return out
}

// holds reports whether storage index idx is held in an incomplete assembly.
func (r *reassembler) holds(idx int) bool {
	for _, a := range r.pending {
		for _, p := range a.parts {
			if p.Index == idx {
				return true
			}
		}
	}
	return false
}

// reset drops every held part: after a (re)connect the storage listing is the truth.
func (r *reassembler) reset() { r.pending = map[string]*assembly{} }

// message decodes ordered parts into an SMS.
func message(parts []part, incomplete bool) (SMS, error) {
	ts := make([]*tpdu.TPDU, len(parts))
	for i, p := range parts {
		ts[i] = p.T
	}
	text, err := sms.Decode(ts)
	if err != nil {
		return SMS{}, &ParseError{"user data (" + err.Error() + ")", ""}
	}
	first := parts[0].T
	m := SMS{From: first.OA.Number(), Text: string(text), At: first.SCTS.Time, Parts: len(parts), Incomplete: incomplete}
	m.ID = smsID(m)
	return m, nil
}

func smsID(m SMS) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00%s", m.From, m.At.Unix(), m.Parts, m.Text)
	return hex.EncodeToString(h.Sum(nil)[:12])
}
