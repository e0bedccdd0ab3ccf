package bench_test

import (
	"os"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// selfCPU is the CPU time (user + system) this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the CPU time (user + system) of process pid (0 when it cannot be read).
func procCPU(pid int) time.Duration {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0
	}
	st, err := p.Stat()
	if err != nil {
		return 0
	}
	return time.Duration(st.CPUTime() * float64(time.Second))
}

// childNamed is the pid of this process's child running the program name (0: none). Used to
// find the Mosquitto that mqtttest started, to account its CPU.
func childNamed(name string) int {
	procs, err := procfs.AllProcs()
	if err != nil {
		return 0
	}
	me := os.Getpid()
	for _, p := range procs {
		if st, err := p.Stat(); err == nil && st.PPID == me && st.Comm == name {
			return p.PID
		}
	}
	return 0
}

// mem is a process's memory from /proc/<pid>/status, in bytes.
type mem struct {
	HWM, RSS   int64 // VmHWM (peak resident), VmRSS (resident now)
	Anon, File int64 // RssAnon (heap, stacks), RssFile (mapped files: Badger's tables and logs)
}

// memStatus reads a process's memory from /proc/<pid>/status.
func memStatus(pid int) (mem, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return mem{}, err
	}
	s, err := p.NewStatus()
	if err != nil {
		return mem{}, err
	}
	return mem{HWM: int64(s.VmHWM), RSS: int64(s.VmRSS), Anon: int64(s.RssAnon), File: int64(s.RssFile)}, nil
}
