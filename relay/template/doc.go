// Package template owns the text of every notification relay sends: message templates per
// template name and language, the built-in set for the common order states, the sender's name on
// every message, and the length facts the dispatcher needs (Signal byte limit, SMS segments).
//
// # Template files
//
// One file per template and language, named <name>.<lang>.tmpl (name: 1-64 of a-z 0-9 _,
// lang: two lower-case letters). A file is a small header, a line "---", then the body:
//
//	# Sent when the parcel leaves the warehouse. Lines starting with # are comments.
//	vars: order carrier url
//	---
//	Your order {{.order}} has shipped with {{.carrier}}. Track your parcel: {{.url}}
//
// The header must declare every variable the body uses ("vars:" exactly once; names 1-32 of
// a-z 0-9 _, starting with a letter; an empty list is allowed). The body is a Go text/template
// executed with the job's vars (a map of strings) and Option("missingkey=error"). Only
// {{.var}}, {{if}}/{{else}}/{{end}}, comments and the built-in functions may appear; {{define}},
// {{template}}, {{block}}, {{range}}, {{with}}, variables and nested fields are refused at load,
// so a template cannot reach anything but its declared strings. CRLF is read as LF and the
// file's trailing newlines are dropped. Every language of one template must declare the same
// variables, so a job valid in one language is valid in all.
//
// Loading is all-or-nothing: every broken file is reported, each as a *FileError naming the file
// and line, joined into one error.
//
// # Built-ins, overrides and language fallback
//
// Built-ins (embedded) cover payment_received, order_reserved, order_shipped,
// delivery_reminder, order_delayed and order_delivered in en, ru, pl and de. Files in the
// configured directory add templates and languages; a file with the same name and language as a
// built-in replaces it. A job's language is chosen as: the requested lang, else the configured
// default lang, else "en"; if the template has none of these the job is rejected
// (ErrNoLanguage).
//
// # Variables are data
//
// A job must give exactly the declared variables: a missing or an extra one is a *VarError
// naming it (ErrMissingVar / ErrExtraVar). Each value must be valid UTF-8, at most MaxValueBytes
// bytes (default 512), and contain no control character except "\n" and no bidirectional
// override (U+202A-U+202E, U+2066-U+2069), which could disguise a link. Values are never parsed as
// templates: "{{.x}}" in a value is sent literally. Free-text jobs (RenderText) follow the same
// character rules.
//
// # Sender
//
// Every message names the shop. SenderFooter (default) appends "\n— Shop"; the dash is an ASCII
// "-" when the rest of the message fits the GSM 7-bit alphabet, so the signature never turns a
// 160-character SMS into a 70-character one. SenderPrefix prepends "Shop: ".
//
// # Lengths
//
// A rendered message over SignalMaxBytes (2,000 bytes of UTF-8, sender included) is rejected
// with a *LengthError (ErrTooLong) rather than truncated: a cut-off tracking link or date is worse
// than a rejected job the shop can see. Every Message carries its SMS facts: GSM 7-bit (160
// septets, 153 per part when split; ^ { } [ ] ~ \ | € and form feed count two and are never split)
// or UCS-2 as soon as one character is outside GSM 7-bit (70 UTF-16 units, 67 per part;
// surrogate pairs are never split).
package template
