package systemd

// A parser and a small evaluator for the subset of udev rule syntax that
// 99-relay-modem.rules uses. Debian 12's udev (252) has no "udevadm verify"
// (it came with systemd 253), and "udevadm test" needs the real device in
// sysfs, so the rule file is checked here: syntax (keys, operators, quoting,
// GOTO targets) and behaviour (which device gets which name, group and
// ModemManager flag), including udev's rule that all ATTRS{} of one rule
// must match on the same ancestor device.

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

type udevKey struct {
	Name, Attr, Op, Value string
}

type udevRule struct {
	Line int
	Keys []udevKey
}

var errUdevSyntax = errors.New("udev rules syntax")

// udevKeys lists the keys we accept, with whether they may match and/or assign.
var udevKeys = map[string]struct{ match, assign, attr bool }{
	"ACTION": {match: true}, "DEVPATH": {match: true},
	"KERNEL": {match: true}, "KERNELS": {match: true},
	"SUBSYSTEM": {match: true}, "SUBSYSTEMS": {match: true},
	"DRIVER": {match: true}, "DRIVERS": {match: true},
	"ATTR": {match: true, assign: true, attr: true}, "ATTRS": {match: true, attr: true},
	"ENV":     {match: true, assign: true, attr: true},
	"TAG":     {match: true, assign: true},
	"SYMLINK": {match: true, assign: true},
	"NAME":    {match: true, assign: true},
	"OWNER":   {assign: true}, "GROUP": {assign: true}, "MODE": {assign: true},
	"RUN": {assign: true, attr: true}, "GOTO": {assign: true}, "LABEL": {assign: true},
}

func parseUdevRules(src string) ([]udevRule, error) {
	var rules []udevRule
	lines := strings.Split(src, "\n")
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := strings.TrimSpace(lines[i])
		for strings.HasSuffix(line, "\\") && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, "\\") + strings.TrimSpace(lines[i])
		}
		if line == "" || line[0] == '#' {
			continue
		}
		r, err := parseUdevLine(line)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", errUdevSyntax, lineNo, err)
		}
		r.Line = lineNo
		rules = append(rules, r)
	}
	labels := map[string]int{}
	for _, r := range rules {
		for _, k := range r.Keys {
			if k.Name == "LABEL" {
				if prev, dup := labels[k.Value]; dup {
					return nil, fmt.Errorf("%w: line %d: LABEL %q already on line %d", errUdevSyntax, r.Line, k.Value, prev)
				}
				labels[k.Value] = r.Line
			}
		}
	}
	for _, r := range rules {
		for _, k := range r.Keys {
			if k.Name == "GOTO" {
				if l, ok := labels[k.Value]; !ok || l <= r.Line {
					return nil, fmt.Errorf("%w: line %d: GOTO %q has no LABEL after it", errUdevSyntax, r.Line, k.Value)
				}
			}
		}
	}
	return rules, nil
}

func parseUdevLine(s string) (udevRule, error) {
	var r udevRule
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			break
		}
		end := strings.IndexAny(s, "=!+-:{")
		if end <= 0 {
			return r, fmt.Errorf("expected KEY at %q", s)
		}
		k := udevKey{Name: s[:end]}
		s = s[end:]
		spec, known := udevKeys[k.Name]
		if !known {
			return r, fmt.Errorf("unknown key %q", k.Name)
		}
		if strings.HasPrefix(s, "{") {
			close := strings.IndexByte(s, '}')
			if close < 2 || !spec.attr {
				return r, fmt.Errorf("bad {attribute} on %s", k.Name)
			}
			k.Attr, s = s[1:close], s[close+1:]
		} else if spec.attr && k.Name != "RUN" {
			return r, fmt.Errorf("%s needs {attribute}", k.Name)
		}
		for _, op := range []string{"==", "!=", "+=", "-=", ":=", "="} {
			if strings.HasPrefix(s, op) {
				k.Op, s = op, s[len(op):]
				break
			}
		}
		isMatch := k.Op == "==" || k.Op == "!="
		switch {
		case k.Op == "":
			return r, fmt.Errorf("%s: missing operator", k.Name)
		case isMatch && !spec.match:
			return r, fmt.Errorf("%s cannot be matched", k.Name)
		case !isMatch && !spec.assign:
			return r, fmt.Errorf("%s cannot be assigned", k.Name)
		}
		if !strings.HasPrefix(s, `"`) {
			return r, fmt.Errorf("%s: value must be double-quoted", k.Name)
		}
		close := strings.IndexByte(s[1:], '"')
		if close < 0 {
			return r, fmt.Errorf("%s: unterminated value", k.Name)
		}
		k.Value, s = s[1:close+1], s[close+2:]
		if k.Name == "MODE" && !isOctalMode(k.Value) {
			return r, fmt.Errorf("MODE %q is not octal", k.Value)
		}
		r.Keys = append(r.Keys, k)
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			break
		}
		if !strings.HasPrefix(s, ",") {
			return r, fmt.Errorf("expected ',' at %q", s)
		}
		s = s[1:]
	}
	if len(r.Keys) == 0 {
		return r, errors.New("empty rule")
	}
	return r, nil
}

func isOctalMode(s string) bool {
	if len(s) < 3 || len(s) > 4 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '7' {
			return false
		}
	}
	return true
}

func (k udevKey) String() string {
	name := k.Name
	if k.Attr != "" {
		name += "{" + k.Attr + "}"
	}
	return name + k.Op + `"` + k.Value + `"`
}

// udevDevice is one device in sysfs: the event device first, then its
// ancestors (parent, grandparent, ...).
type udevDevice struct {
	Subsystem, Kernel string
	Attrs             map[string]string
}

// udevResult is what the rules did to the event device.
type udevResult struct {
	Env      map[string]string
	Group    string
	Mode     string
	Symlinks []string
}

func udevGlob(pattern, value string) bool {
	for _, alt := range strings.Split(pattern, "|") {
		if ok, _ := path.Match(alt, value); ok {
			return true
		}
	}
	return false
}

// evalUdev runs rules over an event for chain (chain[0] is the device).
func evalUdev(rules []udevRule, action string, chain []udevDevice) udevResult {
	res := udevResult{Env: map[string]string{}}
	skipTo := ""
	for _, r := range rules {
		if skipTo != "" {
			for _, k := range r.Keys {
				if k.Name == "LABEL" && k.Value == skipTo {
					skipTo = ""
				}
			}
			continue
		}
		if !udevMatches(r, action, chain, res.Env) {
			continue
		}
		for _, k := range r.Keys {
			switch {
			case k.Op == "==" || k.Op == "!=":
			case k.Name == "ENV":
				res.Env[k.Attr] = k.Value
			case k.Name == "GROUP":
				res.Group = k.Value
			case k.Name == "MODE":
				res.Mode = k.Value
			case k.Name == "SYMLINK" && k.Op == "+=":
				res.Symlinks = append(res.Symlinks, strings.Fields(k.Value)...)
			case k.Name == "GOTO":
				skipTo = k.Value
			}
		}
	}
	return res
}

func udevMatches(r udevRule, action string, chain []udevDevice, env map[string]string) bool {
	dev := chain[0]
	var parentKeys []udevKey
	for _, k := range r.Keys {
		if k.Op != "==" && k.Op != "!=" {
			continue
		}
		var got string
		switch k.Name {
		case "ACTION":
			got = action
		case "SUBSYSTEM":
			got = dev.Subsystem
		case "KERNEL":
			got = dev.Kernel
		case "ATTR":
			got = dev.Attrs[k.Attr]
		case "ENV":
			got = env[k.Attr]
		default: // KERNELS, SUBSYSTEMS, ATTRS, ...: on one device of the chain
			parentKeys = append(parentKeys, k)
			continue
		}
		if udevGlob(k.Value, got) != (k.Op == "==") {
			return false
		}
	}
	if len(parentKeys) == 0 {
		return true
	}
	for _, d := range chain {
		all := true
		for _, k := range parentKeys {
			var got string
			var present bool
			switch k.Name {
			case "SUBSYSTEMS":
				got, present = d.Subsystem, true
			case "KERNELS":
				got, present = d.Kernel, true
			case "ATTRS":
				got, present = d.Attrs[k.Attr]
			}
			if !present || udevGlob(k.Value, got) != (k.Op == "==") {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}
