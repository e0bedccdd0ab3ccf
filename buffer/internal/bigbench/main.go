// Command bigbench measures the outbox at the 1,000,000-job scale the issue
// sets targets for, each phase in a fresh process so peak RSS (VmHWM) is
// that phase's own:
//
//	go run ./buffer/internal/bigbench -n 1000000 -memlimit 64MiB
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
	memlimit := flag.String("memlimit", "64MiB", "GOMEMLIMIT for the measured child processes")
	keep := flag.Bool("keep", false, "keep the database directory")
	trim := flag.Duration("trim", 0, "Options.TrimInterval (0 = the default, negative = off)")
	phase := flag.String("phase", "", "internal: run one phase in this process")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the phase to this file (with -phase)")
	memprofile := flag.String("memprofile", "", "write a heap profile at the end of the phase to this file (with -phase)")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			_ = pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}

	if *phase != "" {
		if *memprofile != "" {
			defer func() {
				if f, err := os.Create(*memprofile); err == nil {
					_ = pprof.Lookup("heap").WriteTo(f, 0)
					f.Close()
				}
			}()
		}
		if err := runPhase(*phase, *dir, *n, *size, *recipients, *producers, *ackers, *trim); err != nil {
			pprof.StopCPUProfile()
			fmt.Fprintln(os.Stderr, "bigbench:", err)
			os.Exit(1)
		}
		return
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "bigbench-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		*dir = d + "/db"
		if !*keep {
			defer os.RemoveAll(d)
		}
	}
	fmt.Printf("bigbench: n=%d size=%d recipients=%d GOMEMLIMIT=%s dir=%s\n", *n, *size, *recipients, *memlimit, *dir)
	ok := true
	for _, p := range []string{"fill", "reopen", "drain"} {
		cmd := exec.Command(os.Args[0], append([]string{"-phase", p, "-dir", *dir}, passFlags()...)...)
		cmd.Env = append(os.Environ(), "GOMEMLIMIT="+*memlimit)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "phase %s: %v\n", p, err)
			ok = false
			break
		}
	}
	if !ok {
		os.Exit(1)
	}
}

func passFlags() []string {
	var out []string
	flag.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "n", "size", "recipients", "producers", "ackers", "trim":
			out = append(out, "-"+f.Name, f.Value.String())
		}
	})
	return out
}

// sampler records the highest anonymous and file-backed RSS seen, every
// 50ms, to tell which one makes the peak.
type sampler struct {
	maxAnon, maxFile atomic.Int64
	stop             chan struct{}
}

func startSampler() *sampler {
	sm := &sampler{stop: make(chan struct{})}
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-sm.stop:
				return
			case <-t.C:
				if a := kb(status("RssAnon:")); a > sm.maxAnon.Load() {
					sm.maxAnon.Store(a)
				}
				if f := kb(status("RssFile:")); f > sm.maxFile.Load() {
					sm.maxFile.Store(f)
				}
			}
		}
	}()
	return sm
}

func (sm *sampler) String() string {
	close(sm.stop)
	return fmt.Sprintf("max sampled anon %d kB, file %d kB", sm.maxAnon.Load(), sm.maxFile.Load())
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
					_, _ = rand.Read(payload)
					if _, err := s.Put(ctx, buffer.Message{ID: fmt.Sprintf("job-%08d", i), To: fmt.Sprintf("+4915%07d", int(i)%recipients), Payload: payload}); err != nil {
						errc <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		select {
		case err := <-errc:
			return err
		default:
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
					acked.Add(1)
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
		wg.Wait()
		select {
		case err := <-errc:
			return err
		default:
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
	return status("VmHWM:") + " (now anon " + status("RssAnon:") + ", file " + status("RssFile:") + ")"
}

func status(field string) string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func memLimit() string {
	l := debug.SetMemoryLimit(-1)
	if l == 1<<63-1 {
		return "off"
	}
	return fmt.Sprintf("%d MiB", l>>20)
}
