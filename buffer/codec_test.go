package buffer

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

func sampleRecord() Message {
	return Message{
		ID: "order-1042-shipped", To: "+4915112345678", Priority: PriorityLow, Delivery: AtMostOnce,
		AcceptedAt: time.Date(2026, 11, 21, 8, 0, 0, 123, time.UTC),
		NotBefore:  time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC),
		ExpiresAt:  time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC),
		Payload:    []byte(`{"text":"hallo"}`),
		Seq:        42, Attempts: 3, NextAttempt: time.Date(2026, 11, 21, 8, 5, 0, 0, time.UTC),
		LastError: "signal-cli down", SendStarted: true,
	}
}

func TestDecodeRecord_RoundTrip(t *testing.T) {
	full := sampleRecord()
	tests := []struct {
		name string
		in   Message
	}{
		{"full", full},
		{"minimal", Message{ID: "a", To: "b", Seq: 1, Payload: []byte{}}},
		{"zero times stay zero", Message{ID: "a", To: "b", Seq: 7, Payload: []byte{}, Attempts: 0}},
		{"binary payload", Message{ID: "x:y.z-1", To: "+1", Seq: 1 << 60, Payload: []byte{0, 1, 2, 255}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeRecord([]byte("k"), encodeRecord(&tt.in))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.in) {
				t.Errorf("got %+v\nwant %+v", got, tt.in)
			}
		})
	}
}

func TestDecodeRecord_Corrupt(t *testing.T) {
	good := sampleRecord()
	enc := encodeRecord(&good)
	flip := bytes.Clone(enc)
	flip[10] ^= 0x40
	badPrio := sampleRecord()
	badPrio.Priority = 9
	badDelivery := sampleRecord()
	badDelivery.Delivery = 5
	noID := sampleRecord()
	noID.ID = ""
	tests := []struct {
		name   string
		in     []byte
		reason string
	}{
		{"empty", nil, "too short"},
		{"short", []byte{1, 2, 3}, "too short"},
		{"bit flip", flip, "checksum mismatch"},
		{"truncated", enc[:len(enc)-3], "checksum mismatch"},
		{"other format", encodeDedup(dedupEntry{seq: 1}), "unknown format byte"},
		{"priority", encodeRecord(&badPrio), "priority out of range"},
		{"delivery", encodeRecord(&badDelivery), "delivery out of range"},
		{"empty id", encodeRecord(&noID), "empty id or recipient"},
		{"trailing", withCRC(append(bytes.Clone(enc[:len(enc)-4]), 0)), "trailing bytes"},
		{"length overflow", withCRC([]byte{fmtRecord, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}), "length out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeRecord([]byte("m1"), tt.in)
			var ce *CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want *CorruptError", err)
			}
			if ce.Reason != tt.reason {
				t.Errorf("reason = %q, want %q", ce.Reason, tt.reason)
			}
		})
	}
}

// withCRC appends a valid checksum, to test what lies behind the CRC check.
func withCRC(body []byte) []byte { e := enc{b: body}; return e.finish() }

func TestDecodeOthers_RoundTrip(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	d := dedupEntry{terminal: true, seq: 9, at: at, outcome: "sent"}
	if got, err := decodeDedup(nil, encodeDedup(d)); err != nil || got != d {
		t.Errorf("dedup: got %+v, %v", got, err)
	}
	r := headRef{due: -5, to: "+49", id: "a"}
	if got, err := decodeRef(nil, encodeRef(r)); err != nil || got != r {
		t.Errorf("ref: got %+v, %v", got, err)
	}
	m := meta{nextSeq: 5, depth: 4, lowSeq: 1, sLow: [3]uint64{1, 2, 3}, wLow: 7, xLow: 8, jNext: 9, jLow: 10}
	if got, err := decodeMeta(nil, encodeMeta(m)); err != nil || got != m {
		t.Errorf("meta: got %+v, %v", got, err)
	}
	e := Entry{At: at, ID: "a", To: "+49", Channel: "signal", Kind: "sent", Outcome: "ok", Detail: "d", Text: "t"}
	if got, err := decodeEntry(nil, encodeEntry(e)); err != nil || got != e {
		t.Errorf("entry: got %+v, %v", got, err)
	}
	sm := spoolMeta{head: 3, next: 9}
	if got, err := decodeSpoolMeta(nil, encodeSpoolMeta(sm)); err != nil || got != sm {
		t.Errorf("spool meta: got %+v, %v", got, err)
	}
	if _, err := decodeSpoolMeta(nil, encodeSpoolMeta(spoolMeta{head: 9, next: 3})); !errors.Is(err, ErrCorrupt) {
		t.Errorf("spool meta head>next: err = %v, want ErrCorrupt", err)
	}
}

func TestSortable_Order(t *testing.T) {
	ns := []int64{-1 << 62, -1, 0, 1, 1 << 62}
	for i := 1; i < len(ns); i++ {
		if !(sortable(ns[i-1]) < sortable(ns[i])) || unsortable(sortable(ns[i])) != ns[i] {
			t.Errorf("sortable not monotonic/invertible at %d", ns[i])
		}
	}
}

// FuzzDecodeRecord: decoding arbitrary bytes never panics, errors are
// ErrCorrupt, and whatever decodes survives a re-encode/decode round trip.
func FuzzDecodeRecord(f *testing.F) {
	m := sampleRecord()
	f.Add(encodeRecord(&m))
	f.Add(encodeRecord(&Message{ID: "a", To: "b", Seq: 1}))
	f.Add([]byte{})
	f.Add([]byte{fmtRecord, 0, 0, 0, 0})
	f.Add(withCRC([]byte{fmtRecord, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeRecord([]byte("m"), b)
		// The other decoders must not panic either.
		_, _ = decodeDedup(nil, b)
		_, _ = decodeRef(nil, b)
		_, _ = decodeMeta(nil, b)
		_, _ = decodeEntry(nil, b)
		_, _ = decodeSpoolMeta(nil, b)
		// A CRC-valid body with the right format byte: decode the body too,
		// so the fuzzer explores past the checksum.
		if len(b) > 0 {
			body := append([]byte{fmtRecord}, b...)
			if m2, err2 := decodeRecord(nil, withCRC(body)); err2 == nil {
				if re := encodeRecord(&m2); len(re) == 0 {
					t.Fatal("empty re-encoding")
				}
			}
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		again, err := decodeRecord(nil, encodeRecord(&got))
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("round trip of a decoded record differs: %+v vs %+v (%v)", again, got, err)
		}
	})
}
