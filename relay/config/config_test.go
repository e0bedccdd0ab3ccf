package config

import (
	"errors"
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
		{"metrics listen", "[control]\nmetrics_listen = \"9102\"", "control.metrics_listen", "host:port"},
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

func TestParse_WrongType(t *testing.T) {
	_, err := Parse([]byte(minimal+"[policy]\nconcurrency = \"four\"\n"), "")
	if err == nil || !strings.Contains(err.Error(), "concurrency") {
		t.Fatalf("err = %v, want it to name concurrency", err)
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
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "/etc/relay")
		if err != nil {
			var probs *Problems
			if !errors.As(err, &probs) || len(probs.List) == 0 {
				t.Fatalf("error is not a non-empty *Problems: %v", err)
			}
			return
		}
		// Whatever parses must be valid and complete.
		if p := cfg.Validate(); len(p) != 0 {
			t.Fatalf("Parse accepted a config that Validate refuses: %v", p)
		}
	})
}
