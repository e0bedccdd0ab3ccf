package config

import (
	"encoding"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// decoder copies a TOML document (as the toml package parses it into map[string]any) into a
// Config, checking each value's type against the field it sets. It replaces the toml package's
// own struct decoding, which stops at the first type mismatch and reports it as bare text
// ("toml: line 4 (last key ...): incompatible types: ...") with no field to point at: here every
// mismatch and every unknown key becomes a Problem naming the dotted key and its line, and the
// keys that are fine are still decoded so that Validate can report the rest in the same run.
//
// Keys match the `toml` tags exactly (the toml package would also accept "Broker" for
// "broker"; on a box nobody watches a near-miss should be named, not guessed).
type decoder struct {
	lines map[string]int
	probs []Problem
	bad   map[string]bool // keys with a type problem: Validate's view of them is the default
}

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

// lineOf is the line that sets key, or the line of the nearest enclosing key (a key inside an
// inline table has no line of its own in keyLines), or 0.
func (d *decoder) lineOf(key string) int {
	for k := key; k != ""; {
		if n := d.lines[k]; n > 0 {
			return n
		}
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

func (d *decoder) problem(key, format string, args ...any) {
	d.probs = append(d.probs, Problem{Field: key, Line: d.lineOf(key), Message: fmt.Sprintf(format, args...)})
}

func (d *decoder) mistyped(key, format string, args ...any) {
	d.problem(key, format, args...)
	d.bad[key] = true
}

// table decodes the TOML table m into the struct rv; prefix is the table's dotted key ("" at
// the top).
func (d *decoder) table(rv reflect.Value, m map[string]any, prefix string) {
	t := rv.Type()
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		if tag := t.Field(i).Tag.Get("toml"); tag != "" && tag != "-" {
			fields[tag] = i
		}
	}
	for key, val := range m {
		dotted := prefix + key
		i, ok := fields[key]
		if !ok {
			d.unknown(dotted, val)
			continue
		}
		d.value(rv.Field(i), val, dotted)
	}
}

// unknown reports key and, when it is a table, every key inside it (each has its own line).
func (d *decoder) unknown(key string, val any) {
	d.problem(key, "unknown key (see systemd/relay.example.toml for the keys relayd knows)")
	switch v := val.(type) {
	case map[string]any:
		for k, sub := range v {
			d.unknown(key+"."+k, sub)
		}
	case []map[string]any:
		for _, tbl := range v {
			for k, sub := range tbl {
				d.unknown(key+"."+k, sub)
			}
		}
	}
}

// value sets the field fv from the TOML value val, or records why it cannot.
func (d *decoder) value(fv reflect.Value, val any, key string) {
	ft := fv.Type()
	if reflect.PointerTo(ft).Implements(textUnmarshalerType) {
		switch v := val.(type) {
		case string:
			if err := fv.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(v)); err != nil {
				d.mistyped(key, "%v", err)
			}
		case int64, float64:
			if ft == reflect.TypeFor[Duration]() {
				d.mistyped(key, "%v is not a duration: write it as a string like \"30s\", \"5m\" or \"24h\" (a bare number would mean nanoseconds)", v)
				return
			}
			d.mistyped(key, "want a string in quotes, got %s %v", tomlType(val), v)
		default:
			d.mistyped(key, "want a string in quotes, got %s", tomlType(val))
		}
		return
	}
	switch ft.Kind() {
	case reflect.Struct:
		m, ok := val.(map[string]any)
		if !ok {
			d.mistyped(key, "want a table ([%s] and keys under it), got %s", key, tomlType(val))
			return
		}
		d.table(fv, m, key+".")
	case reflect.String:
		s, ok := val.(string)
		if !ok {
			d.mistyped(key, "want a string in quotes, got %s%s", tomlType(val), shown(val))
			return
		}
		fv.SetString(s)
	case reflect.Bool:
		b, ok := val.(bool)
		if !ok {
			d.mistyped(key, "want true or false (without quotes), got %s%s", tomlType(val), shown(val))
			return
		}
		fv.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, ok := val.(int64)
		if !ok {
			d.mistyped(key, "want a whole number (without quotes), got %s%s", tomlType(val), shown(val))
			return
		}
		if fv.OverflowInt(n) {
			d.mistyped(key, "%d is out of range", n)
			return
		}
		fv.SetInt(n)
	case reflect.Slice:
		if ft.Elem().Kind() != reflect.String {
			panic("config: no decoding for field type " + ft.String()) // a programming error, caught by the tests
		}
		arr, ok := val.([]any)
		if !ok {
			d.mistyped(key, "want a list of strings, e.g. [\"systemctl\", \"poweroff\"], got %s%s", tomlType(val), shown(val))
			return
		}
		out := make([]string, 0, len(arr))
		for i, e := range arr {
			s, ok := e.(string)
			if !ok {
				d.mistyped(key, "element %d: want a string in quotes, got %s%s", i+1, tomlType(e), shown(e))
				return
			}
			out = append(out, s)
		}
		fv.Set(reflect.ValueOf(out))
	default:
		panic("config: no decoding for field type " + ft.String())
	}
}

// tomlType names the type of a value as the toml package decodes it, in the words of the TOML
// specification.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date-time"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	default:
		return fmt.Sprintf("a %T", v) // local dates and times
	}
}

// shown quotes a scalar for a message (" 5", " \"yes\""); tables and arrays are not repeated.
func shown(v any) string {
	switch v := v.(type) {
	case string:
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return fmt.Sprintf(" %q", v)
	case int64, float64, bool:
		return fmt.Sprintf(" %v", v)
	}
	return ""
}
