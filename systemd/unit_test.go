package systemd

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kardianos/service"
)

var update = flag.Bool("update", false, "rewrite relayd.service from relayd.service.tmpl")

// fakeSystemctl is a stand-in for systemctl at the process boundary: it logs
// its arguments and answers is-active / list-unit-files the way systemctl
// does (state word on stdout, exit 3 when not active).
const fakeSystemctl = `#!/bin/sh
echo "$*" >>"$FAKE_SYSTEMCTL_LOG"
case "$1" in
is-active)
	echo "$FAKE_STATE"
	[ "$FAKE_STATE" = active ] && exit 0 || exit 3 ;;
list-unit-files)
	[ -n "$FAKE_UNIT_LISTED" ] && echo "relayd.service enabled enabled"
	exit 0 ;;
--version)
	echo "systemd 252 (252.38-1~deb12u1)"; exit 0 ;;
esac
exit "${FAKE_RC:-0}"
`

type harness struct {
	home, log string
	c         *Controller
}

// newHarness gives a Controller that drives kardianos's real linux-systemd
// backend in per-user mode ($HOME in a temp dir) against fakeSystemctl.
func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	home := filepath.Join(dir, "home")
	for _, d := range []string{bin, home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(fakeSystemctl), 0o755); err != nil {
		t.Fatal(err)
	}
	h := &harness{home: home, log: filepath.Join(dir, "systemctl.log")}
	t.Setenv("PATH", bin+":/usr/bin:/bin")
	t.Setenv("HOME", home)
	t.Setenv("FAKE_SYSTEMCTL_LOG", h.log)
	t.Setenv("FAKE_STATE", "active")
	t.Setenv("FAKE_RC", "0")
	t.Setenv("FAKE_UNIT_LISTED", "")
	var sys service.System
	for _, s := range service.AvailableSystems() {
		if s.String() == "linux-systemd" {
			sys = s
		}
	}
	if sys == nil {
		t.Fatal("kardianos/service has no linux-systemd backend")
	}
	h.c = &Controller{
		Executable:   DefaultExecutable,
		ConfigPath:   DefaultConfigPath,
		PackagedUnit: filepath.Join(dir, "absent.service"),
		system:       sys,
		lookupUser:   func(string) error { return nil },
		userService:  true,
	}
	return h
}

func (h *harness) unitPath() string {
	return filepath.Join(h.home, ".config/systemd/user", ServiceName+".service")
}

func (h *harness) calls(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(h.log)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// TestServiceConfig_Render renders the unit through kardianos/service's own
// Install (its mini template engine, the code path of "relayd install") and
// compares it with relayd.service, the file the .deb ships. -update rewrites
// relayd.service (go generate ./systemd).
func TestServiceConfig_Render(t *testing.T) {
	h := newHarness(t)
	if err := h.c.Do("install"); err != nil {
		t.Fatalf("install: %v", err)
	}
	got, err := os.ReadFile(h.unitPath())
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("relayd.service", got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("relayd.service")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("relayd.service drifted from relayd.service.tmpl; run: go generate ./systemd\n--- got\n%s\n--- want\n%s", got, want)
	}
	if !*update && string(want) != UnitFile() {
		t.Fatal("embedded UnitFile() differs from relayd.service on disk; rebuild")
	}
}

// TestUnitFile_Directives pins the directives the appliance depends on, so a
// template edit that drops one fails here and not on a box in a shop.
func TestUnitFile_Directives(t *testing.T) {
	unit := map[string][]string{}
	for _, line := range strings.Split(UnitFile(), "\n") {
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("line without '=': %q", line)
		}
		unit[k] = append(unit[k], v)
	}
	tests := []struct{ key, want string }{
		{"Type", "notify"},
		{"NotifyAccess", "main"},
		{"WatchdogSec", "30s"},
		{"Restart", "on-failure"},
		{"RestartSec", "5"},
		{"After", "network-online.target time-sync.target"},
		{"Wants", "network-online.target"},
		{"ExecStart", `/usr/bin/relayd "run" "--config" "/etc/relay/relay.toml"`},
		{"User", "relay"},
		{"Group", "relay"},
		{"SupplementaryGroups", "dialout gpio"},
		{"StateDirectory", "relay"},
		{"ConfigurationDirectory", "relay"},
		{"ProtectSystem", "strict"},
		{"ProtectHome", "yes"},
		{"PrivateTmp", "yes"},
		{"NoNewPrivileges", "yes"},
		{"CapabilityBoundingSet", ""},
		{"RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6 AF_NETLINK"},
		{"DevicePolicy", "closed"},
		{"DeviceAllow", "char-ttyUSB rw|char-ttyACM rw|char-gpiochip rw"},
		{"UMask", "0077"},
		{"Environment", "GOMEMLIMIT=" + GoMemLimit},
		{"WantedBy", "multi-user.target"},
	}
	for _, tt := range tests {
		got := strings.Join(unit[tt.key], "|")
		if got != tt.want {
			t.Errorf("%s=%q, want %q", tt.key, got, tt.want)
		}
	}
	if v, ok := unit["MemoryDenyWriteExecute"]; ok {
		t.Errorf("MemoryDenyWriteExecute=%v breaks the signal-cli JVM child (see doc.go)", v)
	}
}

func TestController_Do(t *testing.T) {
	tests := []struct {
		action    string
		state     string // FAKE_STATE for is-active
		listed    bool   // unit file listed by list-unit-files
		wantOut   string
		wantCalls []string
	}{
		{"start", "active", false, "relayd: start done\n", []string{"start --user relayd.service"}},
		{"stop", "active", false, "relayd: stop done\n", []string{"stop --user relayd.service"}},
		{"restart", "active", false, "relayd: restart done\n", []string{"restart --user relayd.service"}},
		{"status", "active", false, "relayd: running\n", []string{"is-active relayd.service --user"}},
		{"status", "inactive", true, "relayd: stopped\n", []string{"is-active relayd.service --user", "list-unit-files -t service relayd.service --user"}},
		{"status", "inactive", false, "relayd: not installed\n", []string{"is-active relayd.service --user", "list-unit-files -t service relayd.service --user"}},
	}
	for _, tt := range tests {
		t.Run(tt.action+"/"+tt.state, func(t *testing.T) {
			h := newHarness(t)
			t.Setenv("FAKE_STATE", tt.state)
			if tt.listed {
				t.Setenv("FAKE_UNIT_LISTED", "1")
			}
			var out bytes.Buffer
			h.c.Out = &out
			if err := h.c.Do(tt.action); err != nil {
				t.Fatalf("Do(%q): %v", tt.action, err)
			}
			if got := out.String(); got != tt.wantOut {
				t.Errorf("out = %q, want %q", got, tt.wantOut)
			}
			if got := h.calls(t); strings.Join(got, ";") != strings.Join(tt.wantCalls, ";") {
				t.Errorf("systemctl calls = %q, want %q", got, tt.wantCalls)
			}
		})
	}
}

func TestController_DoInstallUninstall(t *testing.T) {
	h := newHarness(t)
	if err := h.c.Do("install"); err != nil {
		t.Fatal(err)
	}
	if got, want := h.calls(t), []string{"enable --user relayd.service", "daemon-reload --user"}; strings.Join(got, ";") != strings.Join(want, ";") {
		t.Errorf("install calls = %q, want %q", got, want)
	}
	// A second install is refused by kardianos, not silently overwritten.
	if err := h.c.Do("install"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second install: err = %v, want 'already exists'", err)
	}
	if err := h.c.Do("uninstall"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(h.unitPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unit file after uninstall: %v, want not exist", err)
	}
}

func TestController_DoErrors(t *testing.T) {
	t.Run("unknown action", func(t *testing.T) {
		h := newHarness(t)
		err := h.c.Do("reboot")
		var ae *ActionError
		if !errors.Is(err, ErrUnknownAction) || !errors.As(err, &ae) || ae.Action != "reboot" {
			t.Fatalf("err = %v, want ActionError{reboot} wrapping ErrUnknownAction", err)
		}
		if calls := h.calls(t); calls != nil {
			t.Errorf("systemctl called: %q", calls)
		}
	})
	t.Run("packaged unit", func(t *testing.T) {
		h := newHarness(t)
		if err := os.WriteFile(h.c.PackagedUnit, []byte(UnitFile()), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, a := range []string{"install", "uninstall"} {
			if err := h.c.Do(a); !errors.Is(err, ErrPackagedUnit) {
				t.Errorf("%s: err = %v, want ErrPackagedUnit", a, err)
			}
		}
		if _, err := os.Stat(h.unitPath()); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a shadowing unit was written: %v", err)
		}
	})
	t.Run("no service user", func(t *testing.T) {
		h := newHarness(t)
		h.c.lookupUser = func(name string) error { return errors.New("user: unknown user " + name) }
		if err := h.c.Do("install"); !errors.Is(err, ErrNoServiceUser) || !strings.Contains(err.Error(), "adduser --system --group relay") {
			t.Fatalf("err = %v, want ErrNoServiceUser with the fix", err)
		}
	})
	t.Run("systemctl fails", func(t *testing.T) {
		h := newHarness(t)
		t.Setenv("FAKE_RC", "1")
		err := h.c.Do("start")
		if err == nil || !strings.HasPrefix(err.Error(), "start: ") || !strings.Contains(err.Error(), "exit status 1") {
			t.Fatalf("err = %v, want a start failure with systemctl's exit status", err)
		}
	})
	t.Run("old-style template leaves no empty unit", func(t *testing.T) {
		h := newHarness(t)
		old := unitTemplate
		unitTemplate = "[Unit]\nDescription={{.Description}}\n"
		t.Cleanup(func() { unitTemplate = old })
		err := h.c.Do("install")
		if err == nil || !strings.Contains(err.Error(), `unknown template key ".Description"`) {
			t.Fatalf("err = %v, want kardianos's unknown template key", err)
		}
		if _, err := os.Stat(h.unitPath()); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("empty unit left behind: %v", err)
		}
		// And a corrected install then succeeds instead of "Init already exists".
		unitTemplate = old
		if err := h.c.Do("install"); err != nil {
			t.Fatalf("install after failed render: %v", err)
		}
	})
}
