package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopkit/relay/relay/mqtt/mqtttest"
)

// relayctl status reads the retained status from a broker that requires TLS with a client
// certificate, with relayd's login: on an ssl:// URL and on a tcp:// one with the CA and
// certificate set (paho's own dialer would talk MQTT in the clear there, with the password).
// Without a client certificate the broker refuses it, and relayctl says so and exits 1.
func TestStatus_TLS(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{TLS: true})
	files := b.TLS()
	hostPort := strings.TrimPrefix(b.URL(), "ssl://")
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	box := b.Connect(t, "relay")
	if tok := box.Publish("shop/status", 1, true, `{"state":"online","version":"t"}`); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("publish status: %v", tok.Error())
	}

	status := func(t *testing.T, broker, cert, key string) (int, string, string) {
		t.Helper()
		conf := filepath.Join(t.TempDir(), "relay.toml")
		toml := fmt.Sprintf(`[mqtt]
broker = %q
topic_prefix = "shop"
username = "staff"
password_file = %q
ca_file = %q
cert_file = %q
key_file = %q
[signal]
account = "+4915100000000"
`, broker, pwFile, files.CA, cert, key)
		if err := os.WriteFile(conf, []byte(toml), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errs bytes.Buffer
		code := run(context.Background(), []string{"status", "--config", conf, "--timeout", "20s"}, &out, &errs)
		return code, out.String(), errs.String()
	}
	for _, scheme := range []string{"ssl", "tcp"} {
		t.Run(scheme, func(t *testing.T) {
			code, out, errs := status(t, scheme+"://"+hostPort, files.ClientCert, files.ClientKey)
			if code != 0 || !strings.Contains(out, `"state": "online"`) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 0 and the status", code, out, errs)
			}
		})
	}
	t.Run("no client certificate", func(t *testing.T) {
		code, out, errs := status(t, b.URL(), "", "")
		if code != 1 || out != "" || !strings.Contains(errs, "not reachable") {
			t.Fatalf("exit %d, stdout %q, stderr %q; want 1 and 'not reachable'", code, out, errs)
		}
	})
}
