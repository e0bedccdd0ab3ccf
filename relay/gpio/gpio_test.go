package gpio

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warthog618/go-gpiocdev"
)

func TestParseBias(t *testing.T) {
	tests := []struct {
		in      string
		want    Bias
		wantErr bool
	}{
		{"", BiasAsIs, false},
		{"as_is", BiasAsIs, false},
		{"disable", BiasDisable, false},
		{"disabled", BiasDisable, false},
		{"pull_up", BiasPullUp, false},
		{"Pull-Up", BiasPullUp, false},
		{" pull_down ", BiasPullDown, false},
		{"pullup", BiasAsIs, true},
		{"up", BiasAsIs, true},
		{"pull_sideways", BiasAsIs, true},
	}
	for _, tt := range tests {
		got, err := ParseBias(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseBias(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, ErrConfig) {
			t.Errorf("ParseBias(%q) error %v is not ErrConfig", tt.in, err)
		}
	}
}

func TestBias_String(t *testing.T) {
	for _, b := range []Bias{BiasAsIs, BiasDisable, BiasPullUp, BiasPullDown} {
		got, err := ParseBias(b.String())
		if err != nil || got != b {
			t.Errorf("ParseBias(%v.String()) = %v, %v", b, got, err)
		}
	}
	if got, want := Bias(9).String(), "Bias(9)"; got != want {
		t.Errorf("Bias(9).String() = %q, want %q", got, want)
	}
}

func TestParseLineRef(t *testing.T) {
	tests := []struct {
		in      string
		want    lineRef
		wantErr bool
	}{
		{"GPIO17", lineRef{name: "GPIO17"}, false},
		{" UPS_ONBATT ", lineRef{name: "UPS_ONBATT"}, false},
		{"17", lineRef{offset: 17}, false},
		{"0", lineRef{offset: 0}, false},
		{"4095", lineRef{offset: 4095}, false},
		{"4096", lineRef{}, true},
		{"99999999999999999999999", lineRef{}, true},
		{"", lineRef{}, true},
		{"   ", lineRef{}, true},
		{"GPIO 17", lineRef{}, true},
		{"GPIO\x0017", lineRef{}, true},
		{"Leitung-ä", lineRef{}, true},
		{strings.Repeat("x", 64), lineRef{}, true},
		{"-1", lineRef{name: "-1"}, false}, // not digits: a (strange) name, FindLine will say not found
	}
	for _, tt := range tests {
		got, err := parseLineRef(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseLineRef(%q) = %+v, %v; want %+v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, ErrConfig) {
			t.Errorf("parseLineRef(%q) error %v is not ErrConfig", tt.in, err)
		}
	}
}

func FuzzParseLineRef(f *testing.F) {
	for _, s := range []string{"GPIO17", "17", "", " 3 ", "4096", "GPIO\x00", "ä", "-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseLineRef(s)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v is not ErrConfig", err)
			}
			return
		}
		if r.name == "" && (r.offset < 0 || r.offset > 4095) {
			t.Fatalf("offset %d out of range for %q", r.offset, s)
		}
		if r.name != "" && (strings.ContainsAny(r.name, " \t\n\x00") || len(r.name) > 63) {
			t.Fatalf("bad name %q accepted", r.name)
		}
	})
}

func FuzzParseBias(f *testing.F) {
	for _, s := range []string{"", "pull_up", "Pull-Down", "disable", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBias(s)
		if err != nil {
			return
		}
		if again, err := ParseBias(b.String()); err != nil || again != b {
			t.Fatalf("round trip of %q: %v → %v, %v", s, b, again, err)
		}
	})
}

func TestLineError_Error(t *testing.T) {
	tests := []struct {
		err  *LineError
		want string
	}{
		{&LineError{Op: "open input", Chip: "gpiochip0", Line: "GPIO17", Offset: 17, Holder: "ups-hat", Err: ErrLineBusy},
			`gpio: open input line "GPIO17" (gpiochip0 offset 17): line in use by another consumer (held by "ups-hat")`},
		{&LineError{Op: "open input", Chip: "gpiochip0", Line: "GPIO17", Offset: -1, Err: ErrLineNotFound, Hint: "a line of that name is gpiochip4 offset 17"},
			`gpio: open input line "GPIO17" on gpiochip0: line not found; a line of that name is gpiochip4 offset 17`},
		{&LineError{Op: "open output", Line: "LED", Offset: -1, Err: ErrLineNotFound},
			`gpio: open output line "LED" on any chip: line not found`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() =\n %s\nwant\n %s", got, tt.want)
		}
	}
}

// These run on any machine: the chip or line named does not exist here, nor in the test VM.
func TestOpenInput_missing(t *testing.T) {
	tests := []struct {
		name string
		cfg  LineConfig
		want error
		says string
	}{
		{"no chip", LineConfig{Chip: "gpiochip99", Line: "17"}, ErrChipNotFound, "gpiochip99"},
		{"no chip by path", LineConfig{Chip: "/dev/gpiochip99", Line: "GPIO17"}, ErrChipNotFound, "gpiochip99"},
		{"not a chip", LineConfig{Chip: "/dev/null", Line: "1"}, ErrChipNotFound, "/dev/null"},
		{"no name anywhere", LineConfig{Line: "RELAY_NO_SUCH_LINE"}, ErrLineNotFound, "RELAY_NO_SUCH_LINE"},
		{"offset without chip", LineConfig{Line: "3"}, ErrConfig, `"3"`},
		{"empty line", LineConfig{Chip: "gpiochip0"}, ErrConfig, "empty line"},
		{"bad bias", LineConfig{Chip: "gpiochip0", Line: "GPIO17", Bias: 7}, ErrConfig, "bias"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := OpenInput(tt.cfg, Options{})
			if err == nil {
				in.Close()
				t.Fatalf("OpenInput(%+v) succeeded", tt.cfg)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			var le *LineError
			if !errors.As(err, &le) {
				t.Errorf("error %T is not a *LineError", err)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q does not name %q", err, tt.says)
			}
			out, err := OpenOutput(tt.cfg, false, Options{})
			if err == nil {
				out.Close()
				t.Fatalf("OpenOutput(%+v) succeeded", tt.cfg)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("output error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestQueue_Offer(t *testing.T) {
	q := NewQueue(2)
	for i := range 5 {
		q.Offer(Change{Active: i%2 == 0, Seqno: uint32(i + 1)})
	}
	if got, want := q.Dropped(), uint64(3); got != want {
		t.Errorf("Dropped() = %d, want %d", got, want)
	}
	q.Lost(2)
	if got, want := q.Dropped(), uint64(5); got != want {
		t.Errorf("Dropped() after Lost(2) = %d, want %d", got, want)
	}
	q.Close()
	q.Close() // second Close is harmless
	var got []uint32
	for c := range q.C() {
		got = append(got, c.Seqno)
	}
	// The newest changes survive, in order: the last level is never the one dropped.
	if want := []uint32{4, 5}; !equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
}

func TestQueue_neverBlocks(t *testing.T) {
	q := NewQueue(0)
	done := make(chan struct{})
	go func() {
		for i := range 10 * DefaultQueueSize {
			q.Offer(Change{Seqno: uint32(i)})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second): // a deadline, not a pause: Offer must not block at all
		t.Fatal("Offer blocked with nobody reading")
	}
	if got, want := q.Dropped(), uint64(9*DefaultQueueSize); got != want {
		t.Errorf("Dropped() = %d, want %d", got, want)
	}
}

func equal(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestInputLine_handle(t *testing.T) {
	in := &InputLine{q: NewQueue(8)}
	// The kernel lost events 1-2 (before the first we saw) and 5-6.
	for _, ev := range []gpiocdev.LineEvent{
		{Type: gpiocdev.LineEventRisingEdge, LineSeqno: 3},
		{Type: gpiocdev.LineEventFallingEdge, LineSeqno: 4},
		{Type: gpiocdev.LineEventRisingEdge, LineSeqno: 7, Timestamp: time.Second},
	} {
		in.handle(ev)
	}
	if got, want := in.Dropped(), uint64(4); got != want {
		t.Errorf("Dropped() = %d, want %d", got, want)
	}
	in.q.Close()
	var got []Change
	for c := range in.Changes() {
		got = append(got, c)
	}
	want := []Change{{Active: true, Seqno: 3}, {Active: false, Seqno: 4}, {Active: true, Seqno: 7, Time: time.Second}}
	if len(got) != len(want) {
		t.Fatalf("changes %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("change %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
