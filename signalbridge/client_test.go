package signalbridge_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopkit/relay/signalbridge"
	"github.com/shopkit/relay/signalbridge/signaltest"
)

const (
	acct  = "+4930123456"
	alice = "+4915112345678"
	bob   = "+4915187654321"
)

func TestClient_Send(t *testing.T) {
	tests := []struct {
		name    string
		outcome signaltest.Outcome
		want    signalbridge.SendOutcome
		check   func(t *testing.T, r signalbridge.SendResult)
	}{
		{"success", signaltest.Outcome{Type: signaltest.Success}, signalbridge.OutcomeSent, func(t *testing.T, r signalbridge.SendResult) {
			if r.Timestamp == 0 || r.UUID != signaltest.UUIDFor(alice) {
				t.Errorf("timestamp %d uuid %q", r.Timestamp, r.UUID)
			}
		}},
		{"unregistered with uuid", signaltest.Outcome{Type: signaltest.UnregisteredFailure}, signalbridge.OutcomeNotOnSignal, func(t *testing.T, r signalbridge.SendResult) {
			if r.MaybeLookupFailure {
				t.Error("MaybeLookupFailure with a uuid")
			}
		}},
		{"unregistered null uuid", signaltest.Outcome{Type: signaltest.UnregisteredFailure, NullUUID: true}, signalbridge.OutcomeNotOnSignal, func(t *testing.T, r signalbridge.SendResult) {
			if !r.MaybeLookupFailure {
				t.Error("MaybeLookupFailure not set for null uuid")
			}
		}},
		{"identity", signaltest.Outcome{Type: signaltest.IdentityFailure}, signalbridge.OutcomeIdentityChanged, nil},
		{"rate limit", signaltest.Outcome{Type: signaltest.RateLimitFailure}, signalbridge.OutcomeRateLimited, nil},
		{"captcha", signaltest.Outcome{Type: signaltest.RateLimitFailure, Token: "tok", RetryAfterSeconds: 3600}, signalbridge.OutcomeCaptchaRequired, func(t *testing.T, r signalbridge.SendResult) {
			if r.ChallengeToken != "tok" || r.RetryAfter != time.Hour {
				t.Errorf("token %q retry %v", r.ChallengeToken, r.RetryAfter)
			}
		}},
		{"network", signaltest.Outcome{Type: signaltest.NetworkFailure}, signalbridge.OutcomeTransient, nil},
		{"pre-key", signaltest.Outcome{Type: signaltest.InvalidPreKey}, signalbridge.OutcomeTransient, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, c, _ := startFake(t, signaltest.Config{Accounts: []string{acct}}, signalbridge.ClientOptions{})
			f.SetOutcome(alice, tt.outcome)
			r, err := c.Send(ctxTimeout(t, 5*time.Second), acct, alice, "Your order shipped")
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if r.Outcome != tt.want || r.Recipient != alice {
				t.Fatalf("outcome %v recipient %q, want %v", r.Outcome, r.Recipient, tt.want)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
			if got := f.Sent(); len(got) != 1 || got[0].Text != "Your order shipped" || got[0].Timestamp != r.Timestamp && r.Timestamp != 0 {
				t.Errorf("fake recorded %+v", got)
			}
		})
	}
}

func TestClient_SendMessage_partial(t *testing.T) {
	f, c, _ := startFake(t, signaltest.Config{Accounts: []string{acct}}, signalbridge.ClientOptions{})
	f.SetOutcome(bob, signaltest.Outcome{Type: signaltest.UnregisteredFailure})
	// "015112345678" is normalized by the daemon to alice's E.164: matched all the same.
	rep, err := c.SendMessage(ctxTimeout(t, 5*time.Second), acct, signalbridge.Message{Recipients: []string{bob, "015112345678"}, Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Results[0].Outcome != signalbridge.OutcomeNotOnSignal || rep.Results[1].Outcome != signalbridge.OutcomeSent {
		t.Fatalf("results %+v", rep.Results)
	}
	if rep.Results[1].Timestamp != rep.Timestamp || rep.Timestamp == 0 {
		t.Fatalf("timestamps %+v", rep)
	}
}

func TestClient_Send_errors(t *testing.T) {
	f, c, _ := startFake(t, signaltest.Config{Accounts: []string{acct, "+4930999999"}}, signalbridge.ClientOptions{})
	ctx := ctxTimeout(t, 5*time.Second)
	tests := []struct {
		name, account, recipient, text string
		want                           signalbridge.SendOutcome
		code                           int
	}{
		{"missing account with two loaded", "", alice, "x", signalbridge.OutcomeFailed, -32602},
		{"unknown account", "+4930000000", alice, "x", signalbridge.OutcomeFailed, -32602},
		{"invalid number", acct, "abc", "x", signalbridge.OutcomeFailed, -1},
		{"empty message", acct, alice, "", signalbridge.OutcomeFailed, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := c.Send(ctx, tt.account, tt.recipient, tt.text)
			var re *signalbridge.RPCError
			if !errors.As(err, &re) || re.Code != tt.code {
				t.Fatalf("err = %v, want code %d", err, tt.code)
			}
			if r.Outcome != tt.want {
				t.Fatalf("outcome %v, want %v", r.Outcome, tt.want)
			}
		})
	}
	if len(f.Sent()) != 0 {
		t.Errorf("fake sent %v", f.Sent())
	}
}

func TestClient_outOfOrderReplies(t *testing.T) {
	f, c, _ := startFake(t, signaltest.Config{}, signalbridge.ClientOptions{})
	release := make(chan struct{})
	f.SetDelay("listAccounts", time.Hour) // never, unless the fake closes
	slowDone := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, err := c.ListAccounts(ctx)
		slowDone <- err
	}()
	waitFor(t, 5*time.Second, "slow call pending", func() bool { return signalbridge.PendingCount(c) == 1 })
	for i := 0; i < 10; i++ {
		if v, err := c.Version(ctxTimeout(t, 5*time.Second)); err != nil || v != "0.13.19" {
			t.Fatalf("Version = %q, %v", v, err)
		}
	}
	select {
	case err := <-slowDone:
		t.Fatalf("slow call finished early: %v", err)
	default:
	}
	cancel()
	close(release)
	err := <-slowDone
	if !errors.Is(err, context.Canceled) || !errors.Is(err, signalbridge.ErrOutcomeUnknown) {
		t.Fatalf("cancelled call err = %v", err)
	}
	if n := signalbridge.PendingCount(c); n != 0 {
		t.Fatalf("pending map has %d entries after cancel", n)
	}
}

func TestClient_concurrentCalls(t *testing.T) {
	checkNoLeaks(t)
	_, c, _ := startFake(t, signaltest.Config{Accounts: []string{acct}}, signalbridge.ClientOptions{})
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if i%2 == 0 {
				if _, err := c.Version(ctx); err != nil {
					errs <- err
				}
				return
			}
			if accs, err := c.ListAccounts(ctx); err != nil || len(accs) != 1 {
				errs <- errors.Join(err, errors.New("listAccounts"))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := signalbridge.PendingCount(c); n != 0 {
		t.Errorf("pending %d", n)
	}
}

func TestClient_hungDaemon(t *testing.T) {
	f, c, _ := startFake(t, signaltest.Config{}, signalbridge.ClientOptions{})
	f.SetHang(true)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Version(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, signalbridge.ErrOutcomeUnknown) {
		t.Fatalf("err = %v", err)
	}
	if n := signalbridge.PendingCount(c); n != 0 {
		t.Fatalf("pending map has %d entries after the deadline", n)
	}
	f.SetHang(false)
	if _, err := c.Version(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatalf("connection unusable after a timed-out call: %v", err)
	}
}

func TestClient_Send_connectionLostAfterWrite(t *testing.T) {
	f, c, _ := startFake(t, signaltest.Config{Accounts: []string{acct}}, signalbridge.ClientOptions{})
	f.CloseOn("send", true)
	r, err := c.Send(ctxTimeout(t, 5*time.Second), acct, alice, "hi")
	if r.Outcome != signalbridge.OutcomeUnknown {
		t.Fatalf("outcome %v, want unknown", r.Outcome)
	}
	if !errors.Is(err, signalbridge.ErrOutcomeUnknown) || !errors.Is(err, signalbridge.ErrConnectionLost) {
		t.Fatalf("err = %v", err)
	}
	<-c.Done()
	if !errors.Is(c.Err(), signalbridge.ErrConnectionLost) {
		t.Fatalf("Err() = %v", c.Err())
	}
	// After the break, a call is not written: Transient, and not "unknown".
	r, err = c.Send(ctxTimeout(t, time.Second), acct, alice, "hi")
	if r.Outcome != signalbridge.OutcomeTransient || errors.Is(err, signalbridge.ErrOutcomeUnknown) || !errors.Is(err, signalbridge.ErrConnectionLost) {
		t.Fatalf("after break: outcome %v err %v", r.Outcome, err)
	}
}

func TestClient_Close(t *testing.T) {
	checkNoLeaks(t)
	f, c, _ := startFake(t, signaltest.Config{}, signalbridge.ClientOptions{})
	f.SetHang(true)
	errc := make(chan error, 1)
	go func() { _, err := c.Version(context.Background()); errc <- err }()
	waitFor(t, 5*time.Second, "call pending", func() bool { return signalbridge.PendingCount(c) == 1 })
	c.Close()
	if err := <-errc; !errors.Is(err, signalbridge.ErrOutcomeUnknown) || !errors.Is(err, signalbridge.ErrClosed) {
		t.Fatalf("in-flight call err = %v", err)
	}
	if _, err := c.Version(context.Background()); !errors.Is(err, signalbridge.ErrClosed) || errors.Is(err, signalbridge.ErrOutcomeUnknown) {
		t.Fatalf("call after Close err = %v", err)
	}
}

func TestClient_events(t *testing.T) {
	evs := make(chan signalbridge.Event, 16)
	f, c, _ := startFake(t, signaltest.Config{Accounts: []string{acct}, DeliveryReceiptAfter: 10 * time.Millisecond},
		signalbridge.ClientOptions{OnEvent: func(e signalbridge.Event) { evs <- e }})
	ctx := ctxTimeout(t, 5*time.Second)
	// A message that arrives before anyone subscribes waits (manual mode), then comes through.
	early := f.InjectText(acct, alice, signaltest.UUIDFor(alice), "hello early")
	if _, err := c.SubscribeReceive(ctx, acct); err != nil {
		t.Fatal(err)
	}
	next := func() signalbridge.Event {
		t.Helper()
		select {
		case e := <-evs:
			return e
		case <-ctx.Done():
			t.Fatal("no event")
			return nil
		}
	}
	if m, ok := next().(*signalbridge.TextMessage); !ok || m.Text != "hello early" || m.Timestamp != early {
		t.Fatalf("early message: %#v", m)
	}
	r, err := c.Send(ctx, acct, alice, "shipped")
	if err != nil {
		t.Fatal(err)
	}
	rc, ok := next().(*signalbridge.Receipt)
	if !ok || rc.Kind != signalbridge.ReceiptDelivery || len(rc.Timestamps) != 1 || rc.Timestamps[0] != r.Timestamp || rc.SenderNumber != alice {
		t.Fatalf("receipt %#v for send %d", rc, r.Timestamp)
	}
	// Ignored kinds produce nothing; the text after them proves order and that nothing came between.
	f.InjectTyping(acct, alice, "")
	f.InjectSync(acct, bob, "STOP")
	f.InjectText(acct, "", "uuid-no-number", "STOP")
	if m, ok := next().(*signalbridge.TextMessage); !ok || m.SenderNumber != "" || m.SenderUUID != "uuid-no-number" || m.Text != "STOP" {
		t.Fatalf("privacy message: %#v", m)
	}
	f.InjectUndecryptable(acct, bob, signaltest.UUIDFor(bob), "ProtocolInvalidMessageException")
	if u, ok := next().(*signalbridge.Undecryptable); !ok || u.SenderNumber != bob || u.ExceptionType != "ProtocolInvalidMessageException" {
		t.Fatalf("undecryptable: %#v", u)
	}
	f.InjectReceipt(acct, bob, "", "read", 1763740800123, 1763740800124)
	if rc, ok := next().(*signalbridge.Receipt); !ok || rc.Kind != signalbridge.ReceiptRead || len(rc.Timestamps) != 2 {
		t.Fatalf("read receipt: %#v", rc)
	}
}

func TestClient_slowEventHandlerDoesNotBlockReplies(t *testing.T) {
	block := make(chan struct{})
	var got sync.WaitGroup
	got.Add(50)
	f, c, _ := startFake(t, signaltest.Config{Accounts: []string{acct}},
		signalbridge.ClientOptions{OnEvent: func(signalbridge.Event) { <-block; got.Done() }})
	ctx := ctxTimeout(t, 5*time.Second)
	if _, err := c.SubscribeReceive(ctx, ""); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		f.InjectText(acct, alice, "", "m")
	}
	if _, err := c.Version(ctx); err != nil {
		t.Fatalf("reply blocked behind a slow event handler: %v", err)
	}
	close(block)
	got.Wait()
}

func TestClient_lineCap(t *testing.T) {
	// A raw server: writes a line above the cap, then answers. The client discards the long
	// line and keeps working.
	sock := rawServer(t, func(conn net.Conn) {
		br := bufio.NewReader(conn)
		for {
			line, err := br.ReadBytes('\n')
			if err != nil {
				return
			}
			var req struct {
				ID json.RawMessage `json:"id"`
			}
			_ = json.Unmarshal(line, &req)
			big := `{"jsonrpc":"2.0","method":"receive","params":{"envelope":{"dataMessage":{"message":"` + strings.Repeat("x", 2<<20) + `"}},"account":"+1"}}` + "\n"
			conn.Write([]byte(big))
			conn.Write([]byte(`{"jsonrpc":"2.0","method":"receive","params":{"envelope":{"sourceUuid":"u","dataMessage":{"timestamp":1,"message":"small"}},"account":"+1"}}` + "\n"))
			conn.Write([]byte(`{"jsonrpc":"2.0","result":{"version":"0.13.19"},"id":` + string(req.ID) + "}\n"))
		}
	})
	evs := make(chan signalbridge.Event, 4)
	c, err := signalbridge.Dial(context.Background(), "unix", sock, signalbridge.ClientOptions{MaxLineBytes: 1 << 20, OnEvent: func(e signalbridge.Event) { evs <- e }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v, err := c.Version(ctxTimeout(t, 5*time.Second)); err != nil || v != "0.13.19" {
		t.Fatalf("Version after oversized line = %q, %v", v, err)
	}
	if m := (<-evs).(*signalbridge.TextMessage); m.Text != "small" {
		t.Fatalf("event %#v", m)
	}
	select {
	case e := <-evs:
		t.Fatalf("oversized line delivered: %T", e)
	default:
	}
}

func TestClient_transports(t *testing.T) {
	t.Run("tcp", func(t *testing.T) {
		f := signaltest.New(signaltest.Config{})
		defer f.Close()
		addr, err := f.ListenTCP("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c, err := signalbridge.Dial(context.Background(), "tcp", addr, signalbridge.ClientOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if v, err := c.Version(ctxTimeout(t, 5*time.Second)); err != nil || v != "0.13.19" {
			t.Fatalf("%q %v", v, err)
		}
	})
	t.Run("stdio pipe", func(t *testing.T) {
		f := signaltest.New(signaltest.Config{})
		defer f.Close()
		a, b := net.Pipe()
		go f.ServeConn(b)
		c := signalbridge.NewClient(a, signalbridge.ClientOptions{})
		defer c.Close()
		if v, err := c.Version(ctxTimeout(t, 5*time.Second)); err != nil || v != "0.13.19" {
			t.Fatalf("%q %v", v, err)
		}
	})
}

func TestClient_operations(t *testing.T) {
	f, c, _ := startFake(t, signaltest.Config{Accounts: []string{acct}}, signalbridge.ClientOptions{})
	ctx := ctxTimeout(t, 5*time.Second)

	if err := c.UpdateProfile(ctx, acct, signalbridge.Profile{GivenName: "Kiosk Müller"}); err != nil {
		t.Fatal(err)
	}
	if got := f.Profile(acct)["givenName"]; got != "Kiosk Müller" {
		t.Fatalf("profile %q", got)
	}

	f.SetOutcome(bob, signaltest.Outcome{Type: signaltest.UnregisteredFailure})
	st, err := c.GetUserStatus(ctx, acct, alice, bob)
	if err != nil || len(st) != 2 || !st[0].IsRegistered || st[1].IsRegistered || st[1].UUID != nil {
		t.Fatalf("GetUserStatus = %+v, %v", st, err)
	}

	// Identity change → trust → sends again.
	f.SetOutcome(alice, signaltest.Outcome{Type: signaltest.IdentityFailure})
	if r, _ := c.Send(ctx, acct, alice, "x"); r.Outcome != signalbridge.OutcomeIdentityChanged {
		t.Fatalf("outcome %v", r.Outcome)
	}
	if err := c.Trust(ctx, acct, alice, signalbridge.TrustOptions{}); err == nil {
		t.Fatal("trust without options accepted")
	}
	if err := c.Trust(ctx, acct, alice, signalbridge.TrustOptions{TrustAllKnownKeys: true}); err != nil {
		t.Fatal(err)
	}
	if r, _ := c.Send(ctx, acct, alice, "x"); r.Outcome != signalbridge.OutcomeSent {
		t.Fatalf("after trust: %v", r.Outcome)
	}

	// Captcha → submit challenge → sends again.
	f.SetOutcome(alice, signaltest.Outcome{Type: signaltest.RateLimitFailure, Token: "tok-9", RetryAfterSeconds: 86400})
	r, _ := c.Send(ctx, acct, alice, "x")
	if r.Outcome != signalbridge.OutcomeCaptchaRequired {
		t.Fatalf("outcome %v", r.Outcome)
	}
	if err := c.SubmitRateLimitChallenge(ctx, acct, r.ChallengeToken, "not-a-captcha"); err == nil {
		t.Fatal("bad captcha accepted")
	}
	if err := c.SubmitRateLimitChallenge(ctx, acct, r.ChallengeToken, "signalcaptcha://ok"); err != nil {
		t.Fatal(err)
	}
	if r, _ := c.Send(ctx, acct, alice, "x"); r.Outcome != signalbridge.OutcomeSent {
		t.Fatalf("after challenge: %v", r.Outcome)
	}

	// Registration of a second account, then linking.
	const shop2 = "+4930777777"
	if err := c.Verify(ctx, shop2, "123456", ""); err == nil {
		t.Fatal("verify without register accepted")
	}
	if err := c.Register(ctx, shop2, signalbridge.RegisterOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(ctx, shop2, "000000", ""); err == nil {
		t.Fatal("wrong code accepted")
	}
	if err := c.Verify(ctx, shop2, "123456", ""); err != nil {
		t.Fatal(err)
	}
	uri, err := c.StartLink(ctx)
	if err != nil || !strings.HasPrefix(uri, "sgnl://linkdevice?") {
		t.Fatalf("StartLink = %q, %v", uri, err)
	}
	num, err := c.FinishLink(ctx, uri, "relay")
	if err != nil || num != signaltest.LinkedNumber {
		t.Fatalf("FinishLink = %q, %v", num, err)
	}
	accs, err := c.ListAccounts(ctx)
	if err != nil || strings.Join(accs, ",") != acct+","+shop2+","+signaltest.LinkedNumber {
		t.Fatalf("ListAccounts = %v, %v", accs, err)
	}
	// With three accounts loaded, a call without account is rejected.
	if _, err := c.Send(ctx, "", alice, "x"); !errors.Is(err, signalbridge.ErrAccount) {
		t.Fatalf("err = %v", err)
	}
}

func TestClient_Call_invalidUTF8(t *testing.T) {
	_, c, _ := startFake(t, signaltest.Config{}, signalbridge.ClientOptions{})
	err := c.Call(ctxTimeout(t, time.Second), "version", json.RawMessage("{\"a\":\"\xff\"}"), nil)
	if !errors.Is(err, signalbridge.ErrInvalidUTF8) {
		t.Fatalf("err = %v", err)
	}
	if _, err := c.Version(ctxTimeout(t, time.Second)); err != nil {
		t.Fatalf("connection dropped: %v", err)
	}
}

// A daemon that stops reading fills the socket buffer; a blocked write must still end with the
// caller's context, and the connection (now holding a partial line) is dropped.
func TestClient_blockedWrite(t *testing.T) {
	for _, mode := range []string{"deadline", "cancel"} {
		t.Run(mode, func(t *testing.T) {
			checkNoLeaks(t)
			sock := filepath.Join(shortDir(t), "s")
			l, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			accepted := make(chan net.Conn, 1)
			go func() {
				c, err := l.Accept()
				if err == nil {
					accepted <- c
				}
			}()
			c, err := signalbridge.Dial(context.Background(), "unix", sock, signalbridge.ClientOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			server := <-accepted
			defer server.Close()
			// The server reads the first bytes (the write has begun), then never reads again.
			started := make(chan struct{})
			go func() {
				buf := make([]byte, 1024)
				if _, err := io.ReadFull(server, buf); err == nil {
					close(started)
				}
			}()
			big := json.RawMessage(`{"message":"` + strings.Repeat("x", 16<<20) + `"}`)
			var ctx context.Context
			var cancel context.CancelFunc
			if mode == "deadline" {
				ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
			} else {
				ctx, cancel = context.WithCancel(context.Background())
				go func() {
					<-started
					cancel()
				}()
			}
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- c.Call(ctx, "send", big, nil) }()
			select {
			case err = <-errc:
			case <-time.After(10 * time.Second):
				t.Fatal("blocked write did not end with the context")
			}
			select {
			case <-started:
			default:
				t.Fatal("the write never began")
			}
			want := context.Canceled
			if mode == "deadline" {
				want = context.DeadlineExceeded
			}
			// The write had begun: part of the line is out, so the outcome is unknown.
			if !errors.Is(err, want) || !errors.Is(err, signalbridge.ErrOutcomeUnknown) {
				t.Fatalf("err = %v", err)
			}
			<-c.Done()
			if signalbridge.PendingCount(c) != 0 {
				t.Fatal("pending entry left")
			}
		})
	}
}

func TestClient_CallTimeout(t *testing.T) {
	f, c, _ := startFake(t, signaltest.Config{}, signalbridge.ClientOptions{CallTimeout: 100 * time.Millisecond})
	f.SetHang(true)
	_, err := c.Version(context.Background()) // no deadline of its own
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, signalbridge.ErrOutcomeUnknown) {
		t.Fatalf("err = %v", err)
	}
	if n := signalbridge.PendingCount(c); n != 0 {
		t.Fatalf("pending %d", n)
	}
}
