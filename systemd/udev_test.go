package systemd

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func readModemRules(t *testing.T) []udevRule {
	t.Helper()
	b, err := os.ReadFile("99-relay-modem.rules")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := parseUdevRules(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

// usbTTY builds the sysfs chain of a USB serial port: tty -> usb-serial port
// (ttyUSB) or nothing (ttyACM) -> USB interface -> USB device.
func usbTTY(kernel, vid, pid, ifnum string) []udevDevice {
	chain := []udevDevice{{Subsystem: "tty", Kernel: kernel, Attrs: map[string]string{"dev": "188:2"}}}
	if strings.HasPrefix(kernel, "ttyUSB") {
		chain = append(chain, udevDevice{Subsystem: "usb-serial", Kernel: kernel, Attrs: map[string]string{"port_number": "0"}})
	}
	return append(chain,
		udevDevice{Subsystem: "usb", Kernel: "1-1.3:1." + strings.TrimLeft(ifnum, "0"),
			Attrs: map[string]string{"bInterfaceNumber": ifnum, "bInterfaceClass": "ff"}},
		udevDevice{Subsystem: "usb", Kernel: "1-1.3",
			Attrs: map[string]string{"idVendor": vid, "idProduct": pid, "product": "LTE modem"}},
	)
}

func TestModemRules_Devices(t *testing.T) {
	rules := readModemRules(t)
	tests := []struct {
		name      string
		action    string
		chain     []udevDevice
		wantLink  bool
		wantGroup string
		wantMode  string
		wantMM    bool // ID_MM_DEVICE_IGNORE=1
	}{
		{"EC25 AT port", "add", usbTTY("ttyUSB2", "2c7c", "0125", "02"), true, "dialout", "0660", true},
		{"EC25 NMEA port", "add", usbTTY("ttyUSB1", "2c7c", "0125", "01"), false, "dialout", "0660", true},
		{"EC25 modem port", "add", usbTTY("ttyUSB3", "2c7c", "0125", "03"), false, "dialout", "0660", true},
		{"SIM7600 AT port", "add", usbTTY("ttyUSB2", "1e0e", "9001", "02"), true, "dialout", "0660", true},
		{"SIM7600 DIAG port", "add", usbTTY("ttyUSB0", "1e0e", "9001", "00"), false, "dialout", "0660", true},
		{"Huawei 1001 modem port", "add", usbTTY("ttyUSB0", "12d1", "1001", "00"), true, "dialout", "0660", true},
		{"Huawei 1506 modem port", "add", usbTTY("ttyUSB0", "12d1", "1506", "00"), true, "dialout", "0660", true},
		{"Huawei 1506 pcui port", "add", usbTTY("ttyUSB2", "12d1", "1506", "02"), false, "dialout", "0660", true},
		{"Huawei storage mode 1f01", "add", usbTTY("ttyUSB0", "12d1", "1f01", "00"), false, "", "", false},
		{"EC25 on change", "change", usbTTY("ttyUSB2", "2c7c", "0125", "02"), true, "dialout", "0660", true},
		{"EC25 removed", "remove", usbTTY("ttyUSB2", "2c7c", "0125", "02"), false, "", "", false},
		{"other USB serial (FTDI)", "add", usbTTY("ttyUSB0", "0403", "6001", "00"), false, "", "", false},
		{"EC25 USB device itself", "add", usbTTY("ttyUSB2", "2c7c", "0125", "02")[2:], false, "", "", true},
		{"EC25 wwan interface", "add", append([]udevDevice{{Subsystem: "net", Kernel: "wwan0"}},
			usbTTY("ttyUSB2", "2c7c", "0125", "04")[2:]...), false, "", "", true},
		{"gpiochip", "add", []udevDevice{{Subsystem: "gpio", Kernel: "gpiochip0"}, {Subsystem: "platform", Kernel: "fe200000.gpio"}},
			false, "gpio", "0660", false},
		{"gpio line export is not a chip", "add", []udevDevice{{Subsystem: "gpio", Kernel: "gpio17"}}, false, "", "", false},
		{"Pi UART", "add", []udevDevice{{Subsystem: "tty", Kernel: "ttyAMA0"}, {Subsystem: "amba", Kernel: "fe201000.serial"}},
			false, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := evalUdev(rules, tt.action, tt.chain)
			if link := slices.Contains(got.Symlinks, "relay-modem"); link != tt.wantLink {
				t.Errorf("symlink relay-modem = %v, want %v (symlinks %q)", link, tt.wantLink, got.Symlinks)
			}
			if got.Group != tt.wantGroup || got.Mode != tt.wantMode {
				t.Errorf("group/mode = %q/%q, want %q/%q", got.Group, got.Mode, tt.wantGroup, tt.wantMode)
			}
			if mm := got.Env["ID_MM_DEVICE_IGNORE"] == "1"; mm != tt.wantMM {
				t.Errorf("ID_MM_DEVICE_IGNORE=1: %v, want %v (env %v)", mm, tt.wantMM, got.Env)
			}
		})
	}
}

// TestModemRules_SameAncestor shows why the rules carry the model in
// ENV{RELAY_MODEM}: udev (and this evaluator) never matches idVendor and
// bInterfaceNumber in one rule, because they sit on different devices.
func TestModemRules_SameAncestor(t *testing.T) {
	rules, err := parseUdevRules(`SUBSYSTEM=="tty", ATTRS{idVendor}=="2c7c", ATTRS{bInterfaceNumber}=="02", SYMLINK+="naive"` + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := evalUdev(rules, "add", usbTTY("ttyUSB2", "2c7c", "0125", "02")); len(got.Symlinks) != 0 {
		t.Fatalf("evaluator matched ATTRS across two devices: %q", got.Symlinks)
	}
}

func TestParseUdevRules(t *testing.T) {
	tests := []struct {
		name, src string
		wantErr   string // "" = valid
		wantKeys  int
	}{
		{"match and assign", `SUBSYSTEM=="tty", GROUP="dialout", MODE="0660"`, "", 3},
		{"continuation", "KERNEL==\"ttyUSB*\", \\\n  SYMLINK+=\"x\"", "", 2},
		{"comment and blank", "# c\n\n", "", 0},
		{"attribute", `ATTRS{idVendor}=="2c7c", ENV{ID_MM_DEVICE_IGNORE}="1"`, "", 2},
		{"unknown key", `VENDOR=="x"`, "unknown key", 0},
		{"assign to match-only key", `KERNEL="x"`, "cannot be assigned", 0},
		{"match an assign-only key", `GROUP=="x"`, "cannot be matched", 0},
		{"missing attribute", `ATTRS=="x"`, "needs {attribute}", 0},
		{"unquoted", `KERNEL==ttyUSB0`, "double-quoted", 0},
		{"unterminated", `KERNEL=="ttyUSB0`, "unterminated", 0},
		{"missing comma", `KERNEL=="a" GROUP="b"`, "expected ','", 0},
		{"bad mode", `MODE="rw"`, "not octal", 0},
		{"goto without label", `GOTO="nowhere"`, "no LABEL", 0},
		{"label before goto", "LABEL=\"end\"\nGOTO=\"end\"", "no LABEL", 0},
		{"duplicate label", "LABEL=\"a\"\nLABEL=\"a\"", "already on line", 0},
		{"trailing comma", `KERNEL=="a",`, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules, err := parseUdevRules(tt.src)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, errUdevSyntax) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, r := range rules {
				n += len(r.Keys)
			}
			if n != tt.wantKeys {
				t.Errorf("keys = %d, want %d", n, tt.wantKeys)
			}
		})
	}
}

func FuzzParseUdevRules(f *testing.F) {
	b, err := os.ReadFile("99-relay-modem.rules")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(b))
	f.Add(`KERNEL=="a", GOTO="x"` + "\nLABEL=\"x\"\n")
	f.Add(`ENV{A}="{", ATTRS{b}=="\"`)
	f.Add("A\\\n")
	f.Fuzz(func(t *testing.T, src string) {
		rules, err := parseUdevRules(src)
		if err != nil {
			return
		}
		// What parses re-serialises to something that parses the same.
		var sb strings.Builder
		for _, r := range rules {
			for i, k := range r.Keys {
				if i > 0 {
					sb.WriteString(", ")
				}
				sb.WriteString(k.String())
			}
			sb.WriteString("\n")
		}
		again, err := parseUdevRules(sb.String())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", sb.String(), err)
		}
		if len(again) != len(rules) {
			t.Fatalf("%d rules became %d", len(rules), len(again))
		}
		for i := range rules {
			if !slices.Equal(rules[i].Keys, again[i].Keys) {
				t.Fatalf("rule %d: %v became %v", i, rules[i].Keys, again[i].Keys)
			}
		}
		_ = evalUdev(rules, "add", usbTTY("ttyUSB2", "2c7c", "0125", "02"))
	})
}
