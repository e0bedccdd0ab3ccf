package modem

import (
	"regexp"
	"strings"
)

// signalCode finds a six-digit code written as 123-456 or 123456, not part of a longer number.
var signalCode = regexp.MustCompile(`(?:^|[^0-9-])(\d{3})-?(\d{3})(?:$|[^0-9-])`)

// ExtractSignalCode returns the six-digit verification code of a Signal registration SMS
// ("Your Signal code: 123-456", "<#> Your Signal verification code: 123456 ...", or the
// translated texts, which all contain the word "Signal"). The code is returned as six digits
// without the dash, which is what signal-cli's verify accepts. ok is false when the text does
// not mention Signal or holds no such code.
func ExtractSignalCode(text string) (code string, ok bool) {
	if !strings.Contains(strings.ToLower(text), "signal") {
		return "", false
	}
	m := signalCode.FindStringSubmatch(text)
	if m == nil {
		return "", false
	}
	return m[1] + m[2], true
}
