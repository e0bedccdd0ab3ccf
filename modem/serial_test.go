package modem

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/shopkit/relay/modem/modemtest"
	"go.bug.st/serial/enumerator"
)

// newSim starts a simulator that is closed when the test ends.
func newSim(tb testing.TB) *modemtest.Sim {
	tb.Helper()
	sim, err := modemtest.New(modemtest.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sim.Close() })
	return sim
}

// The quirks of go.bug.st/serial v1.8.0, caused for real on a pty, come out as our errors.
func TestSerialPort_Quirks(t *testing.T) {
	sim := newSim(t)
	p, err := OpenSerial(sim.Path(), 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	sp := p.(*serialPort)
	if err := sp.p.SetReadTimeout(20 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	// The simulator is quiet until asked: the library says (0, nil); we say ErrTimeout.
	if n, err := p.Read(buf); n != 0 || !errors.Is(err, ErrTimeout) {
		t.Fatalf("quiet read = %d, %v; want ErrTimeout", n, err)
	}
	sim.Unplug()
	if _, err := p.Read(buf); !errors.Is(err, ErrPortGone) {
		t.Errorf("read after unplug = %v; want ErrPortGone", err)
	}
	if _, err := p.Write([]byte("AT\r")); !errors.Is(err, ErrPortGone) {
		t.Errorf("write after unplug = %v; want ErrPortGone", err)
	}
	if _, err := OpenSerial(sim.Names()[0], 115200); !errors.Is(err, ErrNoDevice) {
		t.Errorf("open of the vanished path = %v; want ErrNoDevice", err)
	}
}

// fdsTo lists the process's file descriptors that point at path.
func fdsTo(t *testing.T, path string) map[int]bool {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	out := map[int]bool{}
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == path {
			n, _ := strconv.Atoi(e.Name())
			out[n] = true
		}
	}
	return out
}

// A write that starts after Close (an engine abandoned it, then recovery closed the port) must
// not reach the file that got the port's fd number next. It did: a stale AT+CMGD=0 written to
// the old port reached the modem reopened after an unplug and deleted an unread SMS.
func TestSerialPort_WriteAfterCloseNeverReachesReusedFD(t *testing.T) {
	sim := newSim(t)
	before := fdsTo(t, sim.Path())
	p, err := OpenSerial(sim.Path(), 115200)
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	for n := range fdsTo(t, sim.Path()) {
		if !before[n] {
			fd = n
		}
	}
	if fd < 0 {
		t.Fatal("cannot find the port's fd")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	// Take the freed number with a plain file, as the daemon's next open would.
	var victim *os.File
	for i := 0; i < 64 && victim == nil; i++ {
		f, err := os.Create(filepath.Join(t.TempDir(), "victim"+strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if int(f.Fd()) == fd {
			victim = f
		}
	}
	if victim == nil {
		t.Skipf("fd %d was not reused", fd)
	}
	if n, err := p.Write([]byte("AT+CMGD=0\r")); n != 0 || !errors.Is(err, ErrPortGone) {
		t.Errorf("write after close = %d, %v; want 0, ErrPortGone", n, err)
	}
	if b, err := os.ReadFile(victim.Name()); err != nil || len(b) != 0 {
		t.Errorf("the file that reused fd %d got %q (%v)", fd, b, err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second close = %v", err)
	}
}

func TestMatchUSB(t *testing.T) {
	ports := []*enumerator.PortDetails{
		{Name: "/dev/ttyS0"},
		{Name: "/dev/ttyUSB10", IsUSB: true, VID: "2C7C", PID: "0125", SerialNumber: "A"},
		{Name: "/dev/ttyUSB9", IsUSB: true, VID: "2C7C", PID: "0125", SerialNumber: "A"},
		{Name: "/dev/ttyUSB11", IsUSB: true, VID: "2C7C", PID: "0125", SerialNumber: "A"},
		{Name: "/dev/ttyUSB12", IsUSB: true, VID: "2C7C", PID: "0125", SerialNumber: "A"},
		{Name: "/dev/ttyUSB0", IsUSB: true, VID: "1E0E", PID: "9001", SerialNumber: "B"},
		{Name: "/dev/ttyACM0", IsUSB: true, VID: "2c7c", PID: "0125", SerialNumber: "C"},
	}
	tests := []struct {
		m    USBMatch
		nth  int
		want string
		ok   bool
	}{
		{USBMatch{VID: "2c7c", PID: "0125", Serial: "A"}, 2, "/dev/ttyUSB11", true},
		{USBMatch{VID: "2c7c", PID: "0125", Serial: "A"}, 0, "/dev/ttyUSB9", true},
		{USBMatch{VID: "2C7C", PID: "0125"}, 0, "/dev/ttyACM0", true},
		{USBMatch{VID: "2C7C", PID: "0125", Serial: "C"}, 0, "/dev/ttyACM0", true},
		{USBMatch{VID: "1e0e", PID: "9001"}, 0, "/dev/ttyUSB0", true},
		{USBMatch{VID: "1e0e", PID: "9001"}, 1, "", false},
		{USBMatch{VID: "dead", PID: "beef"}, 0, "", false},
	}
	for _, tt := range tests {
		got, ok := matchUSB(ports, tt.m, tt.nth)
		if got != tt.want || ok != tt.ok {
			t.Errorf("matchUSB(%+v, %d) = %q,%v; want %q,%v", tt.m, tt.nth, got, ok, tt.want, tt.ok)
		}
	}
}
