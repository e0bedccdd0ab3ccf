package signaltest

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

type accountRule int

const (
	accNone     accountRule = iota // ignores account (listAccounts, startLink, finishLink; checked on 0.13.19)
	accRequired                    // picks the account: given and loaded, or the only one loaded
	accOptional                    // version, subscribeReceive: given → must exist; absent → fine
	accExplicit                    // register/verify: must be given; not checked against loaded accounts
)

type methodSpec struct {
	rule      accountRule
	multiOnly bool
	strict    []string // record-style params: only these keys (reference 3.1)
	arrayOK   bool     // unsubscribeReceive accepts [N]
	run       func(f *Fake, c *fconn, account string, p params, raw json.RawMessage) (any, *rpcErr)
}

var methods map[string]methodSpec

func init() {
	methods = map[string]methodSpec{
		"version":                  {rule: accOptional, run: (*Fake).mVersion},
		"listAccounts":             {rule: accNone, multiOnly: true, run: (*Fake).mListAccounts},
		"send":                     {rule: accRequired, run: (*Fake).mSend},
		"sendReceipt":              {rule: accRequired, run: (*Fake).mSendReceipt},
		"sendTyping":               {rule: accRequired, run: (*Fake).mSendTyping},
		"getUserStatus":            {rule: accRequired, run: (*Fake).mGetUserStatus},
		"updateProfile":            {rule: accRequired, run: (*Fake).mUpdateProfile},
		"listIdentities":           {rule: accRequired, run: (*Fake).mListIdentities},
		"trust":                    {rule: accRequired, run: (*Fake).mTrust},
		"submitRateLimitChallenge": {rule: accRequired, run: (*Fake).mSubmitChallenge},
		"register":                 {rule: accExplicit, multiOnly: true, strict: []string{"voice", "captcha", "reregister"}, run: (*Fake).mRegister},
		"verify":                   {rule: accExplicit, multiOnly: true, strict: []string{"verificationCode", "pin"}, run: (*Fake).mVerify},
		"startLink":                {rule: accNone, multiOnly: true, run: (*Fake).mStartLink},
		"finishLink":               {rule: accNone, multiOnly: true, strict: []string{"deviceLinkUri", "deviceName"}, run: (*Fake).mFinishLink},
		"subscribeReceive":         {rule: accOptional, run: (*Fake).mSubscribe},
		"unsubscribeReceive":       {rule: accOptional, strict: []string{"subscription"}, arrayOK: true, run: (*Fake).mUnsubscribe},
		"receive":                  {rule: accRequired, strict: []string{"timeout", "maxMessages"}, run: (*Fake).mReceive},
	}
}

func (f *Fake) dispatch(c *fconn, method string, raw json.RawMessage) (any, *rpcErr) {
	spec, ok := methods[method]
	single := f.cfg.SingleAccount != ""
	if !ok || (spec.multiOnly && single) {
		return nil, newErr(codeMethodNotFound, "Method not implemented")
	}
	if string(raw) == "null" {
		raw = nil
	}
	p := params{}
	isArray := len(raw) > 0 && raw[0] == '['
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, newErr(codeInvalidRequest, "%v", err)
		}
	}
	account := ""
	accRaw, hasAcc := p["account"]
	if hasAcc && string(accRaw) == "null" {
		hasAcc = false // "account":null is treated as absent (reference 1.3)
	}
	if single {
		account = f.cfg.SingleAccount
		if !hasAcc {
			delete(p, "account")
		}
		// In single-account mode "account" reaches the command: a strict command rejects it.
	} else {
		delete(p, "account")
		if hasAcc {
			account, _ = params{"a": accRaw}.str("a")
		}
		f.mu.Lock()
		accs := slices.Clone(f.accounts)
		f.mu.Unlock()
		switch spec.rule {
		case accRequired:
			if !hasAcc {
				if len(accs) != 1 {
					return nil, newErr(codeInvalidParams, "Method requires valid account parameter")
				}
				account = accs[0]
			} else if !slices.Contains(accs, account) {
				return nil, newErr(codeInvalidParams, "Specified account does not exist")
			}
		case accOptional:
			if hasAcc && !slices.Contains(accs, account) {
				return nil, newErr(codeInvalidParams, "Specified account does not exist")
			}
		case accExplicit:
			if !hasAcc {
				return nil, newErr(codeInvalidParams, "Method requires valid account parameter")
			}
		}
	}
	// Checked on 0.13.19: the account is resolved before params are bound, so array params give
	// -32602 for a command that needs an account and none can be chosen, -32600 otherwise.
	if isArray && !spec.arrayOK {
		return nil, newErr(codeInvalidRequest, "Cannot deserialize value of type `java.util.LinkedHashMap<java.lang.String,java.lang.Object>` from Array value (token `JsonToken.START_ARRAY`)")
	}
	if spec.strict != nil {
		for k := range p {
			if !slices.Contains(spec.strict, k) {
				return nil, newErr(codeInvalidRequest, "Unrecognized field \"%s\" (class org.asamk.signal.commands.%sCommand$Params), not marked as ignorable", k, strings.ToUpper(method[:1])+method[1:])
			}
		}
	}
	return spec.run(f, c, account, p, raw)
}

func (f *Fake) mVersion(*fconn, string, params, json.RawMessage) (any, *rpcErr) {
	return map[string]string{"version": f.cfg.Version}, nil
}

func (f *Fake) mListAccounts(*fconn, string, params, json.RawMessage) (any, *rpcErr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]map[string]string, 0, len(f.accounts))
	for _, a := range f.accounts {
		out = append(out, map[string]string{"number": a})
	}
	return out, nil
}

var (
	e164RE = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	uuidRE = regexp.MustCompile(`^(PNI:)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// normalize imitates signal-cli's recipient parsing: E.164, uuid, PNI:uuid, u:username; a local
// number (leading 0) is rewritten with the account's country code (+49 only, in this fake).
func normalize(account, r string) (string, bool) {
	switch {
	case e164RE.MatchString(r), uuidRE.MatchString(r), strings.HasPrefix(r, "u:"):
		return r, true
	case strings.HasPrefix(r, "0") && strings.HasPrefix(account, "+49") && e164RE.MatchString("+49"+r[1:]):
		return "+49" + r[1:], true
	}
	return "", false
}

type sendResult struct {
	RecipientAddress map[string]*string `json:"recipientAddress"`
	Type             string             `json:"type"`
	Token            string             `json:"token,omitempty"`
	RetryAfter       int64              `json:"retryAfterSeconds,omitempty"`
}

func (f *Fake) mSend(_ *fconn, account string, p params, _ json.RawMessage) (any, *rpcErr) {
	recipients, e := p.list("recipient")
	if e != nil {
		return nil, e
	}
	if p.has("groupId") || p.has("groupIds") {
		return nil, newErr(codeUser, "Invalid group id: the fake knows no groups")
	}
	if len(recipients) == 0 && !p.has("noteToSelf") {
		return nil, newErr(codeUser, "No recipients given")
	}
	norm := make([]string, len(recipients))
	for i, r := range recipients {
		n, ok := normalize(account, r)
		if !ok {
			return nil, newErr(codeUser, "Invalid phone number '%s': The string supplied did not seem to be a phone number.", r)
		}
		norm[i] = n
	}
	text, _ := p.str("message")
	atts, e := p.list("attachment")
	if e != nil {
		return nil, e
	}
	if text == "" && len(atts) == 0 && !p.has("sticker") {
		return nil, newErr(codeUser, "Sending empty message is not allowed, either a message, attachment or sticker must be given.")
	}
	for _, a := range atts {
		if strings.HasPrefix(a, "data:") {
			continue
		}
		if _, err := os.Stat(a); err != nil {
			return nil, newErr(codeInternal, "Failed to send message: %s (No such file or directory) (FileNotFoundException) (UnexpectedErrorException)", a)
		}
	}
	f.mu.Lock()
	ts := f.nextTimestamp(account)
	results := make([]sendResult, len(norm))
	succeeded, allIdentity, allRate := false, true, true
	for i, n := range norm {
		o, ok := f.outcomes[n]
		if !ok {
			o = Outcome{Type: Success}
		}
		num, uuid := n, UUIDFor(n)
		addr := map[string]*string{"uuid": &uuid, "number": &num, "username": nil}
		if strings.HasPrefix(n, "u:") || uuidRE.MatchString(n) {
			addr["number"] = nil
			if !strings.HasPrefix(n, "u:") {
				u := strings.TrimPrefix(n, "PNI:")
				addr["uuid"] = &u
			}
		}
		if o.NullUUID {
			addr["uuid"] = nil
		}
		results[i] = sendResult{RecipientAddress: addr, Type: o.Type}
		if o.Type == RateLimitFailure && o.Token != "" {
			results[i].Token, results[i].RetryAfter = o.Token, o.RetryAfterSeconds
			f.challenges[o.Token] = account
		}
		succeeded = succeeded || o.Type == Success
		allIdentity = allIdentity && o.Type == IdentityFailure
		allRate = allRate && o.Type == RateLimitFailure
		f.sent = append(f.sent, Sent{Account: account, Recipient: n, Text: text, Attachments: atts, Timestamp: ts, Type: o.Type})
		if o.Type == Success {
			f.scheduleReceipts(account, n, *addr["uuid"], ts)
		}
	}
	f.mu.Unlock()
	resp := map[string]any{"timestamp": ts, "results": results}
	switch {
	case succeeded || len(results) == 0:
		return resp, nil
	case allIdentity:
		return nil, &rpcErr{Code: codeUntrusted, Message: "Failed to send message due to untrusted identities", Data: map[string]any{"response": resp}}
	case allRate:
		return nil, &rpcErr{Code: codeRateLimit, Message: "Failed to send message due to rate limiting", Data: map[string]any{"response": resp}}
	}
	return nil, &rpcErr{Code: codeUser, Message: "Failed to send message", Data: map[string]any{"response": resp}}
}

// scheduleReceipts queues automatic receipts for a successful send; f.mu is held.
func (f *Fake) scheduleReceipts(account, number, uuid string, ts int64) {
	for _, r := range []struct {
		after time.Duration
		kind  string
	}{{f.cfg.DeliveryReceiptAfter, "delivery"}, {f.cfg.ReadReceiptAfter, "read"}} {
		if r.after <= 0 {
			continue
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			t := time.NewTimer(r.after)
			defer t.Stop()
			select {
			case <-t.C:
				f.InjectReceipt(account, number, uuid, r.kind, ts)
			case <-f.closing:
			}
		}()
	}
}

func (f *Fake) mSendReceipt(_ *fconn, account string, p params, _ json.RawMessage) (any, *rpcErr) {
	rcpt, ok := p.str("recipient")
	if !ok {
		return nil, newErr(codeUser, "No recipients given")
	}
	typ, _ := p.str("type")
	if typ == "" {
		typ = "read"
	}
	if typ != "read" && typ != "viewed" {
		return nil, newErr(codeUser, "Unknown receipt type: %s", typ)
	}
	f.mu.Lock()
	ts := f.nextTimestamp(account)
	f.mu.Unlock()
	uuid := UUIDFor(rcpt)
	return map[string]any{"timestamp": ts, "results": []sendResult{{RecipientAddress: map[string]*string{"uuid": &uuid, "number": &rcpt, "username": nil}, Type: Success}}}, nil
}

func (f *Fake) mSendTyping(_ *fconn, account string, p params, _ json.RawMessage) (any, *rpcErr) {
	f.mu.Lock()
	ts := f.nextTimestamp(account)
	f.mu.Unlock()
	return map[string]any{"timestamp": ts, "results": []sendResult{}}, nil
}

func (f *Fake) mGetUserStatus(_ *fconn, account string, p params, _ json.RawMessage) (any, *rpcErr) {
	rs, e := p.list("recipient")
	if e != nil {
		return nil, e
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]map[string]any, 0, len(rs))
	for _, r := range rs {
		n, ok := normalize(account, r)
		if !ok {
			return nil, newErr(codeUser, "Invalid phone number '%s': The string supplied did not seem to be a phone number.", r)
		}
		entry := map[string]any{"recipient": r, "number": n, "uuid": UUIDFor(n), "isRegistered": true}
		if o := f.outcomes[n]; o.Type == UnregisteredFailure {
			entry["uuid"], entry["isRegistered"] = nil, false
		}
		out = append(out, entry)
	}
	return out, nil
}

func (f *Fake) mUpdateProfile(_ *fconn, account string, p params, _ json.RawMessage) (any, *rpcErr) {
	prof := map[string]string{}
	for _, k := range []string{"givenName", "familyName", "about", "aboutEmoji"} {
		if v, ok := p.str(k); ok {
			prof[k] = v
		}
	}
	f.mu.Lock()
	f.profiles[account] = prof
	f.mu.Unlock()
	return map[string]any{}, nil
}

func (f *Fake) mListIdentities(_ *fconn, account string, p params, _ json.RawMessage) (any, *rpcErr) {
	filter, _ := p.str("number")
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []map[string]any{}
	seen := map[string]bool{}
	for _, s := range f.sent {
		if s.Account != account || seen[s.Recipient] || (filter != "" && filter != s.Recipient) {
			continue
		}
		seen[s.Recipient] = true
		level := "TRUSTED_UNVERIFIED"
		if f.outcomes[s.Recipient].Type == IdentityFailure {
			level = "UNTRUSTED"
		}
		out = append(out, map[string]any{"number": s.Recipient, "uuid": UUIDFor(s.Recipient), "fingerprint": "05ab",
			"safetyNumber": "12345 67890", "scannableSafetyNumber": "AAAA", "trustLevel": level, "addedTimestamp": s.Timestamp})
	}
	return out, nil
}

func (f *Fake) mTrust(_ *fconn, account string, p params, _ json.RawMessage) (any, *rpcErr) {
	r, ok := p.str("recipient")
	if !ok {
		return nil, newErr(codeUser, "No recipient given")
	}
	all, e := p.bool("trustAllKnownKeys")
	if e != nil {
		return nil, e
	}
	sn, _ := p.str("verifiedSafetyNumber")
	if !all && sn == "" {
		return nil, newErr(codeUser, "You need to specify the fingerprint/safety number you have verified with -v SAFETY_NUMBER")
	}
	n, ok := normalize(account, r)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !ok {
		return nil, newErr(codeUser, "Failed to set the trust for this number, make sure the number is correct.")
	}
	if f.outcomes[n].Type == UnregisteredFailure {
		return nil, newErr(codeUser, "The user %s is not registered.", n)
	}
	if f.outcomes[n].Type == IdentityFailure {
		delete(f.outcomes, n) // trusted now: later sends succeed
	}
	return map[string]any{}, nil
}

func (f *Fake) mSubmitChallenge(_ *fconn, account string, p params, _ json.RawMessage) (any, *rpcErr) {
	if f.cfg.Offline {
		return nil, newErr(codeIO, "Submit challenge error: java.net.UnknownHostException: chat.signal.org (PushNetworkException)")
	}
	ch, _ := p.str("challenge")
	captcha, _ := p.str("captcha")
	f.mu.Lock()
	defer f.mu.Unlock()
	if acc, ok := f.challenges[ch]; !ok || acc != account || !strings.HasPrefix(captcha, "signalcaptcha://") {
		return nil, newErr(codeUser, "Captcha rejected, it may be outdated, already used or solved from a different IP address.")
	}
	delete(f.challenges, ch)
	for r, o := range f.outcomes {
		if o.Type == RateLimitFailure && o.Token == ch {
			delete(f.outcomes, r)
		}
	}
	return map[string]any{}, nil
}

func (f *Fake) mRegister(_ *fconn, account string, p params, _ json.RawMessage) (any, *rpcErr) {
	if f.cfg.Offline {
		return nil, newErr(codeIO, "Failed to register: java.net.UnknownHostException: chat.signal.org (PushNetworkException)")
	}
	if _, e := p.bool("voice"); e != nil {
		return nil, e
	}
	f.mu.Lock()
	f.pendingReg[account] = true
	f.mu.Unlock()
	return map[string]any{}, nil
}

func (f *Fake) mVerify(_ *fconn, account string, p params, _ json.RawMessage) (any, *rpcErr) {
	code, _ := p.str("verificationCode")
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.pendingReg[account] {
		return nil, newErr(codeInternal, "Parameter specified as non-null is null: method org.whispersystems.signalservice.api.registration.RegistrationApi.verifyAccount, parameter sessionId (NullPointerException)")
	}
	if code != f.cfg.VerificationCode {
		// Fake text: the real message depends on the server's answer.
		return nil, newErr(codeUser, "Verify error: Invalid verification code")
	}
	delete(f.pendingReg, account)
	if !slices.Contains(f.accounts, account) {
		f.accounts = append(f.accounts, account)
	}
	return map[string]any{}, nil
}

func (f *Fake) mStartLink(*fconn, string, params, json.RawMessage) (any, *rpcErr) {
	if f.cfg.Offline {
		// Measured on 0.13.19 offline: -3 after about 0.5–0.8 s.
		select {
		case <-time.After(600 * time.Millisecond):
		case <-f.closing:
		}
		return nil, newErr(codeIO, "Link request error: Connection closed!")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.linkURI = "sgnl://linkdevice?uuid=" + UUIDFor(time.Now().String())[:22] + "&pub_key=BQ%2Bfake"
	return map[string]string{"deviceLinkUri": f.linkURI}, nil
}

// LinkedNumber is the account a successful finishLink adds.
const LinkedNumber = "+4930555000111"

func (f *Fake) mFinishLink(_ *fconn, _ string, p params, _ json.RawMessage) (any, *rpcErr) {
	uri, ok := p.str("deviceLinkUri")
	if !ok {
		return nil, newErr(codeUser, "Missing deviceLinkUri.")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.linkURI == "" || uri != f.linkURI {
		if !strings.HasPrefix(uri, "sgnl://linkdevice?") {
			return nil, newErr(codeUser, "Invalid device link uri.")
		}
		return nil, newErr(codeUser, "Unknown device link uri.")
	}
	f.linkURI = ""
	if !slices.Contains(f.accounts, LinkedNumber) {
		f.accounts = append(f.accounts, LinkedNumber)
	}
	return map[string]string{"number": LinkedNumber}, nil
}

func (f *Fake) mSubscribe(c *fconn, account string, _ params, _ json.RawMessage) (any, *rpcErr) {
	id := f.subIDs.Add(1) - 1
	f.mu.Lock()
	c.subs[id] = account
	f.mu.Unlock()
	// Queued messages follow once the reply is out (see handleLine).
	return id, nil
}

func (f *Fake) mUnsubscribe(c *fconn, _ string, p params, raw json.RawMessage) (any, *rpcErr) {
	var id int64
	switch {
	case len(raw) > 0 && raw[0] == '[':
		var ids []int64
		if json.Unmarshal(raw, &ids) != nil || len(ids) == 0 {
			return nil, newErr(codeUser, "Missing subscription parameter with subscription id")
		}
		id = ids[0]
	case len(raw) == 0:
		return nil, newErr(codeUser, "Missing subscription parameter with subscription id")
	default:
		v, ok := p["subscription"]
		if !ok || json.Unmarshal(v, &id) != nil {
			return nil, newErr(codeInternal, "Cannot invoke \"com.fasterxml.jackson.databind.JsonNode.asInt()\" because the return value of \"com.fasterxml.jackson.databind.node.ObjectNode.get(String)\" is null (NullPointerException)")
		}
	}
	// Under recvMu: a notification being written finishes first, and none follows the reply.
	f.recvMu.Lock()
	defer f.recvMu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := c.subs[id]; !ok {
		return nil, newErr(codeUser, "Unknown subscription id")
	}
	delete(c.subs, id)
	return map[string]any{}, nil
}

func (f *Fake) mReceive(_ *fconn, account string, _ params, _ json.RawMessage) (any, *rpcErr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		if len(c.subs) > 0 || c.auto {
			return nil, newErr(codeUser, "Receive command cannot be used if messages are already being received.")
		}
	}
	out := []json.RawMessage{}
	for acc, q := range f.queued {
		if account != "" && acc != account {
			continue
		}
		for _, m := range q {
			out = append(out, m)
		}
		delete(f.queued, acc)
	}
	return out, nil
}
