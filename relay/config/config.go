package config

import (
	"fmt"
	"time"
)

// DefaultPath is where relayd looks for its configuration when --config is not given.
const DefaultPath = "/etc/relay/relay.toml"

// Config is the whole of relay.toml. Every field has a default (see Default) and is checked by
// Validate; the example file systemd/relay.example.toml documents each one.
type Config struct {
	Shop      Shop      `toml:"shop"`
	MQTT      MQTT      `toml:"mqtt"`
	Signal    Signal    `toml:"signal"`
	Buffer    Buffer    `toml:"buffer"`
	Policy    Policy    `toml:"policy"`
	Templates Templates `toml:"templates"`
	Modem     Modem     `toml:"modem"`
	GPIO      GPIO      `toml:"gpio"`
	Power     Power     `toml:"power"`
	Control   Control   `toml:"control"`
	Metrics   Metrics   `toml:"metrics"`
	Log       Log       `toml:"log"`
}

// Shop names the sender: every message carries Name, and quiet hours are read in TimeZone.
type Shop struct {
	Name        string `toml:"name"`
	TimeZone    string `toml:"timezone"`
	DefaultLang string `toml:"default_lang"`
}

// MQTT is the connection to the shop's broker (ARCHITECTURE section 4).
type MQTT struct {
	Broker               string   `toml:"broker"`
	ClientID             string   `toml:"client_id"`
	TopicPrefix          string   `toml:"topic_prefix"`
	Username             string   `toml:"username"`
	PasswordFile         string   `toml:"password_file"`
	CAFile               string   `toml:"ca_file"`
	CertFile             string   `toml:"cert_file"`
	KeyFile              string   `toml:"key_file"`
	KeepAlive            Duration `toml:"keepalive"`
	MaxReconnectInterval Duration `toml:"max_reconnect_interval"`
}

// Signal is the local signal-cli: relayd starts it as a child (CLI set) or connects to an
// externally managed daemon on Socket (External true).
type Signal struct {
	Account      string   `toml:"account"`
	CLI          string   `toml:"cli"`
	ConfigDir    string   `toml:"config_dir"`
	Socket       string   `toml:"socket"`
	External     bool     `toml:"external"`
	JavaOptions  string   `toml:"java_options"`
	StartTimeout Duration `toml:"start_timeout"`
	CallTimeout  Duration `toml:"call_timeout"`
	ProbeEvery   Duration `toml:"probe_interval"`
	TrustPolicy  string   `toml:"trust_policy"`
}

// Buffer is the durable outbox and the stores beside it.
type Buffer struct {
	Dir               string   `toml:"dir"`
	DedupWindow       Duration `toml:"dedup_window"`
	EncryptionKeyFile string   `toml:"encryption_key_file"`
	JournalRetention  Duration `toml:"journal_retention"`
}

// Policy holds the delivery rules a careful shop needs (ARCHITECTURE section 5).
type Policy struct {
	RequireConsent     bool     `toml:"require_consent"`
	QuietHours         string   `toml:"quiet_hours"`
	QuietHoursHighPass bool     `toml:"quiet_hours_high_passes"`
	DefaultExpiry      Duration `toml:"default_expiry"`
	RatePerMinute      int      `toml:"rate_per_minute"`
	RateBurst          int      `toml:"rate_burst"`
	Concurrency        int      `toml:"concurrency"`
	RetryMin           Duration `toml:"retry_min"`
	RetryMax           Duration `toml:"retry_max"`
	SMSFallback        bool     `toml:"sms_fallback"`
	OptInTimeout       Duration `toml:"optin_timeout"`
}

// Templates says where the shop's own templates live and how the sender is named.
type Templates struct {
	Dir    string `toml:"dir"`
	Sender string `toml:"sender"`
}

// Modem is the USB LTE modem holding the shop's SIM. Device wins over the USB ids.
type Modem struct {
	Enabled     bool     `toml:"enabled"`
	Device      string   `toml:"device"`
	USBVendor   string   `toml:"usb_vendor"`
	USBProduct  string   `toml:"usb_product"`
	USBSerial   string   `toml:"usb_serial"`
	Baud        int      `toml:"baud"`
	PINFile     string   `toml:"pin_file"`
	HealthEvery Duration `toml:"health_interval"`
}

// GPIO is the UPS HAT's lines and the status LED. A line is a name ("GPIO17") or an offset on Chip.
type GPIO struct {
	Enabled        bool     `toml:"enabled"`
	Chip           string   `toml:"chip"`
	OnBatteryLine  string   `toml:"on_battery_line"`
	BatteryLowLine string   `toml:"battery_low_line"`
	ActiveLow      bool     `toml:"active_low"`
	Bias           string   `toml:"bias"`
	Debounce       Duration `toml:"debounce"`
	LEDLine        string   `toml:"led_line"`
	LEDActiveLow   bool     `toml:"led_active_low"`
}

// Power decides when running on battery ends in a clean shutdown.
type Power struct {
	Grace            Duration `toml:"grace"`
	ShutdownDeadline Duration `toml:"shutdown_deadline"`
	PowerOff         []string `toml:"poweroff_command"`
	Reboot           []string `toml:"reboot_command"`
	GlitchFilter     Duration `toml:"glitch_filter"`
}

// Control is the staff-facing side: relayctl's socket.
type Control struct {
	Socket string `toml:"socket"`
}

// Metrics is the Prometheus endpoint (http://<Listen>/metrics). An empty Listen turns it off.
type Metrics struct {
	Listen string `toml:"listen"`
}

// Log sets relayd's own log output (stderr, read by journald).
type Log struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
}

// Default returns the configuration relayd runs with when a key is absent. It is valid as is
// except for signal.account, which only the shop can know.
func Default() Config {
	return Config{
		Shop: Shop{Name: "Our shop", TimeZone: "Europe/Berlin", DefaultLang: "en"},
		MQTT: MQTT{
			Broker:               "tcp://127.0.0.1:1883",
			ClientID:             "relay",
			TopicPrefix:          "relay",
			KeepAlive:            Duration(30 * time.Second),
			MaxReconnectInterval: Duration(30 * time.Second),
		},
		Signal: Signal{
			CLI:          "/usr/local/bin/signal-cli",
			ConfigDir:    "/var/lib/relay/signal-cli",
			Socket:       "/run/relay/signal-cli.sock",
			StartTimeout: Duration(90 * time.Second),
			CallTimeout:  Duration(30 * time.Second),
			ProbeEvery:   Duration(30 * time.Second),
			TrustPolicy:  "always",
		},
		Buffer: Buffer{
			Dir:              "/var/lib/relay/outbox",
			DedupWindow:      Duration(7 * 24 * time.Hour),
			JournalRetention: Duration(90 * 24 * time.Hour),
		},
		Policy: Policy{
			RequireConsent:     true,
			QuietHours:         "21:00-08:00",
			QuietHoursHighPass: true,
			DefaultExpiry:      Duration(24 * time.Hour),
			RatePerMinute:      60,
			RateBurst:          10,
			Concurrency:        4,
			RetryMin:           Duration(5 * time.Second),
			RetryMax:           Duration(10 * time.Minute),
			SMSFallback:        true,
			OptInTimeout:       Duration(72 * time.Hour),
		},
		Templates: Templates{Dir: "/etc/relay/templates", Sender: "footer"},
		Modem: Modem{
			Enabled:     false,
			Device:      "/dev/relay-modem",
			Baud:        115200,
			HealthEvery: Duration(30 * time.Second),
		},
		GPIO: GPIO{
			Enabled:       false,
			Chip:          "gpiochip0",
			OnBatteryLine: "GPIO17",
			Bias:          "pull_up",
			Debounce:      Duration(50 * time.Millisecond),
			LEDLine:       "GPIO27",
		},
		Power: Power{
			Grace:            Duration(10 * time.Minute),
			ShutdownDeadline: Duration(30 * time.Second),
			PowerOff:         []string{"systemctl", "poweroff"},
			Reboot:           []string{"systemctl", "reboot"},
			GlitchFilter:     Duration(5 * time.Second),
		},
		Control: Control{Socket: "/run/relay/control.sock"},
		Metrics: Metrics{Listen: "127.0.0.1:9464"},
		Log:     Log{Level: "info", Format: "text"},
	}
}

// Duration is a time.Duration written as a Go duration string ("30s", "24h"). A bare number is
// refused: in TOML it would silently mean nanoseconds.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (write it like \"30s\", \"5m\" or \"24h\")", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }
