package modem

import (
	"log/slog"
	"strings"
	"testing"
)

// The fuzz targets check that no parser panics or loops on any input, and that what parses is
// in range. Run one with: go test -run=^$ -fuzz=FuzzParseCSQ ./modem

func FuzzParseFinal(f *testing.F) {
	for _, s := range []string{"OK", "ERROR", "+CME ERROR: 10", "+CMS ERROR: SIM busy", "NO CARRIER", "+CME ERROR:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		final, kind, code := parseFinal(s)
		if !final && (kind != 0 || code != 0) {
			t.Fatalf("not final but kind %v code %d", kind, code)
		}
		if code < -1 {
			t.Fatalf("code %d", code)
		}
	})
}

func FuzzClassifyURC(f *testing.F) {
	for _, s := range []string{`+CMTI: "ME",3`, "^BOOT:1,2", "RING", "+CREG: 1", "OK", "+CDS: 25"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, ok := classifyURC(s)
		if !ok && k != 0 {
			t.Fatalf("kind %v without ok", k)
		}
		_ = k.String()
	})
}

func FuzzParseCSQ(f *testing.F) {
	for _, s := range []string{"+CSQ: 20,99", "+CSQ: 99,99", "+CSQ: 150,0", "+CSQ: ,", "+CSQ: 1,2,3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := parseCSQ(s)
		if err != nil {
			return
		}
		if sig.Known && (sig.RSSI < -116 || sig.RSSI > -25 || sig.Bars < 0 || sig.Bars > 5) {
			t.Fatalf("%q → %+v out of range", s, sig)
		}
		_ = parseCESQ(strings.Replace(s, "+CSQ:", "+CESQ:", 1), &sig)
	})
}

func FuzzParseCESQ(f *testing.F) {
	for _, s := range []string{"+CESQ: 99,99,255,255,20,45", "+CESQ: 1,2,3,4,5", "+CESQ: 99,99,255,255,255,255"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var sig Signal
		if err := parseCESQ(s, &sig); err == nil && sig.HasLTE && (sig.RSRP < -141 || sig.RSRP > -44) {
			t.Fatalf("%q → rsrp %d", s, sig.RSRP)
		}
	})
}

func FuzzParseReg(f *testing.F) {
	for _, s := range []string{"+CREG: 0,1", `+CEREG: 2,5,"1A2B","01C4D2E3",7`, "+CREG: 1", `+CGREG: 1,"00C3","0010AAAA",2`, "+C5GREG: 11"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, solicited bool) {
		r, err := parseReg(s, solicited)
		if err == nil && (r.State < 0 || r.State > 5) {
			t.Fatalf("%q → state %d", s, r.State)
		}
		_ = isSolicitedReg(s)
		_, _ = parseCOPS(s)
		_, _ = parseCPIN(s)
	})
}

func FuzzParseListing(f *testing.F) {
	for _, s := range []string{"+CMGL: 3,0,,25", `+CMGR: 1,"",40`, `+CMTI: "ME",3`, "+CMGS: 17", "+CMGL: ,,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if e, err := parseCMGL(s); err == nil && (e.Index < 0 || e.Length > 255) {
			t.Fatalf("%q → %+v", s, e)
		}
		_, _ = parseCMGR(s)
		if _, idx, err := parseIndexURC(s); err == nil && idx < 0 {
			t.Fatalf("%q → index %d", s, idx)
		}
		if mr, err := parseCMGS(s); err == nil && (mr < 0 || mr > 255) {
			t.Fatalf("%q → mr %d", s, mr)
		}
	})
}

// FuzzEngine_Feed feeds arbitrary bytes to the line splitter while a command is pending and
// checks the routing promises: no final result code and no foreign URC ends up among the
// command's reply lines, and the command gets at most one final result.
func FuzzEngine_Feed(f *testing.F) {
	f.Add([]byte("\r\n+CSQ: 20,99\r\n+CMTI: \"ME\",1\r\nOK\r\n"), "AT+CSQ", "+CSQ:")
	f.Add([]byte("\r\n+CREG: 1\r\n+CREG: 2,1\r\nOK\r\n"), "AT+CREG?", "+CREG:")
	f.Add([]byte("\r\n+CDS: 6\r\n0006AABB\r\n+CMGL: 1,0,,5\r\n00AA\r\n^BOOT:1\r\n+CMS ERROR: 321\r\n"), "AT+CMGL=4", "+CMGL:")
	f.Add([]byte("\r\n> \r\n\xff\x00+CMGS: 5\r\nOK\r\nOK\r\n"), "AT+CMGS=9", "+CMGS:")
	f.Fuzz(func(t *testing.T, data []byte, cmd, prefix string) {
		e := &Engine{log: discardLogger(), urcs: make(chan URC, URCBuffer), done: make(chan struct{})}
		p := &pending{cmd: cmd, echoes: []string{cmd}, prefixes: []string{prefix}, final: make(chan error, 1),
			prompt: make(chan struct{})}
		e.cur = p
		var st readState
		// Feed in two chunks to exercise lines split across reads.
		half := len(data) / 2
		e.feed(data[:half], &st)
		e.feed(data[half:], &st)
		for _, l := range p.lines {
			if final, _, _ := parseFinal(l); final {
				t.Fatalf("final result %q taken as a reply line", l)
			}
			if _, urc := classifyURC(l); urc && !p.owns(l) {
				t.Fatalf("URC %q taken as a reply line of %q/%q", l, cmd, prefix)
			}
			if !printable([]byte(l)) {
				t.Fatalf("noise %q taken as a reply line", l)
			}
		}
		if len(p.final) > 1 {
			t.Fatal("two final results")
		}
	})
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
