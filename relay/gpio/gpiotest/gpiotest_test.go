package gpiotest

import (
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shopkit/relay/relay/gpio"
)

// recorder catches the fake's complaints so the test can check it complains.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recorder) Helper() {}

func TestInput_Set(t *testing.T) {
	in := NewInput(t, false, 4)
	in.Set(false) // no change, no edge
	in.Set(true)
	in.Set(true)
	in.Glitch()
	in.Close()
	var got []bool
	for c := range in.Changes() {
		got = append(got, c.Active)
	}
	if want := []bool{true, false, true}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("changes %v, want %v", got, want)
	}
	if in.Dropped() != 0 {
		t.Errorf("Dropped() = %d, want 0", in.Dropped())
	}
}

func TestInput_misuse(t *testing.T) {
	r := &recorder{TB: t}
	in := NewInput(r, false, 0)
	in.Close()
	in.Set(true)
	if _, err := in.Active(); !errors.Is(err, gpio.ErrClosed) {
		t.Errorf("Active after Close: %v, want ErrClosed", err)
	}
	if len(r.errs) != 2 {
		t.Errorf("complaints %q, want 2", r.errs)
	}
}

func TestInput_FailReads(t *testing.T) {
	in := NewInput(t, true, 0)
	boom := errors.New("chip gone")
	in.FailReads(boom)
	if _, err := in.Active(); !errors.Is(err, boom) {
		t.Errorf("Active: %v, want %v", err, boom)
	}
	in.FailReads(nil)
	if v, err := in.Active(); err != nil || !v {
		t.Errorf("Active = %v, %v; want true, nil", v, err)
	}
}

func TestOutput_History(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		o := NewOutput(t, false)
		o.Set(true)
		time.Sleep(time.Second) // fake time inside the bubble
		o.Set(false)
		h := o.History()
		want := []Level{{false, start}, {true, start}, {false, start.Add(time.Second)}}
		if fmt.Sprint(h) != fmt.Sprint(want) {
			t.Errorf("History() = %v, want %v", h, want)
		}
		o.FailSets(errors.New("gone"))
		if err := o.Set(true); err == nil {
			t.Error("Set after FailSets succeeded")
		}
		if len(o.History()) != 3 {
			t.Error("failed Set was recorded")
		}
	})
}

func TestOutput_misuse(t *testing.T) {
	r := &recorder{TB: t}
	o := NewOutput(r, false)
	o.Close()
	if err := o.Set(true); !errors.Is(err, gpio.ErrClosed) {
		t.Errorf("Set after Close: %v, want ErrClosed", err)
	}
	if len(r.errs) != 1 {
		t.Errorf("complaints %q, want 1", r.errs)
	}
}
