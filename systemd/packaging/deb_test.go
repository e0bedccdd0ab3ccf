package packaging

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/shopkit/relay/systemd"
)

// findDeb returns the amd64 .deb under test: $RELAY_DEB, else the newest
// dist/relay_*_amd64.deb ("make deb" / "make test-deb" build it).
func findDeb(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("RELAY_DEB"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(abs); err != nil {
			t.Fatalf("RELAY_DEB: %v", err)
		}
		return abs
	}
	debs, _ := filepath.Glob("../../dist/relay_*_amd64.deb")
	if len(debs) == 0 {
		t.Skip("SKIP: no amd64 .deb; run make test-deb (or set RELAY_DEB=path/to/relay_X_amd64.deb)")
	}
	sort.Slice(debs, func(i, j int) bool {
		a, _ := os.Stat(debs[i])
		b, _ := os.Stat(debs[j])
		return a.ModTime().After(b.ModTime())
	})
	abs, _ := filepath.Abs(debs[0])
	return abs
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: %s not installed", tool)
		}
	}
}

// throwawayRoot is a Debian root made of overlays (testdata/throwaway-root.sh).
type throwawayRoot struct {
	t   *testing.T
	dir string
}

func newThrowawayRoot(t *testing.T) *throwawayRoot {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: installing into a throwaway root needs root (mount namespaces, chroot)")
	}
	need(t, "dpkg", "dpkg-deb", "unshare", "chroot")
	r := &throwawayRoot{t: t, dir: t.TempDir()}
	if out, err := r.run("true"); err != nil {
		t.Skipf("SKIP: cannot build a throwaway root here (overlayfs in a mount namespace): %v\n%s", err, out)
	}
	return r
}

// run runs a shell script with $ROOT set, outside the chroot.
func (r *throwawayRoot) run(script string) (string, error) {
	cmd := exec.Command("testdata/throwaway-root.sh", r.dir, "sh", "-euc", script)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (r *throwawayRoot) must(script string) string {
	r.t.Helper()
	out, err := r.run(script)
	if err != nil {
		r.t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return out
}

// in runs a command inside the root (chroot), so user and group names
// resolve through the root's /etc.
func (r *throwawayRoot) in(cmd string) string {
	r.t.Helper()
	return r.must(`chroot "$ROOT" sh -euc '` + cmd + `'`)
}

// dpkg runs dpkg inside the root. Not "dpkg --root": that dpkg runs on the
// host and resolves the statoverride's group relay in the host's /etc/group.
// Package paths in args are copied into the root's /tmp first.
func (r *throwawayRoot) dpkg(args ...string) string {
	r.t.Helper()
	var cp []string
	for i, a := range args {
		if strings.HasSuffix(a, ".deb") {
			cp = append(cp, fmt.Sprintf(`cp %q "$ROOT/tmp/"`, a))
			args[i] = "/tmp/" + filepath.Base(a)
		}
	}
	cp = append(cp, `chroot "$ROOT" dpkg --force-unsafe-io `+strings.Join(args, " "))
	return r.must(strings.Join(cp, "; "))
}

// stat returns "owner:group mode type" of each path inside the root; a
// missing path maps to "missing".
func (r *throwawayRoot) stat(paths ...string) map[string]string {
	r.t.Helper()
	var sb strings.Builder
	for _, p := range paths {
		fmt.Fprintf(&sb, `if [ -e %[1]s ]; then stat -c "%%n|%%U:%%G %%a %%F" %[1]s; else echo "%[1]s|missing"; fi; `, p)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(r.in(sb.String())), "\n") {
		p, v, _ := strings.Cut(line, "|")
		got[p] = v
	}
	return got
}

func (r *throwawayRoot) read(path string) string {
	r.t.Helper()
	b, err := os.ReadFile(filepath.Join(r.dir, "up", path))
	if err != nil {
		r.t.Fatalf("read %s from the root: %v", path, err)
	}
	return string(b)
}

// passwd returns the root's passwd fields for user relay.
func (r *throwawayRoot) passwd() []string {
	r.t.Helper()
	return strings.Split(strings.TrimSpace(r.in("getent passwd relay")), ":")
}

// makeV2 repacks deb as a newer version whose example config differs, the
// case where dpkg must keep the staff's edit and put the new example beside.
func makeV2(t *testing.T, deb string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "v2")
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run("dpkg-deb", "-R", deb, dir)
	ctl := filepath.Join(dir, "DEBIAN/control")
	b, err := os.ReadFile(ctl)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Version: "); ok {
			line = "Version: " + v + "+v2"
		}
		out = append(out, line)
	}
	if err := os.WriteFile(ctl, []byte(strings.Join(out, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "etc/relay/relay.toml")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("# new in v2\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// md5sums must match, or dpkg --verify (and debsums) would flag the file.
	sum, err := exec.Command("md5sum", conf).Output()
	if err != nil {
		t.Fatal(err)
	}
	md5s := filepath.Join(dir, "DEBIAN/md5sums")
	b, err = os.ReadFile(md5s)
	if err != nil {
		t.Fatal(err)
	}
	var sums []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if strings.HasSuffix(line, " etc/relay/relay.toml") {
			line = strings.Fields(string(sum))[0] + "  etc/relay/relay.toml"
		}
		sums = append(sums, line)
	}
	if err := os.WriteFile(md5s, []byte(strings.Join(sums, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v2 := dir + ".deb"
	run("dpkg-deb", "--root-owner-group", "--build", dir, v2)
	return v2
}

func checkStat(t *testing.T, got, want map[string]string) {
	t.Helper()
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: %q, want %q", p, got[p], w)
		}
	}
}

// TestDeb_Lifecycle installs the package into a throwaway root with the real
// dpkg and maintainer scripts (real adduser, addgroup, dpkg-statoverride,
// all chrooted into the root), then upgrades it over an edited config,
// reinstalls, removes, purges and installs again.
func TestDeb_Lifecycle(t *testing.T) {
	deb := findDeb(t)
	r := newThrowawayRoot(t)
	_, hostErr := user.Lookup("relay")
	v2 := makeV2(t, deb)

	// Install.
	r.dpkg("-i", deb)
	installed := map[string]string{
		"/usr/bin/relayd":                                     "root:root 755 regular file",
		"/usr/bin/relayctl":                                   "root:root 755 regular file",
		"/lib/systemd/system/relayd.service":                  "root:root 644 regular file",
		"/lib/udev/rules.d/99-relay-modem.rules":              "root:root 644 regular file",
		"/usr/share/polkit-1/rules.d/50-relay-poweroff.rules": "root:root 644 regular file",
		"/usr/share/doc/relay/INSTALL.md":                     "root:root 644 regular file",
		"/usr/share/doc/relay/relay.example.toml":             "root:root 644 regular file",
		"/usr/share/relay/templates":                          "root:root 755 directory",
		"/etc/relay":                                          "root:root 755 directory",
		"/etc/relay/relay.toml":                               "root:relay 640 regular file",
		"/var/lib/relay":                                      "relay:relay 700 directory",
	}
	paths := make([]string, 0, len(installed))
	for p := range installed {
		paths = append(paths, p)
	}
	checkStat(t, r.stat(paths...), installed)

	if got := r.read("usr/lib/systemd/system/relayd.service"); got != systemd.UnitFile() {
		t.Errorf("installed unit differs from systemd.UnitFile():\n%s", got)
	}
	rules, err := os.ReadFile("../99-relay-modem.rules")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.read("usr/lib/udev/rules.d/99-relay-modem.rules"); got != string(rules) {
		t.Error("installed udev rule differs from systemd/99-relay-modem.rules")
	}
	pw := r.passwd()
	if len(pw) != 7 {
		t.Fatalf("passwd relay: %q", pw)
	}
	uid, _ := strconv.Atoi(pw[2])
	if uid == 0 || uid >= 1000 || pw[5] != "/var/lib/relay" || pw[6] != "/usr/sbin/nologin" {
		t.Errorf("relay user = %q, want a system uid, home /var/lib/relay, shell /usr/sbin/nologin", pw)
	}
	groups := strings.Fields(r.in("id -nG relay"))
	for _, g := range []string{"relay", "dialout", "gpio"} {
		if !contains(groups, g) {
			t.Errorf("relay is not in group %s (groups %v)", g, groups)
		}
	}
	if got := r.in(`dpkg-query -W -f="\${Conffiles}" relay`); !strings.Contains(got, "/etc/relay/relay.toml") {
		t.Errorf("relay.toml is not a conffile: %q", got)
	}
	if got := r.in("dpkg-statoverride --list /etc/relay/relay.toml"); strings.TrimSpace(got) != "root relay 640 /etc/relay/relay.toml" {
		t.Errorf("statoverride = %q", got)
	}
	if r.stat("/etc/systemd/system/multi-user.target.wants/relayd.service")["/etc/systemd/system/multi-user.target.wants/relayd.service"] != "missing" {
		t.Error("first install enabled relayd before its config was filled in")
	}

	// Staff edit the config; an upgrade with a changed example keeps the edit.
	r.in(`echo "# edited by staff" >>/etc/relay/relay.toml; mkdir -m 0700 /var/lib/relay/outbox; echo job >/var/lib/relay/outbox/000001; chown -R relay:relay /var/lib/relay/outbox`)
	r.dpkg("--force-confold", "-i", v2)
	conf := r.in("cat /etc/relay/relay.toml")
	if !strings.Contains(conf, "# edited by staff") || strings.Contains(conf, "# new in v2") {
		t.Errorf("upgrade replaced the edited config:\n%s", conf)
	}
	if dist := r.in("cat /etc/relay/relay.toml.dpkg-dist"); !strings.Contains(dist, "# new in v2") {
		t.Errorf("new example not put beside the edited config: %q", dist)
	}
	checkStat(t, r.stat("/etc/relay/relay.toml", "/var/lib/relay"), map[string]string{
		"/etc/relay/relay.toml": "root:relay 640 regular file",
		"/var/lib/relay":        "relay:relay 700 directory",
	})
	if got := r.passwd(); got[2] != pw[2] {
		t.Errorf("upgrade changed relay's uid %s -> %s", pw[2], got[2])
	}

	// Reinstalling the same version, without any --force, keeps it too.
	r.dpkg("-i", v2)
	if conf := r.in("cat /etc/relay/relay.toml"); !strings.Contains(conf, "# edited by staff") {
		t.Error("reinstall replaced the edited config")
	}

	// Remove: binaries go, config and state stay.
	r.dpkg("-r", "relay")
	checkStat(t, r.stat("/usr/bin/relayd", "/lib/systemd/system/relayd.service", "/etc/relay/relay.toml", "/var/lib/relay/outbox/000001"),
		map[string]string{
			"/usr/bin/relayd":                    "missing",
			"/lib/systemd/system/relayd.service": "missing",
			"/etc/relay/relay.toml":              "root:relay 640 regular file",
			"/var/lib/relay/outbox/000001":       "relay:relay 644 regular file",
		})

	// Purge: config and override go, state is set aside, the user stays.
	out := r.dpkg("-P", "relay")
	if !strings.Contains(out, "relay: state (outbox, signal-cli keys) kept at /var/lib/relay.purged-") {
		t.Errorf("purge did not say where the state went:\n%s", out)
	}
	checkStat(t, r.stat("/etc/relay", "/var/lib/relay"), map[string]string{"/etc/relay": "missing", "/var/lib/relay": "missing"})
	if got := r.in(`cat /var/lib/relay.purged-*/outbox/000001`); strings.TrimSpace(got) != "job" {
		t.Errorf("purged state lost the outbox: %q", got)
	}
	if got := r.in("dpkg-statoverride --list /etc/relay/relay.toml || true"); strings.TrimSpace(got) != "" {
		t.Errorf("statoverride survived purge: %q", got)
	}
	if got := r.passwd(); got[2] != pw[2] {
		t.Errorf("relay user after purge: %q", got)
	}

	// Install again: a pristine config, the same user.
	r.dpkg("-i", deb)
	if conf := r.in("cat /etc/relay/relay.toml"); strings.Contains(conf, "# edited by staff") {
		t.Error("reinstall after purge brought back the old config")
	}
	checkStat(t, r.stat("/etc/relay/relay.toml", "/var/lib/relay"), map[string]string{
		"/etc/relay/relay.toml": "root:relay 640 regular file",
		"/var/lib/relay":        "relay:relay 700 directory",
	})

	// The host itself was never touched.
	if _, err := user.Lookup("relay"); (err == nil) != (hostErr == nil) {
		t.Errorf("host user relay changed: before %v, after %v", hostErr, err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestBuildDeb_Refuses checks the argument validation of build-deb.sh, which
// runs before nfpm is fetched, so wrong binaries never make a package.
func TestBuildDeb_Refuses(t *testing.T) {
	need(t, "bash", "od")
	dir := t.TempDir()
	amd64 := filepath.Join(dir, "amd64")
	if err := os.MkdirAll(amd64, 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", filepath.Join(amd64, "relayd"), "./testdata/stub")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build stub: %v\n%s", err, out)
	}
	stub, err := os.ReadFile(filepath.Join(amd64, "relayd"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(amd64, "relayctl"), stub, 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "not-elf")
	if err := os.MkdirAll(script, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"relayd", "relayctl"} {
		if err := os.WriteFile(filepath.Join(script, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	half := filepath.Join(dir, "half")
	if err := os.MkdirAll(half, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(half, "relayd"), stub, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"usage", []string{"amd64"}, "usage: build-deb.sh"},
		{"32-bit", []string{"armhf", "1.0", amd64, dir}, "ARCH must be amd64 or arm64"},
		{"wrong architecture", []string{"arm64", "1.0", amd64, dir}, "ELF machine 62 is not arm64"},
		{"not a binary", []string{"amd64", "1.0", script, dir}, "not an ELF binary"},
		{"relayctl missing", []string{"amd64", "1.0", half, dir}, "relayctl: missing"},
		{"no bin dir", []string{"amd64", "1.0", filepath.Join(dir, "nope"), dir}, "does not exist"},
		{"bad version", []string{"amd64", "1.0 beta", amd64, dir}, "does not make a Debian version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("./build-deb.sh", tt.args...)
			cmd.Env = append(os.Environ(), "NFPM_CACHE="+filepath.Join(dir, "no-nfpm"))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if err == nil || !strings.Contains(out.String(), tt.wantErr) {
				t.Fatalf("err = %v, output %q, want %q", err, out.String(), tt.wantErr)
			}
			if _, err := os.Stat(filepath.Join(dir, "no-nfpm")); err == nil {
				t.Error("nfpm was fetched although the arguments were refused")
			}
		})
	}
}
