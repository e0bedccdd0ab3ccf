package relay

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
	"google.golang.org/protobuf/proto"
)

// checkFastPath compares, for one input, the fast path with the library: when parseE164Fast
// takes s, its PhoneNumber must be the one ParseToNumber builds (every field, by proto.Equal),
// and in any case parseNumber (fast, else slow) must give parseNumberSlow's Number and error
// text. It reports whether the fast path took s.
func checkFastPath(t *testing.T, s string) (fast bool) {
	t.Helper()
	var got phonenumbers.PhoneNumber
	if fast = parseE164Fast(s, &got); fast {
		var want phonenumbers.PhoneNumber
		if err := phonenumbers.ParseToNumber(s, "ZZ", &want); err != nil {
			t.Errorf("parseE164Fast(%q) took it as %v, but the library says %v", s, &got, err)
		} else if !proto.Equal(&got, &want) {
			t.Errorf("parseE164Fast(%q) = %v, the library parses %v", s, &got, &want)
		}
	}
	n, err := parseNumber(s)
	wn, werr := parseNumberSlow(s)
	if n != wn || errText(err) != errText(werr) {
		t.Errorf("parseNumber(%q) = %+v, %q; slow path = %+v, %q (fast path: %v)", s, n, errText(err), wn, errText(werr), fast)
	}
	return fast
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// exampleNumbers is every example number the library has, E.164: every supported region ×
// every number type, and every non-geographical calling code (+800, +882, ...).
func exampleNumbers() []string {
	types := []phonenumbers.PhoneNumberType{
		phonenumbers.FIXED_LINE, phonenumbers.MOBILE, phonenumbers.FIXED_LINE_OR_MOBILE,
		phonenumbers.TOLL_FREE, phonenumbers.PREMIUM_RATE, phonenumbers.SHARED_COST, phonenumbers.VOIP,
		phonenumbers.PERSONAL_NUMBER, phonenumbers.PAGER, phonenumbers.UAN, phonenumbers.VOICEMAIL,
	}
	var out []string
	add := func(pn *phonenumbers.PhoneNumber) {
		if pn != nil {
			out = append(out, phonenumbers.Format(pn, phonenumbers.E164))
		}
	}
	for region := range phonenumbers.GetSupportedRegions() {
		for _, typ := range types {
			add(phonenumbers.GetExampleNumberForType(region, typ))
		}
	}
	for cc := range phonenumbers.GetSupportedGlobalNetworkCallingCodes() {
		add(phonenumbers.GetExampleNumberForNonGeoEntity(cc))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// mutations of an E.164 number: each digit changed (to the next digit, and to 0), one digit
// added (after the calling code and at the end), each digit removed, the region's national
// prefix and one or two zeros inserted after the calling code, and the number without its +.
func mutations(e164 string) []string {
	digits := e164[1:]
	var pn phonenumbers.PhoneNumber
	ccLen := 1
	if phonenumbers.ParseToNumber(e164, "ZZ", &pn) == nil {
		ccLen = len(strconv.Itoa(int(pn.GetCountryCode())))
	}
	cc, nsn := digits[:ccLen], digits[ccLen:]
	out := []string{e164, digits, "+" + cc + "0" + nsn, "+" + cc + "00" + nsn, "+" + cc + "5" + nsn, e164 + "7"}
	if np := phonenumbers.GetNddPrefixForRegion(phonenumbers.GetRegionCodeForCountryCode(int(pn.GetCountryCode())), true); np != "" {
		out = append(out, "+"+cc+np+nsn)
	}
	for i := range len(digits) {
		d := digits[i] - '0'
		for _, r := range []byte{'0' + (d+1)%10, '0'} {
			if r != digits[i] {
				out = append(out, "+"+digits[:i]+string(r)+digits[i+1:])
			}
		}
		out = append(out, "+"+digits[:i]+digits[i+1:])
	}
	return out
}

// TestParseNumber_FastPathMatchesLibrary is the proof that the fast path changes no result:
// the library's example number for every region and type, and mutations of it that land on
// every branch (valid, invalid, national prefix, leading zeros, too short/long, unknown
// calling code), parse to the same PhoneNumber and the same Number or error text as through
// the library.
func TestParseNumber_FastPathMatchesLibrary(t *testing.T) {
	examples := exampleNumbers()
	seen := map[string]bool{}
	var compared, fast int
	for _, e := range examples {
		for i, s := range mutations(e) {
			if seen[s] || testing.Short() && i%8 != 0 {
				continue // -short: every example, an eighth of the mutations (27 s → 4 s with -race)
			}
			seen[s] = true
			compared++
			if checkFastPath(t, s) {
				fast++
			}
		}
	}
	t.Logf("%d example numbers, %d distinct inputs compared, %d took the fast path", len(examples), compared, fast)
	// The comparison means something only when both paths are used a lot.
	if len(examples) < 900 || compared < len(examples) || fast < compared/3 || compared-fast < compared/20 {
		t.Errorf("%d examples, %d inputs, %d fast: the library's data or the fast path changed", len(examples), compared, fast)
	}
}

// TestParseE164Fast checks which inputs the fast path takes and which it leaves to the
// library, so that a fast path quietly turned off (or too eager) shows.
func TestParseE164Fast(t *testing.T) {
	tests := []struct {
		in   string
		fast bool
	}{
		{"+4915112345678", true},   // DE mobile
		{"+49301234567", true},     // DE fixed line
		{"+12025550123", true},     // US: 1 is the national prefix, but 2 does not start with it
		{"+79123456789", true},     // RU
		{"+447911123456", true},    // GB
		{"+390612345678", true},    // IT: the 0 goes into the Italian leading zero field
		{"+80012345678", true},     // non-geographical +800
		{"+49015112345678", false}, // DE national prefix 0 after the calling code: the library may strip it
		{"+112025550123", false},   // US national prefix 1
		{"+5491112345678", false},  // AR: its prefix for parsing can match the empty string
		{"+49 151 12345678", false},
		{"4915112345678", false},
		{"+0123456", false},   // no calling code starts with 0
		{"+999123456", false}, // unknown calling code
		{"+491", false},       // national number too short
		{"+49123456789012345678", false},
		{"+", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := checkFastPath(t, tt.in); got != tt.fast {
			t.Errorf("parseE164Fast(%q) took it = %v, want %v", tt.in, got, tt.fast)
		}
	}
}

// FuzzParseE164Fast compares the fast path with the library on any input, and on the input's
// digits written as "+digits" (the only form the fast path takes, which random strings
// rarely are).
func FuzzParseE164Fast(f *testing.F) {
	for _, s := range []string{
		"+4915112345678", "+49015112345678", "+12025550123", "+112025550123", "+79123456789", "+89123456789",
		"+447911123456", "+4407911123456", "+390612345678", "+3900", "+39000000", "+80012345678", "+80001234567",
		"+5491112345678", "+541115", "+5215512345678", "+525512345678", "+551161234567", "+55011961234567",
		"+8613812345678", "+86013812345678", "+61412345678", "+3612345678", "+36061234567", "+2252123456789",
		"+0123", "+999", "+4", "+", "+49 151 1234", "++4915112345678", "+49(0)15112345678",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		checkFastPath(t, in)
		var b strings.Builder
		b.WriteByte('+')
		for _, r := range in {
			if r >= '0' && r <= '9' {
				b.WriteRune(r)
			}
		}
		checkFastPath(t, b.String())
	})
}

// BenchmarkParseNumber measures one parse of a number never seen before, as in ingest with
// a new customer per job: path=fast is parseNumber (fast path, library for the rest),
// path=slow the library's parser alone (ParseNumber before the fast path), public=ParseNumber
// with its syntax checks and a cache that always misses. The numbers cycle through 1<<16
// distinct ones, far more than the cache holds.
func BenchmarkParseNumber(b *testing.B) {
	for _, set := range []struct {
		name     string
		prefixes []string
	}{
		{"numbers=DE_mobile", []string{"+491512"}},
		// DE, US, GB, FR, IT fixed line (leading 0), PL, RU, NL, AT, CH, each with 7 more digits.
		{"numbers=mix", []string{"+491512", "+1202", "+44791", "+3361", "+3906", "+4860", "+7912", "+3161", "+43664", "+4179"}},
	} {
		inputs := make([]string, 1<<16)
		for i := range inputs {
			p := set.prefixes[i%len(set.prefixes)]
			inputs[i] = p + strconv.Itoa(2_000_000+i) // 7 more digits, distinct per i; all valid
		}
		for _, path := range []struct {
			name  string
			parse func(string) (Number, error)
		}{{"path=fast", parseNumber}, {"path=slow", parseNumberSlow}, {"public=ParseNumber", ParseNumber}} {
			b.Run(set.name+"/"+path.name, func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := path.parse(inputs[i%len(inputs)]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}
