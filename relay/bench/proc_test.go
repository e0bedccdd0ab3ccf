package bench_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// selfCPU is the CPU time (user + system) this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTick is USER_HZ, 100 on every Linux we run on.
const clockTick = 10 * time.Millisecond

// procCPU is the CPU time (user + system) of process pid, from /proc/<pid>/stat.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// The command name is in parentheses and may hold spaces: count fields after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 { // fields 3.. of stat; utime is field 14, stime 15
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * clockTick
}

// childNamed is the pid of this process's child running the program name (0: none). Used to
// find the Mosquitto that mqtttest started, to account its CPU.
func childNamed(name string) int {
	ents, _ := os.ReadDir("/proc")
	me := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if i < 0 || j < i {
			continue
		}
		f := strings.Fields(string(b[j+1:]))
		if len(f) < 2 || string(b[i+1:j]) != name {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == me {
			return pid
		}
	}
	return 0
}

// mem is a process's memory from /proc/<pid>/status, in bytes.
type mem struct {
	HWM, RSS   int64 // VmHWM (peak resident), VmRSS (resident now)
	Anon, File int64 // RssAnon (heap, stacks), RssFile (mapped files: Badger's tables and logs)
	Shmem      int64 // RssShmem
}

// memStatus reads a process's memory from /proc/<pid>/status.
func memStatus(pid int) (m mem, err error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return m, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) != 2 || fs[1] != "kB" {
			continue
		}
		n, _ := strconv.ParseInt(fs[0], 10, 64)
		switch k {
		case "VmHWM":
			m.HWM = n << 10
		case "VmRSS":
			m.RSS = n << 10
		case "RssAnon":
			m.Anon = n << 10
		case "RssFile":
			m.File = n << 10
		case "RssShmem":
			m.Shmem = n << 10
		}
	}
	return m, sc.Err()
}
