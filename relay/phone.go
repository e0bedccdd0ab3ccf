package relay

import (
	"errors"
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// Number is a customer's phone number checked against the numbering plan of its country.
type Number struct {
	E164   string // "+4915112345678"
	Region string // "DE"
	// Mobile is true when the numbering plan says the number can receive SMS (mobile, or a plan
	// that does not tell mobile from fixed line, as in the US). SMS fallback goes only to these.
	Mobile bool
}

// ParseNumber checks an international number and normalises it to E.164. Spaces, dashes, dots
// and parentheses are allowed; the leading + is required, because a box cannot guess the country.
func ParseNumber(s string) (Number, error) {
	if len(s) > 32 {
		return Number{}, errors.New("too long for a phone number")
	}
	if !strings.HasPrefix(strings.TrimSpace(s), "+") {
		return Number{}, errors.New("want an international number starting with + (E.164), e.g. +4915112345678")
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || strings.ContainsRune("+ -.()", r)) {
			return Number{}, errors.New("only digits, +, spaces, dashes, dots and parentheses are allowed")
		}
	}
	if n, ok := numbers.get(s); ok {
		return n, nil
	}
	n, err := parseNumber(s)
	if err != nil {
		return Number{}, err
	}
	numbers.put(s, n)
	return n, nil
}

// parseNumber parses s (already past ParseNumber's syntax checks) without the cache: the
// canonical "+digits" form most shops send takes parseE164Fast, everything else, and every
// case the fast path is not sure about, goes through the library's parser (phone_fast.go).
func parseNumber(s string) (Number, error) {
	var pn phonenumbers.PhoneNumber
	if !parseE164Fast(s, &pn) {
		return parseNumberSlow(s)
	}
	return numberOf(&pn)
}

// parseNumberSlow is the library's full parser; the tests compare parseNumber with it.
func parseNumberSlow(s string) (Number, error) {
	var pn phonenumbers.PhoneNumber
	if err := phonenumbers.ParseToNumber(s, "ZZ", &pn); err != nil {
		return Number{}, errors.New("not a phone number: " + err.Error())
	}
	return numberOf(&pn)
}

// numberOf checks a parsed number against its country's plan.
func numberOf(pn *phonenumbers.PhoneNumber) (Number, error) {
	// GetNumberType is UNKNOWN exactly when IsValidNumber is false (both match the national
	// number against the region's plan; the region comes from the calling code, so the region
	// check IsValidNumber adds always passes). Asking once halves the regexp work, the largest
	// part of ingest's CPU per job (issue 5 benchmarks).
	t := phonenumbers.GetNumberType(pn)
	if t == phonenumbers.UNKNOWN {
		return Number{}, errors.New("not a valid number in its country's numbering plan")
	}
	return Number{
		E164:   phonenumbers.Format(pn, phonenumbers.E164),
		Region: phonenumbers.GetRegionCodeForNumber(pn),
		Mobile: t == phonenumbers.MOBILE || t == phonenumbers.FIXED_LINE_OR_MOBILE,
	}, nil
}

// numbers remembers recently parsed numbers: shops send several messages per order.
// ParseNumber is a pure function of its input, so a hit is always right; the cache is bounded
// and simply starts over when full.
var numbers = numberCache{m: make(map[string]Number, numberCacheSize)}

const numberCacheSize = 1024

type numberCache struct {
	mu sync.Mutex
	m  map[string]Number
}

func (c *numberCache) get(s string) (Number, bool) {
	c.mu.Lock()
	n, ok := c.m[s]
	c.mu.Unlock()
	return n, ok
}

func (c *numberCache) put(s string, n Number) {
	c.mu.Lock()
	if len(c.m) >= numberCacheSize {
		clear(c.m)
	}
	c.m[s] = n
	c.mu.Unlock()
}
