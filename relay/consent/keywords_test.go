package consent

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode"
)

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"STOP", "stop"},
		{"  Stop!!! ", "stop"},
		{"stop.", "stop"},
		{"«Стоп»", "стоп"},
		{"СТОП", "стоп"},
		{"сТоП", "стоп"},
		{"Stóp", "stop"},
		{"ＳＴＯＰ", "stop"},
		{"S\u200bTOP", "stop"}, // zero-width space inside
		{"STOP 🙏", "stop"},
		{"stop\n", "stop"},
		{"opt-out", "opt out"},
		{"opt   out", "opt out"},
		{"Abbestellen", "abbestellen"},
		{"ABMELDEN", "abmelden"},
		{"Straße", "strasse"},
		{"ПОДПИСАТЬСЯ", "подписаться"},
		{"отписаться", "отписаться"},
		{"Ёлка", "елка"},
		{"Йод", "иод"},
		{"Zażółć", "zazołc"}, // ł has no decomposition
		{"¿¡...!?", ""},
		{"", ""},
		{"\xff\xfe", ""},
		{strings.Repeat("a", maxKeywordInput+1), ""},
	}
	for _, tt := range tests {
		if got := Normalize(tt.in); got != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMatcher_Match(t *testing.T) {
	m, err := NewMatcher(DefaultKeywords())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in        string
		want      Keyword
		wantLangs []string
	}{
		{"STOP", KeywordStop, []string{"de", "en", "pl"}},
		{"stop!", KeywordStop, []string{"de", "en", "pl"}},
		{"Stopp", KeywordStop, []string{"de"}},
		{"СТОП", KeywordStop, []string{"ru"}},
		{"стоп.", KeywordStop, []string{"ru"}},
		{"Отписаться", KeywordStop, []string{"ru"}},
		{"unsubscribe", KeywordStop, []string{"en"}},
		{"Opt-Out", KeywordStop, []string{"en"}},
		{"abmelden", KeywordStop, []string{"de"}},
		{"rezygnuj", KeywordStop, []string{"pl"}},
		{"Rezygnuję.", KeywordStop, []string{"pl"}},
		{"wypisz mnie", KeywordStop, []string{"pl"}},
		{"Start", KeywordStart, []string{"de", "en", "pl"}},
		{"старт", KeywordStart, []string{"ru"}},
		{"Anmelden", KeywordStart, []string{"de"}},
		{"help?", KeywordHelp, []string{"en"}},
		{"Помощь", KeywordHelp, []string{"ru"}},
		{"hilfe", KeywordHelp, []string{"de"}},
		{"POMOC", KeywordHelp, []string{"pl"}},
		{"Yes!", KeywordYes, []string{"en"}},
		{"да", KeywordYes, []string{"ru"}},
		{"Tak.", KeywordYes, []string{"pl"}},
		{"ja", KeywordYes, []string{"de"}},
		{"stop please", KeywordNone, nil},
		{"please stop the delivery", KeywordNone, nil},
		{"yes thanks", KeywordNone, nil},
		{"stopstop", KeywordNone, nil},
		{"cancel", KeywordNone, nil}, // may mean the order, never an opt-out
		{"", KeywordNone, nil},
		{"🙏", KeywordNone, nil},
	}
	for _, tt := range tests {
		got, langs := m.Match(tt.in)
		if got != tt.want || !slices.Equal(langs, tt.wantLangs) {
			t.Errorf("Match(%q) = %q %q, want %q %q", tt.in, got, langs, tt.want, tt.wantLangs)
		}
	}
}

func TestNewMatcher(t *testing.T) {
	tests := []struct {
		name string
		kw   Keywords
	}{
		{"conflict across keywords", Keywords{KeywordStop: {"en": {"END"}}, KeywordStart: {"en": {"end!"}}}},
		{"no letters", Keywords{KeywordStop: {"en": {"!!!"}}}},
		{"bad lang", Keywords{KeywordStop: {"EN": {"STOP"}}}},
		{"unknown kind", Keywords{"pause": {"en": {"PAUSE"}}}},
	}
	for _, tt := range tests {
		if _, err := NewMatcher(tt.kw); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", tt.name, err)
		}
	}
	if _, err := NewMatcher(Keywords{KeywordStop: {"en": {"STOP"}, "de": {"stop"}}}); err != nil {
		t.Errorf("one word in two languages of one keyword: %v", err)
	}
}

// FuzzMatch: any input is handled; a match means the message is the keyword and nothing else
// with letters; surrounding spaces and punctuation never change the answer.
func FuzzMatch(f *testing.F) {
	for _, s := range []string{"STOP", "стоп!", "Stóp", "ＳＴＯＰ", "opt-out", "yes thanks", "\xff", "S\u200bTOP", "ёлка", "JA 👍", ""} {
		f.Add(s)
	}
	m, err := NewMatcher(DefaultKeywords())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		kw, langs := m.Match(s)
		if (kw == KeywordNone) != (langs == nil) {
			t.Fatalf("Match(%q) = %q with langs %q", s, kw, langs)
		}
		n := Normalize(s)
		if kw != KeywordNone {
			if e, ok := m.words[n]; !ok || e.kw != kw {
				t.Fatalf("Match(%q) = %q but %q is not that keyword", s, kw, n)
			}
			if strings.IndexFunc(n, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) && r != ' ' }) >= 0 {
				t.Fatalf("normal form %q of a match has non-letters", n)
			}
		}
		if len(s)+4 <= maxKeywordInput {
			if kw2, _ := m.Match(" \t" + s + "!\n"); kw2 != kw {
				t.Fatalf("Match(%q) = %q but with spaces and punctuation %q", s, kw, kw2)
			}
		}
		if Normalize(n) != n {
			t.Fatalf("Normalize not idempotent on %q: %q then %q", s, n, Normalize(n))
		}
	})
}

func BenchmarkMatcher_Match(b *testing.B) {
	m, err := NewMatcher(DefaultKeywords())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		m.Match("  Отписаться! ")
	}
}
