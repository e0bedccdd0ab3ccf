// Package redact hides customers' phone numbers (and Signal account uuids) in logs. Logs on a box nobody can easily reach
// are copied around (journald, support bundles); the journal of attempts keeps numbers whole
// under its own retention, the logs never do. Every package that logs a number uses Number, so
// a number looks the same in every component's lines and staff can follow one customer through
// them.
package redact

import (
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Number masks a phone number, keeping what tells numbers apart without identifying anyone:
//   - E.164 ("+4915112345678"): the country code and the last two digits, "+49*********78";
//   - other text with five or more digits (a national number, "015112345678"): everything but
//     the last two characters, "**********78";
//   - text with fewer than five digits (an SMS sender name like "DHL", a short code) is not a
//     personal number and is returned as it is.
func Number(s string) string {
	digits := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			digits++
		}
	}
	if digits < 5 {
		return s
	}
	if len(s) >= 8 && s[0] == '+' && digits == len(s)-1 {
		cc := countryCodeLen(s[1:])
		return s[:1+cc] + strings.Repeat("*", len(s)-3-cc) + s[len(s)-2:]
	}
	return strings.Repeat("*", len(s)-2) + s[len(s)-2:]
}

// countryCodeLen finds the country code: codes are prefix-free, so the first known one is it.
// An unknown prefix keeps two digits.
func countryCodeLen(d string) int {
	for l := 1; l <= 3; l++ {
		if c, err := strconv.Atoi(d[:l]); err == nil && phonenumbers.GetRegionCodeForCountryCode(c) != "ZZ" {
			return l
		}
	}
	return 2
}

// UUID masks a Signal account uuid (a customer who hides their number), keeping its last four
// characters so staff can tell accounts apart: "****cdef".
func UUID(u string) string {
	if len(u) <= 4 {
		return "****"
	}
	return "****" + u[len(u)-4:]
}
