package consent

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Keyword is what a customer's whole message means to the consent policy.
type Keyword string

const (
	KeywordNone  Keyword = ""      // ordinary text (forward to P/inbound)
	KeywordStop  Keyword = "stop"  // opt out at once
	KeywordStart Keyword = "start" // opt in (explicit)
	KeywordHelp  Keyword = "help"  // send the help text
	KeywordYes   Keyword = "yes"   // confirm a pending double opt-in (only then)
)

// Keywords lists the words for each keyword by language: Keywords[KeywordStop]["de"] =
// {"STOPP", "ABMELDEN"}. The language of the word a customer used picks the language of the
// reply. Case, accents and surrounding punctuation do not matter (see Normalize).
type Keywords map[Keyword]map[string][]string

// DefaultKeywords returns the built-in lists in English, Russian, Polish and German. A word can
// stand in several languages (STOP); it can never stand for two keywords.
func DefaultKeywords() Keywords {
	return Keywords{
		KeywordStop: {
			"en": {"STOP", "STOPALL", "UNSUBSCRIBE", "OPT OUT", "OPTOUT"},
			"ru": {"СТОП", "ОТПИСАТЬСЯ", "ОТПИСКА", "ОТПИСАТЬ"},
			"pl": {"STOP", "REZYGNUJ", "REZYGNUJĘ", "REZYGNACJA", "WYPISZ", "WYPISZ MNIE"},
			"de": {"STOPP", "STOP", "ABMELDEN", "ABBESTELLEN"},
		},
		KeywordStart: {
			"en": {"START", "SUBSCRIBE", "UNSTOP"},
			"ru": {"СТАРТ", "ПОДПИСАТЬСЯ"},
			"pl": {"START", "ZAPISZ", "ZAPISZ MNIE"},
			"de": {"START", "ANMELDEN"},
		},
		KeywordHelp: {
			"en": {"HELP", "INFO"},
			"ru": {"ПОМОЩЬ", "СПРАВКА", "ИНФО"},
			"pl": {"POMOC"},
			"de": {"HILFE"},
		},
		KeywordYes: {
			"en": {"YES"},
			"ru": {"ДА"},
			"pl": {"TAK"},
			"de": {"JA"},
		},
	}
}

// maxKeywordInput: a message longer than this is never a keyword, and is not normalised.
const maxKeywordInput = 128

var fold = cases.Fold()

// Normalize reduces a message to the form keywords are compared in: compatibility-decomposed
// (NFKD, so "ＳＴＯＰ" is "STOP"), combining marks removed (so "Stóp" and "СТОП" with a stray
// accent match; "й" becomes "и" on both sides), case-folded (ß is ss), format characters (zero
// width, joiners) dropped, punctuation, symbols and spaces trimmed from both ends, and inner runs
// of spaces or punctuation turned into one space ("opt-out" is "opt out").
func Normalize(s string) string {
	if len(s) > maxKeywordInput || !utf8.ValidString(s) {
		return ""
	}
	s = norm.NFKD.String(s)
	s = strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, s)
	s = fold.String(s)
	var b strings.Builder
	gap := false
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsNumber(r) {
			if gap && b.Len() > 0 {
				b.WriteByte(' ')
			}
			gap = false
			b.WriteRune(r)
			continue
		}
		gap = true
	}
	return b.String()
}

// Matcher finds keywords in customers' messages. It is immutable and safe for concurrent use.
type Matcher struct {
	words map[string]entry // normalised word → keyword and languages
}

type entry struct {
	kw    Keyword
	langs []string // sorted
}

// NewMatcher checks and indexes keyword lists. A word that normalises to nothing, a word
// listed under two keywords, an unknown keyword or a language that is not two letters a-z is
// an error (ErrConfig).
func NewMatcher(kw Keywords) (*Matcher, error) {
	m := &Matcher{words: map[string]entry{}}
	for k, byLang := range kw {
		switch k {
		case KeywordStop, KeywordStart, KeywordHelp, KeywordYes:
		default:
			return nil, fmt.Errorf("%w: unknown keyword kind %q (want stop, start, help or yes)", ErrConfig, k)
		}
		for lang, words := range byLang {
			if !langOK(lang) {
				return nil, fmt.Errorf("%w: keywords %s: language %q: want two letters a-z", ErrConfig, k, lang)
			}
			for _, w := range words {
				n := Normalize(w)
				if n == "" {
					return nil, fmt.Errorf("%w: keywords %s.%s: %q has no letters", ErrConfig, k, lang, w)
				}
				e, ok := m.words[n]
				if ok && e.kw != k {
					return nil, fmt.Errorf("%w: keyword %q is listed for both %s and %s", ErrConfig, w, e.kw, k)
				}
				e.kw = k
				if !slices.Contains(e.langs, lang) {
					e.langs = append(e.langs, lang)
					slices.Sort(e.langs)
				}
				m.words[n] = e
			}
		}
	}
	return m, nil
}

// Match returns the keyword a whole message is, and the languages its word belongs to (sorted);
// KeywordNone and nil for anything else.
func (m *Matcher) Match(text string) (Keyword, []string) {
	n := Normalize(text)
	if n == "" {
		return KeywordNone, nil
	}
	e, ok := m.words[n]
	if !ok {
		return KeywordNone, nil
	}
	return e.kw, slices.Clone(e.langs)
}

func langOK(l string) bool {
	return len(l) == 2 && l[0] >= 'a' && l[0] <= 'z' && l[1] >= 'a' && l[1] <= 'z'
}
