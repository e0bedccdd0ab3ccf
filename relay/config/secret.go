package config

import (
	"bytes"
	"fmt"
	"os"
)

// ReadSecret reads a password, PIN or key file. It refuses a file that group or others can read
// (these files must be root-only: chmod 0600) and trims one trailing newline, which editors add.
func ReadSecret(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secret file %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("secret file %s: mode %04o lets others read it; run: chmod 600 %s", path, perm, path)
	}
	if fi.Size() > 64<<10 {
		return nil, fmt.Errorf("secret file %s: larger than 64 KiB", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret file: %w", err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	return b, nil
}
