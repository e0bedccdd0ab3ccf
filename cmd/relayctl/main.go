// Command relayctl is the staff's view of a running relay box.
//
//	relayctl status [--config FILE]   print the box's retained status from the broker
//	relayctl version
//
// It reads the same relay.toml as relayd. The status comes from the broker's retained
// <prefix>/status message, so it works from any machine that can reach the broker.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shopkit/relay/relay/config"
	"github.com/shopkit/relay/relay/mqtt"
)

var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: relayctl status [--config FILE] | version")
		return 2
	}
	switch args[0] {
	case "version":
		v := version
		if v == "" {
			v = "dev"
		}
		fmt.Fprintln(stdout, "relayctl", v)
		return 0
	case "status":
		fs := flag.NewFlagSet("relayctl status", flag.ContinueOnError)
		fs.SetOutput(stderr)
		path := fs.String("config", config.DefaultPath, "configuration `file`")
		wait := fs.Duration("timeout", 5*time.Second, "how long to wait for the broker")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if err := status(ctx, *path, *wait, stdout); err != nil {
			fmt.Fprintln(stderr, "relayctl:", err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "relayctl: unknown command %q\n", args[0])
	return 2
}

func status(ctx context.Context, path string, wait time.Duration, out io.Writer) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	opts := paho.NewClientOptions().AddBroker(cfg.MQTT.Broker).SetClientID(cfg.MQTT.ClientID + "-relayctl").
		SetCleanSession(true).SetConnectTimeout(wait).SetCustomOpenConnectionFn(mqtt.Dial)
	// The same login and connection as relayd's (one rule for the password and for when TLS is
	// on: paho's own dialer would ignore the TLS settings on a tcp:// URL).
	pw, tc, err := mqtt.Login(cfg.MQTT)
	if err != nil {
		return err
	}
	if cfg.MQTT.Username != "" { // as relayd: a password goes only with a user name
		opts.SetUsername(cfg.MQTT.Username).SetPassword(pw)
	}
	if tc != nil {
		opts.SetTLSConfig(tc)
	}
	got := make(chan []byte, 1)
	cl := paho.NewClient(opts)
	if tok := cl.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		return fmt.Errorf("broker %s not reachable: %v", cfg.MQTT.Broker, tok.Error())
	}
	defer cl.Disconnect(100)
	cl.Subscribe(cfg.MQTT.TopicPrefix+"/"+mqtt.TopicStatus, 1, func(_ paho.Client, m paho.Message) {
		select {
		case got <- m.Payload():
		default:
		}
	})
	select {
	case p := <-got:
		var v any
		if json.Unmarshal(p, &v) != nil {
			_, err := fmt.Fprintf(out, "%s\n", p)
			return err
		}
		b, _ := json.MarshalIndent(v, "", "  ")
		_, err := fmt.Fprintf(out, "%s\n", b)
		return err
	case <-time.After(wait):
		return errors.New("no status on the broker: relayd has never connected to it")
	case <-ctx.Done():
		return ctx.Err()
	}
}
