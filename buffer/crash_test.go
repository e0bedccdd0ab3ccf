package buffer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const crashEnv = "BUFFER_CRASH_CHILD_DIR"

// TestCrashChild is the child process of TestCrash_KillNine; it does
// nothing in a normal run. It prints "opening" before Open (some rounds
// are killed inside Open) and "ready" after it. It Puts to 20 recipients (one producer per
// recipient group, so each recipient's order is defined), leases, marks
// sending, and acks or retries two thirds of what it leases, leaving the
// rest leased with a started send. Every Ack carries extras (an event on
// spool "ev", a journal line, a KV "sent" entry) and every Retry an event,
// which must commit with it. Every line is printed only after the call
// returned.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("child process of TestCrash_KillNine")
	}
	round := os.Getenv("BUFFER_CRASH_ROUND")
	var outMu sync.Mutex
	say := func(format string, a ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		_, _ = os.Stdout.WriteString(fmt.Sprintf(format, a...) + "\n")
	}
	// Everything the store and Badger log (Badger at debug) goes to a file
	// per round, so a failed round shows what Open saw.
	logf, err := os.Create(crashLogPath(dir, round))
	if err != nil {
		say("error log %v", err)
		os.Exit(2)
	}
	say("opening")
	s, err := Open(dir, Options{Logger: slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		say("error open %v", err)
		os.Exit(2)
	}
	if q := s.Quarantined(); q != "" {
		say("error the database would not open after the last kill; moved aside to %s (see the log below)", q)
		os.Exit(2)
	}
	say("ready")
	ctx := context.Background()
	kick := make(chan struct{}, 1)
	for g := range 4 {
		go func() {
			for n := 0; ; n++ {
				id := fmt.Sprintf("r%dx%d-%s-%06d", g, n%5, round, n)
				r, err := s.Put(ctx, Message{ID: id, To: fmt.Sprintf("r%dx%d", g, n%5), Payload: []byte(id)})
				if err != nil || r != Accepted {
					say("error put %s %v %v", id, r, err)
					os.Exit(2)
				}
				say("put %s", id)
				select {
				case kick <- struct{}{}:
				default:
				}
			}
		}()
	}
	for i := 0; ; i++ {
		ms, err := s.Lease(ctx, 4, time.Now())
		if err != nil {
			say("error lease %v", err)
			os.Exit(2)
		}
		if len(ms) == 0 {
			<-kick
			continue
		}
		for _, m := range ms {
			say("leased %s %v", m.ID, m.SendStarted)
			if err := s.MarkSending(ctx, m.ID); err != nil {
				say("error marksending %v", err)
				os.Exit(2)
			}
			say("sending %s", m.ID)
			if (i+int(m.Seq))%3 == 0 {
				continue // keep the lease, send started: the crash must bring it back
			}
			if (i+int(m.Seq))%5 == 1 && m.Attempts < 2 {
				say("retrying %s", m.ID)
				if err := s.Retry(ctx, m.ID, time.Now(), "transient", SpoolExtra("ev", fmt.Appendf(nil, "retry %s %d", m.ID, m.Attempts+1))); err != nil {
					say("error retry %v", err)
					os.Exit(2)
				}
				say("retried %s", m.ID)
				continue
			}
			if err := s.Ack(ctx, m.ID, "sent", SpoolExtra("ev", []byte("acked "+m.ID)),
				JournalExtra(Entry{ID: m.ID, Kind: "sent"}), KVExtra("sent", m.ID, []byte("sent"))); err != nil {
				say("error ack %v", err)
				os.Exit(2)
			}
			say("acked %s", m.ID)
		}
	}
}

type crashModel struct {
	put      map[string]bool // Put acknowledged to the producer
	acked    map[string]bool // Ack acknowledged
	sending  map[string]bool // MarkSending acknowledged, no Ack or Retry acknowledged
	retrying map[string]bool // a Retry was started (it clears SendStarted) and may have committed
}

func TestCrash_KillNine(t *testing.T) {
	rounds := 50
	if testing.Short() {
		rounds = 12
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	dir := filepath.Join(t.TempDir(), "db")
	m := crashModel{put: map[string]bool{}, acked: map[string]bool{}, sending: map[string]bool{}, retrying: map[string]bool{}}
	start := time.Now()
	inOpen, landed := 0, 0
	for round := range rounds {
		// One round in four is killed at a random moment inside Open
		// (Badger flushes and deletes the old WALs, creates new log files
		// there): 0 lines and a delay after "opening". The others after
		// 1-250 lines of work.
		k := crashKill{afterLines: 1 + rng.IntN(250)}
		if round > 0 && rng.IntN(4) == 0 {
			k = crashKill{inOpen: time.Duration(rng.IntN(40_000)) * time.Microsecond}
			inOpen++
		}
		if !runCrashChild(t, dir, round, k, &m) {
			landed++
		}
	}
	t.Logf("%d of %d kills aimed inside Open, %d landed before it returned; %s", inOpen, rounds, landed, crashRepairs(dir))
	t.Logf("%d kills in %v: %d puts, %d acks, %d sends left unresolved", rounds, time.Since(start).Round(time.Millisecond), len(m.put), len(m.acked), len(m.sending))

	if moved, _ := filepath.Glob(dir + ".corrupt-*"); len(moved) > 0 {
		t.Errorf("a child found the database unopenable and moved it aside: %v", moved)
	}
	s := openT(t, dir, Options{})
	if q := s.Quarantined(); q != "" {
		t.Fatalf("the final Open moved the database aside to %s", q)
	}
	present := map[string]bool{}
	lastN := map[string]string{} // recipient → last (round, n) seen, in acceptance order
	_ = s.Each(func(msg Message) bool {
		if present[msg.ID] {
			t.Errorf("%s present twice", msg.ID)
		}
		present[msg.ID] = true
		if m.acked[msg.ID] {
			t.Errorf("%s acked but still queued", msg.ID)
		}
		key := msg.ID[strings.IndexByte(msg.ID, '-')+1:] // round-n, zero padded
		if prev, ok := lastN[msg.To]; ok && key <= prev {
			t.Errorf("recipient %s out of order: %s after %s", msg.To, key, prev)
		}
		lastN[msg.To] = key
		return true
	})
	for id := range m.put {
		if m.acked[id] || present[id] {
			continue
		}
		// Acked by the child, killed before it could print "acked"?
		if out, _, ok, err := s.Outcome(id); err != nil || !ok || out != "sent" {
			t.Errorf("acknowledged Put %s lost (outcome %q %v %v)", id, out, ok, err)
		}
	}
	if s.Depth() != len(present) {
		t.Errorf("Depth %d, %d present", s.Depth(), len(present))
	}
	checkCrashExtras(t, s, m)
	// Drain: every queued message is leased exactly once, started sends
	// come back marked.
	leased := 0
	for {
		ms, err := s.Lease(ctx, 100, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 {
			break
		}
		for _, msg := range ms {
			leased++
			if m.sending[msg.ID] && !msg.SendStarted && !m.retrying[msg.ID] {
				t.Errorf("%s: MarkSending was acknowledged but SendStarted=false after the crash", msg.ID)
			}
		}
		parallel(t, len(ms), 16, func(i int) error { return s.Ack(ctx, ms[i].ID, "sent") })
	}
	if leased != len(present) || s.Depth() != 0 {
		t.Errorf("drained %d of %d present (Depth %d): a lease was lost", leased, len(present), s.Depth())
	}
}

// checkCrashExtras: every message acked has its extras (event, journal
// line, KV entry) exactly once, and no extra exists without its Ack; every
// queued message has one retry event per counted attempt.
func checkCrashExtras(t *testing.T, s *Store, m crashModel) {
	t.Helper()
	items, err := s.Spool("ev").Peek(1 << 30)
	if err != nil {
		t.Fatal(err)
	}
	ackEv, retryEv := map[string]int{}, map[string]int{}
	for _, it := range items {
		f := strings.Fields(string(it.Data))
		switch {
		case len(f) == 2 && f[0] == "acked":
			ackEv[f[1]]++
		case len(f) == 3 && f[0] == "retry":
			retryEv[f[1]]++
		default:
			t.Errorf("unexpected spool item %q", it.Data)
		}
	}
	journal := map[string]int{}
	if err := s.Journal().Range(time.Unix(0, 0), time.Now().Add(time.Hour), func(e Entry) bool {
		journal[e.ID]++
		return true
	}); err != nil {
		t.Fatal(err)
	}
	kv := map[string]bool{}
	if err := s.KV("sent").Each("", func(k string, _ []byte) bool { kv[k] = true; return true }); err != nil {
		t.Fatal(err)
	}
	// Every id that was acknowledged as Put or left any extra (a Put can
	// commit and be acked before the killed child printed "put").
	ids := map[string]bool{}
	for _, set := range []map[string]int{ackEv, journal, retryEv} {
		for id := range set {
			ids[id] = true
		}
	}
	for id := range kv {
		ids[id] = true
	}
	for id := range m.put {
		ids[id] = true
	}
	acked := 0
	for id := range ids {
		out, _, ok, err := s.Outcome(id)
		if err != nil {
			t.Fatal(err)
		}
		isAcked := ok && out == "sent"
		if isAcked {
			acked++
		}
		if m.acked[id] && !isAcked {
			t.Errorf("%s: Ack acknowledged, outcome %q", id, out)
		}
		want := map[bool]int{true: 1}[isAcked]
		if ackEv[id] != want || journal[id] != want || kv[id] != isAcked {
			t.Errorf("%s: outcome %q, yet %d acked events, %d journal lines, KV entry %v", id, out, ackEv[id], journal[id], kv[id])
		}
	}
	_ = s.Each(func(msg Message) bool {
		if retryEv[msg.ID] != msg.Attempts {
			t.Errorf("%s: Attempts %d but %d retry events", msg.ID, msg.Attempts, retryEv[msg.ID])
		}
		return true
	})
	t.Logf("extras: %d acks with their extras, %d retry events", acked, len(retryEv))
}

func crashLogPath(dir, round string) string {
	return filepath.Join(filepath.Dir(dir), "child-"+round+".log")
}

// crashDiagnosis is what a failed round leaves for the reader: the child's
// warnings and errors (Badger's included) and the files of every database
// moved aside, with their sizes.
func crashDiagnosis(dir string, round int) string {
	var b strings.Builder
	logs, _ := os.ReadFile(crashLogPath(dir, fmt.Sprintf("%03d", round)))
	for _, l := range strings.Split(string(logs), "\n") {
		if strings.Contains(l, "level=ERROR") || strings.Contains(l, "level=WARN") ||
			strings.Contains(l, "badger_level=error") || strings.Contains(l, "badger_level=warning") {
			b.WriteString("  log: " + l + "\n")
		}
	}
	moved, _ := filepath.Glob(dir + ".corrupt-*")
	for _, d := range append([]string{dir}, moved...) {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if fi, err := e.Info(); err == nil {
				fmt.Fprintf(&b, "  file: %s %d\n", filepath.Join(filepath.Base(d), e.Name()), fi.Size())
			}
		}
	}
	return b.String()
}

var reexec struct {
	once   sync.Once
	prefix []string // e.g. qemu-aarch64-static
	skip   string
	fatal  error
}

// childCommand re-executes the test binary. Under qemu-user without
// binfmt_misc (CI runs the arm64 tests that way) the binary cannot exec
// itself directly, so it is started through qemu-<arch>-static, or the
// test is skipped when that is not installed.
func childCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	reexec.once.Do(func() {
		err := exec.Command(os.Args[0], "-test.run=^$").Run()
		if err == nil {
			return
		}
		if !errors.Is(err, syscall.ENOEXEC) {
			reexec.fatal = err
			return
		}
		qemu := map[string]string{"arm64": "qemu-aarch64-static", "amd64": "qemu-x86_64-static", "riscv64": "qemu-riscv64-static"}[runtime.GOARCH]
		path, lerr := exec.LookPath(qemu)
		if qemu == "" || lerr != nil {
			reexec.skip = fmt.Sprintf("cannot re-exec the test binary (%v) and no %q on PATH", err, qemu)
			return
		}
		reexec.prefix = []string{path}
	})
	switch {
	case reexec.fatal != nil:
		t.Fatalf("cannot re-exec the test binary: %v", reexec.fatal)
	case reexec.skip != "":
		t.Skip(reexec.skip)
	}
	argv := append(append(append([]string(nil), reexec.prefix...), os.Args[0]), args...)
	return exec.Command(argv[0], argv[1:]...)
}

// crashKill says when a round's child is killed: after afterLines lines
// following "ready", or (afterLines 0) inOpen after it printed "opening".
type crashKill struct {
	afterLines int
	inOpen     time.Duration
}

// runCrashChild runs one round and reports whether the child's Open
// returned (it printed "ready") before the kill.
func runCrashChild(t *testing.T, dir string, round int, k crashKill, m *crashModel) (ready bool) {
	t.Helper()
	cmd := childCommand(t, "-test.run=^TestCrashChild$", "-test.v=false")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir, fmt.Sprintf("BUFFER_CRASH_ROUND=%03d", round))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A watchdog instead of a sleep: a child that hangs is killed and fails the test.
	watchdog := time.AfterFunc(20*time.Second, func() { _ = cmd.Process.Kill() })
	defer watchdog.Stop()
	var killed atomic.Bool
	kill := func() {
		if !killed.Swap(true) {
			_ = cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	sc := bufio.NewScanner(out)
	lines := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "opening":
			if k.afterLines == 0 {
				// A timer picks the random moment; nothing waits on it.
				kt := time.AfterFunc(k.inOpen, kill)
				defer kt.Stop()
			}
			continue
		case "ready":
			ready = true
		case "error":
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("child round %d: %s\n%s", round, sc.Text(), crashDiagnosis(dir, round))
		case "put":
			m.put[f[1]] = true
		case "leased":
			if m.acked[f[1]] {
				t.Errorf("round %d: %s leased again after its Ack was acknowledged", round, f[1])
			}
			if m.sending[f[1]] && f[2] != "true" && !m.retrying[f[1]] {
				t.Errorf("round %d: %s re-leased with SendStarted=%s after a crash during its send", round, f[1], f[2])
			}
			delete(m.retrying, f[1])
			// What the lease showed is now the truth: a Retry that
			// committed unseen (killed before "retried") cleared the
			// flag, and a later kill before MarkSending must not be held
			// against the store.
			if f[2] == "true" {
				m.sending[f[1]] = true
			} else {
				delete(m.sending, f[1])
			}
		case "sending":
			m.sending[f[1]] = true
		case "acked":
			m.acked[f[1]] = true
			delete(m.sending, f[1])
		case "retrying":
			m.retrying[f[1]] = true
		case "retried":
			delete(m.sending, f[1])
		}
		lines++
		if lines == k.afterLines {
			kill() // keep reading: lines written before the kill are acknowledgements
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !killed.Load() || !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("round %d: child ended without our SIGKILL after %d lines: %v", round, lines, err)
	}
	return ready
}

// crashRepairs counts, over all rounds' logs, what Open had to repair or
// retry after a kill (see open.go).
func crashRepairs(dir string) string {
	logs, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), "child-*.log"))
	count := map[string]int{}
	for _, p := range logs {
		b, _ := os.ReadFile(p)
		for _, l := range strings.Split(string(b), "\n") {
			for _, what := range []string{"removed an empty log file", "cut a torn last record", "class=retry", "class=fail", "class=corrupt"} {
				if strings.Contains(l, what) {
					count[what]++
				}
			}
		}
	}
	return fmt.Sprintf("Open repairs over all rounds: %d empty log files removed, %d torn MANIFEST tails cut, open attempts failed: %d retry, %d fail, %d corrupt",
		count["removed an empty log file"], count["cut a torn last record"], count["class=retry"], count["class=fail"], count["class=corrupt"])
}

// TestStore_ReopenTorture closes the store under concurrent producers and a
// consumer, reopens, and checks that every Put that returned Accepted is
// there (or acked), every Put that returned ErrClosed is not, and no
// goroutine is left behind.
func TestStore_ReopenTorture(t *testing.T) {
	dir := t.TempDir()
	baseline := runtime.NumGoroutine()
	accepted := map[string]bool{}
	closedIDs := map[string]bool{}
	acked := map[string]bool{}
	var mu sync.Mutex
	for round := range 8 {
		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		for id := range accepted {
			if _, _, ok, _ := s.Outcome(id); !ok {
				t.Errorf("round %d: accepted %s missing after reopen", round, id)
			}
		}
		for id := range closedIDs {
			if _, _, ok, _ := s.Outcome(id); ok {
				t.Errorf("round %d: %s stored although Put returned ErrClosed", round, id)
			}
		}
		mu.Unlock()
		var wg sync.WaitGroup
		progress := make(chan struct{}, 1000)
		for p := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; ; n++ {
					id := fmt.Sprintf("t%d-%d-%d", round, p, n)
					r, err := s.Put(ctx, Message{ID: id, To: fmt.Sprintf("to%d", n%9)})
					mu.Lock()
					switch {
					case err == nil && r == Accepted:
						accepted[id] = true
					case errors.Is(err, ErrClosed):
						closedIDs[id] = true
					default:
						t.Errorf("Put %s: %v %v", id, r, err)
					}
					mu.Unlock()
					if err != nil {
						return
					}
					select {
					case progress <- struct{}{}:
					default:
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ms, err := s.Lease(ctx, 8, time.Now())
				if errors.Is(err, ErrClosed) {
					return
				}
				for _, msg := range ms {
					err := s.Ack(ctx, msg.ID, "sent")
					if errors.Is(err, ErrClosed) {
						return
					}
					if err == nil {
						mu.Lock()
						acked[msg.ID] = true
						mu.Unlock()
					}
				}
				runtime.Gosched()
			}
		}()
		for range 50 + round*20 {
			<-progress
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
	}
	s := openT(t, dir, Options{})
	count := 0
	_ = s.Each(func(msg Message) bool {
		count++
		if !accepted[msg.ID] || acked[msg.ID] {
			t.Errorf("unexpected %s in queue", msg.ID)
		}
		return true
	})
	if want := len(accepted) - len(acked); count != want || s.Depth() != want {
		t.Errorf("queue holds %d (Depth %d), want %d", count, s.Depth(), want)
	}
	_ = s.Close()
	if !eventually(5*time.Second, func() bool { return runtime.NumGoroutine() <= baseline }) {
		n := runtime.NumGoroutine()
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after Close, %d before:\n%s", n, baseline, buf[:runtime.Stack(buf, true)])
	}
}
