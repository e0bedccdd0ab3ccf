package modem

import (
	"bufio"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// pipePort is the engine's side of an in-memory serial line; the test plays the modem on the
// other side. It lets the engine tests run inside a synctest bubble (a real pty cannot).
type pipePort struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func (p pipePort) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if err != nil {
		return n, ErrPortGone
	}
	return n, nil
}

func (p pipePort) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	if err != nil {
		return n, ErrPortGone
	}
	return n, nil
}

func (p pipePort) Close() error {
	p.r.Close()
	p.w.Close()
	return nil
}

// fakeLine is the modem side: Commands yields what the engine wrote, split at CR / Ctrl-Z.
type fakeLine struct {
	toEngine   *io.PipeWriter
	fromEngine *bufio.Reader
	closeIn    *io.PipeReader
}

func newLine() (Port, *fakeLine) {
	r1, w1 := io.Pipe() // modem → engine
	r2, w2 := io.Pipe() // engine → modem
	return pipePort{r: r1, w: w2}, &fakeLine{toEngine: w1, fromEngine: bufio.NewReader(r2), closeIn: r2}
}

// startEngine starts an Engine on a new in-memory line, inside the caller's synctest bubble, and
// closes it when the test ends (Close is idempotent).
func startEngine(t *testing.T) (*Engine, *fakeLine) {
	p, line := newLine()
	e := NewEngine(p, nil)
	t.Cleanup(func() { e.Close() })
	return e, line
}

func (f *fakeLine) cmd(t *testing.T) string {
	t.Helper()
	s, err := f.fromEngine.ReadString('\r')
	if err != nil {
		t.Errorf("reading command: %v", err) // runs on the modem goroutine: no Fatal
	}
	return strings.TrimSuffix(s, "\r")
}

func (f *fakeLine) pdu(t *testing.T) string {
	t.Helper()
	s, err := f.fromEngine.ReadString(0x1a)
	if err != nil {
		t.Errorf("reading pdu: %v", err)
	}
	return strings.TrimSuffix(s, "\x1a")
}

func (f *fakeLine) send(s string) { _, _ = f.toEngine.Write([]byte(s)) }

func (f *fakeLine) unplug() {
	f.toEngine.Close()
	f.closeIn.Close()
}

func TestEngine_Exec(t *testing.T) {
	tests := []struct {
		name     string
		cmd      string
		prefixes []string
		reply    string
		lines    []string
		urcs     []string
		kind     Kind
		code     int
	}{
		{"ok", "AT", nil, "\r\nOK\r\n", nil, nil, 0, 0},
		{"echo is skipped", "AT+CSQ", []string{"+CSQ:"}, "AT+CSQ\r\r\n+CSQ: 20,99\r\n\r\nOK\r\n", []string{"+CSQ: 20,99"}, nil, 0, 0},
		{"bare info line", "AT+CGSN", nil, "\r\n861234567890123\r\n\r\nOK\r\n", []string{"861234567890123"}, nil, 0, 0},
		{"cme numeric", "AT+CPIN?", []string{"+CPIN:"}, "\r\n+CME ERROR: 10\r\n", nil, nil, KindCME, 10},
		{"cme text", "AT+CPIN?", []string{"+CPIN:"}, "\r\n+CME ERROR: SIM PIN required\r\n", nil, nil, KindCME, 11},
		{"cms", "AT+CMGL=4", []string{"+CMGL:"}, "\r\n+CMS ERROR: 321\r\n", nil, nil, KindCMS, 321},
		{"plain error", "AT+FOO", nil, "\r\nERROR\r\n", nil, nil, KindError, 0},
		{"no carrier", "ATD123;", nil, "\r\nNO CARRIER\r\n", nil, nil, KindNoCarrier, 0},
		{"urcs between reply lines", "AT+CMGL=4", []string{"+CMGL:"},
			"\r\n+CMGL: 1,0,,5\r\n\r\n+CMTI: \"ME\",2\r\n0011223344AA\r\n^RSSI: 12\r\nRING\r\n\r\nOK\r\n",
			[]string{"+CMGL: 1,0,,5", "0011223344AA"}, []string{`+CMTI: "ME",2`, "^RSSI: 12", "RING"}, 0, 0},
		{"creg urc vs reply", "AT+CREG?", []string{"+CREG:"},
			"\r\n+CREG: 1\r\n+CREG: 2,1,\"1A2B\",\"01C4D2E3\",7\r\n+CREG: 5,\"1A2B\",\"01C4D2E3\",7\r\nOK\r\n",
			[]string{`+CREG: 2,1,"1A2B","01C4D2E3",7`}, []string{"+CREG: 1", `+CREG: 5,"1A2B","01C4D2E3",7`}, 0, 0},
		{"garbage is dropped", "AT+CSQ", []string{"+CSQ:"}, "\r\n\x00\xff\xfe\x13\r\n+CSQ: 9,99\r\n\x80\x81\r\nOK\r\n", []string{"+CSQ: 9,99"}, nil, 0, 0},
		{"cds urc with pdu inside a reply", "AT+CSQ", []string{"+CSQ:"}, "\r\n+CDS: 6\r\n0006AABBCCDD\r\n+CSQ: 9,99\r\nOK\r\n",
			[]string{"+CSQ: 9,99"}, []string{"+CDS: 6"}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e, line := startEngine(t)
				go func() {
					if got := line.cmd(t); got != tt.cmd {
						t.Errorf("modem got %q, want %q", got, tt.cmd)
					}
					line.send(tt.reply)
				}()
				lines, err := e.Exec(context.Background(), tt.cmd, time.Second, tt.prefixes...)
				if strings.Join(lines, "|") != strings.Join(tt.lines, "|") {
					t.Errorf("lines = %q, want %q", lines, tt.lines)
				}
				var re *ResultError
				switch {
				case tt.kind == 0 && err != nil:
					t.Errorf("err = %v", err)
				case tt.kind != 0 && (!errors.As(err, &re) || re.Kind != tt.kind || re.Code != tt.code || !errors.Is(err, ErrCommandFailed)):
					t.Errorf("err = %v, want %v %d", err, tt.kind, tt.code)
				}
				synctest.Wait()
				var urcs []string
				for len(e.URCs()) > 0 {
					u := <-e.URCs()
					urcs = append(urcs, u.Line)
				}
				if strings.Join(urcs, "|") != strings.Join(tt.urcs, "|") {
					t.Errorf("urcs = %q, want %q", urcs, tt.urcs)
				}
			})
		})
	}
}

func TestEngine_URCCarriesPDU(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, line := startEngine(t)
		line.send("\r\n+CDS: 6\r\n0006AABBCCDD\r\n")
		u := <-e.URCs()
		if u.Kind != URCReport || u.Data != "0006AABBCCDD" {
			t.Errorf("urc = %+v", u)
		}
	})
}

// A URC every 100ms must not extend a command's 1s deadline (the Gammu ^BOOT bug).
func TestEngine_FixedDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, line := startEngine(t)
		stop := make(chan struct{})
		go func() {
			line.cmd(t)
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					line.send("\r\n^BOOT:12345,0,0,0,72\r\n")
				}
			}
		}()
		start := time.Now()
		_, err := e.Exec(context.Background(), "AT+CSQ", time.Second, "+CSQ:")
		close(stop)
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
		if got := time.Since(start); got != time.Second {
			t.Errorf("timed out after %v, want exactly 1s", got)
		}
		var ce *CommandError
		if !errors.As(err, &ce) || ce.Command != "AT+CSQ" {
			t.Errorf("err = %#v", err)
		}
	})
}

func TestEngine_PortGoneMidCommand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, line := startEngine(t)
		go func() {
			line.cmd(t)
			line.send("\r\n+CMGL: 1,0,,5\r\n")
			line.unplug()
		}()
		start := time.Now()
		_, err := e.Exec(context.Background(), "AT+CMGL=4", 10*time.Second, "+CMGL:")
		if !errors.Is(err, ErrPortGone) {
			t.Fatalf("err = %v, want ErrPortGone", err)
		}
		if time.Since(start) != 0 {
			t.Errorf("waited %v for a port that was gone", time.Since(start))
		}
		<-e.Done()
		if !errors.Is(e.Err(), ErrPortGone) {
			t.Errorf("Err() = %v", e.Err())
		}
		if _, err := e.Exec(context.Background(), "AT", time.Second); !errors.Is(err, ErrPortGone) {
			t.Errorf("Exec after gone = %v", err)
		}
	})
}

func TestEngine_ExecPDU(t *testing.T) {
	tests := []struct {
		name    string
		prompt  string
		readPDU bool   // the modem reads the PDU
		final   string // then answers this
		unplug  bool   // then drops off the bus
		want    []string
		err     error
		unknown bool // the outcome is unknown: the PDU reached the modem, no verdict came
	}{
		{"ok", "\r\n> ", true, "\r\n+CMGS: 17\r\n\r\nOK\r\n", false, []string{"+CMGS: 17"}, nil, false},
		{"prompt with urc after it", "\r\n> \r\n+CMTI: \"ME\",4\r\n", true, "\r\n+CMGS: 18\r\n\r\nOK\r\n", false, []string{"+CMGS: 18"}, nil, false},
		{"cms error", "\r\n> ", true, "\r\n+CMS ERROR: 500\r\n", false, nil, ErrCommandFailed, false},
		{"error instead of prompt", "\r\n+CMS ERROR: 331\r\n", false, "", false, nil, ErrCommandFailed, false},
		{"ok instead of prompt", "\r\nOK\r\n", false, "", false, nil, ErrBadResponse, false},
		{"no prompt", "", false, "", false, nil, ErrTimeout, false},
		{"port gone before the prompt", "", false, "", true, nil, ErrPortGone, false},
		{"no answer after the pdu", "\r\n> ", true, "", false, nil, ErrTimeout, true},
		{"port gone after the pdu", "\r\n> ", true, "", true, nil, ErrPortGone, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e, line := startEngine(t)
				got := make(chan string, 1)
				go func() {
					line.cmd(t)
					line.send(tt.prompt)
					if tt.readPDU {
						got <- line.pdu(t)
						line.send(tt.final)
					}
					if tt.unplug {
						line.unplug()
					}
				}()
				lines, err := e.ExecPDU(context.Background(), "AT+CMGS=9", "0011AABB", 5*time.Second, "+CMGS:")
				if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				if u := errors.Is(err, ErrOutcomeUnknown); u != tt.unknown {
					t.Errorf("err = %v: outcome unknown %v, want %v", err, u, tt.unknown)
				}
				if strings.Join(lines, "|") != strings.Join(tt.want, "|") {
					t.Errorf("lines = %q", lines)
				}
				if tt.readPDU {
					if pdu := <-got; pdu != "0011AABB" {
						t.Errorf("pdu = %q", pdu)
					}
				}
			})
		})
	}
}

// A PDU write that fails before its Ctrl-Z went out leaves nothing for the modem to send.
func TestEngine_ExecPDUShortWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, line := newLine()
		sp := &shortPort{Port: p, failOn: "0011"}
		e := NewEngine(sp, nil)
		defer e.Close()
		go func() {
			line.cmd(t)
			line.send("\r\n> ")
		}()
		_, err := e.ExecPDU(context.Background(), "AT+CMGS=9", "0011AABB", 5*time.Second, "+CMGS:")
		if !errors.Is(err, ErrPortGone) || errors.Is(err, ErrOutcomeUnknown) {
			t.Errorf("err = %v; want ErrPortGone, not ErrOutcomeUnknown", err)
		}
	})
}

// shortPort fails a write that starts with failOn after writing part of it (EIO mid-write).
type shortPort struct {
	Port
	failOn string
}

func (s *shortPort) Write(b []byte) (int, error) {
	if strings.HasPrefix(string(b), s.failOn) {
		return 2, ErrPortGone
	}
	return s.Port.Write(b)
}

func TestEngine_StrayFinalIsNotAReply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, line := startEngine(t)
		line.send("\r\nOK\r\n") // a late answer with nothing pending
		synctest.Wait()
		go func() {
			line.cmd(t)
			line.send("\r\n+CSQ: 3,99\r\nOK\r\n")
		}()
		lines, err := e.Exec(context.Background(), "AT+CSQ", time.Second, "+CSQ:")
		if err != nil || len(lines) != 1 {
			t.Fatalf("lines %q err %v", lines, err)
		}
		if _, _, noise := e.Stats(); noise != 1 {
			t.Errorf("noise = %d, want 1", noise)
		}
	})
}

func TestEngine_ContextCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, line := startEngine(t)
		go func() { line.cmd(t) }()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := e.Exec(ctx, "AT", time.Second)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestEngine_CloseFailsPending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, line := startEngine(t)
		go func() {
			line.cmd(t)
			e.Close()
		}()
		_, err := e.Exec(context.Background(), "AT", time.Minute)
		if !errors.Is(err, ErrClosed) && !errors.Is(err, ErrPortGone) {
			t.Errorf("err = %v", err)
		}
	})
}
