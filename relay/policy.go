package relay

import (
	"context"
	"errors"
	"time"

	"github.com/shopkit/relay/relay/consent"
	"github.com/shopkit/relay/relay/template"
)

// The consent and template packages are relay's own policy, kept free of relay's types so they
// can be read and tested alone; these two adapters are the only place they meet the pipeline.

// ConsentPolicy adapts a *consent.Policy to ConsentKeeper.
func ConsentPolicy(p *consent.Policy) ConsentKeeper { return consentAdapter{p} }

type consentAdapter struct{ p *consent.Policy }

func (a consentAdapter) Allow(ctx context.Context, to string, kind Kind, proof *ConsentProof) (bool, string, error) {
	var cp *consent.Proof
	if proof != nil {
		cp = &consent.Proof{At: proof.At, Source: proof.Source, Proof: proof.Proof}
	}
	d, err := a.p.Allow(ctx, to, consent.Kind(kind), cp)
	return d.Allowed, d.Code, err
}

func (a consentAdapter) CheckProof(p ConsentProof) error {
	return fieldError(a.p.CheckProof(consent.Proof{At: p.At, Source: p.Source, Proof: p.Proof}))
}

// fieldError turns the consent package's validation error into the pipeline's *FieldError
// (acknowledged and reported, never retried); other errors pass unchanged.
func fieldError(err error) error {
	var fe *consent.FieldError
	if errors.As(err, &fe) {
		return &FieldError{Field: fe.Field, Code: CodeInvalid, Detail: fe.Reason}
	}
	return err
}

func (a consentAdapter) Apply(ctx context.Context, r ConsentRecord, commit ConsentCommit) (ConsentChange, error) {
	act, err := a.p.Record(ctx, consent.Update{To: r.To, Consent: r.Consent, At: r.At, Source: r.Source, Proof: r.Proof, Lang: r.Lang},
		consentCommit(commit))
	switch {
	case errors.Is(err, consent.ErrStale), errors.Is(err, consent.ErrOptedOut), errors.Is(err, consent.ErrPending):
		// Nothing to change (an older record, a STOP only the customer can lift, a question
		// already asked): acknowledged, and no event.
		return ConsentChange{}, nil
	case err != nil:
		return ConsentChange{}, fieldError(err)
	}
	return change(act), nil
}

func (a consentAdapter) Inbound(ctx context.Context, from, text string, at time.Time, commit ConsentCommit) (KeywordAction, error) {
	act, err := a.p.HandleInbound(ctx, from, text, at, consentCommit(commit))
	if err != nil {
		return KeywordAction{}, err
	}
	return KeywordAction{Keyword: !act.Forward, ConsentChange: change(act)}, nil
}

func (a consentAdapter) IsKeyword(text string) bool { return a.p.Keyword(text) != consent.KeywordNone }

func change(act consent.Action) ConsentChange {
	return ConsentChange{Event: EventType(act.Event), Reply: act.Reply, OptOutConfirmation: act.OptOutConfirmation}
}

// consentCommit hands the consent package's change to the pipeline's commit (nil stays nil:
// the policy then stores the record alone).
func consentCommit(c ConsentCommit) consent.Commit {
	if c == nil {
		return nil
	}
	return func(ctx context.Context, w *consent.Write, act consent.Action) error {
		var cw *ConsentWrite
		if w != nil {
			cw = &ConsentWrite{Number: w.Number, Record: w.Record}
		}
		return c(ctx, cw, change(act))
	}
}

// TemplateRenderer adapts a *template.Renderer to Renderer, naming the job's field in errors.
func TemplateRenderer(r *template.Renderer) Renderer { return templateAdapter{r} }

type templateAdapter struct{ r *template.Renderer }

func (a templateAdapter) Render(j Job) (string, error) {
	var m template.Message
	var err error
	if j.Text != "" {
		m, err = a.r.RenderText(j.Text)
	} else {
		m, err = a.r.Render(j.Template, j.Lang, j.Vars)
	}
	if err == nil {
		return m.Body, nil
	}
	var ve *template.VarError
	var le *template.LookupError
	switch {
	case errors.As(err, &ve):
		code := CodeInvalid
		switch {
		case errors.Is(err, template.ErrMissingVar):
			code = CodeMissingVar
		case errors.Is(err, template.ErrExtraVar):
			code = CodeExtraVar
		}
		return "", &FieldError{Field: ve.Field(), Code: code, Detail: err.Error()}
	case errors.As(err, &le):
		return "", &FieldError{Field: "template", Code: CodeUnknown, Detail: err.Error()}
	case errors.Is(err, template.ErrTooLong):
		field := "vars"
		if j.Text != "" {
			field = "text"
		}
		return "", &FieldError{Field: field, Code: CodeTooLong, Detail: err.Error()}
	}
	return "", &FieldError{Field: "template", Code: CodeInvalid, Detail: err.Error()}
}
