package mqtt

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/shopkit/relay/relay/config"
)

// Login is the broker login both relayd and relayctl use, from the [mqtt] config: the password
// read from its owner-only file, and TLS when the URL asks for it or a CA or a client
// certificate is configured (a client certificate over plain TCP would be pointless).
func Login(c config.MQTT) (password string, tc *tls.Config, err error) {
	if c.PasswordFile != "" {
		pw, err := config.ReadSecret(c.PasswordFile)
		if err != nil {
			return "", nil, err
		}
		password = string(pw)
	}
	if needsTLS(c.Broker) || c.CAFile != "" || c.CertFile != "" {
		if tc, err = tlsConfig(c.CAFile, c.CertFile, c.KeyFile); err != nil {
			return "", nil, err
		}
	}
	return password, tc, nil
}

// tlsConfig builds the TLS settings from PEM files: the CA that signed the broker's certificate
// (empty: the system's roots) and an optional client certificate and key.
func tlsConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt: ca_file %s: no PEM certificate in it", caFile)
		}
		cfg.RootCAs = pool
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// needsTLS reports whether the broker URL asks for TLS.
func needsTLS(broker string) bool {
	for _, p := range []string{"ssl://", "tls://", "mqtts://", "wss://"} {
		if strings.HasPrefix(broker, p) {
			return true
		}
	}
	return false
}
