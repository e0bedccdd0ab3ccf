package modem

import (
	"errors"
	"testing"
)

func TestParse_Final(t *testing.T) {
	tests := []struct {
		line  string
		final bool
		kind  Kind
		code  int
	}{
		{"OK", true, 0, 0},
		{"ERROR", true, KindError, 0},
		{"+CME ERROR: 10", true, KindCME, 10},
		{"+CME ERROR: SIM not inserted", true, KindCME, 10},
		{"+CME ERROR: incorrect password", true, KindCME, 16},
		{"+CME ERROR: something new", true, KindCME, -1},
		{"+CMS ERROR: 500", true, KindCMS, 500},
		{"+CMS ERROR:331", true, KindCMS, 331},
		{"+CMS ERROR: SMSC address unknown", true, KindCMS, 330},
		{"NO CARRIER", true, KindNoCarrier, 0},
		{"BUSY", true, KindBusy, 0},
		{"NO ANSWER", true, KindNoAnswer, 0},
		{"NO DIALTONE", true, KindNoDialtone, 0},
		{"OKAY", false, 0, 0},
		{"+CSQ: 20,99", false, 0, 0},
		{"", false, 0, 0},
		{"+CME ERROR: -3", true, KindCME, -1},
	}
	for _, tt := range tests {
		final, kind, code := parseFinal(tt.line)
		if final != tt.final || kind != tt.kind || code != tt.code {
			t.Errorf("parseFinal(%q) = %v,%v,%d; want %v,%v,%d", tt.line, final, kind, code, tt.final, tt.kind, tt.code)
		}
	}
}

func TestParse_ClassifyURC(t *testing.T) {
	tests := []struct {
		line string
		kind URCKind
		ok   bool
	}{
		{`+CMTI: "ME",3`, URCNewSMS, true},
		{`+CMTI: "SM",12`, URCNewSMS, true},
		{"+CDS: 25", URCReport, true},
		{`+CDSI: "SM",4`, URCReportIdx, true},
		{"+CMT: ,24", URCDeliver, true},
		{"+CREG: 1", URCReg, true},
		{`+CEREG: 5,"1A2B","01C4D2E3",7`, URCReg, true},
		{"+CGREG: 0", URCReg, true},
		{"RING", URCRing, true},
		{"+CRING: VOICE", URCRing, true},
		{"^BOOT:12345,0,0,0,72", URCOther, true},
		{"^RSSI: 17", URCOther, true},
		{"+QIND: \"csq\",20,99", URCOther, true},
		{"+CPIN: NOT INSERTED", URCSIM, true},
		{"RDY", URCBoot, true},
		{"+CFUN: 1", URCBoot, true},
		{"SMS DONE", URCOther, true},
		{"OK", 0, false},
		{"+CSQ: 20,99", 0, false},
		{"861234567890123", 0, false},
		{"0791", 0, false},
	}
	for _, tt := range tests {
		kind, ok := classifyURC(tt.line)
		if ok != tt.ok || kind != tt.kind {
			t.Errorf("classifyURC(%q) = %v,%v; want %v,%v", tt.line, kind, ok, tt.kind, tt.ok)
		}
	}
}

func TestParse_CSQ(t *testing.T) {
	tests := []struct {
		line string
		want Signal
		err  bool
	}{
		{"+CSQ: 20,99", Signal{RSSI: -73, Bars: 5, BER: 99, Known: true}, false},
		{"+CSQ: 0,0", Signal{RSSI: -113, Bars: 0, BER: 0, Known: true}, false},
		{"+CSQ: 31,99", Signal{RSSI: -51, Bars: 5, BER: 99, Known: true}, false},
		{"+CSQ: 10,99", Signal{RSSI: -93, Bars: 3, BER: 99, Known: true}, false},
		{"+CSQ: 5,99", Signal{RSSI: -103, Bars: 2, BER: 99, Known: true}, false},
		{"+CSQ: 1,99", Signal{RSSI: -111, Bars: 1, BER: 99, Known: true}, false},
		{"+CSQ: 99,99", Signal{BER: 99}, false},
		{"+CSQ: 150,99", Signal{RSSI: -66, Bars: 5, BER: 99, Known: true}, false},
		{"+CSQ: 32,99", Signal{}, true},
		{"+CSQ: -1,99", Signal{}, true},
		{"+CSQ: 20", Signal{}, true},
		{"+CSQ: a,b", Signal{}, true},
		{"+CESQ: 20,99", Signal{}, true},
	}
	for _, tt := range tests {
		got, err := parseCSQ(tt.line)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseCSQ(%q) = %+v, %v; want %+v, err %v", tt.line, got, err, tt.want, tt.err)
		}
		if err != nil && !errors.Is(err, ErrBadResponse) {
			t.Errorf("parseCSQ(%q) error %v is not ErrBadResponse", tt.line, err)
		}
	}
}

func TestParse_CESQ(t *testing.T) {
	tests := []struct {
		line string
		lte  bool
		rsrp int
		rsrq float64
		err  bool
	}{
		{"+CESQ: 99,99,255,255,20,45", true, -96, -10, false},
		{"+CESQ: 99,99,255,255,0,0", true, -141, -20, false},
		{"+CESQ: 99,99,255,255,34,97", true, -44, -3, false},
		{"+CESQ: 40,0,255,255,255,255", false, 0, 0, false},
		{"+CESQ: 99,99,255,255,35,45", false, 0, 0, true},
		{"+CESQ: 99,99,255,255,20", false, 0, 0, true},
		{"+CESQ: 99,99,255,255,x,45", false, 0, 0, true},
	}
	for _, tt := range tests {
		var s Signal
		err := parseCESQ(tt.line, &s)
		if (err != nil) != tt.err || s.HasLTE != tt.lte || s.RSRP != tt.rsrp || s.RSRQ != tt.rsrq {
			t.Errorf("parseCESQ(%q) = %+v, %v; want lte %v rsrp %d rsrq %v err %v", tt.line, s, err, tt.lte, tt.rsrp, tt.rsrq, tt.err)
		}
	}
}

func TestParse_Reg(t *testing.T) {
	tests := []struct {
		line      string
		solicited bool
		want      Registration
		err       bool
	}{
		{"+CREG: 0,1", true, Registration{Which: "CREG", State: RegHome, Tech: -1}, false},
		{`+CEREG: 2,5,"1A2B","01C4D2E3",7`, true, Registration{Which: "CEREG", State: RegRoaming, LAC: "1A2B", CI: "01C4D2E3", Tech: 7}, false},
		{"+CGREG: 2,2", true, Registration{Which: "CGREG", State: RegSearching, Tech: -1}, false},
		{"+CREG: 1", false, Registration{Which: "CREG", State: RegHome, Tech: -1}, false},
		{`+CEREG: 1,"1A2B","01C4D2E3",7`, false, Registration{Which: "CEREG", State: RegHome, LAC: "1A2B", CI: "01C4D2E3", Tech: 7}, false},
		{"+CREG: 3", false, Registration{Which: "CREG", State: RegDenied, Tech: -1}, false},
		{"+CEREG: 6", false, Registration{Which: "CEREG", State: RegHome, Tech: -1}, false},
		{"+CEREG: 7", false, Registration{Which: "CEREG", State: RegRoaming, Tech: -1}, false},
		{"+CEREG: 8", false, Registration{Which: "CEREG", State: RegUnknown, Tech: -1}, false},
		{"+CREG: 1", true, Registration{}, true},
		{"+CREG: 12", false, Registration{}, true},
		{`+CREG: "1A2B"`, false, Registration{}, true},
		{"+CSQ: 1,2", true, Registration{}, true},
		{"CREG 1", false, Registration{}, true},
	}
	for _, tt := range tests {
		got, err := parseReg(tt.line, tt.solicited)
		if (err != nil) != tt.err || (err == nil && got != tt.want) {
			t.Errorf("parseReg(%q, %v) = %+v, %v; want %+v, err %v", tt.line, tt.solicited, got, err, tt.want, tt.err)
		}
	}
}

func TestParse_IsSolicitedReg(t *testing.T) {
	tests := []struct {
		line string
		want bool
	}{
		{"+CREG: 2,1", true},
		{`+CREG: 2,1,"1A2B","01C4D2E3",7`, true},
		{"+CREG: 1", false},
		{`+CREG: 1,"1A2B","01C4D2E3",7`, false},
	}
	for _, tt := range tests {
		if got := isSolicitedReg(tt.line); got != tt.want {
			t.Errorf("isSolicitedReg(%q) = %v, want %v", tt.line, got, tt.want)
		}
	}
}

func TestParse_COPS(t *testing.T) {
	tests := []struct {
		line string
		want Operator
		err  bool
	}{
		{`+COPS: 0,0,"Telekom.de",7`, Operator{"Telekom.de", 7}, false},
		{`+COPS: 0,0,"o2 - de, test",2`, Operator{"o2 - de, test", 2}, false},
		{`+COPS: 1,2,"26201"`, Operator{"26201", -1}, false},
		{"+COPS: 0", Operator{"", -1}, false},
		{"+COPS: x", Operator{}, true},
		{"+CREG: 0", Operator{}, true},
	}
	for _, tt := range tests {
		got, err := parseCOPS(tt.line)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseCOPS(%q) = %+v, %v; want %+v", tt.line, got, err, tt.want)
		}
	}
}

func TestParse_CPIN(t *testing.T) {
	tests := []struct {
		line string
		want SIMState
		err  bool
	}{
		{"+CPIN: READY", SIMReady, false},
		{"+CPIN: SIM PIN", SIMPIN, false},
		{"+CPIN: SIM PUK", SIMPUK, false},
		{"+CPIN: NOT INSERTED", SIMMissing, false},
		{"+CPIN: PH-NET PIN", SIMOther, false},
		{"+CPIN:", SIMUnknown, true},
		{"READY", SIMUnknown, true},
	}
	for _, tt := range tests {
		got, err := parseCPIN(tt.line)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseCPIN(%q) = %q, %v; want %q", tt.line, got, err, tt.want)
		}
	}
}

func TestParse_Listing(t *testing.T) {
	tests := []struct {
		line string
		cmgl bool
		want listEntry
		err  bool
	}{
		{"+CMGL: 3,0,,25", true, listEntry{3, 0, 25}, false},
		{`+CMGL: 12,1,"",159`, true, listEntry{12, 1, 159}, false},
		{"+CMGL: 3,0,25", true, listEntry{}, true},
		{"+CMGL: 3,4,,25", true, listEntry{}, true},
		{"+CMGL: -1,0,,25", true, listEntry{}, true},
		{"+CMGL: 1,0,,300", true, listEntry{}, true},
		{"+CMGR: 0,,25", false, listEntry{-1, 0, 25}, false},
		{`+CMGR: 1,"",40`, false, listEntry{-1, 1, 40}, false},
		{"+CMGR: 0,25", false, listEntry{}, true},
	}
	for _, tt := range tests {
		var got listEntry
		var err error
		if tt.cmgl {
			got, err = parseCMGL(tt.line)
		} else {
			got, err = parseCMGR(tt.line)
		}
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parse(%q) = %+v, %v; want %+v, err %v", tt.line, got, err, tt.want, tt.err)
		}
	}
}

func TestParse_IndexURC(t *testing.T) {
	tests := []struct {
		line string
		mem  string
		idx  int
		err  bool
	}{
		{`+CMTI: "ME",3`, "ME", 3, false},
		{`+CMTI: "SM", 0`, "SM", 0, false},
		{`+CDSI: "SR",7`, "SR", 7, false},
		{`+CMTI: "ME"`, "", 0, true},
		{`+CMTI: "ME",-2`, "", 0, true},
		{`+CMTI "ME",2`, "", 0, true},
	}
	for _, tt := range tests {
		mem, idx, err := parseIndexURC(tt.line)
		if (err != nil) != tt.err || mem != tt.mem || idx != tt.idx {
			t.Errorf("parseIndexURC(%q) = %q,%d,%v", tt.line, mem, idx, err)
		}
	}
}

func TestParse_CMGS(t *testing.T) {
	tests := []struct {
		line string
		want int
		err  bool
	}{
		{"+CMGS: 17", 17, false},
		{"+CMGS: 0", 0, false},
		{"+CMGS: 255", 255, false},
		{`+CMGS: 3,"25/11/21,10:00:00+04"`, 3, false},
		{"+CMGS: 256", 0, true},
		{"+CMGS:", 0, true},
	}
	for _, tt := range tests {
		got, err := parseCMGS(tt.line)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseCMGS(%q) = %d, %v", tt.line, got, err)
		}
	}
}

func TestParse_SplitFields(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`0,0,"a,b",7`, []string{"0", "0", `"a,b"`, "7"}},
		{` 1 , 2 `, []string{"1", "2"}},
		{``, []string{""}},
		{`"unterminated,x`, []string{`"unterminated,x`}},
	}
	for _, tt := range tests {
		got := splitFields(tt.in)
		if len(got) != len(tt.want) {
			t.Errorf("splitFields(%q) = %q, want %q", tt.in, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("splitFields(%q) = %q, want %q", tt.in, got, tt.want)
			}
		}
	}
}
