package signalbridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// SendOutcome is what the relay decides on for one recipient of a send.
type SendOutcome int

const (
	// OutcomeSent: accepted by the Signal server (not yet delivered; watch for receipts that
	// carry SendResult.Timestamp).
	OutcomeSent SendOutcome = iota + 1
	// OutcomeNotOnSignal: UNREGISTERED_FAILURE. When MaybeLookupFailure is set (uuid was null)
	// the number→ACI lookup may have failed: retry once later before deciding.
	OutcomeNotOnSignal
	// OutcomeIdentityChanged: IDENTITY_FAILURE, the safety number changed (see Client.Trust).
	OutcomeIdentityChanged
	// OutcomeRateLimited: RATE_LIMIT_FAILURE without a challenge token; back off (RetryAfter if known).
	OutcomeRateLimited
	// OutcomeCaptchaRequired: RATE_LIMIT_FAILURE with a challenge token; a human must solve a
	// captcha and call SubmitRateLimitChallenge with ChallengeToken.
	OutcomeCaptchaRequired
	// OutcomeTransient: network failure, invalid pre-key, signal-cli down or an I/O error before
	// sending; retry with backoff.
	OutcomeTransient
	// OutcomeUnknown: the request was written but no reply came. The message may be delivered.
	OutcomeUnknown
	// OutcomeFailed: a permanent or unclassified failure (invalid number, bad account, unknown
	// result type); Detail says why.
	OutcomeFailed
)

func (o SendOutcome) String() string {
	switch o {
	case OutcomeSent:
		return "sent"
	case OutcomeNotOnSignal:
		return "not_on_signal"
	case OutcomeIdentityChanged:
		return "identity_changed"
	case OutcomeRateLimited:
		return "rate_limited"
	case OutcomeCaptchaRequired:
		return "captcha_required"
	case OutcomeTransient:
		return "transient"
	case OutcomeUnknown:
		return "unknown"
	case OutcomeFailed:
		return "failed"
	}
	return fmt.Sprintf("SendOutcome(%d)", int(o))
}

// SendResult is the outcome for one recipient.
type SendResult struct {
	Recipient string // as given to Send
	Outcome   SendOutcome
	// Timestamp is the message id (ms) the receipts will refer to; set whenever signal-cli
	// produced a result (also for partial failures), 0 otherwise.
	Timestamp          int64
	RetryAfter         time.Duration // rate limit / captcha, when signal-cli said
	ChallengeToken     string        // captcha required
	Detail             string        // signal-cli's type or error message, for logs and journals
	MaybeLookupFailure bool          // NotOnSignal with a null uuid
	UUID               string        // recipient ACI when signal-cli knew it
}

// Result types of SendMessageResult (reference 3.3), the whole enum of 0.13.19.
const (
	resultSuccess      = "SUCCESS"
	resultRateLimit    = "RATE_LIMIT_FAILURE"
	resultNetwork      = "NETWORK_FAILURE"
	resultUnregistered = "UNREGISTERED_FAILURE"
	resultInvalidPre   = "INVALID_PRE_KEY_FAILURE"
	resultIdentity     = "IDENTITY_FAILURE"
)

type wireSendResponse struct {
	Timestamp int64            `json:"timestamp"`
	Results   []wireSendResult `json:"results"`
}

type wireSendResult struct {
	RecipientAddress struct {
		UUID     *string `json:"uuid"`
		Number   *string `json:"number"`
		Username *string `json:"username"`
	} `json:"recipientAddress"`
	GroupID           string `json:"groupId"`
	Type              string `json:"type"`
	Token             string `json:"token"`
	RetryAfterSeconds int64  `json:"retryAfterSeconds"`
}

// classifyResult maps one SendMessageResult to an outcome.
func classifyResult(recipient string, ts int64, r wireSendResult) SendResult {
	out := SendResult{Recipient: recipient, Timestamp: ts, Detail: r.Type, UUID: str(r.RecipientAddress.UUID)}
	if r.RetryAfterSeconds > 0 {
		out.RetryAfter = time.Duration(r.RetryAfterSeconds) * time.Second
	}
	switch r.Type {
	case resultSuccess:
		out.Outcome = OutcomeSent
	case resultUnregistered:
		out.Outcome = OutcomeNotOnSignal
		out.MaybeLookupFailure = r.RecipientAddress.UUID == nil
	case resultIdentity:
		out.Outcome = OutcomeIdentityChanged
	case resultRateLimit:
		if r.Token != "" {
			out.Outcome = OutcomeCaptchaRequired
			out.ChallengeToken = r.Token
		} else {
			out.Outcome = OutcomeRateLimited
		}
	case resultNetwork, resultInvalidPre:
		out.Outcome = OutcomeTransient
	default:
		out.Outcome = OutcomeFailed
		out.Detail = "unknown result type " + r.Type
	}
	return out
}

// classifySend turns the reply of a send (result or error) into one SendResult per requested
// recipient. Results are matched by number or uuid, not position (reference pitfall 7.7); the
// number signal-cli reports is normalized and may differ from what was sent, so an unmatched
// result is paired positionally with an unmatched recipient. err is the call's error, if any;
// the returned error is nil when every recipient got a definite per-recipient outcome.
func classifySend(recipients []string, result json.RawMessage, err error) ([]SendResult, int64, error) {
	var resp wireSendResponse
	var rpcErr *RPCError
	switch {
	case err == nil:
		if uerr := json.Unmarshal(result, &resp); uerr != nil {
			return fill(recipients, OutcomeUnknown, "undecodable send result", 0), 0,
				fmt.Errorf("signalbridge: send result: %w", uerr)
		}
	case errors.As(err, &rpcErr):
		var data struct {
			Response *wireSendResponse `json:"response"`
		}
		if len(rpcErr.Data) > 0 && json.Unmarshal(rpcErr.Data, &data) == nil && data.Response != nil &&
			len(data.Response.Results) > 0 {
			resp = *data.Response // all-failed forms -1/-4/-5: decode the per-recipient results
			break
		}
		return fill(recipients, outcomeForRPCError(rpcErr), rpcErr.Message, 0), 0, err
	case errors.Is(err, ErrOutcomeUnknown):
		return fill(recipients, OutcomeUnknown, err.Error(), 0), 0, err
	default: // not written (connection down, closed, context ended before writing)
		return fill(recipients, OutcomeTransient, err.Error(), 0), 0, err
	}

	out := make([]SendResult, len(recipients))
	done := make([]bool, len(recipients))
	used := make([]bool, len(resp.Results))
	for j, r := range resp.Results {
		for i, rc := range recipients {
			if done[i] {
				continue
			}
			if (r.RecipientAddress.Number != nil && *r.RecipientAddress.Number == rc) ||
				(r.RecipientAddress.UUID != nil && *r.RecipientAddress.UUID == rc) {
				out[i], done[i], used[j] = classifyResult(rc, resp.Timestamp, r), true, true
				break
			}
		}
	}
	j := 0
	for i, rc := range recipients {
		if done[i] {
			continue
		}
		for j < len(used) && used[j] {
			j++
		}
		if j < len(used) {
			out[i], used[j] = classifyResult(rc, resp.Timestamp, resp.Results[j]), true
		} else if len(resp.Results) == 0 && err == nil {
			// "at least one SUCCESS or an empty list" is success (reference 3.3).
			out[i] = SendResult{Recipient: rc, Outcome: OutcomeSent, Timestamp: resp.Timestamp, Detail: resultSuccess}
		} else {
			out[i] = SendResult{Recipient: rc, Outcome: OutcomeUnknown, Timestamp: resp.Timestamp,
				Detail: "no result for this recipient"}
		}
	}
	return out, resp.Timestamp, nil
}

// outcomeForRPCError classifies a send error that carried no per-recipient results.
func outcomeForRPCError(e *RPCError) SendOutcome {
	switch e.Code {
	case CodeRateLimit:
		return OutcomeRateLimited
	case CodeUntrustedKey:
		return OutcomeIdentityChanged
	case CodeIOError, CodeInternalError:
		// -32603 on send is an exception before sending: mostly network I/O (reference 3.3).
		return OutcomeTransient
	}
	return OutcomeFailed // -1 invalid number/no recipients, -32602 account, -32600, unknown codes
}

func fill(recipients []string, o SendOutcome, detail string, ts int64) []SendResult {
	out := make([]SendResult, len(recipients))
	for i, r := range recipients {
		out[i] = SendResult{Recipient: r, Outcome: o, Detail: detail, Timestamp: ts}
	}
	return out
}
