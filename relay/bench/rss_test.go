package bench_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shopkit/relay/relay/mqtt/mqtttest"
)

// Built programs, shared by the RSS sub-benchmarks and removed by TestMain.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// programs builds relayd and the fake signal-cli (once per test binary).
func programs(b *testing.B) string {
	b.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "relay-bench-bin-")
		if buildErr != nil {
			return
		}
		root, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		cmd := exec.Command("go", "build", "-trimpath", "-o", binDir+"/", "./cmd/relayd", "./signalbridge/signaltest/cmd/fake-signal-cli")
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return binDir
}

const (
	rssQueued = 100_000 // jobs queued before the load phase
	rssPaced  = 1_000   // jobs at 100/s while memory is sampled (10 s)
	account   = "+4915100000000"
)

// BenchmarkRelaydRSS runs the real relayd (built with go build) as a child process against a
// real Mosquitto (max_inflight_messages 1000, set_tcp_nodelay) and a fake signal-cli whose
// sends never answer (--fake-delay=send=1h; relayd's call_timeout is 30 s, so a send ends
// unknown_outcome and is retried later: the jobs stay queued). It publishes 100,000 jobs,
// every one to its own recipient with a consent proof, as fast as relayd takes them (the
// publisher stays at most 20,000 ahead of the accepted events), waits until relayd has
// published 100,000 accepted events, then feeds 1,000 more at 100 jobs/s while sampling
// /proc/<pid>/status every 100 ms.
//
// Reported: hwm-MiB (VmHWM at the end: the peak, the fast fill included), rss-MiB (the highest
// VmRSS while paced at 100/s with 100,000 queued) split into rss-anon-MiB (Go heap, stacks) and
// rss-file-MiB (mapped files), the latter split by /proc/<pid>/smaps of that sample into
// rss-badger-MiB (Badger's .sst/.mem/.vlog mappings, which buffer's trimmer pages out) and
// rss-text-MiB (every other file: relayd's own text, a floor), end-rss-MiB, fill-jobs/s. Sub-benchmarks
// set GOMEMLIMIT: 96MiB and 48MiB (the systemd unit's). One run per call whatever b.N.
func BenchmarkRelaydRSS(b *testing.B) {
	for _, limit := range []string{"96MiB", "48MiB"} {
		b.Run("GOMEMLIMIT="+limit, func(b *testing.B) { benchRSS(b, limit) })
	}
}

func benchRSS(b *testing.B, memLimit string) {
	b.StopTimer()
	bin := programs(b)
	broker := mqtttest.Start(b, mqtttest.Options{MaxInflight: 1000, TCPNoDelay: true})
	// A short directory: the signal socket path must fit a sockaddr_un.
	dir, err := os.MkdirTemp("", "rss-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(dir) })
	fake := filepath.Join(dir, "signal-cli")
	script := fmt.Sprintf("#!/bin/sh\nexec %s --fake-account=%s --fake-delay=send=1h \"$@\"\n", filepath.Join(bin, "fake-signal-cli"), account)
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		b.Fatal(err)
	}
	conf := filepath.Join(dir, "relay.toml")
	toml := fmt.Sprintf(`[shop]
name = "Blumenladen"
default_lang = "de"
[mqtt]
broker = %q
client_id = "relay-rss"
topic_prefix = %q
[signal]
account = %q
cli = %q
config_dir = %q
socket = %q
start_timeout = "20s"
[buffer]
dir = %q
[policy]
quiet_hours = ""
rate_per_minute = 6000
[control]
socket = %q
[metrics]
listen = ""
[log]
level = "warn"
`, broker.URL(), prefix, account, fake, filepath.Join(dir, "signal"), filepath.Join(dir, "s.sock"),
		filepath.Join(dir, "outbox"), filepath.Join(dir, "c.sock"))
	if err := os.WriteFile(conf, []byte(toml), 0o600); err != nil {
		b.Fatal(err)
	}

	// The shop's side: count accepted events, see the retained status.
	var accepted atomic.Int64
	var up atomic.Bool
	watch := client(b, broker.URL(), "rss-watcher", nil)
	subscribe(b, watch, prefix+"/events", func(_ paho.Client, m paho.Message) {
		if bytes.Contains(m.Payload(), []byte(`"event":"accepted"`)) {
			accepted.Add(1)
		}
	})
	subscribe(b, watch, prefix+"/status", func(_ paho.Client, m paho.Message) {
		var s struct{ State string }
		if json.Unmarshal(m.Payload(), &s) == nil && s.State != "" && s.State != "offline" {
			up.Store(true)
		}
	})

	logf, err := os.Create(filepath.Join(dir, "relayd.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(bin, "relayd"), "run", "--config", conf)
	cmd.Env = append(os.Environ(), "GOMEMLIMIT="+memLimit)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // relayd and its signal-cli, killed together if need be
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	pid := cmd.Process.Pid
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-exited
		}
		if b.Failed() {
			out, _ := os.ReadFile(logf.Name())
			b.Logf("relayd log:\n%s", tail(out, 4000))
		}
	})
	alive := func() bool {
		select {
		case <-exited:
			b.Fatal("relayd exited")
		default:
		}
		return true
	}
	waitFor(b, "relayd connected (retained status)", time.Minute, func() bool { return alive() && up.Load() })

	pub := client(b, broker.URL(), "shop-backend", nil)
	b.StartTimer()
	t0 := time.Now()
	const chunk, ahead = 2000, 20_000
	for i := 0; i < rssQueued; i += chunk {
		waitFor(b, "relayd keeps up", 5*time.Minute, func() bool { return alive() && int64(i)-accepted.Load() <= ahead })
		ps := make([][]byte, 0, chunk)
		for k := i; k < min(i+chunk, rssQueued); k++ {
			ps = append(ps, jobPayload(fmt.Sprintf("rss-%d", k), recipient(k)))
		}
		publishAll(b, pub, prefix+"/jobs", ps)
	}
	waitFor(b, "100,000 accepted events", 10*time.Minute, func() bool { return alive() && accepted.Load() >= rssQueued })
	fill := time.Since(t0)

	// 100 jobs/s with the queue full, sampling memory.
	var peak mem            // at the highest VmRSS
	var peakSplit fileSplit // the file-backed part of that sample, by mapping
	sample := func() {
		if m, err := memStatus(pid); err == nil && m.RSS > peak.RSS {
			peak = m
			peakSplit, _ = mappedFiles(pid, filepath.Join(dir, "outbox"))
		}
	}
	tick := time.NewTicker(time.Second / latencyRate)
	for k := range rssPaced {
		<-tick.C
		pub.Publish(prefix+"/jobs", 1, false, jobPayload(fmt.Sprintf("rss-paced-%d", k), recipient(rssQueued+k)))
		if k%10 == 0 {
			sample()
		}
	}
	tick.Stop()
	waitFor(b, "paced jobs accepted", time.Minute, func() bool { return alive() && accepted.Load() >= rssQueued+rssPaced })
	sample()
	b.StopTimer()
	end, err := memStatus(pid)
	if err != nil {
		b.Fatal(err)
	}
	mib := func(v int64) float64 { return float64(v) / (1 << 20) }
	b.ReportMetric(mib(end.HWM), "hwm-MiB")
	b.ReportMetric(mib(peak.RSS), "rss-MiB")
	b.ReportMetric(mib(peak.Anon), "rss-anon-MiB")
	b.ReportMetric(mib(peak.File), "rss-file-MiB")
	b.ReportMetric(mib(peakSplit.Badger), "rss-badger-MiB")
	b.ReportMetric(mib(peakSplit.Other), "rss-text-MiB")
	b.ReportMetric(mib(end.RSS), "end-rss-MiB")
	b.ReportMetric(float64(rssQueued)/fill.Seconds(), "fill-jobs/s")
}

// fileSplit is a process's resident file-backed memory in bytes: Badger's
// mapped files (.sst tables, .mem WAL, .vlog value log) in the outbox
// directory, and every other file (relayd's own text and data, mostly).
type fileSplit struct{ Badger, Other int64 }

// mappedFiles reads /proc/<pid>/smaps and splits the resident file-backed
// pages into Badger's files under dir and the rest.
func mappedFiles(pid int, dir string) (fileSplit, error) {
	var fs fileSplit
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "smaps"))
	if err != nil {
		return fs, err
	}
	var into *int64
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			into = nil
			if len(f) >= 6 && strings.HasPrefix(f[5], "/") {
				into = &fs.Other
				if strings.HasPrefix(f[5], dir+"/") {
					into = &fs.Badger
				}
			}
			continue
		}
		if into != nil && len(f) == 3 && f[0] == "Rss:" && f[2] == "kB" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			*into += n << 10
		}
	}
	return fs, nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
