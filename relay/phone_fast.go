package relay

import (
	"regexp"
	"strconv"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// Why a fast path: phonenumbers.ParseToNumber runs several large, case-insensitive Unicode
// regexps on every input (extension labels, VALID_PHONE_NUMBER_PATTERN, IDD, alpha check)
// before it looks at the country. For the canonical "+" followed only by ASCII digits, which
// is what shop backends send, none of them can match or change anything, and what is left of
// parseHelper (phonenumberutil.go, nyaruka/phonenumbers v1.8.1) is:
//
//  1. the country calling code is the first of the 1-, 2-, 3-digit prefixes that is a known
//     calling code (extractCountryCode); the rest is the national number;
//  2. the region's national prefix for parsing is stripped when its regexp matches the start of
//     the national number and the rest still has a possible length
//     (maybeStripNationalPrefixAndCarrierCode);
//  3. the national number must be 2 to 17 digits; leading zeros are kept in the Italian
//     leading zero fields (setItalianLeadingZerosForPhoneNumber).
//
// parseE164Fast does 1 and 3 and gives up on 2: whenever the national prefix regexp matches at
// all, the library may strip it, so the input goes to the library. It also gives up on every
// input the library rejects (leading 0, unknown calling code, bad length), so the library's
// error texts stay the only ones. The validity check (GetNumberType) and formatting are the
// library's own for both paths. phone_fast_test.go compares both paths on every region's
// example numbers and their mutations, and FuzzParseE164Fast on anything else.

// parseE164Fast fills pn exactly as phonenumbers.ParseToNumber(s, "ZZ", pn) would and reports
// true, or reports false (pn then undefined) when s is not "+digits" or the library could do
// something this function does not.
func parseE164Fast(s string, pn *phonenumbers.PhoneNumber) bool {
	// 1 calling code digit + 2 national digits is the shortest number the library parses, and
	// 3 + 17 (MAX_LENGTH_FOR_NSN) the longest; outside that it returns an error anyway.
	if len(s) < 4 || len(s) > 21 || s[0] != '+' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	if s[1] == '0' {
		return false // no calling code starts with 0: the library's error
	}
	codes := callingCodes()
	cc, i := 0, 1
	for i <= phonenumbers.MAX_LENGTH_COUNTRY_CODE && i < len(s) {
		cc = cc*10 + int(s[i]-'0')
		i++
		if codes[cc].known {
			break
		}
	}
	c := codes[cc]
	if !c.known || !c.fast {
		return false
	}
	nsn := s[i:]
	if len(nsn) < phonenumbers.MIN_LENGTH_FOR_NSN || len(nsn) > phonenumbers.MAX_LENGTH_FOR_NSN {
		return false
	}
	if c.nationalPrefix != nil && c.nationalPrefix.MatchString(nsn) {
		return false // the library might strip it; only it knows when
	}
	nn, err := strconv.ParseUint(nsn, 10, 64)
	if err != nil {
		return false // cannot happen for at most 17 digits; let the library decide anyway
	}
	pn.CountryCode = ptr(int32(cc))
	pn.NationalNumber = ptr(nn)
	setItalianLeadingZeros(nsn, pn)
	return true
}

// setItalianLeadingZeros is the library's unexported setItalianLeadingZerosForPhoneNumber,
// copied: "+3906..." keeps its 0 in these fields, not in the national number's integer.
func setItalianLeadingZeros(nsn string, pn *phonenumbers.PhoneNumber) {
	if len(nsn) < 2 || nsn[0] != '0' {
		pn.ItalianLeadingZero = nil
		return
	}
	pn.ItalianLeadingZero = ptr(true)
	zeros := 1
	// An all-zero number's last 0 is not a leading zero.
	for zeros < len(nsn)-1 && nsn[zeros] == '0' {
		zeros++
	}
	if zeros != 1 {
		pn.NumberOfLeadingZeros = ptr(int32(zeros))
	}
}

func ptr[T any](v T) *T { return &v }

// callingCode is what parseE164Fast needs to know about one country calling code.
type callingCode struct {
	known bool // the library knows the calling code: it takes the first known prefix
	fast  bool // parseE164Fast can handle it: the library has metadata and its prefix compiled
	// nationalPrefix is the region's national prefix for parsing, anchored as the library
	// anchors it; nil when the region has none.
	nationalPrefix *regexp.Regexp
}

// callingCodes indexes calling codes 0..999 (at most 3 digits); it is built once, from the
// library's own tables, the first time a number is parsed.
var callingCodes = sync.OnceValue(func() *[1000]callingCode {
	var codes [1000]callingCode
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		return &codes // nothing known: every number goes to the library
	}
	// As the library's getMetadataForRegionOrCallingCode: by region, or by calling code for
	// the non-geographical "001" entities (+800, +882, ...). Later entries win, as there.
	byRegion := map[string]*phonenumbers.PhoneMetadata{}
	nonGeo := map[int]*phonenumbers.PhoneMetadata{}
	for _, m := range coll.GetMetadata() {
		if m.GetId() == "001" {
			nonGeo[int(m.GetCountryCode())] = m
		} else {
			byRegion[m.GetId()] = m
		}
	}
	regions := phonenumbers.GetSupportedRegions()
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		if cc < 0 || cc >= len(codes) {
			continue // cannot be written in 3 digits: the library never extracts it either
		}
		c := &codes[cc]
		c.known = true
		var m *phonenumbers.PhoneMetadata
		if r := phonenumbers.GetRegionCodeForCountryCode(cc); r == "001" {
			m = nonGeo[cc]
		} else if regions[r] {
			m = byRegion[r]
		}
		if m == nil {
			continue // the library skips prefix stripping here; do not guess why
		}
		if p := m.GetNationalPrefixForParsing(); p != "" {
			re, err := regexp.Compile("^(?:" + p + ")")
			if err != nil {
				continue
			}
			c.nationalPrefix = re
		}
		c.fast = true
	}
	return &codes
})
