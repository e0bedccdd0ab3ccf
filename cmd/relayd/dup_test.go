package main

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// TestE2E_DuplicateIDs publishes one job id 10,000 times (QoS 1, pipelined): exactly one send,
// one accepted, 9,999 duplicate events. With -short it publishes 2,000.
func TestE2E_DuplicateIDs(t *testing.T) {
	t.Parallel()
	n := 10000
	if testing.Short() {
		n = 2000
	}
	e := newEnv(t, opts{})
	to := num(8, 1)
	b, _ := json.Marshal(textJob("dup-storm", to))
	start := time.Now()
	toks := make([]paho.Token, 0, 500)
	for i := 0; i < n; i++ {
		toks = append(toks, e.shop.c.Publish(prefix+"/jobs", 1, false, b))
		if len(toks) == cap(toks) || i == n-1 {
			for _, tok := range toks {
				if !tok.WaitTimeout(long) || tok.Error() != nil {
					t.Fatalf("publish: no PUBACK: %v", tok.Error())
				}
			}
			toks = toks[:0]
		}
	}
	published := time.Since(start)
	counts := map[string]int{}
	e.shop.wait(t, 60*time.Second, fmt.Sprintf("%d duplicate events and the send", n-1), func(ms []message) bool {
		clear(counts)
		for _, m := range ms {
			if m.ev.ID == "dup-storm" {
				counts[m.ev.Event]++
			}
		}
		return counts["duplicate"] >= n-1 && counts["sent"] >= 1
	})
	total := time.Since(start)
	if counts["accepted"] != 1 || counts["sent"] != 1 || counts["duplicate"] != n-1 {
		t.Errorf("events of dup-storm: %v, want accepted 1, sent 1, duplicate %d", counts, n-1)
	}
	sends := 0
	for _, x := range e.ctl.sent(t) {
		if jobOf(x) == "dup-storm" {
			sends++
		}
	}
	if sends != 1 {
		t.Errorf("dup-storm sent %d times, want 1", sends)
	}
	t.Logf("%d publishes of one id: PUBACKed in %v, all %d duplicate events received after %v", n, published.Round(time.Millisecond), n-1, total.Round(time.Millisecond))
}
