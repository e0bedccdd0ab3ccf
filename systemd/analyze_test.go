package systemd

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// maxExposure is the acceptance bar: "OK" in systemd-analyze's words.
const maxExposure = 2.5

func systemdAnalyze(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("SKIP: systemd-analyze not installed (apt-get install systemd); unit not measured")
	}
	return path
}

var exposureRE = regexp.MustCompile(`Overall exposure level for relayd\.service: ([0-9.]+) (\S+)`)

// TestUnitFile_Security measures the shipped unit offline, as the issue asks:
// systemd-analyze security --offline=yes relayd.service.
func TestUnitFile_Security(t *testing.T) {
	sa := systemdAnalyze(t)
	dir := t.TempDir()
	unit := filepath.Join(dir, "relayd.service")
	if err := os.WriteFile(unit, []byte(UnitFile()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sa, "security", "--offline=yes", "--no-pager", unit)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := exposureRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no overall exposure line in:\n%s", out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("systemd-analyze security --offline=yes: exposure %.1f %s", score, m[2])
	if score > maxExposure {
		t.Errorf("exposure %.1f > %.1f:\n%s", score, maxExposure, out)
	}
}

// TestUnitFile_Verify runs systemd-analyze verify against a minimal root that
// holds the unit, a stand-in /usr/bin/relayd and the targets it names, and
// fails on any diagnostic (a misspelt key is only a warning there).
func TestUnitFile_Verify(t *testing.T) {
	sa := systemdAnalyze(t)
	root := t.TempDir()
	write := func(rel string, data []byte, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("usr/bin/relayd", []byte("#!/bin/sh\n"), 0o755)
	write("etc/systemd/system/relayd.service", []byte(UnitFile()), 0o644)
	for _, target := range []string{"sysinit.target", "basic.target", "shutdown.target",
		"multi-user.target", "network-online.target", "time-sync.target"} {
		b, err := os.ReadFile(filepath.Join("/usr/lib/systemd/system", target))
		if err != nil {
			t.Skipf("SKIP: host systemd has no %s: %v", target, err)
		}
		write("usr/lib/systemd/system/"+target, b, 0o644)
	}
	cmd := exec.Command(sa, "verify", "--root="+root, "--man=no", "relayd.service")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil || out.Len() != 0 {
		t.Fatalf("systemd-analyze verify: err=%v\n%s", err, out.String())
	}
}
