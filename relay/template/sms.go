package template

import "unicode/utf16"

// Encoding is the SMS alphabet a text needs.
type Encoding string

const (
	GSM7 Encoding = "gsm7" // GSM 03.38 default alphabet and its extension table
	UCS2 Encoding = "ucs2" // UTF-16, when any character is outside GSM 7-bit
)

// SMS limits (3GPP TS 23.040): a single message and one part of a concatenated message, in
// septets (GSM7) or UTF-16 code units (UCS2).
const (
	GSM7Single = 160
	GSM7Part   = 153
	UCS2Single = 70
	UCS2Part   = 67
)

// SMSInfo is what a text costs as SMS.
type SMSInfo struct {
	Encoding Encoding
	Units    int // septets (GSM7, extension characters count 2) or UTF-16 code units (UCS2)
	Segments int // messages the network will carry; at least 1
}

// gsmBasic is the GSM 03.38 default alphabet; gsmExt the characters reached through the escape
// (each costs two septets).
var (
	gsmBasic = map[rune]bool{}
	gsmExt   = map[rune]bool{'\f': true, '^': true, '{': true, '}': true, '\\': true, '[': true, '~': true, ']': true, '|': true, '€': true}
)

func init() {
	for _, r := range "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà" {
		gsmBasic[r] = true
	}
}

// IsGSM7 reports whether s can be sent in the GSM 7-bit alphabet (with its extension table).
func IsGSM7(s string) bool {
	for _, r := range s {
		if !gsmBasic[r] && !gsmExt[r] {
			return false
		}
	}
	return true
}

// CountSMS returns the SMS encoding, size and number of parts of s. Parts are counted the way
// a splitter must cut them: an escaped GSM character or a UTF-16 surrogate pair is never split
// across two parts, which can make the count one higher than units/153 or units/67 suggests.
func CountSMS(s string) SMSInfo {
	if IsGSM7(s) {
		return count(s, GSM7, GSM7Single, GSM7Part, func(r rune) int {
			if gsmExt[r] {
				return 2
			}
			return 1
		})
	}
	return count(s, UCS2, UCS2Single, UCS2Part, func(r rune) int {
		if utf16.IsSurrogate(r) || r > 0xFFFF {
			return 2
		}
		return 1
	})
}

func count(s string, enc Encoding, single, part int, cost func(rune) int) SMSInfo {
	total := 0
	for _, r := range s {
		total += cost(r)
	}
	info := SMSInfo{Encoding: enc, Units: total, Segments: 1}
	if total <= single {
		return info
	}
	info.Segments, total = 1, 0
	for _, r := range s {
		c := cost(r)
		if total+c > part {
			info.Segments++
			total = 0
		}
		total += c
	}
	return info
}
