package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestRun_MetricsPortTaken: relayd refuses to start when metrics.listen is taken, names the
// address, and has not touched anything else yet (the outbox directory does not exist).
func TestRun_MetricsPortTaken(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	addr := held.Addr().String()
	dir := t.TempDir()
	outbox := filepath.Join(dir, "outbox")
	conf := filepath.Join(dir, "relay.toml")
	toml := fmt.Sprintf(`[mqtt]
broker = "tcp://127.0.0.1:1"
[signal]
account = "+4915100000000"
cli = %q
config_dir = %q
socket = %q
[buffer]
dir = %q
[control]
socket = %q
[metrics]
listen = %q
`, filepath.Join(dir, "no-signal-cli"), filepath.Join(dir, "sc"), filepath.Join(dir, "s.sock"), outbox,
		filepath.Join(dir, "c.sock"), addr)
	if err := os.WriteFile(conf, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCmd(t, "run", "--config", conf)
	if code != exitFailure {
		t.Fatalf("exit code = %d, want %d; stderr:\n%s", code, exitFailure, errs)
	}
	for _, want := range []string{"cannot listen on " + addr, "metrics.listen", "address already in use"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr does not say %q:\n%s", want, errs)
		}
	}
	if _, err := os.Stat(outbox); !os.IsNotExist(err) {
		t.Errorf("the outbox was opened before the metrics port was checked (stat: %v)", err)
	}
}

var metricsURL = regexp.MustCompile(`msg="serving metrics".*url=(http://\S+/metrics)`)

// TestE2E_Metrics runs relayd with metrics on a free port and checks that a scrape follows
// what happens: the broker and signal-cli come up, jobs are accepted, sent, delivered, refused
// as duplicates and rejected.
func TestE2E_Metrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, opts{})
	// Restart relayd with metrics on: port 0 picks a free port, which relayd logs.
	e.d.stop()
	conf, err := os.ReadFile(e.conf)
	if err != nil {
		t.Fatal(err)
	}
	on := `listen = "127.0.0.1:0"`
	switch s := string(conf); {
	case strings.Contains(s, "[metrics]\nlisten = \"\""):
		conf = []byte(strings.Replace(s, "[metrics]\nlisten = \"\"", "[metrics]\n"+on, 1))
	default:
		conf = []byte(s + "\n[metrics]\n" + on + "\n")
	}
	if err := os.WriteFile(e.conf, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	e.start()
	logs, _ := os.ReadFile(e.d.logPath)
	runs := strings.Split(string(logs), "==== relayd start")
	m := metricsURL.FindStringSubmatch(runs[len(runs)-1])
	if m == nil {
		t.Fatalf("relayd did not log the metrics address:\n%s", runs[len(runs)-1])
	}
	url := m[1]

	get := func(name string, labels ...string) float64 {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return sampleValue(fams[name], labels...)
	}
	waitFor := func(want float64, name string, labels ...string) {
		t.Helper()
		waitCond(t, long, fmt.Sprintf("%s%v = %v", name, labels, want), func() bool { return get(name, labels...) == want })
	}

	waitFor(1, "relay_mqtt_connected")
	waitFor(1, "relay_signal_state", "state", "up")
	waitFor(0, "relay_outbox_quarantined")
	waitFor(1, "relay_state", "state", "online")
	waitFor(0, "relay_jobs_total", "result", "accepted")

	to := num(77, 1)
	e.shop.job(t, textJob("m-1", to))
	e.shop.waitEvent(t, long, "m-1", "sent")
	e.shop.job(t, textJob("m-1", to)) // again: duplicate
	e.shop.waitEvent(t, long, "m-1", "duplicate")
	bad, _ := json.Marshal(map[string]any{"id": "m-bad", "to": "not a number", "text": "x"})
	e.shop.publish(t, "jobs", bad)
	e.shop.waitEvent(t, long, "m-bad", "rejected")
	e.shop.publish(t, "jobs", []byte("not json"))

	waitFor(1, "relay_jobs_total", "result", "accepted")
	waitFor(1, "relay_jobs_total", "result", "duplicate")
	waitFor(1, "relay_jobs_total", "result", "rejected")
	waitFor(1, "relay_events_total", "event", "accepted")
	waitFor(1, "relay_events_total", "event", "sent")      // the dispatcher's Ack
	waitFor(1, "relay_events_total", "event", "delivered") // the fake's receipt, through the sent index
	waitFor(1, "relay_payloads_unidentified_total")
	waitFor(0, "relay_outbox_depth")
	if v := get("process_resident_memory_bytes"); v <= 0 {
		t.Errorf("process_resident_memory_bytes = %v", v)
	}
}

// sampleValue is the value of the sample of f whose labels include the name=value pairs
// (-1 when there is none).
func sampleValue(f *dto.MetricFamily, labels ...string) float64 {
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				found = found || (lp.GetName() == labels[i] && lp.GetValue() == labels[i+1])
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		default:
			return m.GetUntyped().GetValue()
		}
	}
	return -1
}
