package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
)

var (
	e164Re     = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	clientIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	langRe     = regexp.MustCompile(`^[a-z]{2}$`)
	hex4Re     = regexp.MustCompile(`^[0-9A-Fa-f]{4}$`)
	clockRe    = regexp.MustCompile(`^([01][0-9]|2[0-3]):([0-5][0-9])$`)
)

// maxSocketPath is the longest path a Unix socket can have on Linux (sun_path is 108 bytes).
const maxSocketPath = 107

// Validate checks every value and returns one Problem per bad field (no line numbers: Parse adds
// them). An empty result means the configuration can be run.
func (c *Config) Validate() []Problem {
	v := &validator{}

	v.text("shop.name", c.Shop.Name, 1, 64)
	if _, err := time.LoadLocation(c.Shop.TimeZone); err != nil || c.Shop.TimeZone == "" {
		v.add("shop.timezone", "%q is not a known IANA time zone (e.g. \"Europe/Berlin\")", c.Shop.TimeZone)
	}
	if !langRe.MatchString(c.Shop.DefaultLang) {
		v.add("shop.default_lang", "%q is not a two-letter language code (en, de, pl, ru, ...)", c.Shop.DefaultLang)
	}

	v.brokerURL("mqtt.broker", c.MQTT.Broker)
	if !clientIDRe.MatchString(c.MQTT.ClientID) {
		v.add("mqtt.client_id", "%q: want 1-64 of A-Z a-z 0-9 . _ - (fixed per box: it keys the persistent session)", c.MQTT.ClientID)
	}
	if p := c.MQTT.TopicPrefix; p == "" || strings.ContainsAny(p, "+#\x00") || strings.HasPrefix(p, "/") ||
		strings.HasSuffix(p, "/") || len(p) > 128 {
		v.add("mqtt.topic_prefix", "%q: want a non-empty topic without wildcards (+ #) or leading/trailing /", p)
	}
	v.optPath("mqtt.password_file", c.MQTT.PasswordFile)
	v.optPath("mqtt.ca_file", c.MQTT.CAFile)
	v.optPath("mqtt.cert_file", c.MQTT.CertFile)
	v.optPath("mqtt.key_file", c.MQTT.KeyFile)
	if (c.MQTT.CertFile == "") != (c.MQTT.KeyFile == "") {
		v.add("mqtt.key_file", "cert_file and key_file go together: set both for a client certificate, or neither")
	}
	if c.MQTT.PasswordFile != "" && c.MQTT.Username == "" {
		v.add("mqtt.username", "password_file is set but username is empty")
	}
	v.between("mqtt.keepalive", c.MQTT.KeepAlive, 5*time.Second, 10*time.Minute)
	v.between("mqtt.max_reconnect_interval", c.MQTT.MaxReconnectInterval, time.Second, time.Hour)

	if !e164Re.MatchString(c.Signal.Account) {
		v.add("signal.account", "%q: want the shop's Signal number in E.164 form, e.g. \"+4915112345678\"", c.Signal.Account)
	}
	if !c.Signal.External && c.Signal.CLI == "" {
		v.add("signal.cli", "required unless signal.external = true: the signal-cli program relayd starts")
	}
	v.absPath("signal.config_dir", c.Signal.ConfigDir)
	v.socketPath("signal.socket", c.Signal.Socket)
	v.between("signal.start_timeout", c.Signal.StartTimeout, 5*time.Second, 10*time.Minute)
	v.between("signal.call_timeout", c.Signal.CallTimeout, time.Second, 5*time.Minute)
	v.between("signal.probe_interval", c.Signal.ProbeEvery, time.Second, time.Hour)
	v.oneOf("signal.trust_policy", c.Signal.TrustPolicy, "always", "never")
	if strings.ContainsAny(c.Signal.JavaOptions, "\x00\n") {
		v.add("signal.java_options", "must be one line")
	}

	v.absPath("buffer.dir", c.Buffer.Dir)
	v.between("buffer.dedup_window", c.Buffer.DedupWindow, time.Hour, 366*24*time.Hour)
	v.between("buffer.journal_retention", c.Buffer.JournalRetention, time.Hour, 10*366*24*time.Hour)
	if k := c.Buffer.EncryptionKeyFile; k != "" {
		v.optPath("buffer.encryption_key_file", k)
		if within(k, c.Buffer.Dir) {
			v.add("buffer.encryption_key_file", "%q is inside buffer.dir: a key stored next to the data protects nothing", k)
		}
	}

	if _, _, err := ParseQuietHours(c.Policy.QuietHours); err != nil {
		v.add("policy.quiet_hours", "%v", err)
	}
	v.between("policy.default_expiry", c.Policy.DefaultExpiry, time.Minute, 30*24*time.Hour)
	v.intBetween("policy.rate_per_minute", c.Policy.RatePerMinute, 1, 6000)
	v.intBetween("policy.rate_burst", c.Policy.RateBurst, 1, 1000)
	v.intBetween("policy.concurrency", c.Policy.Concurrency, 1, 64)
	v.between("policy.retry_min", c.Policy.RetryMin, 100*time.Millisecond, time.Hour)
	v.between("policy.retry_max", c.Policy.RetryMax, c.Policy.RetryMin.D(), 24*time.Hour)
	v.between("policy.optin_timeout", c.Policy.OptInTimeout, time.Hour, 30*24*time.Hour)

	v.optPath("templates.dir", c.Templates.Dir)
	v.oneOf("templates.sender", c.Templates.Sender, "footer", "prefix")

	if c.Modem.Enabled {
		if c.Modem.Device == "" && c.Modem.USBVendor == "" {
			v.add("modem.device", "set device (prefer /dev/serial/by-id/...) or usb_vendor and usb_product")
		}
		if c.Modem.Device != "" && !filepath.IsAbs(c.Modem.Device) {
			v.add("modem.device", "%q: want an absolute device path", c.Modem.Device)
		}
		if (c.Modem.USBVendor == "") != (c.Modem.USBProduct == "") {
			v.add("modem.usb_product", "usb_vendor and usb_product go together")
		}
		for f, s := range map[string]string{"modem.usb_vendor": c.Modem.USBVendor, "modem.usb_product": c.Modem.USBProduct} {
			if s != "" && !hex4Re.MatchString(s) {
				v.add(f, "%q: want four hex digits, e.g. \"2c7c\"", s)
			}
		}
		v.optPath("modem.pin_file", c.Modem.PINFile)
		switch c.Modem.Baud {
		case 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600:
		default:
			v.add("modem.baud", "%d: want one of 9600 19200 38400 57600 115200 230400 460800 921600", c.Modem.Baud)
		}
		v.between("modem.health_interval", c.Modem.HealthEvery, 5*time.Second, time.Hour)
	}

	if c.GPIO.Enabled {
		if c.GPIO.Chip != "" {
			v.text("gpio.chip", c.GPIO.Chip, 1, 64)
		}
		v.text("gpio.on_battery_line", c.GPIO.OnBatteryLine, 1, 64)
		v.oneOf("gpio.bias", c.GPIO.Bias, "pull_up", "pull_down", "disable", "as_is")
		v.between("gpio.debounce", c.GPIO.Debounce, 0, time.Second)
	}

	v.between("power.grace", c.Power.Grace, 0, 24*time.Hour)
	v.between("power.shutdown_deadline", c.Power.ShutdownDeadline, time.Second, 10*time.Minute)
	v.between("power.glitch_filter", c.Power.GlitchFilter, 500*time.Millisecond, 5*time.Minute)
	// A slice, not a map: problems come out in the same order every run.
	for _, cmd := range []struct {
		field string
		argv  []string
	}{{"power.poweroff_command", c.Power.PowerOff}, {"power.reboot_command", c.Power.Reboot}} {
		for _, a := range cmd.argv {
			if a == "" || strings.ContainsRune(a, 0) {
				v.add(cmd.field, "empty or NUL argument; use [] to disable it")
				break
			}
		}
	}

	v.socketPath("control.socket", c.Control.Socket)
	if m := c.Metrics.Listen; m != "" {
		if _, port, err := net.SplitHostPort(m); err != nil || port == "" {
			v.add("metrics.listen", "%q: want host:port (e.g. \"127.0.0.1:9464\") or \"\" to turn metrics off", m)
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			v.add("metrics.listen", "%q: port %q: want a number 0-65535", m, port)
		}
	}

	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	v.oneOf("log.format", c.Log.Format, "text", "json")
	return v.list
}

// ParseQuietHours reads "HH:MM-HH:MM" (the window may wrap midnight) and returns the start and
// end as offsets from midnight. An empty string means no quiet hours (0, 0).
func ParseQuietHours(s string) (start, end time.Duration, err error) {
	if s == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("%q: want \"HH:MM-HH:MM\" in the shop's time zone, or \"\" for none", s)
	}
	start, err1 := clock(strings.TrimSpace(a))
	end, err2 := clock(strings.TrimSpace(b))
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("%q: want \"HH:MM-HH:MM\" in the shop's time zone (24-hour clock), or \"\" for none", s)
	}
	if start == end {
		return 0, 0, fmt.Errorf("%q: start and end are equal; use \"\" for no quiet hours", s)
	}
	return start, end, nil
}

func clock(s string) (time.Duration, error) {
	m := clockRe.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("bad clock %q", s)
	}
	h := int(m[1][0]-'0')*10 + int(m[1][1]-'0')
	mi := int(m[2][0]-'0')*10 + int(m[2][1]-'0')
	return time.Duration(h)*time.Hour + time.Duration(mi)*time.Minute, nil
}

func within(path, dir string) bool {
	if path == "" || dir == "" {
		return false
	}
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

type validator struct{ list []Problem }

func (v *validator) add(field, format string, args ...any) {
	v.list = append(v.list, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) text(field, s string, minLen, maxLen int) {
	n := len([]rune(s))
	if n < minLen || n > maxLen {
		v.add(field, "%q: want %d-%d characters", s, minLen, maxLen)
		return
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			v.add(field, "%q: control characters are not allowed", s)
			return
		}
	}
}

func (v *validator) between(field string, d Duration, lo, hi time.Duration) {
	if d.D() < lo || d.D() > hi {
		v.add(field, "%s: want between %s and %s", d.D(), lo, hi)
	}
}

func (v *validator) intBetween(field string, n, lo, hi int) {
	if n < lo || n > hi {
		v.add(field, "%d: want between %d and %d", n, lo, hi)
	}
}

func (v *validator) oneOf(field, s string, allowed ...string) {
	for _, a := range allowed {
		if s == a {
			return
		}
	}
	v.add(field, "%q: want one of %s", s, strings.Join(allowed, ", "))
}

func (v *validator) absPath(field, p string) {
	if p == "" || !filepath.IsAbs(p) || strings.ContainsRune(p, 0) {
		v.add(field, "%q: want a path", p)
	}
}

func (v *validator) optPath(field, p string) {
	if p != "" {
		v.absPath(field, p)
	}
}

func (v *validator) socketPath(field, p string) {
	v.absPath(field, p)
	if len(p) > maxSocketPath {
		v.add(field, "%q is %d bytes: a Unix socket path can have at most %d", p, len(p), maxSocketPath)
	}
}

func (v *validator) brokerURL(field, s string) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		v.add(field, "%q: want a URL like tcp://host:1883 or ssl://host:8883", s)
		return
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
	default:
		v.add(field, "%q: scheme %q: want tcp, mqtt, ssl, tls, mqtts, ws or wss", s, u.Scheme)
	}
	if u.User != nil {
		v.add(field, "%q: put credentials in mqtt.username and mqtt.password_file, not in the URL", s)
	}
}
