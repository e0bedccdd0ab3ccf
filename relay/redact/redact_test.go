package redact

import (
	"strings"
	"testing"
)

func TestNumber(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+4915112345678", "+49*********78"},
		{"+12025550123", "+1********23"},
		{"+79161234567", "+7********67"},
		{"+380501234567", "+380*******67"},
		{"+4915100", "+49***00"},
		{"015112345678", "**********78"},
		{"+49 151 1234", "**********34"},
		{"12345", "***45"},
		{"1234", "1234"},
		{"Signal", "Signal"},
		{"DHL", "DHL"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Number(tt.in); got != tt.want {
			t.Errorf("Number(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestUUID(t *testing.T) {
	tests := []struct{ in, want string }{
		{"0f8fad5b-d9cb-469f-a165-70867728950e", "****950e"},
		{"abcde", "****bcde"},
		{"abcd", "****"},
		{"", "****"},
	}
	for _, tt := range tests {
		if got := UUID(tt.in); got != tt.want {
			t.Errorf("UUID(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzNumber(f *testing.F) {
	for _, s := range []string{"+4915112345678", "015112345678", "+1", "+9999999999", "abc12345def"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Number(s)
		if len(got) != len(s) {
			t.Fatalf("Number(%q) = %q changes the length", s, got)
		}
		// At most two digits of the subscriber part may survive a masked number.
		if got != s {
			kept := strings.Count(strings.Map(func(r rune) rune {
				if r >= '0' && r <= '9' {
					return r
				}
				return -1
			}, got), "") - 1
			if kept > 5 {
				t.Fatalf("Number(%q) = %q keeps %d digits", s, got, kept)
			}
		}
	})
}
