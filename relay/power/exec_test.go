package power

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

func TestExecRunner_Run(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	tests := []struct {
		name    string
		argv    []string
		wantErr string
	}{
		{"ok", []string{"sh", "-c", "exit 0"}, ""},
		{"refused", []string{"sh", "-c", "echo 'Access denied' >&2; exit 1"}, "Access denied"},
		{"missing", []string{"/nonexistent/systemctl", "poweroff"}, "/nonexistent/systemctl poweroff"},
		{"empty", nil, "empty command"},
	}
	for _, tt := range tests {
		err := ExecRunner{}.Run(t.Context(), tt.argv)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestExecRunner_Run_cancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := ExecRunner{}.Run(ctx, []string{"sh", "-c", "exit 0"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run with a cancelled context = %v, want context.Canceled", err)
	}
}
