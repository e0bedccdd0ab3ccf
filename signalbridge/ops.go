package signalbridge

import (
	"context"
)

// API is the set of typed signal-cli operations. *Client implements it for one connection;
// *Supervisor implements it on whatever connection is current (ErrNotReady when there is none).
// account is the relay's own number (+E164); "" leaves the member out (single-account daemon,
// or a multi-account daemon with exactly one account).
type API interface {
	Version(ctx context.Context) (string, error)
	ListAccounts(ctx context.Context) ([]string, error)
	Send(ctx context.Context, account, recipient, text string) (SendResult, error)
	SendMessage(ctx context.Context, account string, m Message) (SendReport, error)
	UpdateProfile(ctx context.Context, account string, p Profile) error
	Trust(ctx context.Context, account, recipient string, t TrustOptions) error
	GetUserStatus(ctx context.Context, account string, recipients ...string) ([]UserStatus, error)
	Register(ctx context.Context, account string, r RegisterOptions) error
	Verify(ctx context.Context, account, code, pin string) error
	StartLink(ctx context.Context) (string, error)
	FinishLink(ctx context.Context, deviceLinkURI, deviceName string) (string, error)
	SubmitRateLimitChallenge(ctx context.Context, account, challenge, captcha string) error
}

var _ API = (*Client)(nil)

// Message is a send request. Attachments are file paths readable by the signal-cli process or
// data: URIs (reference 3.3).
type Message struct {
	Recipients  []string
	Text        string
	Attachments []string
}

// SendReport is the outcome of SendMessage: the message timestamp (its id for receipts) and one
// result per requested recipient, in request order.
type SendReport struct {
	Timestamp int64
	Results   []SendResult
}

// Profile is what updateProfile sets. Empty fields are left out (unchanged).
type Profile struct {
	GivenName  string // the shop's name
	FamilyName string
	About      string
}

// TrustOptions: exactly one of the two should be set.
type TrustOptions struct {
	TrustAllKnownKeys    bool
	VerifiedSafetyNumber string
}

// RegisterOptions are the strict params of register.
type RegisterOptions struct {
	Voice      bool
	Captcha    string // signalcaptcha://… token
	Reregister bool
}

// UserStatus is one getUserStatus entry.
type UserStatus struct {
	Recipient    string  `json:"recipient"`
	Number       string  `json:"number"`
	UUID         *string `json:"uuid"`
	IsRegistered bool    `json:"isRegistered"`
}

// Version returns signal-cli's version string, e.g. "0.13.19".
func (c *Client) Version(ctx context.Context) (string, error) {
	var r struct {
		Version string `json:"version"`
	}
	err := c.Call(ctx, "version", nil, &r)
	return r.Version, err
}

// ListAccounts returns the registered accounts a multi-account daemon has loaded.
func (c *Client) ListAccounts(ctx context.Context) ([]string, error) {
	var r []struct {
		Number string `json:"number"`
	}
	if err := c.Call(ctx, "listAccounts", nil, &r); err != nil {
		return nil, err
	}
	out := make([]string, len(r))
	for i := range r {
		out[i] = r[i].Number
	}
	return out, nil
}

type sendParams struct {
	Account     string   `json:"account,omitempty"`
	Recipients  []string `json:"recipients"`
	Message     string   `json:"message"`
	Attachments []string `json:"attachments,omitempty"`
}

// Send sends text to one recipient. The SendResult always carries an Outcome; err is non-nil
// when no per-recipient result was obtained (then Outcome says what to do: Transient when the
// request never left, Unknown when it was written but unanswered, Failed/RateLimited/… for an
// error reply without results). The all-failed error forms -1/-4/-5 with data.response are
// decoded into per-recipient outcomes with err == nil.
func (c *Client) Send(ctx context.Context, account, recipient, text string) (SendResult, error) {
	rep, err := c.SendMessage(ctx, account, Message{Recipients: []string{recipient}, Text: text})
	return rep.Results[0], err
}

// SendMessage sends one message to several recipients; see Send for the error contract.
func (c *Client) SendMessage(ctx context.Context, account string, m Message) (SendReport, error) {
	raw, err := c.call(ctx, "send", sendParams{Account: account, Recipients: m.Recipients,
		Message: m.Text, Attachments: m.Attachments})
	results, ts, err := classifySend(m.Recipients, raw, err)
	if hook := c.opts.onSend; hook != nil {
		hook(results)
	}
	return SendReport{Timestamp: ts, Results: results}, err
}

// UpdateProfile sets the account's profile (the shop name as given name).
func (c *Client) UpdateProfile(ctx context.Context, account string, p Profile) error {
	return c.Call(ctx, "updateProfile", struct {
		Account    string `json:"account,omitempty"`
		GivenName  string `json:"givenName,omitempty"`
		FamilyName string `json:"familyName,omitempty"`
		About      string `json:"about,omitempty"`
	}{account, p.GivenName, p.FamilyName, p.About}, nil)
}

// Trust marks a recipient's identity key as trusted after a safety-number change.
func (c *Client) Trust(ctx context.Context, account, recipient string, t TrustOptions) error {
	return c.Call(ctx, "trust", struct {
		Account              string `json:"account,omitempty"`
		Recipient            string `json:"recipient"`
		TrustAllKnownKeys    bool   `json:"trustAllKnownKeys,omitempty"`
		VerifiedSafetyNumber string `json:"verifiedSafetyNumber,omitempty"`
	}{account, recipient, t.TrustAllKnownKeys, t.VerifiedSafetyNumber}, nil)
}

// GetUserStatus asks whether recipients are on Signal.
func (c *Client) GetUserStatus(ctx context.Context, account string, recipients ...string) ([]UserStatus, error) {
	var r []UserStatus
	err := c.Call(ctx, "getUserStatus", struct {
		Account    string   `json:"account,omitempty"`
		Recipients []string `json:"recipients"`
	}{account, recipients}, &r)
	return r, err
}

// Register starts registering account (multi-account daemon; account is required).
func (c *Client) Register(ctx context.Context, account string, r RegisterOptions) error {
	return c.Call(ctx, "register", struct {
		Account    string `json:"account,omitempty"`
		Voice      bool   `json:"voice,omitempty"`
		Captcha    string `json:"captcha,omitempty"`
		Reregister bool   `json:"reregister,omitempty"`
	}{account, r.Voice, r.Captcha, r.Reregister}, nil)
}

// Verify completes a registration with the code received by SMS; pin may be empty.
func (c *Client) Verify(ctx context.Context, account, code, pin string) error {
	return c.Call(ctx, "verify", struct {
		Account          string `json:"account,omitempty"`
		VerificationCode string `json:"verificationCode"`
		Pin              string `json:"pin,omitempty"`
	}{account, code, pin}, nil)
}

// StartLink begins linking this daemon as a secondary device; it returns the sgnl:// URI to
// show as a QR code.
func (c *Client) StartLink(ctx context.Context) (string, error) {
	var r struct {
		URI string `json:"deviceLinkUri"`
	}
	err := c.Call(ctx, "startLink", nil, &r)
	return r.URI, err
}

// FinishLink waits for the primary device to accept the link; it returns the linked number.
func (c *Client) FinishLink(ctx context.Context, deviceLinkURI, deviceName string) (string, error) {
	var r struct {
		Number string `json:"number"`
	}
	err := c.Call(ctx, "finishLink", struct {
		DeviceLinkURI string `json:"deviceLinkUri"`
		DeviceName    string `json:"deviceName,omitempty"`
	}{deviceLinkURI, deviceName}, &r)
	return r.Number, err
}

// SubmitRateLimitChallenge lifts a captcha rate limit: challenge is SendResult.ChallengeToken,
// captcha the signalcaptcha:// token a human solved.
func (c *Client) SubmitRateLimitChallenge(ctx context.Context, account, challenge, captcha string) error {
	err := c.Call(ctx, "submitRateLimitChallenge", struct {
		Account   string `json:"account,omitempty"`
		Challenge string `json:"challenge"`
		Captcha   string `json:"captcha"`
	}{account, challenge, captcha}, nil)
	if err == nil && c.opts.onChallengeOK != nil {
		c.opts.onChallengeOK()
	}
	return err
}
