package template

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"unicode/utf8"
)

// MaxFileBytes is the largest template file accepted.
const MaxFileBytes = 16 << 10

var (
	fileNameRe = regexp.MustCompile(`^([a-z0-9_]{1,64})\.([a-z]{2})\.tmpl$`)
	varNameRe  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
	// text/template reports "template: NAME:LINE: msg" or "template: NAME:LINE:COL: msg".
	tmplErrRe = regexp.MustCompile(`^template: [^:]*:(\d+):(?:\d+:)? ?(.*)$`)
)

// Template is one parsed template file: one template in one language.
type Template struct {
	Name string   // "order_shipped"
	Lang string   // "de"
	Vars []string // declared variables, sorted
	File string   // where it came from ("builtin/order_shipped.de.tmpl" or a path on disk)

	body *template.Template
}

// SplitFileName returns the template name and language of a file name such as
// "order_shipped.de.tmpl"; ok is false when the name does not follow that pattern.
func SplitFileName(base string) (name, lang string, ok bool) {
	m := fileNameRe.FindStringSubmatch(base)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// ParseFile parses one template file. file is used in errors and to derive the name and
// language (its base name must be <name>.<lang>.tmpl). Every problem is a *FileError.
func ParseFile(file string, data []byte) (*Template, error) {
	base := file
	if i := strings.LastIndexByte(base, '/'); i >= 0 {
		base = base[i+1:]
	}
	name, lang, ok := SplitFileName(base)
	if !ok {
		return nil, &FileError{File: file, Msg: "file name must be <name>.<lang>.tmpl (name: a-z 0-9 _, lang: two letters a-z)"}
	}
	fe := func(line int, format string, a ...any) error {
		return &FileError{File: file, Line: line, Msg: fmt.Sprintf(format, a...)}
	}
	if len(data) > MaxFileBytes {
		return nil, fe(0, "file is %d bytes, over the %d-byte limit", len(data), MaxFileBytes)
	}
	if !utf8.Valid(data) {
		return nil, fe(lineOfInvalidUTF8(data), "not valid UTF-8")
	}
	text := strings.ReplaceAll(string(data), "\r\n", "\n")

	var (
		vars     []string
		haveVars bool
		bodyAt   = -1 // byte offset of the body
		line     = 0
	)
	for off := 0; off < len(text); {
		line++
		end := strings.IndexByte(text[off:], '\n')
		var l string
		next := len(text)
		if end >= 0 {
			l, next = text[off:off+end], off+end+1
		} else {
			l = text[off:]
		}
		off = next
		t := strings.TrimSpace(l)
		switch {
		case t == "---":
			bodyAt = off
		case t == "" || strings.HasPrefix(t, "#"):
			continue
		default:
			key, val, found := strings.Cut(t, ":")
			if !found {
				return nil, fe(line, "header line %q: want \"vars: a b c\", a comment (#) or \"---\" before the body", clip(t))
			}
			if strings.TrimSpace(key) != "vars" {
				return nil, fe(line, "unknown header key %q (only \"vars\" is known)", clip(strings.TrimSpace(key)))
			}
			if haveVars {
				return nil, fe(line, "\"vars\" declared twice")
			}
			haveVars = true
			vars = []string{}
			for _, v := range strings.Fields(val) {
				if !varNameRe.MatchString(v) {
					return nil, fe(line, "variable name %q: want 1-32 of a-z 0-9 _, starting with a letter", clip(v))
				}
				if slices.Contains(vars, v) {
					return nil, fe(line, "variable %q declared twice", v)
				}
				vars = append(vars, v)
			}
			continue
		}
		break
	}
	if bodyAt < 0 {
		return nil, fe(line, "no \"---\" line: the header must end with \"---\" before the body")
	}
	if !haveVars {
		return nil, fe(1, "the header has no \"vars:\" line (write \"vars:\" with nothing after it if the body uses no variables)")
	}
	body := strings.TrimRight(text[bodyAt:], "\n")
	if strings.TrimSpace(body) == "" {
		return nil, fe(line+1, "the body is empty")
	}
	if i := strings.IndexFunc(body, isForbidden); i >= 0 {
		r, _ := utf8.DecodeRuneInString(body[i:])
		return nil, fe(line+1+strings.Count(body[:i], "\n"), "forbidden character %U in the body", r)
	}

	// A comment holding one newline per header line makes text/template's line numbers the
	// file's line numbers, and renders to nothing.
	src := "{{/*" + strings.Repeat("\n", line) + "*/}}" + body
	t, err := template.New(base).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, templateError(file, err)
	}
	if len(t.Templates()) != 1 {
		return nil, fe(0, "{{define}} and {{block}} are not allowed")
	}
	slices.Sort(vars)
	w := walker{file: file, tree: t.Tree, declared: vars}
	w.walk(t.Tree.Root)
	if w.err != nil {
		return nil, w.err
	}
	return &Template{Name: name, Lang: lang, Vars: vars, File: file, body: t}, nil
}

func templateError(file string, err error) error {
	if m := tmplErrRe.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &FileError{File: file, Line: n, Msg: m[2]}
	}
	return &FileError{File: file, Msg: err.Error()}
}

// walker checks that a body uses only declared variables and a small, side-effect-free subset
// of text/template.
type walker struct {
	file     string
	tree     *parse.Tree
	declared []string
	err      error
}

func (w *walker) fail(n parse.Node, format string, a ...any) {
	if w.err != nil {
		return
	}
	loc, _ := w.tree.ErrorContext(n)
	line := 0
	if parts := strings.Split(loc, ":"); len(parts) >= 2 {
		line, _ = strconv.Atoi(parts[1])
	}
	w.err = &FileError{File: w.file, Line: line, Msg: fmt.Sprintf(format, a...)}
}

func (w *walker) walk(n parse.Node) {
	if w.err != nil || n == nil {
		return
	}
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			w.walk(c)
		}
	case *parse.TextNode, *parse.CommentNode:
	case *parse.ActionNode:
		w.walk(n.Pipe)
	case *parse.IfNode:
		w.walk(n.Pipe)
		w.walk(n.List)
		if n.ElseList != nil {
			w.walk(n.ElseList)
		}
	case *parse.PipeNode:
		if n == nil {
			return
		}
		if len(n.Decl) > 0 {
			w.fail(n, "template variables ($x :=) are not allowed")
			return
		}
		for _, c := range n.Cmds {
			w.walk(c)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			w.walk(a)
		}
	case *parse.FieldNode:
		if len(n.Ident) != 1 {
			w.fail(n, "%s: nested fields are not allowed (variables are plain strings)", n)
			return
		}
		if _, ok := slices.BinarySearch(w.declared, n.Ident[0]); !ok {
			w.fail(n, "variable %q is used but not declared in the \"vars:\" header", n.Ident[0])
		}
	case *parse.IdentifierNode, *parse.StringNode, *parse.NumberNode, *parse.BoolNode, *parse.NilNode:
	case *parse.DotNode:
		w.fail(n, "{{.}} is not allowed: name the variable, e.g. {{.order}}")
	default:
		w.fail(n, "%q is not allowed in a template (use {{.var}}, {{if}}/{{else}}/{{end}} and functions)", clip(n.String()))
	}
}

func clip(s string) string {
	const max = 40
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

func lineOfInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return 1 + bytes.Count(b[:i], []byte{'\n'})
		}
		i += n
	}
	return 0
}
