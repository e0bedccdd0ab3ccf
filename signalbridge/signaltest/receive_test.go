package signaltest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"testing"
	"testing/synctest"
	"time"
)

// rawPeer speaks raw lines to a fake over a pipe.
type rawPeer struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

type rawLine struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Params struct {
		Subscription *int64 `json:"subscription"`
		Result       struct {
			Envelope struct {
				DataMessage struct {
					Message string `json:"message"`
				} `json:"dataMessage"`
			} `json:"envelope"`
		} `json:"result"`
		Envelope *struct {
			DataMessage struct {
				Message string `json:"message"`
			} `json:"dataMessage"`
		} `json:"envelope"`
	} `json:"params"`
}

func (p *rawPeer) send(s string) {
	p.t.Helper()
	if _, err := p.c.Write([]byte(s + "\n")); err != nil {
		p.t.Fatal(err)
	}
}

func (p *rawPeer) read() rawLine {
	p.t.Helper()
	b, err := p.br.ReadBytes('\n')
	if err != nil {
		p.t.Fatalf("read: %v", err)
	}
	var l rawLine
	if err := json.Unmarshal(b, &l); err != nil {
		p.t.Fatalf("%s: %v", b, err)
	}
	return l
}

// text returns the message text of a notification, in either wrapper.
func (l rawLine) text() string {
	if l.Params.Envelope != nil {
		return l.Params.Envelope.DataMessage.Message
	}
	return l.Params.Result.Envelope.DataMessage.Message
}

func startRaw(t *testing.T, cfg Config) (*Fake, *rawPeer, func()) {
	f := New(cfg)
	srv, cli := net.Pipe()
	served := make(chan struct{})
	go func() { defer close(served); f.ServeConn(srv) }()
	return f, &rawPeer{t: t, c: cli, br: bufio.NewReader(cli)}, func() {
		cli.Close()
		f.Close()
		<-served
	}
}

// TestFake_unsubscribeHoldsMessages: after the unsubscribe reply no notification of that
// subscription follows; messages injected meanwhile wait and come, in order, after the next
// subscribeReceive, under its new id.
func TestFake_unsubscribeHoldsMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const acc = "+4930123456"
		f, p, stop := startRaw(t, Config{Accounts: []string{acc}, DeliveryInterval: time.Millisecond})
		defer stop()
		p.send(`{"jsonrpc":"2.0","method":"subscribeReceive","id":"s1"}`)
		var id1 int64
		if l := p.read(); json.Unmarshal(l.Result, &id1) != nil {
			t.Fatalf("subscribe: %+v", l)
		}
		f.InjectText(acc, "+4915112345678", "", "m0")
		if l := p.read(); l.Method != "receive" || l.text() != "m0" || *l.Params.Subscription != id1 {
			t.Fatalf("first message: %+v", l)
		}
		p.send(fmt.Sprintf(`{"jsonrpc":"2.0","method":"unsubscribeReceive","params":{"subscription":%d},"id":"u1"}`, id1))
		if l := p.read(); string(l.ID) != `"u1"` || l.Error != nil {
			t.Fatalf("unsubscribe reply: %+v", l)
		}
		for i := 1; i <= 5; i++ {
			f.InjectText(acc, "+4915112345678", "", fmt.Sprintf("m%d", i))
		}
		<-time.After(time.Minute) // a fake minute: nothing may be delivered while unsubscribed
		synctest.Wait()
		if f.Backlog() != 5 || f.Subscribers() != 0 {
			t.Fatalf("while unsubscribed: backlog %d, subscribers %d; want 5, 0", f.Backlog(), f.Subscribers())
		}
		p.send(`{"jsonrpc":"2.0","method":"subscribeReceive","id":"s2"}`)
		var id2 int64
		if l := p.read(); string(l.ID) != `"s2"` || json.Unmarshal(l.Result, &id2) != nil || id2 <= id1 {
			t.Fatalf("resubscribe: %+v", l)
		}
		for i := 1; i <= 5; i++ {
			l := p.read()
			if want := fmt.Sprintf("m%d", i); l.text() != want || *l.Params.Subscription != id2 {
				t.Fatalf("held message %d: %q on subscription %d, want %q on %d", i, l.text(), *l.Params.Subscription, want, id2)
			}
		}
		if f.Backlog() != 0 || f.Requests("unsubscribeReceive") != 1 || f.Requests("subscribeReceive") != 2 {
			t.Errorf("backlog %d, requests %d/%d", f.Backlog(), f.Requests("subscribeReceive"), f.Requests("unsubscribeReceive"))
		}
	})
}

// TestFake_receiveModes: on-start loses what arrives with nobody connected; on-connection keeps
// it for the first connection (reference 1.4).
func TestFake_receiveModes(t *testing.T) {
	const acc = "+4930123456"
	tests := []struct {
		mode string
		want []string
	}{
		{"on-start", []string{"after"}},
		{"on-connection", []string{"before", "after"}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := New(Config{Accounts: []string{acc}, ReceiveMode: tt.mode})
				f.InjectText(acc, "+4915112345678", "", "before")
				// The receive loop starts with the first connection; in on-start mode the
				// daemon has been receiving since it started, so drop what came before.
				srv, cli := net.Pipe()
				served := make(chan struct{})
				go func() { defer close(served); f.ServeConn(srv) }()
				defer func() { cli.Close(); f.Close(); <-served }()
				p := &rawPeer{t: t, c: cli, br: bufio.NewReader(cli)}
				var got []string
				done := make(chan struct{})
				go func() {
					defer close(done)
					for range tt.want {
						got = append(got, p.read().text())
					}
				}()
				synctest.Wait()
				f.InjectText(acc, "+4915112345678", "", "after")
				<-done
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Errorf("got %q, want %q", got, tt.want)
				}
			})
		})
	}
}
