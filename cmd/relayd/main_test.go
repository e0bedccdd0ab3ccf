package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// runCmd calls run as main would and returns the exit code and both outputs.
func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestRun_Commands(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.toml")
	if err := os.WriteFile(broken, []byte("[shop]\nname = \"\"\nbogus = 1\n[policy]\nconcurrency = 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notTOML := filepath.Join(dir, "garbage.toml")
	if err := os.WriteFile(notTOML, []byte("[shop\nname = = 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	example := filepath.Join("..", "..", "systemd", "relay.example.toml")

	tests := []struct {
		name      string
		args      []string
		wantCode  int
		wantOut   []string // substrings of stdout
		wantErr   []string // substrings of stderr
		wantNoOut bool
		wantOutEq string
	}{
		{name: "version", args: []string{"version"}, wantCode: exitOK, wantOut: []string{"relayd "}},
		{name: "--version", args: []string{"--version"}, wantCode: exitOK, wantOut: []string{"relayd "}},
		{name: "no command", args: nil, wantCode: exitUsage, wantErr: []string{"usage: relayd"}, wantNoOut: true},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: exitUsage,
			wantErr: []string{`unknown command "frobnicate"`, "usage: relayd"}, wantNoOut: true},
		{name: "help", args: []string{"help"}, wantCode: exitOK, wantOut: []string{"usage: relayd", "check-config"}},
		{name: "check-config example", args: []string{"check-config", "--config", example}, wantCode: exitOK, wantOutEq: "ok\n"},
		{name: "check-config broken", args: []string{"check-config", "--config", broken}, wantCode: exitFailure,
			wantErr:   []string{"shop.bogus", "unknown key", "line 3", "shop.name", "line 2", "signal.account", "policy.concurrency", "line 5"},
			wantNoOut: true},
		{name: "check-config not TOML", args: []string{"check-config", "--config", notTOML}, wantCode: exitFailure,
			wantErr: []string{notTOML}, wantNoOut: true},
		{name: "check-config missing file", args: []string{"check-config", "--config", filepath.Join(dir, "nope.toml")},
			wantCode: exitFailure, wantErr: []string{"nope.toml"}, wantNoOut: true},
		{name: "check-config bad flag", args: []string{"check-config", "--frob"}, wantCode: exitUsage,
			wantErr: []string{"-frob"}, wantNoOut: true},
		{name: "run bad flag", args: []string{"run", "--nope"}, wantCode: exitUsage, wantErr: []string{"-nope"}},
		{name: "run broken config", args: []string{"run", "--config", broken}, wantCode: exitFailure,
			wantErr: []string{"shop.bogus"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCmd(t, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit code = %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out, errs)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("stdout %q does not contain %q", out, w)
				}
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr %q does not contain %q", errs, w)
				}
			}
			if tc.wantNoOut && out != "" {
				t.Errorf("stdout = %q, want nothing", out)
			}
			if tc.wantOutEq != "" && out != tc.wantOutEq {
				t.Errorf("stdout = %q, want %q", out, tc.wantOutEq)
			}
		})
	}
}

func TestCheckPlatform(t *testing.T) {
	tests := []struct {
		intSize int
		arch    string
		wantErr bool
	}{
		{64, "arm64", false},
		{64, "amd64", false},
		{32, "arm", true},
		{32, "386", true},
	}
	for _, tc := range tests {
		err := checkPlatform(tc.intSize, tc.arch)
		if (err != nil) != tc.wantErr {
			t.Errorf("checkPlatform(%d, %q) = %v, want error %v", tc.intSize, tc.arch, err, tc.wantErr)
			continue
		}
		if err == nil {
			continue
		}
		msg := err.Error()
		for _, w := range []string{"Badger", "64-bit", tc.arch} {
			if !strings.Contains(msg, w) {
				t.Errorf("checkPlatform(%d, %q) = %q: does not name %q", tc.intSize, tc.arch, msg, w)
			}
		}
	}
}

// TestBuild_Refuses32Bit builds relayd for 386: the build must fail and say why (64-bit).
func TestBuild_Refuses32Bit(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: cross-compiling for 386 takes a while on a cold cache; run without -short")
	}
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		p, err := exec.LookPath("go")
		if err != nil {
			t.Skip("SKIP: the go tool is not available; the 32-bit build refusal is not checked")
		}
		gobin = p
	}
	cmd := exec.Command(gobin, "build", "-o", os.DevNull, ".")
	cmd.Env = append(os.Environ(), "GOARCH=386", "GOOS=linux", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("GOARCH=386 go build ./cmd/relayd succeeded; it must refuse 32-bit targets\n%s", out)
	}
	if !strings.Contains(string(out), "64_bit") && !strings.Contains(string(out), "64-bit") {
		t.Fatalf("GOARCH=386 build failed without naming 64-bit:\n%s", out)
	}
}
