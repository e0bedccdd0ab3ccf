package buffer

import (
	"encoding/binary"
	"hash/crc32"
	"math"
	"time"
)

// Every value this package writes ends in a CRC-32C of the bytes before it
// and starts with a format byte, so a torn or scribbled value is detected
// and quarantined instead of being misread.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const (
	fmtRecord  = 1 // message record (m/)
	fmtDedup   = 2 // dedup index entry (i/)
	fmtRef     = 3 // head reference (s/)
	fmtMeta    = 4 // store meta (M)
	fmtJournal = 5 // journal entry (j/)
	fmtSpool   = 6 // spool meta (P/)
)

type enc struct{ b []byte }

func (e *enc) byte(v byte)      { e.b = append(e.b, v) }
func (e *enc) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) bytes(v []byte)   { e.uvarint(uint64(len(v))); e.b = append(e.b, v...) }
func (e *enc) str(v string)     { e.uvarint(uint64(len(v))); e.b = append(e.b, v...) }
func (e *enc) time(t time.Time) { e.varint(timeToNanos(t)) }
func (e *enc) finish() []byte {
	return binary.BigEndian.AppendUint32(e.b, crc32.Checksum(e.b, castagnoli))
}

type dec struct {
	b   []byte
	bad string
}

// newDec checks the trailing CRC and the format byte.
func newDec(b []byte, format byte) *dec {
	if len(b) < 5 {
		return &dec{bad: "too short"}
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return &dec{bad: "checksum mismatch"}
	}
	if body[0] != format {
		return &dec{bad: "unknown format byte"}
	}
	return &dec{b: body[1:]}
}

func (d *dec) fail(why string) {
	if d.bad == "" {
		d.bad = why
	}
	d.b = nil
}

func (d *dec) byte() byte {
	if len(d.b) < 1 {
		d.fail("truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *dec) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// field consumes a length-prefixed field and returns it without copying.
func (d *dec) field() ([]byte, bool) {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("length out of range")
		return nil, false
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v, true
}

func (d *dec) bytes() []byte {
	v, ok := d.field()
	if !ok {
		return nil
	}
	return append(make([]byte, 0, len(v)), v...)
}

func (d *dec) str() string {
	v, _ := d.field()
	return string(v)
}

func (d *dec) time() time.Time { return nanosToTime(d.varint()) }

// err reports the first problem, including trailing garbage.
func (d *dec) err(key []byte) error {
	if d.bad == "" && len(d.b) != 0 {
		d.bad = "trailing bytes"
	}
	if d.bad != "" {
		return &CorruptError{Key: append([]byte(nil), key...), Reason: d.bad}
	}
	return nil
}

// Zero time is stored as 0 (so the Unix epoch itself reads back as zero).
func timeToNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func nanosToTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// sortable turns signed nanoseconds into a big-endian-sortable uint64.
func sortable(n int64) uint64 { return uint64(n) ^ (1 << 63) }

func unsortable(u uint64) int64 { return int64(u ^ (1 << 63)) }

const (
	flagSendStarted = 1 << 0
)

// encodeRecord is the on-disk form of a queued message (m/<seq>).
func encodeRecord(m *Message) []byte {
	e := enc{b: make([]byte, 0, 64+len(m.ID)+len(m.To)+len(m.LastError)+len(m.Payload))}
	e.byte(fmtRecord)
	var flags byte
	if m.SendStarted {
		flags |= flagSendStarted
	}
	e.byte(flags)
	e.byte(byte(m.Priority))
	e.byte(byte(m.Delivery))
	e.uvarint(m.Seq)
	e.uvarint(uint64(m.Attempts))
	e.time(m.AcceptedAt)
	e.time(m.NotBefore)
	e.time(m.ExpiresAt)
	e.time(m.NextAttempt)
	e.str(m.ID)
	e.str(m.To)
	e.str(m.LastError)
	e.bytes(m.Payload)
	return e.finish()
}

// decodeRecord parses encodeRecord's output; it never panics and reports any
// inconsistency as a *CorruptError.
func decodeRecord(key, b []byte) (Message, error) {
	d := newDec(b, fmtRecord)
	var m Message
	flags := d.byte()
	m.SendStarted = flags&flagSendStarted != 0
	m.Priority = Priority(d.byte())
	m.Delivery = Delivery(d.byte())
	m.Seq = d.uvarint()
	att := d.uvarint()
	m.AcceptedAt = d.time()
	m.NotBefore = d.time()
	m.ExpiresAt = d.time()
	m.NextAttempt = d.time()
	m.ID = d.str()
	m.To = d.str()
	m.LastError = d.str()
	m.Payload = d.bytes()
	if err := d.err(key); err != nil {
		return Message{}, err
	}
	switch {
	case flags&^flagSendStarted != 0:
		d.fail("unknown flags")
	case m.Priority > PriorityLow:
		d.fail("priority out of range")
	case m.Delivery > AtMostOnce:
		d.fail("delivery out of range")
	case att > math.MaxInt32:
		d.fail("attempts out of range")
	case m.ID == "" || m.To == "":
		d.fail("empty id or recipient")
	}
	if err := d.err(key); err != nil {
		return Message{}, err
	}
	m.Attempts = int(att)
	return m, nil
}

// dedupEntry is the value of i/<id>: queued (with its seq) or terminal.
type dedupEntry struct {
	terminal bool
	seq      uint64
	at       time.Time // terminal: when the outcome was recorded
	outcome  string
}

func encodeDedup(x dedupEntry) []byte {
	e := enc{b: make([]byte, 0, 24+len(x.outcome))}
	e.byte(fmtDedup)
	if x.terminal {
		e.byte(1)
	} else {
		e.byte(0)
	}
	e.uvarint(x.seq)
	e.time(x.at)
	e.str(x.outcome)
	return e.finish()
}

func decodeDedup(key, b []byte) (dedupEntry, error) {
	d := newDec(b, fmtDedup)
	var x dedupEntry
	switch d.byte() {
	case 0:
	case 1:
		x.terminal = true
	default:
		d.fail("bad state")
	}
	x.seq = d.uvarint()
	x.at = d.time()
	x.outcome = d.str()
	return x, d.err(key)
}

// headRef is the value of s/<prio><seq>: enough to find and clean up a
// head even when its record is corrupt.
type headRef struct {
	due int64 // unix nanos; 0 = due now
	to  string
	id  string
}

func encodeRef(r headRef) []byte {
	e := enc{b: make([]byte, 0, 16+len(r.to)+len(r.id))}
	e.byte(fmtRef)
	e.varint(r.due)
	e.str(r.to)
	e.str(r.id)
	return e.finish()
}

func decodeRef(key, b []byte) (headRef, error) {
	d := newDec(b, fmtRef)
	var r headRef
	r.due = d.varint()
	r.to = d.str()
	r.id = d.str()
	return r, d.err(key)
}

// meta holds counters and cursors so Open never scans the queue. Cursors
// are lower bounds: everything before them is deleted (tombstones).
type meta struct {
	nextSeq uint64    // next message seq to assign (seqs start at 1)
	depth   uint64    // queued messages
	lowSeq  uint64    // lower bound of the oldest queued seq
	sLow    [3]uint64 // per priority: lower bound of live s/ keys
	wLow    uint64    // lower bound (sortable due) of live w/ keys
	xLow    uint64    // lower bound (sortable expiry) of live x/ keys
	jNext   uint64    // next journal counter
	jLow    uint64    // lower bound (sortable time) of live j/ keys
}

func encodeMeta(m meta) []byte {
	e := enc{b: make([]byte, 0, 96)}
	e.byte(fmtMeta)
	e.uvarint(m.nextSeq)
	e.uvarint(m.depth)
	e.uvarint(m.lowSeq)
	for _, v := range m.sLow {
		e.uvarint(v)
	}
	e.uvarint(m.wLow)
	e.uvarint(m.xLow)
	e.uvarint(m.jNext)
	e.uvarint(m.jLow)
	return e.finish()
}

func decodeMeta(key, b []byte) (meta, error) {
	d := newDec(b, fmtMeta)
	var m meta
	m.nextSeq = d.uvarint()
	m.depth = d.uvarint()
	m.lowSeq = d.uvarint()
	for i := range m.sLow {
		m.sLow[i] = d.uvarint()
	}
	m.wLow = d.uvarint()
	m.xLow = d.uvarint()
	m.jNext = d.uvarint()
	m.jLow = d.uvarint()
	return m, d.err(key)
}

func encodeEntry(x Entry) []byte {
	e := enc{b: make([]byte, 0, 32+len(x.ID)+len(x.To)+len(x.Text)+len(x.Detail))}
	e.byte(fmtJournal)
	e.time(x.At)
	e.str(x.ID)
	e.str(x.To)
	e.str(x.Channel)
	e.str(x.Kind)
	e.str(x.Outcome)
	e.str(x.Detail)
	e.str(x.Text)
	return e.finish()
}

func decodeEntry(key, b []byte) (Entry, error) {
	d := newDec(b, fmtJournal)
	var x Entry
	x.At = d.time()
	x.ID = d.str()
	x.To = d.str()
	x.Channel = d.str()
	x.Kind = d.str()
	x.Outcome = d.str()
	x.Detail = d.str()
	x.Text = d.str()
	return x, d.err(key)
}

type spoolMeta struct{ head, next uint64 }

func encodeSpoolMeta(m spoolMeta) []byte {
	e := enc{}
	e.byte(fmtSpool)
	e.uvarint(m.head)
	e.uvarint(m.next)
	return e.finish()
}

func decodeSpoolMeta(key, b []byte) (spoolMeta, error) {
	d := newDec(b, fmtSpool)
	var m spoolMeta
	m.head = d.uvarint()
	m.next = d.uvarint()
	if d.bad == "" && m.head > m.next {
		d.fail("head after next")
	}
	return m, d.err(key)
}
