package relay

import (
	"errors"
	"strings"

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
	var pn phonenumbers.PhoneNumber
	if err := phonenumbers.ParseToNumber(s, "ZZ", &pn); err != nil {
		return Number{}, errors.New("not a phone number: " + err.Error())
	}
	if !phonenumbers.IsValidNumber(&pn) {
		return Number{}, errors.New("not a valid number in its country's numbering plan")
	}
	n := Number{
		E164:   phonenumbers.Format(&pn, phonenumbers.E164),
		Region: phonenumbers.GetRegionCodeForNumber(&pn),
	}
	switch phonenumbers.GetNumberType(&pn) {
	case phonenumbers.MOBILE, phonenumbers.FIXED_LINE_OR_MOBILE:
		n.Mobile = true
	}
	return n, nil
}
