package template

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseFile(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		data     string
		wantVars []string
		wantBody string // rendered with every var set to "<var>"
		wantLine int    // for errors
		wantErr  string // substring; "" means success
	}{
		{name: "simple", file: "a.en.tmpl", data: "vars: order\n---\nOrder {{.order}}.\n",
			wantVars: []string{"order"}, wantBody: "Order <order>."},
		{name: "comments blank lines crlf", file: "/etc/x/b_2.de.tmpl", data: "# hi\r\n\r\nvars: url carrier\r\n---\r\nA {{.carrier}}\r\nB {{.url}}\r\n\r\n",
			wantVars: []string{"carrier", "url"}, wantBody: "A <carrier>\nB <url>"},
		{name: "no vars", file: "c.pl.tmpl", data: "vars:\n---\nDziękujemy!", wantVars: []string{}, wantBody: "Dziękujemy!"},
		{name: "unused declared var is allowed", file: "c.pl.tmpl", data: "vars: a b\n---\n{{.a}}", wantVars: []string{"a", "b"}, wantBody: "<a>"},
		{name: "if else and funcs", file: "d.en.tmpl", data: "vars: a\n---\n{{if eq .a \"x\"}}X{{else}}{{printf \"%q\" .a}}{{end}}{{/* c */}}",
			wantVars: []string{"a"}, wantBody: `"<a>"`},
		{name: "body keeps inner blank lines", file: "e.en.tmpl", data: "vars: a\n---\n\nx\n\ny {{.a}}\n", wantVars: []string{"a"}, wantBody: "\nx\n\ny <a>"},
		{name: "body --- is text", file: "e.en.tmpl", data: "vars:\n---\n---\n", wantVars: []string{}, wantBody: "---"},

		{name: "bad file name", file: "Order.en.tmpl", data: "vars:\n---\nx", wantErr: "file name must be"},
		{name: "bad lang", file: "order.eng.tmpl", data: "vars:\n---\nx", wantErr: "file name must be"},
		{name: "no separator", file: "a.en.tmpl", data: "vars: a\n", wantLine: 1, wantErr: `no "---" line`},
		{name: "no vars line", file: "a.en.tmpl", data: "# c\n---\nx", wantLine: 1, wantErr: `no "vars:" line`},
		{name: "unknown key", file: "a.en.tmpl", data: "vars: a\nlang: en\n---\nx", wantLine: 2, wantErr: `unknown header key "lang"`},
		{name: "header junk", file: "a.en.tmpl", data: "\nhello\n---\nx", wantLine: 2, wantErr: "header line"},
		{name: "vars twice", file: "a.en.tmpl", data: "vars: a\nvars: b\n---\nx", wantLine: 2, wantErr: "declared twice"},
		{name: "var twice", file: "a.en.tmpl", data: "vars: a a\n---\nx", wantLine: 1, wantErr: `"a" declared twice`},
		{name: "bad var name", file: "a.en.tmpl", data: "vars: Order\n---\nx", wantLine: 1, wantErr: `variable name "Order"`},
		{name: "empty body", file: "a.en.tmpl", data: "vars:\n---\n\n\n", wantLine: 3, wantErr: "body is empty"},
		{name: "undeclared var", file: "a.en.tmpl", data: "# c\nvars: order\n---\nline4\nOrder {{.order}} via {{.carrier}}", wantLine: 5, wantErr: `"carrier" is used but not declared`},
		{name: "syntax error line", file: "a.en.tmpl", data: "vars: a\n---\nok\nok\n{{.a", wantLine: 5, wantErr: "unclosed action"},
		{name: "unknown function", file: "a.en.tmpl", data: "vars: a\n---\n\n{{exec .a}}", wantLine: 4, wantErr: `function "exec" not defined`},
		{name: "define", file: "a.en.tmpl", data: "vars:\n---\n{{define \"x\"}}y{{end}}z", wantErr: "{{define}}"},
		{name: "template call", file: "a.en.tmpl", data: "vars:\n---\n{{template \"a.en.tmpl\"}}", wantLine: 3, wantErr: "not allowed"},
		{name: "range", file: "a.en.tmpl", data: "vars: a\n---\n{{range .a}}x{{end}}", wantLine: 3, wantErr: "not allowed"},
		{name: "with", file: "a.en.tmpl", data: "vars: a\n---\n{{with .a}}x{{end}}", wantLine: 3, wantErr: "not allowed"},
		{name: "variable decl", file: "a.en.tmpl", data: "vars: a\n---\n{{$x := .a}}{{$x}}", wantLine: 3, wantErr: "not allowed"},
		{name: "dot", file: "a.en.tmpl", data: "vars: a\n---\n\n{{.}}", wantLine: 4, wantErr: "{{.}} is not allowed"},
		{name: "nested field", file: "a.en.tmpl", data: "vars: a\n---\n{{.a.b}}", wantLine: 3, wantErr: "nested fields"},
		{name: "undeclared in if", file: "a.en.tmpl", data: "vars: a\n---\n{{if .b}}x{{end}}", wantLine: 3, wantErr: `"b" is used but not declared`},
		{name: "control char in body", file: "a.en.tmpl", data: "vars:\n---\nok\nbad\x07bell", wantLine: 4, wantErr: "forbidden character U+0007"},
		{name: "bidi override in body", file: "a.en.tmpl", data: "vars:\n---\nx\u202Ey", wantLine: 3, wantErr: "U+202E"},
		{name: "invalid utf8", file: "a.en.tmpl", data: "vars:\n---\nok\n\xff", wantLine: 4, wantErr: "not valid UTF-8"},
		{name: "too big", file: "a.en.tmpl", data: "vars:\n---\n" + strings.Repeat("x", MaxFileBytes), wantErr: "over the"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFile(tt.file, []byte(tt.data))
			if tt.wantErr != "" {
				var fe *FileError
				if !errors.As(err, &fe) || !errors.Is(err, ErrBadFile) {
					t.Fatalf("err = %v (%T), want a *FileError wrapping ErrBadFile", err, err)
				}
				if !strings.Contains(fe.Msg, tt.wantErr) || fe.File != tt.file || fe.Line != tt.wantLine {
					t.Fatalf("err = %q (file %q line %d), want %q at %s:%d", fe.Msg, fe.File, fe.Line, tt.wantErr, tt.file, tt.wantLine)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFile: %v", err)
			}
			if !slices.Equal(got.Vars, tt.wantVars) {
				t.Errorf("Vars = %q, want %q", got.Vars, tt.wantVars)
			}
			vars := map[string]string{}
			for _, v := range got.Vars {
				vars[v] = "<" + v + ">"
			}
			var b strings.Builder
			if err := got.body.Execute(&b, vars); err != nil {
				t.Fatalf("Execute: %v", err)
			}
			if b.String() != tt.wantBody {
				t.Errorf("body = %q, want %q", b.String(), tt.wantBody)
			}
		})
	}
}

func TestSplitFileName(t *testing.T) {
	tests := []struct {
		in         string
		name, lang string
		ok         bool
	}{
		{"order_shipped.de.tmpl", "order_shipped", "de", true},
		{"a.en.tmpl", "a", "en", true},
		{"a.EN.tmpl", "", "", false},
		{"a.en.tmpl.bak", "", "", false},
		{"a.b.en.tmpl", "", "", false},
		{".en.tmpl", "", "", false},
		{"a-b.en.tmpl", "", "", false},
	}
	for _, tt := range tests {
		name, lang, ok := SplitFileName(tt.in)
		if name != tt.name || lang != tt.lang || ok != tt.ok {
			t.Errorf("SplitFileName(%q) = %q, %q, %v; want %q, %q, %v", tt.in, name, lang, ok, tt.name, tt.lang, tt.ok)
		}
	}
}

func FuzzParseFile(f *testing.F) {
	f.Add("vars: order\n---\nOrder {{.order}}.\n")
	f.Add("# c\r\nvars: a b\r\n---\r\n{{if .a}}{{.b}}{{else}}x{{end}}")
	f.Add("vars: a\n---\n{{range .a}}{{end}}")
	f.Add("vars:\n---\n{{define \"x\"}}{{end}}")
	f.Add("vars: a\n---\n{{.a")
	f.Add("vars: a\n---\n{{printf \"%s%s\" .a .a}}")
	f.Add("vars: a\n---\n{{template \"x\" .}}")
	f.Fuzz(func(t *testing.T, data string) {
		tm, err := ParseFile("f.en.tmpl", []byte(data))
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) || fe.File != "f.en.tmpl" || fe.Line < 0 || fe.Line > strings.Count(data, "\n")+2 {
				t.Fatalf("error %v (%T) does not name the file and a line inside it", err, err)
			}
			return
		}
		// A template that parsed must render its declared vars without "<no value>", and
		// values must come out as data.
		vars := map[string]string{}
		for _, v := range tm.Vars {
			vars[v] = "{{.x}}"
		}
		var b strings.Builder
		if err := tm.body.Execute(&b, vars); err != nil {
			return // e.g. printf with a wrong verb or index out of range: an error, not a wrong text
		}
		if strings.Contains(b.String(), "<no value>") && !strings.Contains(data, "<no value>") {
			t.Fatalf("rendered <no value>: %q", b.String())
		}
	})
}
