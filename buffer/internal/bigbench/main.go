// Command bigbench measures the outbox at the 1,000,000-job scale the issue
// sets targets for, each phase in a fresh process so peak RSS (VmHWM) is
// that phase's own:
//
//	go run ./buffer/internal/bigbench -n 1000000 -memlimit 48MiB
//
// Phases: fill (Put n jobs of -size random bytes from -producers
// goroutines), reopen (Open, then time until the first Lease returns),
// drain (Lease+Ack everything, report peak RSS). The database is created in
// -dir (default: a temporary directory, removed afterwards unless -keep).
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopkit/relay/buffer"
)

func main() {
	dir := flag.String("dir", "", "database directory (default: a temporary one)")
	n := flag.Int("n", 1_000_000, "jobs")
	size := flag.Int("size", 500, "payload bytes (random, incompressible)")
	recipients := flag.Int("recipients", 100_000, "distinct recipients")
	producers := flag.Int("producers", 128, "concurrent producers (fill)")
	ackers := flag.Int("ackers", 128, "concurrent Ack callers (drain)")
	memlimit := flag.String("memlimit", "48MiB", "GOMEMLIMIT for the measured child processes (48MiB: the value the 1M drain stays under 80 MiB with)")
	keep := flag.Bool("keep", false, "keep the database directory")
	trim := flag.Duration("trim", 0, "Options.TrimInterval (0 = the default, negative = off)")
	smaps := flag.Bool("smaps", false, "also sample /proc/self/smaps every 500ms and report which Badger files make the file-backed RSS (reading smaps holds the mm lock and slows the process a little)")
	phase := flag.String("phase", "", "internal: run one phase in this process")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the phase to this file (with -phase)")
	memprofile := flag.String("memprofile", "", "write a heap profile halfway through the phase to this file (with -phase)")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}

	if *phase != "" {
		heapProfile = *memprofile
		sampleSmaps = *smaps
		if err := runPhase(*phase, *dir, *n, *size, *recipients, *producers, *ackers, *trim); err != nil {
			pprof.StopCPUProfile()
			fmt.Fprintln(os.Stderr, "bigbench:", err)
			os.Exit(1)
		}
		return
	}
	tmp := ""
	if *dir == "" {
		d, err := os.MkdirTemp("", "bigbench-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		*dir = d + "/db"
		if !*keep {
			tmp = d
		}
	}
	fmt.Printf("bigbench: n=%d size=%d recipients=%d GOMEMLIMIT=%s dir=%s\n", *n, *size, *recipients, *memlimit, *dir)
	code := 0
	for _, p := range []string{"fill", "reopen", "drain"} {
		cmd := exec.Command(os.Args[0], append([]string{"-phase", p, "-dir", *dir}, passFlags()...)...)
		cmd.Env = append(os.Environ(), "GOMEMLIMIT="+*memlimit)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "phase %s: %v\n", p, err)
			code = 1
			break
		}
	}
	if tmp != "" {
		os.RemoveAll(tmp) // also on failure: os.Exit skips deferred calls
	}
	if code != 0 {
		os.Exit(code)
	}
}

// sampleSmaps: the sampler also reads /proc/self/smaps.
var sampleSmaps bool

// heapProfile is where halfway writes a heap profile ("" = nowhere).
var heapProfile string

// halfway writes the heap profile, once, when done reaches half of total.
func halfway(done, total int64, once *sync.Once) {
	if heapProfile == "" || done < total/2 {
		return
	}
	once.Do(func() {
		if f, err := os.Create(heapProfile); err == nil {
			_ = pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	})
}

func passFlags() []string {
	var out []string
	flag.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "n", "size", "recipients", "producers", "ackers", "trim", "smaps":
			out = append(out, "-"+f.Name, f.Value.String())
		}
	})
	return out
}

// sampler records the highest anonymous and file-backed RSS seen, every
// 50ms, to tell which one makes the peak; every 500ms it also reads
// /proc/self/smaps (with -smaps) and keeps the split of the file-backed part by kind of
// Badger file (.sst, .vlog, .mem, other files, and mappings of deleted
// files) at the sample where it was highest.
type sampler struct {
	maxAnon, maxFile atomic.Int64
	mu               sync.Mutex
	maxSplit         split
	stop, done       chan struct{}
}

// split is resident kB by mapping kind.
type split struct {
	sst, vlog, mem, other, deleted int64
	nsst, ndeleted                 int
}

func (s split) total() int64 { return s.sst + s.vlog + s.mem + s.other + s.deleted }

func (s split) String() string {
	return fmt.Sprintf("sst %d kB in %d maps, vlog %d kB, mem %d kB, deleted files %d kB in %d maps, other files %d kB",
		s.sst, s.nsst, s.vlog, s.mem, s.deleted, s.ndeleted, s.other)
}

// readSplit sums Rss of this process's file mappings by kind.
func readSplit() split {
	var sp split
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return sp
	}
	kind := ""
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			kind = ""
			if len(f) < 6 || !strings.HasPrefix(f[5], "/") {
				continue
			}
			switch path := strings.Join(f[5:], " "); {
			case strings.HasSuffix(path, "(deleted)"):
				kind = "deleted"
				sp.ndeleted++
			case strings.HasSuffix(path, ".sst"):
				kind = "sst"
				sp.nsst++
			case strings.HasSuffix(path, ".vlog"):
				kind = "vlog"
			case strings.HasSuffix(path, ".mem"):
				kind = "mem"
			default:
				kind = "other"
			}
			continue
		}
		if kind == "" || len(f) < 2 || f[0] != "Rss:" {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch kind {
		case "sst":
			sp.sst += n
		case "vlog":
			sp.vlog += n
		case "mem":
			sp.mem += n
		case "deleted":
			sp.deleted += n
		default:
			sp.other += n
		}
	}
	return sp
}

func startSampler() *sampler {
	sm := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(sm.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-sm.stop:
				return
			case <-t.C:
				st := status("RssAnon:", "RssFile:")
				if a := kb(st[0]); a > sm.maxAnon.Load() {
					sm.maxAnon.Store(a)
				}
				if f := kb(st[1]); f > sm.maxFile.Load() {
					sm.maxFile.Store(f)
				}
				if sampleSmaps && i%10 == 0 {
					if sp := readSplit(); sp.total() > sm.maxSplit.total() {
						sm.mu.Lock()
						sm.maxSplit = sp
						sm.mu.Unlock()
					}
				}
			}
		}
	}()
	return sm
}

func (sm *sampler) String() string {
	close(sm.stop)
	<-sm.done
	s := fmt.Sprintf("max sampled anon %d kB, file %d kB", sm.maxAnon.Load(), sm.maxFile.Load())
	if sampleSmaps {
		s += fmt.Sprintf("; file split at its highest smaps sample: %v", sm.maxSplit)
	}
	return s
}

func kb(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
	return n
}

func runPhase(phase, dir string, n, size, recipients, producers, ackers int, trim time.Duration) error {
	ctx := context.Background()
	sm := startSampler()
	t0 := time.Now()
	s, err := buffer.Open(dir, buffer.Options{TrimInterval: trim})
	if err != nil {
		return err
	}
	openTime := time.Since(t0)
	defer func() {
		if err := s.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "close:", err)
		}
	}()
	switch phase {
	case "fill":
		var next atomic.Int64
		var prof sync.Once
		var wg sync.WaitGroup
		errc := make(chan error, producers)
		c0 := s.Stats().Commits
		start := time.Now()
		for range producers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				payload := make([]byte, size)
				for {
					i := next.Add(1) - 1
					if i >= int64(n) {
						return
					}
					halfway(i, int64(n), &prof)
					_, _ = rand.Read(payload)
					if _, err := s.Put(ctx, buffer.Message{ID: fmt.Sprintf("job-%08d", i), To: fmt.Sprintf("+4915%07d", int(i)%recipients), Payload: payload}); err != nil {
						errc <- err
						return
					}
				}
			}()
		}
		if err := wait(&wg, errc); err != nil {
			return err
		}
		el := time.Since(start)
		fmt.Printf("fill:   %d Puts in %v = %.0f Puts/s, %.4f fsyncs/Put, depth %d, peak RSS %s; %s\n",
			n, el.Round(time.Millisecond), float64(n)/el.Seconds(), float64(s.Stats().Commits-c0)/float64(n), s.Depth(), peakRSS(), sm)
	case "reopen":
		ms, err := s.Lease(ctx, 1, time.Now())
		if err != nil {
			return err
		}
		first := time.Since(t0)
		fmt.Printf("reopen: Open %v, first Lease returned %d message(s) %v after Open began (depth %d, oldest age %v), peak RSS %s\n",
			openTime.Round(time.Millisecond), len(ms), first.Round(time.Millisecond), s.Depth(), s.OldestAge(time.Now()).Round(time.Second), peakRSS())
	case "drain":
		depth := s.Depth()
		work := make(chan string, 4*ackers)
		var wg sync.WaitGroup
		var acked atomic.Int64
		var prof sync.Once
		errc := make(chan error, ackers)
		for range ackers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for id := range work {
					if err := s.Ack(ctx, id, "sent"); err != nil {
						errc <- err
						return
					}
					halfway(acked.Add(1), int64(depth), &prof)
				}
			}()
		}
		start := time.Now()
		leased := 0
		for leased < depth {
			ms, err := s.Lease(ctx, 256, time.Now())
			if err != nil {
				return err
			}
			if len(ms) == 0 {
				// every head is leased: wait for the ackers to free some
				for acked.Load() < int64(leased) && len(work) > 0 {
					time.Sleep(100 * time.Microsecond)
				}
				continue
			}
			for _, m := range ms {
				work <- m.ID
			}
			leased += len(ms)
		}
		close(work)
		if err := wait(&wg, errc); err != nil {
			return err
		}
		el := time.Since(start)
		fmt.Printf("drain:  %d Lease+Ack in %v = %.0f msgs/s, depth now %d, peak RSS (VmHWM) %s; %s; GOMEMLIMIT %s\n",
			leased, el.Round(time.Millisecond), float64(leased)/el.Seconds(), s.Depth(), peakRSS(), sm, memLimit())
	default:
		return fmt.Errorf("unknown phase %q", phase)
	}
	return nil
}

func peakRSS() string {
	st := status("VmHWM:", "RssAnon:", "RssFile:")
	return st[0] + " (now anon " + st[1] + ", file " + st[2] + ")"
}

// status returns the values of fields in /proc/self/status, read once
// ("?" for a field not found).
func status(fields ...string) []string {
	out := make([]string, len(fields))
	for i := range out {
		out[i] = "?"
	}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		for i, field := range fields {
			if v, ok := strings.CutPrefix(sc.Text(), field); ok {
				out[i] = strings.TrimSpace(v)
			}
		}
	}
	return out
}

// wait waits for the workers and returns the first error one reported.
func wait(wg *sync.WaitGroup, errc <-chan error) error {
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func memLimit() string {
	l := debug.SetMemoryLimit(-1)
	if l == 1<<63-1 {
		return "off"
	}
	return fmt.Sprintf("%d MiB", l>>20)
}
