package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// MaxFileSize bounds what Load reads: a config file is a few KiB; anything larger is a mistake.
const MaxFileSize = 1 << 20

// Problem is one thing wrong with a configuration: which key, where, and what is allowed.
type Problem struct {
	Field   string // dotted key, e.g. "mqtt.broker"
	Line    int    // 1-based line in the file; 0 when the key is not in the file (a default)
	Message string
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", p.Line, p.Field, p.Message)
	}
	if p.Field == "" {
		return p.Message
	}
	return fmt.Sprintf("%s: %s", p.Field, p.Message)
}

// Problems is the error Load and Validate return: every problem found, not just the first, so
// that one `relayd check-config` run shows the whole list.
type Problems struct {
	File string
	List []Problem
}

func (e *Problems) Error() string {
	var b strings.Builder
	if e.File != "" {
		fmt.Fprintf(&b, "%s: ", e.File)
	}
	fmt.Fprintf(&b, "%d configuration problem(s):", len(e.List))
	for _, p := range e.List {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Load reads and validates the file at path. Relative paths inside it are resolved against the
// file's directory, so a config and the directories it names can move together.
func Load(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := readLimited(f, MaxFileSize)
	if err != nil {
		return Config{}, fmt.Errorf("config: %s: %w", path, err)
	}
	base := filepath.Dir(path)
	if abs, err := filepath.Abs(base); err == nil {
		base = abs
	}
	cfg, err := Parse(data, base)
	var probs *Problems
	if errors.As(err, &probs) {
		probs.File = path
	}
	return cfg, err
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return data, nil
}

// Parse decodes TOML over the defaults, refuses unknown keys and values of the wrong type
// (naming key and line), resolves relative paths against baseDir and validates every value.
// The returned error is a *Problems for everything except I/O.
func Parse(data []byte, baseDir string) (Config, error) {
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return Config{}, &Problems{List: []Problem{decodeProblem(err)}}
	}
	cfg := Default()
	d := &decoder{lines: keyLines(data), bad: map[string]bool{}}
	d.table(reflect.ValueOf(&cfg).Elem(), raw, "")
	probs := d.probs
	cfg.resolvePaths(baseDir)
	for _, p := range cfg.Validate() {
		if d.bad[p.Field] {
			continue // already reported: the value could not be read, the default stood in
		}
		p.Line = d.lineOf(p.Field)
		probs = append(probs, p)
	}
	// Unknown keys and type problems come out of a map walk: order them as the file does.
	sort.SliceStable(probs[:len(d.probs)], func(i, j int) bool {
		if probs[i].Line != probs[j].Line {
			return probs[i].Line < probs[j].Line
		}
		return probs[i].Field < probs[j].Field
	})
	if len(probs) > 0 {
		return cfg, &Problems{List: probs}
	}
	return cfg, nil
}

func decodeProblem(err error) Problem {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return Problem{Field: pe.LastKey, Line: pe.Position.Line, Message: pe.Message}
	}
	// Decoding into a map[string]any has no type to mismatch: only syntax errors (ParseError)
	// are expected here.
	return Problem{Message: strings.TrimPrefix(err.Error(), "toml: ")}
}

// resolvePaths makes every relative path absolute against baseDir. Empty paths mean "off".
func (c *Config) resolvePaths(baseDir string) {
	if baseDir == "" {
		return
	}
	for _, p := range []*string{
		&c.MQTT.PasswordFile, &c.MQTT.CAFile, &c.MQTT.CertFile, &c.MQTT.KeyFile,
		&c.Signal.ConfigDir, &c.Signal.Socket, &c.Buffer.Dir, &c.Buffer.EncryptionKeyFile,
		&c.Templates.Dir, &c.Modem.Device, &c.Modem.PINFile, &c.Control.Socket,
	} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(baseDir, *p)
		}
	}
	// signal.cli is a program: a bare name is looked up in PATH, a relative path with a slash is
	// relative to the config like the rest.
	if c.Signal.CLI != "" && strings.Contains(c.Signal.CLI, "/") && !filepath.IsAbs(c.Signal.CLI) {
		c.Signal.CLI = filepath.Join(baseDir, c.Signal.CLI)
	}
}

// keyLines maps each dotted key to the line that sets it, so that unknown and invalid keys can
// be reported with a line number (the toml package keeps key positions private). It
// understands table headers, dotted and quoted keys, and skips multi-line strings and arrays.
func keyLines(data []byte) map[string]int {
	out := map[string]int{}
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxFileSize)
	inMulti := "" // closing delimiter of a multi-line value we are inside
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if inMulti != "" {
			if strings.Contains(line, inMulti) {
				inMulti = ""
			}
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] == '[' {
			name := strings.Trim(strings.SplitN(line, "#", 2)[0], " \t")
			name = strings.TrimSpace(strings.Trim(name, "[]"))
			table = normalizeKey(name)
			if _, ok := out[table]; !ok {
				out[table] = n
			}
			continue
		}
		eq := strings.IndexByte(line, '=')
		if eq <= 0 {
			continue
		}
		key := normalizeKey(line[:eq])
		if table != "" {
			key = table + "." + key
		}
		if _, ok := out[key]; !ok {
			out[key] = n
		}
		val := strings.TrimSpace(line[eq+1:])
		for _, d := range []string{`"""`, `'''`} {
			if strings.HasPrefix(val, d) && !strings.Contains(val[3:], d) {
				inMulti = d
			}
		}
		if strings.HasPrefix(val, "[") && strings.Count(val, "[") > strings.Count(val, "]") {
			inMulti = "]"
		}
	}
	return out
}

func normalizeKey(s string) string {
	parts := strings.Split(s, ".")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"'`)
	}
	return strings.Join(parts, ".")
}
