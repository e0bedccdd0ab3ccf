package signalbridge_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/shopkit/relay/signalbridge"
	"github.com/shopkit/relay/signalbridge/signaltest"
)

// benchCalls runs b.N calls spread over inflight goroutines and reports calls/s; the first
// error stops its goroutine and fails the benchmark.
func benchCalls(b *testing.B, inflight int, call func() error) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < inflight; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < b.N; i += inflight {
				if err := call(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
}

// BenchmarkClient_Version measures calls/s against the in-process fake over a real Unix socket
// with 1 and 16 calls in flight. allocs/op counts both the client and the fake (same process).
func BenchmarkClient_Version(b *testing.B) {
	for _, inflight := range []int{1, 16} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) {
			_, c, _ := startFake(b, signaltest.Config{}, signalbridge.ClientOptions{})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			benchCalls(b, inflight, func() error {
				_, err := c.Version(ctx)
				return err
			})
		})
	}
}

// BenchmarkClient_Send is the same for send (one recipient, success), the relay's hot call.
func BenchmarkClient_Send(b *testing.B) {
	_, c, _ := startFake(b, signaltest.Config{Accounts: []string{acct}}, signalbridge.ClientOptions{})
	ctx := context.Background()
	benchCalls(b, 16, func() error {
		if r, err := c.Send(ctx, acct, alice, "Your order 4711 has shipped"); err != nil || r.Outcome != signalbridge.OutcomeSent {
			return fmt.Errorf("outcome %v: %v", r.Outcome, err)
		}
		return nil
	})
}

// BenchmarkClient_VersionRawServer isolates the client's cost: the server is a minimal loop
// that answers every line with a canned reply carrying the request's id (no JSON decoding).
func BenchmarkClient_VersionRawServer(b *testing.B) {
	sock := rawServer(b, func(conn net.Conn) {
		br := bufio.NewReaderSize(conn, 64<<10)
		bw := bufio.NewWriterSize(conn, 64<<10)
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			i := bytes.LastIndex(line, []byte(`"id":`))
			j := bytes.LastIndexByte(line, '}')
			bw.WriteString(`{"jsonrpc":"2.0","result":{"version":"0.13.19"},"id":`)
			bw.Write(line[i+5 : j])
			bw.WriteString("}\n")
			if br.Buffered() == 0 {
				bw.Flush()
			}
		}
	})
	c, err := signalbridge.Dial(context.Background(), "unix", sock, signalbridge.ClientOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	benchCalls(b, 16, func() error {
		_, err := c.Version(ctx)
		return err
	})
}
