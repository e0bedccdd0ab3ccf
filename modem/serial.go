package modem

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.bug.st/serial"
	"go.bug.st/serial/enumerator"
)

// serialPort wraps go.bug.st/serial and translates its quirks into our errors at the boundary
// (dependencies.md §1): a read timeout is (0, nil) → ErrTimeout; PortError PortClosed (the
// kernel's hangup on unplug, or our own Close) → ErrPortGone; EIO/ENXIO/ENODEV on write → ErrPortGone.
//
// It also guards the file descriptor against reuse: go.bug.st/serial writes to a plain int
// handle, so a Write that starts after Close (an engine abandons a write at its deadline, or
// when the reader saw the hangup first) would go to whatever file next got that number, such as
// the modem reopened after a re-enumeration (a stale AT+CMGD deleting an unread SMS) or one of
// the daemon's own files. Write holds mu for reading across write(2) and refuses once closed;
// Close waits for a write in progress (up to closeWait) before it frees the number.
type serialPort struct {
	p serial.Port

	mu     sync.RWMutex
	closed atomic.Bool
}

// closeWait bounds how long Close waits for a write in progress. A write still running after it
// is inside write(2), where it holds the old file, so closing the number under it is safe.
const closeWait = 2 * time.Second

// OpenSerial opens a serial device (USB modem or pty slave) at baud 8N1 and returns a Port whose
// errors are ours. The device is opened with TIOCEXCL (go.bug.st/serial does that), which keeps
// non-root processes away; keep ModemManager off the device with a udev rule.
func OpenSerial(path string, baud int) (Port, error) {
	if baud == 0 {
		baud = 115200
	}
	p, err := serial.Open(path, &serial.Mode{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENXIO) || errors.Is(err, syscall.ENODEV) {
			return nil, fmt.Errorf("open %s: %w: %w", path, ErrNoDevice, err)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &serialPort{p: p}, nil
}

func (s *serialPort) Read(b []byte) (int, error) {
	n, err := s.p.Read(b)
	if err != nil {
		return n, translate(err)
	}
	if n == 0 {
		return 0, ErrTimeout
	}
	return n, nil
}

func (s *serialPort) Write(b []byte) (int, error) {
	if s.closed.Load() { // do not queue behind a Close that waits for the lock
		return 0, errWriteClosed
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return 0, errWriteClosed
	}
	n, err := s.p.Write(b)
	if err != nil {
		return n, translate(err)
	}
	return n, nil
}

var errWriteClosed = fmt.Errorf("%w: write after close", ErrPortGone)

// Close closes the port once; writes after it fail with ErrPortGone and never reach the fd.
func (s *serialPort) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	locked := make(chan struct{})
	go func() {
		s.mu.Lock()
		close(locked)
	}()
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case <-locked:
		defer s.mu.Unlock()
	case <-t.C:
		go func() { // release the lock whenever the stuck write ends
			<-locked
			s.mu.Unlock()
		}()
	}
	return translate(s.p.Close())
}

func translate(err error) error {
	if err == nil {
		return nil
	}
	var pe *serial.PortError
	if errors.As(err, &pe) {
		if pe.Code() == serial.PortClosed {
			return fmt.Errorf("%w: %s", ErrPortGone, pe.Error())
		}
		return fmt.Errorf("serial: %s", pe.Error())
	}
	if errors.Is(err, syscall.EIO) || errors.Is(err, syscall.ENXIO) || errors.Is(err, syscall.ENODEV) ||
		errors.Is(err, syscall.EBADF) || errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("%w: %w", ErrPortGone, err)
	}
	return err
}

// USBMatch selects a modem by USB ids when no device path is configured. VID and PID are four
// hex digits (case does not matter: enumerator v1.8.0 upper-cases them); Serial is optional.
type USBMatch struct {
	VID, PID, Serial string
}

// matchUSB picks the nth port matching m in name order (the ports of one modem list in
// interface order: ttyUSB2 is the AT port of most Quectel/SIMCom modems, so Config.USBPort
// selects by position among the matches).
func matchUSB(ports []*enumerator.PortDetails, m USBMatch, nth int) (string, bool) {
	var names []string
	for _, p := range ports {
		if p == nil || !p.IsUSB {
			continue
		}
		if !strings.EqualFold(p.VID, m.VID) || !strings.EqualFold(p.PID, m.PID) {
			continue
		}
		if m.Serial != "" && p.SerialNumber != m.Serial {
			continue
		}
		names = append(names, p.Name)
	}
	sortNames(names)
	if nth < 0 || nth >= len(names) {
		return "", false
	}
	return names[nth], true
}

// sortNames orders ttyUSB10 after ttyUSB9.
func sortNames(names []string) {
	key := func(s string) (string, int) {
		i := len(s)
		for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
			i--
		}
		n := 0
		for _, c := range s[i:] {
			n = n*10 + int(c-'0')
		}
		return s[:i], n
	}
	slices.SortStableFunc(names, func(a, b string) int {
		as, an := key(a)
		bs, bn := key(b)
		return cmp.Or(strings.Compare(as, bs), cmp.Compare(an, bn))
	})
}

// resolve finds the device now: a configured path is followed through symlinks (so
// /dev/serial/by-id/... names the ttyUSB it points to today); otherwise the USB ids are matched.
func resolve(path string, m USBMatch, nth int) (string, error) {
	if path != "" {
		real, err := filepath.EvalSymlinks(path)
		if err != nil {
			return "", fmt.Errorf("%w: %s: %w", ErrNoDevice, path, err)
		}
		return real, nil
	}
	ports, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return "", fmt.Errorf("%w: enumerate: %w", ErrNoDevice, err)
	}
	name, ok := matchUSB(ports, m, nth)
	if !ok {
		return "", fmt.Errorf("%w: usb %s:%s", ErrNoDevice, m.VID, m.PID)
	}
	return name, nil
}
