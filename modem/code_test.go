package modem

import "testing"

func TestExtractSignalCode(t *testing.T) {
	tests := []struct {
		text string
		code string
		ok   bool
	}{
		{"Your Signal code: 123-456", "123456", true},
		{"Your Signal verification code: 654321", "654321", true},
		{"<#> Your Signal code: 123-456\ndoDiFGKPO1r", "123456", true},
		{"SIGNAL: Dein Code lautet 111-222. Gib ihn niemandem.", "111222", true},
		{"Ваш код Signal: 987-654", "987654", true},
		{"Your Signal code: 123-4567", "", false},
		{"Your bank code: 123-456", "", false},
		{"Signal: call +4915112345678 now", "", false},
		{"Signal", "", false},
		{"", "", false},
		{"Signal code 12-3456", "", false},
		{"Signal code:123456.", "123456", true},
	}
	for _, tt := range tests {
		code, ok := ExtractSignalCode(tt.text)
		if code != tt.code || ok != tt.ok {
			t.Errorf("ExtractSignalCode(%q) = %q,%v; want %q,%v", tt.text, code, ok, tt.code, tt.ok)
		}
	}
}

func FuzzExtractSignalCode(f *testing.F) {
	for _, s := range []string{"Your Signal code: 123-456", "<#> Signal 123456 x", "signal 1-2", "Signal 999-999-999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		code, ok := ExtractSignalCode(s)
		if ok {
			if len(code) != 6 || code != onlyDigits(code) {
				t.Fatalf("code %q from %q is not six digits", code, s)
			}
		} else if code != "" {
			t.Fatalf("code %q with ok=false", code)
		}
	})
}

func onlyDigits(s string) string {
	out := []byte{}
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			out = append(out, s[i])
		}
	}
	return string(out)
}
