package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const examplePath = "../../systemd/relay.example.toml"

// minimal is the smallest valid file: only the account has no default.
const minimal = `[signal]
account = "+4915112345678"
`

func TestLoad_ExampleFile(t *testing.T) {
	cfg, err := Load(examplePath)
	if err != nil {
		t.Fatalf("the example file must load: %v", err)
	}
	// The example documents the defaults: apart from the account (which has none) and the paths
	// resolved against the example's directory, it must say exactly what Default says.
	want := Default()
	want.Signal.Account = cfg.Signal.Account
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("example differs from Default():\n got %+v\nwant %+v", cfg, want)
	}
}

func TestExampleFile_NamesEveryKey(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	lines := keyLines(data)
	for _, k := range tomlKeys(reflect.TypeOf(Config{}), "") {
		if lines[k] == 0 {
			t.Errorf("systemd/relay.example.toml does not document %q", k)
		}
	}
}

// tomlKeys lists the dotted keys of every leaf field of a config struct.
func tomlKeys(t reflect.Type, prefix string) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		k := prefix + f.Tag.Get("toml")
		if f.Type.Kind() == reflect.Struct {
			out = append(out, tomlKeys(f.Type, k+".")...)
			continue
		}
		out = append(out, k)
	}
	return out
}

func TestParse_Minimal(t *testing.T) {
	cfg, err := Parse([]byte(minimal), "/etc/relay")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.MQTT.TopicPrefix, "relay"; got != want {
		t.Errorf("topic_prefix = %q, want default %q", got, want)
	}
	if got, want := cfg.Policy.DefaultExpiry.D(), 24*time.Hour; got != want {
		t.Errorf("default_expiry = %v, want %v", got, want)
	}
}

func TestParse_UnknownKeyNamesKeyAndLine(t *testing.T) {
	in := minimal + `
[mqtt]
broker = "tcp://127.0.0.1:1883"
topc_prefix = "shop"

[nonsense]
x = 1
`
	_, err := Parse([]byte(in), "")
	var probs *Problems
	if !errors.As(err, &probs) {
		t.Fatalf("err = %v, want *Problems", err)
	}
	want := map[string]int{"mqtt.topc_prefix": 6, "nonsense": 8, "nonsense.x": 9}
	got := map[string]int{}
	for _, p := range probs.List {
		got[p.Field] = p.Line
		if !strings.Contains(p.Message, "unknown key") {
			t.Errorf("%s: message %q does not say unknown key", p.Field, p.Message)
		}
	}
	for k, line := range want {
		if _, ok := got[k]; !ok && k != "nonsense" { // the table itself may or may not be listed
			t.Errorf("unknown key %q not reported; got %v", k, got)
			continue
		}
		if ok := got[k]; ok != 0 && got[k] != line {
			t.Errorf("%s reported at line %d, want %d", k, got[k], line)
		}
	}
	if !strings.Contains(err.Error(), "line 6: mqtt.topc_prefix") {
		t.Errorf("error text %q does not name line 6 and the key", err)
	}
}

func TestParse_InvalidValues(t *testing.T) {
	tests := []struct {
		name, toml, field, msg string
	}{
		{"account missing", "", "signal.account", "E.164"},
		{"account not e164", `[signal]` + "\naccount = \"015112345678\"", "signal.account", "E.164"},
		{"broker scheme", "[mqtt]\nbroker = \"http://x:1\"", "mqtt.broker", "scheme"},
		{"broker creds in url", "[mqtt]\nbroker = \"tcp://u:p@x:1883\"", "mqtt.broker", "password_file"},
		{"topic wildcard", "[mqtt]\ntopic_prefix = \"relay/#\"", "mqtt.topic_prefix", "wildcards"},
		{"client id", "[mqtt]\nclient_id = \"has space\"", "mqtt.client_id", "want 1-64"},
		{"cert without key", "[mqtt]\ncert_file = \"/etc/relay/c.pem\"", "mqtt.key_file", "go together"},
		{"keepalive too short", "[mqtt]\nkeepalive = \"1s\"", "mqtt.keepalive", "between"},
		{"timezone", "[shop]\ntimezone = \"Mars/Olympus\"", "shop.timezone", "IANA"},
		{"shop name control char", "[shop]\nname = \"a\\u0007b\"", "shop.name", "control"},
		{"lang", "[shop]\ndefault_lang = \"english\"", "shop.default_lang", "two-letter"},
		{"trust policy", "[signal]\naccount = \"+4915112345678\"\ntrust_policy = \"maybe\"", "signal.trust_policy", "one of"},
		{"socket too long", "[signal]\naccount = \"+4915112345678\"\nsocket = \"/" + strings.Repeat("s", 120) + "\"", "signal.socket", "at most 107"},
		{"quiet hours", "[policy]\nquiet_hours = \"22-7\"", "policy.quiet_hours", "HH:MM"},
		{"quiet hours equal", "[policy]\nquiet_hours = \"08:00-08:00\"", "policy.quiet_hours", "equal"},
		{"concurrency", "[policy]\nconcurrency = 0", "policy.concurrency", "between 1 and 64"},
		{"retry max below min", "[policy]\nretry_min = \"1m\"\nretry_max = \"10s\"", "policy.retry_max", "between"},
		{"key next to data", "[buffer]\ndir = \"/var/lib/relay/outbox\"\nencryption_key_file = \"/var/lib/relay/outbox/key\"", "buffer.encryption_key_file", "inside buffer.dir"},
		{"sender", "[templates]\nsender = \"header\"", "templates.sender", "footer, prefix"},
		{"modem needs a device", "[modem]\nenabled = true\ndevice = \"\"", "modem.device", "usb_vendor"},
		{"modem vid", "[modem]\nenabled = true\nusb_vendor = \"2c7\"\nusb_product = \"0125\"", "modem.usb_vendor", "four hex"},
		{"modem baud", "[modem]\nenabled = true\nbaud = 1234", "modem.baud", "want one of"},
		{"gpio bias", "[gpio]\nenabled = true\nbias = \"up\"", "gpio.bias", "pull_up"},
		{"metrics listen", "[metrics]\nlisten = \"9464\"", "metrics.listen", "host:port"},
		{"log level", "[log]\nlevel = \"verbose\"", "log.level", "debug, info"},
		{"poweroff empty arg", "[power]\npoweroff_command = [\"\"]", "power.poweroff_command", "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.toml
			if !strings.Contains(in, "account") && tt.field != "signal.account" {
				in = minimal + in
			}
			_, err := Parse([]byte(in), "")
			var probs *Problems
			if !errors.As(err, &probs) {
				t.Fatalf("err = %v, want *Problems", err)
			}
			for _, p := range probs.List {
				if p.Field == tt.field && strings.Contains(p.Message, tt.msg) {
					return
				}
			}
			t.Errorf("no problem for %s containing %q; got:\n%v", tt.field, tt.msg, err)
		})
	}
}

// Both commands wrong: one problem each, always in the same order (the error text of a run
// must not change from one run to the next).
func TestParse_PowerCommandsInOrder(t *testing.T) {
	in := minimal + "[power]\npoweroff_command = [\"\"]\nreboot_command = [\"x\", \"\"]\n"
	for range 20 { // map iteration order varies from run to run; a slice's does not
		_, err := Parse([]byte(in), "")
		var probs *Problems
		if !errors.As(err, &probs) {
			t.Fatalf("err = %v, want *Problems", err)
		}
		var got []string
		for _, p := range probs.List {
			got = append(got, p.Field)
		}
		if want := []string{"power.poweroff_command", "power.reboot_command"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("problems for %v, want %v\n%v", got, want, err)
		}
	}
}

func TestParse_ProblemCarriesLine(t *testing.T) {
	in := minimal + "\n[policy]\n\nconcurrency = 100\n"
	_, err := Parse([]byte(in), "")
	if err == nil || !strings.Contains(err.Error(), "line 6: policy.concurrency") {
		t.Fatalf("err = %v, want it to name line 6 and policy.concurrency", err)
	}
}

func TestParse_BareNumberDurationRefused(t *testing.T) {
	_, err := Parse([]byte(minimal+"[mqtt]\nkeepalive = 30\n"), "")
	if err == nil || !strings.Contains(err.Error(), "not a duration") {
		t.Fatalf("err = %v, want a duration error", err)
	}
}

func TestParse_SyntaxErrorHasLine(t *testing.T) {
	_, err := Parse([]byte(minimal+"[mqtt]\nbroker = = 1\n"), "")
	var probs *Problems
	if !errors.As(err, &probs) || probs.List[0].Line != 4 {
		t.Fatalf("err = %v, want a problem on line 4", err)
	}
}

func TestParse_TypeMismatch(t *testing.T) {
	// Each case follows minimal (two lines) with its TOML, so the key is usually on line 4;
	// whole cases are the entire file.
	tests := []struct {
		name, toml, field string
		line              int
		msg               string
		whole             bool
	}{
		{"string for integer", "[policy]\nrate_per_minute = \"fast\"", "policy.rate_per_minute", 4, `want a whole number (without quotes), got a string "fast"`, false},
		{"string for boolean", "[modem]\nenabled = \"yes\"", "modem.enabled", 4, `want true or false (without quotes), got a string "yes"`, false},
		{"integer for boolean", "[policy]\nrequire_consent = 1", "policy.require_consent", 4, "want true or false (without quotes), got an integer 1", false},
		{"float for integer", "[policy]\nconcurrency = 3.5", "policy.concurrency", 4, "want a whole number (without quotes), got a float 3.5", false},
		{"integer for string", "[shop]\nname = 5", "shop.name", 4, "want a string in quotes, got an integer 5", false},
		{"string for list", "[power]\npoweroff_command = \"systemctl poweroff\"", "power.poweroff_command", 4, "want a list of strings", false},
		{"numbers in list", "[power]\npoweroff_command = [\"x\", 2]", "power.poweroff_command", 4, "element 2: want a string in quotes, got an integer 2", false},
		{"bare number duration", "[mqtt]\nkeepalive = 30", "mqtt.keepalive", 4, "30 is not a duration", false},
		{"boolean duration", "[mqtt]\nkeepalive = true", "mqtt.keepalive", 4, "want a string in quotes, got a boolean", false},
		{"date-time duration", "[policy]\ndefault_expiry = 2026-01-01T00:00:00Z", "policy.default_expiry", 4, "got a date-time", false},
		{"unparsable duration", "[policy]\nretry_min = \"soon\"", "policy.retry_min", 4, `"soon" is not a duration`, false},
		{"table for string", "[signal.cli]\nx = 1", "signal.cli", 3, "want a string in quotes, got a table", false},
		{"inline table for string", "[mqtt]\nbroker = { host = \"x\" }", "mqtt.broker", 4, "got a table", false},
		{"value for table", "log = \"debug\"\n" + minimal, "log", 1, "want a table ([log] and keys under it), got a string", true},
		{"string for metrics.listen", "[metrics]\nlisten = 9464", "metrics.listen", 4, "want a string in quotes, got an integer 9464", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := minimal + tt.toml + "\n"
			if tt.whole {
				in = tt.toml
			}
			_, err := Parse([]byte(in), "")
			var probs *Problems
			if !errors.As(err, &probs) {
				t.Fatalf("err = %v (%T), want *Problems", err, err)
			}
			var got []Problem
			for _, p := range probs.List {
				if p.Field == tt.field {
					got = append(got, p)
				}
			}
			if len(got) != 1 {
				t.Fatalf("problems for %s = %v, want exactly one; all:\n%v", tt.field, got, err)
			}
			if got[0].Line != tt.line || !strings.Contains(got[0].Message, tt.msg) {
				t.Errorf("got line %d %q, want line %d containing %q", got[0].Line, got[0].Message, tt.line, tt.msg)
			}
			if strings.Contains(err.Error(), "toml:") || strings.Contains(err.Error(), "incompatible types") {
				t.Errorf("the bare toml error leaks through: %v", err)
			}
		})
	}
}

func TestParse_EveryProblemAtOnce(t *testing.T) {
	in := minimal + `
[policy]
rate_per_minute = "fast"
concurrency = 100
retry_min = 5

[modem]
enabled = "yes"
Baud = 9600
`
	_, err := Parse([]byte(in), "")
	var probs *Problems
	if !errors.As(err, &probs) {
		t.Fatalf("err = %v, want *Problems", err)
	}
	var got []string
	for _, p := range probs.List {
		got = append(got, fmt.Sprintf("%d %s", p.Line, p.Field))
	}
	// Type problems and unknown keys in file order, then what Validate found in the keys that
	// could be read. "Baud" is not "baud": keys match exactly.
	want := []string{"5 policy.rate_per_minute", "7 policy.retry_min", "10 modem.enabled", "11 modem.Baud", "6 policy.concurrency"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems = %v, want %v\n%v", got, want, err)
	}
}

func TestParse_MistypedAccountReportedOnce(t *testing.T) {
	_, err := Parse([]byte("[signal]\naccount = 4915112345678\n"), "")
	var probs *Problems
	if !errors.As(err, &probs) || len(probs.List) != 1 || probs.List[0].Field != "signal.account" || probs.List[0].Line != 2 {
		t.Fatalf("err = %v, want one problem for signal.account on line 2 (the type, not also 'missing')", err)
	}
}

func TestParse_MetricsListen(t *testing.T) {
	tests := []struct {
		name, toml string
		listen     string
		problem    string // "" = valid
	}{
		{"off", "[metrics]\nlisten = \"\"", "", ""},
		{"the old key is unknown", "[control]\nmetrics_listen = \"\"", "", "line 4: control.metrics_listen: unknown key"},
		{"new key", "[metrics]\nlisten = \"127.0.0.1:9100\"", "127.0.0.1:9100", ""},
		{"default", "", "127.0.0.1:9464", ""},
		{"not host:port", "[metrics]\nlisten = \"9102\"", "", "line 4: metrics.listen: \"9102\": want host:port"},
		{"bad port", "[metrics]\nlisten = \"127.0.0.1:99999\"", "", "line 4: metrics.listen: \"127.0.0.1:99999\": port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(minimal+tt.toml+"\n"), "")
			if tt.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tt.problem) {
					t.Fatalf("err = %v, want %q", err, tt.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Metrics.Listen != tt.listen {
				t.Errorf("metrics.listen = %q, want %q", cfg.Metrics.Listen, tt.listen)
			}
		})
	}
}

func TestParse_ResolvesRelativePaths(t *testing.T) {
	in := minimal + "cli = \"./tools/signal-cli\"\n[buffer]\ndir = \"state/outbox\"\n"
	cfg, err := Parse([]byte(in), "/srv/relay")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Buffer.Dir, "/srv/relay/state/outbox"; got != want {
		t.Errorf("buffer.dir = %q, want %q", got, want)
	}
	if got, want := cfg.Signal.CLI, "/srv/relay/tools/signal-cli"; got != want {
		t.Errorf("signal.cli = %q, want %q", got, want)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "relay.toml"), []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	cfg, err = Load("relay.toml") // a relative config path still gives absolute paths
	if err != nil || cfg.Buffer.Dir != filepath.Join(dir, "state/outbox") {
		t.Errorf("Load(relative) buffer.dir = %q, %v; want %q", cfg.Buffer.Dir, err, filepath.Join(dir, "state/outbox"))
	}
	cfg, err = Parse([]byte(minimal+"cli = \"signal-cli\"\n"), "/srv/relay")
	if err != nil || cfg.Signal.CLI != "signal-cli" {
		t.Errorf("a bare program name stays for PATH lookup: got %q, %v", cfg.Signal.CLI, err)
	}
}

func TestLoad_Errors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "absent.toml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent file: err = %v, want ErrNotExist", err)
	}
	big := filepath.Join(dir, "big.toml")
	if err := os.WriteFile(big, make([]byte, MaxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("huge file: err = %v", err)
	}
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[mqtt]\nbroker = \"x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(bad)
	if err == nil || !strings.HasPrefix(err.Error(), bad+": ") {
		t.Errorf("problems must name the file: %v", err)
	}
}

func TestParseQuietHours(t *testing.T) {
	tests := []struct {
		in         string
		start, end time.Duration
		ok         bool
	}{
		{"", 0, 0, true},
		{"21:00-08:00", 21 * time.Hour, 8 * time.Hour, true},
		{"12:30-13:45", 12*time.Hour + 30*time.Minute, 13*time.Hour + 45*time.Minute, true},
		{" 22:00 - 07:00 ", 22 * time.Hour, 7 * time.Hour, true},
		{"24:00-08:00", 0, 0, false},
		{"9:00-10:00", 0, 0, false},
		{"21:00", 0, 0, false},
		{"21:00-21:00", 0, 0, false},
	}
	for _, tt := range tests {
		s, e, err := ParseQuietHours(tt.in)
		if (err == nil) != tt.ok || s != tt.start || e != tt.end {
			t.Errorf("ParseQuietHours(%q) = %v, %v, %v; want %v, %v, ok=%v", tt.in, s, e, err, tt.start, tt.end, tt.ok)
		}
	}
}

func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "pw")
	if err := os.WriteFile(good, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSecret(good)
	if err != nil || string(got) != "s3cret" {
		t.Errorf("ReadSecret = %q, %v; want s3cret", got, err)
	}
	open := filepath.Join(dir, "open")
	if err := os.WriteFile(open, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSecret(open); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable secret: err = %v, want a chmod hint", err)
	}
	if _, err := ReadSecret(dir); err == nil {
		t.Error("a directory must be refused")
	}
}

func FuzzParse(f *testing.F) {
	ex, err := os.ReadFile(examplePath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ex)
	f.Add([]byte(minimal))
	f.Add([]byte("[mqtt]\nbroker = \"\"\"\nx\n\"\"\"\n[[a]]\nb=[1,\n2]\n"))
	f.Add([]byte("a.b.\"c.d\" = 1\n"))
	f.Add([]byte(minimal + "[policy]\nrate_per_minute = \"fast\"\nconcurrency = 3.5\n[modem]\nenabled = \"yes\"\n"))
	f.Add([]byte("shop = 5\n[[mqtt]]\nbroker = 1\n[power]\npoweroff_command = [1, [2]]\n"))
	f.Add([]byte(minimal + "[control]\nsocket = 1\n[metrics]\nlisten = {a = 1}\n"))
	f.Add([]byte(minimal + "[mqtt]\nkeepalive = 1979-05-27\nbroker = 07:32:00\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "/etc/relay")
		if err != nil {
			var probs *Problems
			if !errors.As(err, &probs) || len(probs.List) == 0 {
				t.Fatalf("error is not a non-empty *Problems: %v", err)
			}
			nLines := bytes.Count(data, []byte("\n")) + 1
			for _, p := range probs.List {
				if p.Message == "" || p.Line < 0 || p.Line > nLines {
					t.Fatalf("problem %+v: empty message or line outside the %d-line input", p, nLines)
				}
				if strings.Contains(p.Message, "incompatible types") {
					t.Fatalf("a bare toml type error leaked through: %+v", p)
				}
			}
			return
		}
		// Whatever parses must be valid and complete.
		if p := cfg.Validate(); len(p) != 0 {
			t.Fatalf("Parse accepted a config that Validate refuses: %v", p)
		}
	})
}
