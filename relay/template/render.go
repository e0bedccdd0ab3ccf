package template

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

//go:embed builtin/*.tmpl
var builtinFS embed.FS

// SignalMaxBytes is the largest message body relay sends over Signal, sender included, in
// bytes of UTF-8.
const SignalMaxBytes = 2000

// DefaultMaxValueBytes caps one variable's value unless Config.MaxValueBytes says otherwise.
const DefaultMaxValueBytes = 512

// maxShopBytes caps the shop name (it goes into every message).
const maxShopBytes = 64

// Sender says where the shop's name goes in each message.
type Sender string

const (
	SenderFooter Sender = "footer" // "\n— Shop" after the body (default)
	SenderPrefix Sender = "prefix" // "Shop: " before the body
)

// Config is what New needs; it maps to relay.toml's [shop] name and default_lang and
// [templates] dir and sender.
type Config struct {
	Shop          string // required: the name every message carries
	Sender        Sender // "" means SenderFooter
	DefaultLang   string // "" means "en"
	Dir           string // "" means built-ins only; a missing directory is an error
	MaxValueBytes int    // 0 means DefaultMaxValueBytes
	Logger        *slog.Logger
}

// Message is a rendered message, ready for Signal or SMS.
type Message struct {
	Template string // "" for a free-text job
	Lang     string // the language used after fallback ("" for a free-text job)
	Body     string // the text to send, the sender's name included
	Bytes    int    // len(Body); never over SignalMaxBytes
	SMS      SMSInfo
}

// Renderer holds the loaded templates. It is immutable after New and safe for concurrent use.
type Renderer struct {
	cfg       Config
	templates map[string]map[string]*Template // name → lang → template
}

// New loads the built-in templates, then the files in cfg.Dir over them. All broken files are
// reported in one error (each a *FileError).
func New(cfg Config) (*Renderer, error) {
	if cfg.Sender == "" {
		cfg.Sender = SenderFooter
	}
	if cfg.DefaultLang == "" {
		cfg.DefaultLang = "en"
	}
	if cfg.MaxValueBytes == 0 {
		cfg.MaxValueBytes = DefaultMaxValueBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Logger = cfg.Logger.With("component", "template")
	switch {
	case cfg.Sender != SenderFooter && cfg.Sender != SenderPrefix:
		return nil, fmt.Errorf("%w: sender %q: want footer or prefix", ErrConfig, cfg.Sender)
	case strings.TrimSpace(cfg.Shop) == "" || len(cfg.Shop) > maxShopBytes || strings.ContainsFunc(cfg.Shop, func(r rune) bool { return r == '\n' || isForbidden(r) }) || !utf8.ValidString(cfg.Shop):
		return nil, fmt.Errorf("%w: shop name %q: want 1-%d bytes of UTF-8 on one line", ErrConfig, cfg.Shop, maxShopBytes)
	case !langOK(cfg.DefaultLang):
		return nil, fmt.Errorf("%w: default lang %q: want two letters a-z", ErrConfig, cfg.DefaultLang)
	case cfg.MaxValueBytes < 0:
		return nil, fmt.Errorf("%w: max value bytes %d", ErrConfig, cfg.MaxValueBytes)
	}

	r := &Renderer{cfg: cfg, templates: map[string]map[string]*Template{}}
	var errs []error
	if err := r.load(builtinFS, "builtin", "builtin/"); err != nil {
		errs = append(errs, err) // only a broken build can get here; the tests load them
	}
	if cfg.Dir != "" {
		st, err := os.Stat(cfg.Dir)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%w: templates dir: %w", ErrConfig, err)
		case !st.IsDir():
			return nil, fmt.Errorf("%w: templates dir %s is not a directory", ErrConfig, cfg.Dir)
		}
		if err := r.load(os.DirFS(cfg.Dir), ".", strings.TrimSuffix(cfg.Dir, "/")+"/"); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, r.checkVarsAgree()...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, name := range r.Names() {
		langs := r.Langs(name)
		cfg.Logger.Debug("template loaded", "template", name, "langs", langs, "vars", r.templates[name][langs[0]].Vars)
	}
	return r, nil
}

// load reads every *.tmpl file directly in dir of fsys; other files and subdirectories are
// ignored. A file replaces a template already loaded for the same name and language.
func (r *Renderer) load(fsys fs.FS, dir, display string) error {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return fmt.Errorf("%w: read templates dir %s: %w", ErrConfig, display, err)
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".tmpl") {
			continue
		}
		file := display + e.Name()
		info, err := e.Info()
		if err == nil && info.Size() > MaxFileBytes {
			errs = append(errs, &FileError{File: file, Msg: fmt.Sprintf("file is %d bytes, over the %d-byte limit", info.Size(), MaxFileBytes)})
			continue
		}
		data, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			errs = append(errs, &FileError{File: file, Msg: err.Error()})
			continue
		}
		t, err := ParseFile(file, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if r.templates[t.Name] == nil {
			r.templates[t.Name] = map[string]*Template{}
		}
		if old := r.templates[t.Name][t.Lang]; old != nil {
			r.cfg.Logger.Info("template overridden", "file", file, "replaces", old.File)
		}
		r.templates[t.Name][t.Lang] = t
	}
	return errors.Join(errs...)
}

// checkVarsAgree reports templates whose languages declare different variables.
func (r *Renderer) checkVarsAgree() []error {
	var errs []error
	for _, name := range r.Names() {
		langs := r.Langs(name)
		first := r.templates[name][langs[0]]
		for _, l := range langs[1:] {
			t := r.templates[name][l]
			if !slices.Equal(t.Vars, first.Vars) {
				errs = append(errs, &FileError{File: t.File, Msg: fmt.Sprintf("declares vars %v but %s declares %v: every language of a template must declare the same variables", t.Vars, filepath.Base(first.File), first.Vars)})
			}
		}
	}
	return errs
}

// Names returns the loaded template names, sorted.
func (r *Renderer) Names() []string {
	names := make([]string, 0, len(r.templates))
	for n := range r.templates {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Langs returns the languages of one template, sorted (nil if unknown).
func (r *Renderer) Langs(name string) []string {
	var langs []string
	for l := range r.templates[name] {
		langs = append(langs, l)
	}
	slices.Sort(langs)
	return langs
}

// Vars returns the variables a template declares (the same in every language), sorted; ok is
// false for an unknown template. The validator can use it to reject a job at intake.
func (r *Renderer) Vars(name string) (vars []string, ok bool) {
	for _, t := range r.templates[name] {
		return slices.Clone(t.Vars), true
	}
	return nil, false
}

// Lookup returns the template used for name in lang after fallback (lang, the default, "en").
func (r *Renderer) Lookup(name, lang string) (*Template, error) {
	byLang := r.templates[name]
	if len(byLang) == 0 {
		return nil, &LookupError{Template: name, Lang: lang, Err: ErrUnknownTemplate}
	}
	for _, l := range []string{lang, r.cfg.DefaultLang, "en"} {
		if t := byLang[l]; t != nil {
			return t, nil
		}
	}
	return nil, &LookupError{Template: name, Lang: lang, Have: r.Langs(name), Err: ErrNoLanguage}
}

// Render renders a template for a job. It fails with a *LookupError (unknown template or no
// usable language), a *VarError (missing, extra or bad variable) or a *LengthError.
func (r *Renderer) Render(name, lang string, vars map[string]string) (Message, error) {
	t, err := r.Lookup(name, lang)
	if err != nil {
		return Message{}, err
	}
	if err := r.checkVars(t, vars); err != nil {
		return Message{}, err
	}
	var b strings.Builder
	if err := t.body.Execute(&b, vars); err != nil {
		// checkVars makes this unreachable for a declared-only body; keep it an error anyway.
		return Message{}, fmt.Errorf("template %s: render: %w", t.File, err)
	}
	m, err := r.finish(b.String())
	m.Template, m.Lang = t.Name, t.Lang
	return m, err
}

// RenderText prepares a free-text job: the same character rules as a variable's value, the
// sender's name added, the Signal limit applied. It fails with ErrEmpty, a *VarError (Var "")
// or a *LengthError.
func (r *Renderer) RenderText(text string) (Message, error) {
	if strings.TrimSpace(text) == "" {
		return Message{}, ErrEmpty
	}
	if reason := badValue(text, SignalMaxBytes); reason != "" {
		return Message{}, &VarError{Reason: reason, Err: ErrBadValue}
	}
	return r.finish(text)
}

func (r *Renderer) checkVars(t *Template, vars map[string]string) error {
	for _, v := range t.Vars {
		if _, ok := vars[v]; !ok {
			return &VarError{Template: t.Name, Var: v, Reason: fmt.Sprintf("%s declares %v", t.Name, t.Vars), Err: ErrMissingVar}
		}
	}
	if len(vars) != len(t.Vars) {
		extra := make([]string, 0, len(vars))
		for k := range vars {
			if _, ok := slices.BinarySearch(t.Vars, k); !ok {
				extra = append(extra, k)
			}
		}
		slices.Sort(extra)
		return &VarError{Template: t.Name, Var: clip(extra[0]), Reason: fmt.Sprintf("%s declares only %v", t.Name, t.Vars), Err: ErrExtraVar}
	}
	for _, v := range t.Vars {
		if reason := badValue(vars[v], r.cfg.MaxValueBytes); reason != "" {
			return &VarError{Template: t.Name, Var: v, Reason: reason, Err: ErrBadValue}
		}
	}
	return nil
}

// finish adds the sender and measures the result.
func (r *Renderer) finish(body string) (Message, error) {
	switch r.cfg.Sender {
	case SenderPrefix:
		body = r.cfg.Shop + ": " + body
	default:
		dash := "—"
		if IsGSM7(body) && IsGSM7(r.cfg.Shop) {
			dash = "-"
		}
		body = body + "\n" + dash + " " + r.cfg.Shop
	}
	m := Message{Body: body, Bytes: len(body)}
	if m.Bytes > SignalMaxBytes {
		return Message{}, &LengthError{Bytes: m.Bytes, Limit: SignalMaxBytes}
	}
	m.SMS = CountSMS(body)
	return m, nil
}

// badValue returns why s may not be sent, or "".
func badValue(s string, max int) string {
	if len(s) > max {
		return fmt.Sprintf("%d bytes, over the %d-byte limit", len(s), max)
	}
	if !utf8.ValidString(s) {
		return "not valid UTF-8"
	}
	if i := strings.IndexFunc(s, isForbidden); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return fmt.Sprintf("forbidden character %U at byte %d", r, i)
	}
	return ""
}

// isForbidden: control characters except newline, and the bidirectional overrides and
// isolates that can make a link or a number read differently from what it is.
func isForbidden(r rune) bool {
	switch {
	case r == '\n':
		return false
	case unicode.IsControl(r):
		return true
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

func langOK(l string) bool {
	return len(l) == 2 && l[0] >= 'a' && l[0] <= 'z' && l[1] >= 'a' && l[1] <= 'z'
}
