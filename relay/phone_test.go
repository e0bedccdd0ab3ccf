package relay

import (
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// TestParseNumber_MatchesLibraryValidity checks that ParseNumber accepts exactly the numbers
// phonenumbers.IsValidNumber accepts (it asks GetNumberType once instead), with the mobile
// flag from GetNumberType, including calling codes shared by several regions (+1, +7, +44)
// and numbers served from the cache on a second call.
func TestParseNumber_MatchesLibraryValidity(t *testing.T) {
	for _, in := range []string{
		"+4915112345678", "+49 30 1234567", "+49 151 1234", "+4912345", "+49 1511 234 5678",
		"+12025550123", "+1 212 555 0123", "+1 800 555 0199", "+1 684 733 1234", "+1 345 323 1234", "+1 999 555 0123",
		"+7 912 345 6789", "+7 701 123 4567", "+7 495 123 4567", "+7 000 000 0000",
		"+44 7911 123456", "+44 20 7946 0958", "+44 1624 456789", "+44 7624 123456", "+44 1481 123456",
		"+48 512 345 678", "+48 22 123 45 67", "+33 6 12 34 56 78", "+800 1234 5678", "+882 1234 5678",
		"+999 123", "+0 123", "+49", "+",
	} {
		for round := range 2 { // the second call is answered from the cache
			var pn phonenumbers.PhoneNumber
			perr := phonenumbers.ParseToNumber(in, "ZZ", &pn)
			wantOK := perr == nil && phonenumbers.IsValidNumber(&pn)
			got, err := ParseNumber(in)
			if (err == nil) != wantOK {
				t.Errorf("round %d: ParseNumber(%q) err = %v, want valid = %v", round, in, err, wantOK)
				continue
			}
			if !wantOK {
				continue
			}
			typ := phonenumbers.GetNumberType(&pn)
			want := Number{E164: phonenumbers.Format(&pn, phonenumbers.E164), Region: phonenumbers.GetRegionCodeForNumber(&pn),
				Mobile: typ == phonenumbers.MOBILE || typ == phonenumbers.FIXED_LINE_OR_MOBILE}
			if got != want {
				t.Errorf("round %d: ParseNumber(%q) = %+v, want %+v", round, in, got, want)
			}
		}
	}
}

// FuzzParseNumber checks the same agreement with the library on any input.
func FuzzParseNumber(f *testing.F) {
	for _, s := range []string{"+4915112345678", "+1 212 555 0123", "+7 912 345 6789", "+44 7624 123456", "+0", "++49", "+49 (151) 12-34.56"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseNumber(in)
		if err != nil {
			return // the syntax checks before the library are ParseNumber's own
		}
		var pn phonenumbers.PhoneNumber
		if perr := phonenumbers.ParseToNumber(in, "ZZ", &pn); perr != nil || !phonenumbers.IsValidNumber(&pn) {
			t.Fatalf("ParseNumber(%q) = %+v, but the library says invalid (%v)", in, got, perr)
		}
		if e := phonenumbers.Format(&pn, phonenumbers.E164); got.E164 != e {
			t.Fatalf("ParseNumber(%q).E164 = %q, want %q", in, got.E164, e)
		}
		// The normalised form is stable: a stored job's number is parsed again when it is queued
		// and when consent is looked up.
		if again, err := ParseNumber(got.E164); err != nil || again != got {
			t.Fatalf("ParseNumber(%q) = %+v, %v; want the same as for %q: %+v", got.E164, again, err, in, got)
		}
	})
}
