// Package config owns relay.toml: the typed configuration, its defaults, and validation that
// names the field, the line and what is allowed.
//
// Promises:
//   - Unknown keys are an error naming the key and its line (a typo must not silently fall back
//     to a default on a box nobody watches).
//   - Every value is checked at load; all problems are reported at once ([Problems]).
//   - A value of the wrong TOML type (rate_per_minute = "fast", enabled = "yes") is a Problem
//     naming the key and its line like any other, and the keys that could be read are still
//     validated. Keys match their names exactly (no case folding). The toml package only parses
//     the syntax here; decode.go copies the values into Config.
//   - Durations are strings ("30s"); a bare number is refused, because TOML would read it as
//     nanoseconds.
//   - Relative paths are resolved against the config file's directory.
//   - Secret files (MQTT password, SIM PIN, outbox key) must be readable by their owner only
//     ([ReadSecret]).
//
// The example file systemd/relay.example.toml documents every key with its default; a test
// checks that it loads and that it names every key this package knows.
package config
