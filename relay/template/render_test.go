package template

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// builtinVars are realistic values for every variable a built-in template declares.
var builtinVars = map[string]string{
	"order":   "1042",
	"carrier": "DHL",
	"url":     "https://track.example.com/p/00340434161234567890",
	"date":    "2026-11-23",
	"window":  "10:00-18:00",
}

var (
	builtinNames = []string{"delivery_reminder", "order_delayed", "order_delivered", "order_reserved", "order_shipped", "payment_received"}
	builtinLangs = []string{"de", "en", "pl", "ru"}
)

func mustNew(t testing.TB, cfg Config) *Renderer {
	t.Helper()
	if cfg.Shop == "" {
		cfg.Shop = "Kaffeerösterei Müller"
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

func varsFor(t testing.TB, r *Renderer, name string) map[string]string {
	t.Helper()
	declared, ok := r.Vars(name)
	if !ok {
		t.Fatalf("template %s unknown", name)
	}
	vars := map[string]string{}
	for _, v := range declared {
		val, ok := builtinVars[v]
		if !ok {
			t.Fatalf("test has no value for %s.%s", name, v)
		}
		vars[v] = val
	}
	return vars
}

func TestRenderer_Builtins(t *testing.T) {
	for _, sender := range []Sender{SenderFooter, SenderPrefix} {
		r := mustNew(t, Config{Shop: "Kaffeerösterei Müller", Sender: sender})
		if got := r.Names(); !slices.Equal(got, builtinNames) {
			t.Fatalf("Names() = %q, want %q", got, builtinNames)
		}
		for _, name := range builtinNames {
			if got := r.Langs(name); !slices.Equal(got, builtinLangs) {
				t.Errorf("Langs(%s) = %q, want %q", name, got, builtinLangs)
			}
			vars := varsFor(t, r, name)
			for _, lang := range builtinLangs {
				m, err := r.Render(name, lang, vars)
				if err != nil {
					t.Errorf("%s/%s/%s: %v", sender, name, lang, err)
					continue
				}
				if m.Template != name || m.Lang != lang {
					t.Errorf("%s/%s: rendered %s/%s", name, lang, m.Template, m.Lang)
				}
				if !strings.Contains(m.Body, "Kaffeerösterei Müller") {
					t.Errorf("%s/%s/%s: body does not name the shop: %q", sender, name, lang, m.Body)
				}
				for _, v := range vars {
					if !strings.Contains(m.Body, v) {
						t.Errorf("%s/%s: body lacks the value %q: %q", name, lang, v, m.Body)
					}
				}
				if strings.Contains(m.Body, "<no value>") || strings.Contains(m.Body, "{{") {
					t.Errorf("%s/%s: unrendered text: %q", name, lang, m.Body)
				}
				if m.Bytes != len(m.Body) || m.Bytes > SignalMaxBytes {
					t.Errorf("%s/%s: Bytes = %d for a %d-byte body", name, lang, m.Bytes, len(m.Body))
				}
				// English and German stay in GSM 7-bit (ä ö ü ß are in it): a stray typographic
				// quote or dash would triple the SMS cost.
				wantEnc := UCS2
				if lang == "en" || lang == "de" {
					wantEnc = GSM7
				}
				if m.SMS.Encoding != wantEnc {
					t.Errorf("%s/%s: SMS encoding %s, want %s: %q", name, lang, m.SMS.Encoding, wantEnc, m.Body)
				}
			}
		}
	}
}

func TestRenderer_Render(t *testing.T) {
	r := mustNew(t, Config{Shop: "Shop", DefaultLang: "de"})
	ok := map[string]string{"order": "1042", "carrier": "DHL", "url": "https://x.example/1"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for kk, vv := range ok {
			m[kk] = vv
		}
		if v == "\x00delete" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name     string
		tmpl     string
		lang     string
		vars     map[string]string
		wantLang string
		wantBody string
		wantErr  error
		wantVar  string
	}{
		{name: "english", tmpl: "order_shipped", lang: "en", vars: ok, wantLang: "en",
			wantBody: "Your order 1042 is on its way with DHL. Track your parcel here: https://x.example/1\n- Shop"},
		{name: "unknown lang falls back to default", tmpl: "order_shipped", lang: "fr", vars: ok, wantLang: "de"},
		{name: "empty lang falls back to default", tmpl: "order_shipped", lang: "", vars: ok, wantLang: "de"},
		{name: "value is data not template", tmpl: "order_shipped", lang: "en", vars: with("carrier", `{{.url}}{{template "x"}}<no value>`), wantLang: "en",
			wantBody: "Your order 1042 is on its way with {{.url}}{{template \"x\"}}<no value>. Track your parcel here: https://x.example/1\n- Shop"},
		{name: "newline allowed", tmpl: "order_shipped", lang: "en", vars: with("carrier", "DHL\nExpress"), wantLang: "en"},
		{name: "unicode value", tmpl: "order_shipped", lang: "ru", vars: with("carrier", "СДЭК 🚚"), wantLang: "ru"},
		{name: "max length value", tmpl: "order_shipped", lang: "en", vars: with("url", strings.Repeat("u", DefaultMaxValueBytes)), wantLang: "en"},

		{name: "unknown template", tmpl: "order_lost", lang: "en", vars: ok, wantErr: ErrUnknownTemplate},
		{name: "missing var", tmpl: "order_shipped", lang: "en", vars: with("url", "\x00delete"), wantErr: ErrMissingVar, wantVar: "url"},
		{name: "extra var", tmpl: "order_shipped", lang: "en", vars: with("coupon", "X"), wantErr: ErrExtraVar, wantVar: "coupon"},
		{name: "empty-named extra var", tmpl: "order_shipped", lang: "en", vars: with("", "X"), wantErr: ErrExtraVar, wantVar: ""},
		{name: "nil vars", tmpl: "order_shipped", lang: "en", vars: nil, wantErr: ErrMissingVar, wantVar: "carrier"},
		{name: "control char", tmpl: "order_shipped", lang: "en", vars: with("carrier", "DHL\x1b[31m"), wantErr: ErrBadValue, wantVar: "carrier"},
		{name: "tab", tmpl: "order_shipped", lang: "en", vars: with("carrier", "a\tb"), wantErr: ErrBadValue, wantVar: "carrier"},
		{name: "carriage return", tmpl: "order_shipped", lang: "en", vars: with("carrier", "a\rb"), wantErr: ErrBadValue, wantVar: "carrier"},
		{name: "NUL", tmpl: "order_shipped", lang: "en", vars: with("order", "1\x00"), wantErr: ErrBadValue, wantVar: "order"},
		{name: "C1 control", tmpl: "order_shipped", lang: "en", vars: with("order", "1\u0085"), wantErr: ErrBadValue, wantVar: "order"},
		{name: "bidi override", tmpl: "order_shipped", lang: "en", vars: with("url", "https://x/\u202Egpj.exe"), wantErr: ErrBadValue, wantVar: "url"},
		{name: "invalid utf8", tmpl: "order_shipped", lang: "en", vars: with("order", "\xff"), wantErr: ErrBadValue, wantVar: "order"},
		{name: "too long value", tmpl: "order_shipped", lang: "en", vars: with("url", strings.Repeat("u", DefaultMaxValueBytes+1)), wantErr: ErrBadValue, wantVar: "url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := r.Render(tt.tmpl, tt.lang, tt.vars)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				var ve *VarError
				if errors.As(err, &ve) {
					if ve.Var != tt.wantVar || ve.Field() != "vars."+tt.wantVar && tt.wantVar != "" {
						t.Fatalf("VarError names %q (field %s), want %q", ve.Var, ve.Field(), tt.wantVar)
					}
				} else if tt.wantVar != "" {
					t.Fatalf("err %T, want *VarError", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if m.Lang != tt.wantLang {
				t.Errorf("Lang = %q, want %q", m.Lang, tt.wantLang)
			}
			if tt.wantBody != "" && m.Body != tt.wantBody {
				t.Errorf("Body = %q\nwant   %q", m.Body, tt.wantBody)
			}
		})
	}
}

func TestRenderer_RenderText(t *testing.T) {
	tests := []struct {
		name     string
		sender   Sender
		shop     string
		text     string
		wantBody string
		wantErr  error
	}{
		{name: "footer gsm uses hyphen", shop: "Shop", text: "Hello", wantBody: "Hello\n- Shop"},
		{name: "footer ucs2 uses dash", shop: "Shop", text: "Привет", wantBody: "Привет\n— Shop"},
		{name: "footer shop name outside gsm", shop: "Sklep Łódź", text: "Hello", wantBody: "Hello\n— Sklep Łódź"},
		{name: "prefix", sender: SenderPrefix, shop: "Shop", text: "Hello", wantBody: "Shop: Hello"},
		{name: "exactly at the limit", sender: SenderPrefix, shop: "S", text: strings.Repeat("x", SignalMaxBytes-3)},
		{name: "one byte over", sender: SenderPrefix, shop: "S", text: strings.Repeat("x", SignalMaxBytes-2), wantErr: ErrTooLong},
		{name: "over with footer", shop: "Shop", text: strings.Repeat("я", 996), wantErr: ErrTooLong},
		{name: "huge", shop: "Shop", text: strings.Repeat("x", 1<<20), wantErr: ErrBadValue},
		{name: "empty", shop: "Shop", text: " \n ", wantErr: ErrEmpty},
		{name: "control", shop: "Shop", text: "a\x07", wantErr: ErrBadValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustNew(t, Config{Shop: tt.shop, Sender: tt.sender})
			m, err := r.RenderText(tt.text)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				var le *LengthError
				if errors.Is(err, ErrTooLong) && (!errors.As(err, &le) || le.Bytes <= le.Limit || le.Limit != SignalMaxBytes) {
					t.Fatalf("err = %#v, want a *LengthError over %d", err, SignalMaxBytes)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantBody != "" && m.Body != tt.wantBody {
				t.Errorf("Body = %q, want %q", m.Body, tt.wantBody)
			}
			if m.Bytes != len(m.Body) || m.Bytes > SignalMaxBytes {
				t.Errorf("Bytes = %d, body %d", m.Bytes, len(m.Body))
			}
		})
	}
}

func TestNew_Config(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no shop", Config{}},
		{"blank shop", Config{Shop: "  "}},
		{"shop with newline", Config{Shop: "a\nb"}},
		{"shop too long", Config{Shop: strings.Repeat("s", maxShopBytes+1)}},
		{"bad sender", Config{Shop: "s", Sender: "header"}},
		{"bad default lang", Config{Shop: "s", DefaultLang: "EN"}},
		{"missing dir", Config{Shop: "s", Dir: "/nonexistent/templates"}},
		{"dir is a file", Config{Shop: "s", Dir: "/etc/hostname"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); !errors.Is(err, ErrConfig) {
				t.Fatalf("New = %v, want ErrConfig", err)
			}
		})
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestNew_Dir(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		// overrides the built-in German text
		"order_shipped.de.tmpl": "vars: order carrier url\n---\nPaket {{.order}}: {{.url}} ({{.carrier}})\n",
		// adds a language to a built-in
		"order_shipped.uk.tmpl": "vars: order carrier url\n---\nЗамовлення {{.order}} відправлено: {{.url}} {{.carrier}}\n",
		// adds a template, only in Polish
		"voucher.pl.tmpl": "vars: code\n---\nTwój kod: {{.code}}\n",
		"README.md":       "ignored",
		"notes.txt":       "ignored",
	})
	if err := os.Mkdir(filepath.Join(dir, "old"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "old", "broken.en.tmpl"), []byte("not a template"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := mustNew(t, Config{Shop: "Shop", Dir: dir, DefaultLang: "pl"})
	vars := map[string]string{"order": "7", "carrier": "DHL", "url": "u"}

	tests := []struct {
		tmpl, lang string
		vars       map[string]string
		want       string
		wantErr    error
	}{
		{"order_shipped", "de", vars, "Paket 7: u (DHL)\n- Shop", nil},
		{"order_shipped", "uk", vars, "Замовлення 7 відправлено: u DHL\n— Shop", nil},
		{"order_shipped", "en", vars, "Your order 7 is on its way with DHL. Track your parcel here: u\n- Shop", nil},
		{"voucher", "de", map[string]string{"code": "X1"}, "Twój kod: X1\n— Shop", nil}, // de → default pl
		{"order_shipped", "fr", vars, "Twoje zamówienie nr 7 zostało wysłane. Przewoźnik: DHL. Przesyłkę możesz śledzić tutaj: u\n— Shop", nil},
	}
	for _, tt := range tests {
		m, err := r.Render(tt.tmpl, tt.lang, tt.vars)
		if err != nil || m.Body != tt.want {
			t.Errorf("Render(%s, %s) = %q, %v; want %q", tt.tmpl, tt.lang, m.Body, err, tt.want)
		}
	}

	// A template only in Polish cannot serve an English job when the default is English.
	r2 := mustNew(t, Config{Shop: "Shop", Dir: dir})
	_, err := r2.Render("voucher", "de", map[string]string{"code": "X1"})
	var le *LookupError
	if !errors.Is(err, ErrNoLanguage) || !errors.As(err, &le) || !slices.Equal(le.Have, []string{"pl"}) {
		t.Fatalf("Render(voucher, de) = %v, want ErrNoLanguage naming [pl]", err)
	}
}

func TestNew_BrokenDir(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"good.en.tmpl":          "vars: a\n---\n{{.a}}\n",
		"broken.en.tmpl":        "# one\nvars: a\n---\nHello\n{{.a}} {{.b}}\n",
		"syntax.de.tmpl":        "vars:\n---\n{{if}}\n",
		"Bad-Name.tmpl":         "vars:\n---\nx\n",
		"order_shipped.pl.tmpl": "vars: order url\n---\n{{.order}} {{.url}}\n", // disagrees with the built-ins
	})
	_, err := New(Config{Shop: "Shop", Dir: dir})
	if !errors.Is(err, ErrBadFile) {
		t.Fatalf("New = %v, want ErrBadFile", err)
	}
	msg := err.Error()
	for _, want := range []string{
		filepath.Join(dir, "broken.en.tmpl") + ":5: variable \"b\" is used but not declared",
		filepath.Join(dir, "syntax.de.tmpl") + ":3: missing value for if",
		filepath.Join(dir, "Bad-Name.tmpl") + ": file name must be",
		filepath.Join(dir, "order_shipped.pl.tmpl") + ": declares vars [order url] but",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "good.en.tmpl") {
		t.Errorf("error names a good file:\n%s", msg)
	}
}

func TestRenderer_MaxValueBytes(t *testing.T) {
	r := mustNew(t, Config{Shop: "S", MaxValueBytes: 8})
	if _, err := r.Render("order_delivered", "en", map[string]string{"order": "12345678"}); err != nil {
		t.Fatalf("8 bytes: %v", err)
	}
	if _, err := r.Render("order_delivered", "en", map[string]string{"order": "123456789"}); !errors.Is(err, ErrBadValue) {
		t.Fatalf("9 bytes: %v, want ErrBadValue", err)
	}
}

// FuzzRender throws hostile values at a built-in template: the result is an error or a
// message holding each value verbatim, never "<no value>" and never over the Signal limit.
func FuzzRender(f *testing.F) {
	f.Add("1042", "DHL", "https://x", "en")
	f.Add("{{.url}}", "{{template \"x\"}}", "{{printf \"%s\" .order}}", "ru")
	f.Add("a\x00b", "\u202E", "\xff\xfe", "de")
	f.Add("<no value>", "\n\n", strings.Repeat("€", 200), "pl")
	f.Add("", "", "", "xx")
	r := mustNew(f, Config{Shop: "Shop"})
	f.Fuzz(func(t *testing.T, order, carrier, url, lang string) {
		m, err := r.Render("order_shipped", lang, map[string]string{"order": order, "carrier": carrier, "url": url})
		if err != nil {
			var ve *VarError
			if !errors.As(err, &ve) && !errors.Is(err, ErrTooLong) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		for _, v := range []string{order, carrier, url} {
			if !strings.Contains(m.Body, v) {
				t.Fatalf("value %q not verbatim in %q", v, m.Body)
			}
			if !utf8.ValidString(v) || strings.ContainsFunc(v, isForbidden) {
				t.Fatalf("forbidden value %q accepted", v)
			}
		}
		if strings.Contains(m.Body, "<no value>") && !strings.Contains(order+carrier+url, "<no value>") {
			t.Fatalf("<no value> in %q", m.Body)
		}
		if m.Bytes > SignalMaxBytes || !strings.HasSuffix(m.Body, " Shop") {
			t.Fatalf("bad message %q", m.Body)
		}
	})
}

func BenchmarkRenderer_Render(b *testing.B) {
	r := mustNew(b, Config{Shop: "Shop"})
	vars := map[string]string{"order": "1042", "carrier": "DHL", "url": "https://track.example.com/p/1"}
	for b.Loop() {
		if _, err := r.Render("order_shipped", "ru", vars); err != nil {
			b.Fatal(err)
		}
	}
}
