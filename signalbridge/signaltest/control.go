package signaltest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
)

// ControlCommand is one line on the control socket of the standalone fake
// (fake-signal-cli --fake-control=PATH), for end-to-end tests that run the whole relay daemon
// against the fake and need to script it from outside the process.
//
//	{"op":"text","account":"+4930123456","number":"+4915112345678","uuid":"…","text":"STOP"}
//	{"op":"receipt","account":"…","number":"…","kind":"delivery"|"read"|"viewed","timestamps":[1763740800123]}
//	{"op":"undecryptable","account":"…","number":"…","type":"ProtocolInvalidMessageException"}
//	{"op":"outcome","recipient":"+49…","type":"UNREGISTERED_FAILURE","nullUuid":true}
//	{"op":"outcome","recipient":"+49…","type":"RATE_LIMIT_FAILURE","token":"t","retryAfterSeconds":86400}
//	{"op":"hang","on":true}          {"op":"drop"}          {"op":"add-account","account":"+49…"}
//	{"op":"sent"}                    → {"ok":true,"sent":[{"Account":…,"Recipient":…,"Text":…,"Timestamp":…,"Type":…}]}
//
// Every command is answered with one line {"ok":true} or {"ok":false,"error":"…"}.
type ControlCommand struct {
	Op                string  `json:"op"`
	Account           string  `json:"account"`
	Number            string  `json:"number"`
	UUID              string  `json:"uuid"`
	Text              string  `json:"text"`
	Kind              string  `json:"kind"`
	Timestamps        []int64 `json:"timestamps"`
	Type              string  `json:"type"`
	Recipient         string  `json:"recipient"`
	NullUUID          bool    `json:"nullUuid"`
	Token             string  `json:"token"`
	RetryAfterSeconds int64   `json:"retryAfterSeconds"`
	On                bool    `json:"on"`
}

// ControlReply answers a ControlCommand.
type ControlReply struct {
	OK        bool   `json:"ok"`
	Error     string `json:"error,omitempty"`
	Timestamp int64  `json:"timestamp,omitempty"`
	Sent      []Sent `json:"sent,omitempty"`
}

// ServeControl accepts control connections on l until Close.
func (f *Fake) ServeControl(l net.Listener) {
	f.acceptLoop(l, f.serveControlConn)
}

// serveControlConn answers control lines on one connection until EOF or Close.
func (f *Fake) serveControlConn(conn net.Conn) {
	done := make(chan struct{})
	defer close(done)
	defer conn.Close()
	go func() { // Close ends a connection blocked in Scan
		select {
		case <-f.closing:
			conn.Close()
		case <-done:
		}
	}()
	sc := bufio.NewScanner(conn)
	enc := json.NewEncoder(conn)
	for sc.Scan() {
		var cmd ControlCommand
		var rep ControlReply
		if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil {
			rep.Error = err.Error()
		} else {
			rep = f.Control(cmd)
		}
		if enc.Encode(rep) != nil {
			return
		}
	}
}

// Control executes one control command (see ControlCommand).
func (f *Fake) Control(cmd ControlCommand) ControlReply {
	switch cmd.Op {
	case "text":
		return ControlReply{OK: true, Timestamp: f.InjectText(cmd.Account, cmd.Number, cmd.UUID, cmd.Text)}
	case "receipt":
		f.InjectReceipt(cmd.Account, cmd.Number, cmd.UUID, cmd.Kind, cmd.Timestamps...)
	case "undecryptable":
		f.InjectUndecryptable(cmd.Account, cmd.Number, cmd.UUID, cmd.Type)
	case "outcome":
		f.SetOutcome(cmd.Recipient, Outcome{Type: cmd.Type, NullUUID: cmd.NullUUID, Token: cmd.Token, RetryAfterSeconds: cmd.RetryAfterSeconds})
	case "hang":
		f.SetHang(cmd.On)
	case "drop":
		f.DropConnections()
	case "add-account":
		f.AddAccount(cmd.Account)
	case "sent":
		return ControlReply{OK: true, Sent: f.Sent()}
	default:
		return ControlReply{Error: fmt.Sprintf("unknown op %q", cmd.Op)}
	}
	return ControlReply{OK: true}
}
