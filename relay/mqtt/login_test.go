package mqtt_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopkit/relay/relay/config"
	"github.com/shopkit/relay/relay/mqtt"
)

// Login is the one rule relayd and relayctl share: the password from its owner-only file, TLS
// for a TLS URL or whenever a CA or a client certificate is configured.
func TestLogin(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secret := write("pw", "s3cret\n", 0o600)
	open := write("pw-open", "s3cret", 0o644)
	notPEM := write("ca.pem", "not a certificate", 0o644)
	tests := []struct {
		name     string
		c        config.MQTT
		password string
		tls      bool
		err      string
	}{
		{"plain", config.MQTT{Broker: "tcp://b:1883"}, "", false, ""},
		{"password", config.MQTT{Broker: "tcp://b:1883", Username: "box", PasswordFile: secret}, "s3cret", false, ""},
		{"password file readable by others", config.MQTT{Broker: "tcp://b:1883", PasswordFile: open}, "", false, "pw-open"},
		{"TLS URL", config.MQTT{Broker: "ssl://b:8883"}, "", true, ""},
		{"websocket TLS URL", config.MQTT{Broker: "wss://b/mqtt"}, "", true, ""},
		{"CA on a tcp URL means TLS", config.MQTT{Broker: "tcp://b:1883", CAFile: notPEM}, "", false, "no PEM certificate"},
		{"client certificate on a tcp URL means TLS", config.MQTT{Broker: "tcp://b:1883", CertFile: filepath.Join(dir, "missing.crt"), KeyFile: filepath.Join(dir, "missing.key")}, "", false, "client certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pw, tc, err := mqtt.Login(tt.c)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if pw != tt.password {
				t.Errorf("password = %q, want %q", pw, tt.password)
			}
			if (tc != nil) != tt.tls {
				t.Errorf("TLS = %v, want %v", tc != nil, tt.tls)
			}
		})
	}
}
