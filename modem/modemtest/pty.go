package modemtest

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair with raw fds (dependencies.md §1: creack/pty's *os.File
// master did not hang up the slave when closed under a blocked reader; a raw fd closed after our
// poll loop stopped does). It returns the master fd, the slave path, and a slave fd we keep open
// in raw mode so the master does not see a hangup when the client closes and reopens the port.
func openPTY() (master int, slavePath string, keep int, err error) {
	master, err = unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return -1, "", -1, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	fail := func(e error) (int, string, int, error) {
		unix.Close(master)
		return -1, "", -1, e
	}
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		return fail(fmt.Errorf("unlock pty: %w", err))
	}
	n, err := unix.IoctlGetInt(master, unix.TIOCGPTN)
	if err != nil {
		return fail(fmt.Errorf("pty number: %w", err))
	}
	slavePath = "/dev/pts/" + strconv.Itoa(n)
	keep, err = unix.Open(slavePath, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(fmt.Errorf("open %s: %w", slavePath, err))
	}
	if err := makeRaw(keep); err != nil {
		unix.Close(keep)
		return fail(err)
	}
	return master, slavePath, keep, nil
}

func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("tcgets: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("tcsets: %w", err)
	}
	return nil
}

// writeAll writes b to the non-blocking master, waiting for room up to a second per chunk; a
// client that stopped reading for that long loses the rest (as a real modem's buffer would).
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EAGAIN {
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
			if k, perr := unix.Poll(pfd, 1000); perr != nil && perr != unix.EINTR || k == 0 {
				return os.ErrDeadlineExceeded
			}
			continue
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
