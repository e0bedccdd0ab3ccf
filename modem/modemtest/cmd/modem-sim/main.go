// Command modem-sim runs the modem simulator of relay's modem/modemtest on a pseudo-terminal,
// so relayd (and `make run`) can use a "USB modem" on a machine without one.
//
//	modem-sim -link /tmp/relay-modem [-sim ready|pin|missing] [-pin 1234] [-reports]
//
// It prints the slave path (/dev/pts/N) on stdout, keeps -link pointing at it (also across
// simulated resets), and reads commands on stdin, one per line:
//
//	sms <from> <text...>   receive an SMS (long texts arrive as concatenated parts)
//	unplug | replug        pull the modem off the bus / bring it back under a new name
//	stall <n> | unstall    ignore the next n commands (-1: all) / stop ignoring
//	signal <0..31|99>      set AT+CSQ
//	reg <0..5>             set the registration state (emits +CREG/+CEREG)
//	simout | simin         remove / insert the SIM
//	flood <n> <replies>    n URCs between reply lines of the next replies
//	failsend <cause>       the next AT+CMGS fails with +CMS ERROR: <cause>
//	failpart <n> <cause>   the next part n of an SMS (1: also a single SMS) fails with +CMS ERROR
//	stallpdu <n>           the next n SMS are sent but their +CMGS answer never comes
//	unplugpdu              the next SMS is sent, then the modem drops off the bus unanswered
//	sent                   print the texts sent so far
//
// It stops on SIGINT/SIGTERM.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/shopkit/relay/modem/modemtest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "modem-sim:", err)
		os.Exit(1)
	}
}

func run() error {
	link := flag.String("link", "", "keep a symlink at this path pointing at the current pty slave")
	simState := flag.String("sim", "ready", "SIM state: ready, pin or missing")
	pin := flag.String("pin", "1234", "the PIN the SIM wants with -sim pin")
	own := flag.String("own", "", "own number the SIM reports (AT+CNUM)")
	reports := flag.Bool("reports", true, "answer status-report requests with +CDS")
	flag.Parse()
	opts := modemtest.Options{Link: *link, PIN: *pin, Own: *own, Reports: *reports}
	switch *simState {
	case "ready":
		opts.SIM = modemtest.SIMReady
	case "pin":
		opts.SIM = modemtest.SIMPIN
	case "missing":
		opts.SIM = modemtest.SIMMissing
	default:
		return fmt.Errorf("-sim %q: want ready, pin or missing", *simState)
	}
	sim, err := modemtest.New(opts)
	if err != nil {
		return err
	}
	defer sim.Close()
	fmt.Println(sim.Path())

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
		// stdin closed (e.g. started with </dev/null): keep running until a signal.
	}()
	for {
		select {
		case <-sigs:
			return nil
		case l := <-lines:
			if err := command(sim, l); err != nil {
				fmt.Fprintln(os.Stderr, "modem-sim:", err)
			}
		}
	}
}

// numeric are the commands that take integer arguments: how many, and what they do.
var numeric = map[string]struct {
	args int
	do   func(sim *modemtest.Sim, a []int)
}{
	"stall":    {1, func(sim *modemtest.Sim, a []int) { sim.Stall(a[0]) }},
	"signal":   {1, func(sim *modemtest.Sim, a []int) { sim.SetSignal(a[0]) }},
	"reg":      {1, func(sim *modemtest.Sim, a []int) { sim.SetRegistration(a[0]) }},
	"flood":    {2, func(sim *modemtest.Sim, a []int) { sim.Flood(a[0], a[1]) }},
	"failsend": {1, func(sim *modemtest.Sim, a []int) { sim.FailSends(a[0]) }},
	"failpart": {2, func(sim *modemtest.Sim, a []int) { sim.FailPart(a[0], a[1]) }},
	"stallpdu": {1, func(sim *modemtest.Sim, a []int) { sim.StallAfterPDU(a[0]) }},
}

func command(sim *modemtest.Sim, line string) error {
	f := strings.Fields(line)
	if len(f) == 0 {
		return nil
	}
	if c, ok := numeric[f[0]]; ok {
		if len(f)-1 < c.args {
			return fmt.Errorf("%s: missing argument", f[0])
		}
		a := make([]int, c.args)
		for i := range a {
			n, err := strconv.Atoi(f[1+i])
			if err != nil {
				return err
			}
			a[i] = n
		}
		c.do(sim, a)
		return nil
	}
	switch f[0] {
	case "sms":
		if len(f) < 3 {
			return fmt.Errorf("usage: sms <from> <text>")
		}
		idx, err := sim.Deliver(f[1], strings.Join(f[2:], " "))
		if err == nil {
			fmt.Println("stored at", idx)
		}
		return err
	case "unplug":
		sim.Unplug()
	case "replug":
		if err := sim.Replug(); err != nil {
			return err
		}
		fmt.Println(sim.Path())
	case "unstall":
		sim.Unstall()
	case "simout":
		sim.RemoveSIM()
	case "simin":
		sim.InsertSIM()
	case "unplugpdu":
		sim.UnplugAfterPDU()
	case "sent":
		for _, t := range sim.SentTexts() {
			fmt.Println(t)
		}
	default:
		return fmt.Errorf("unknown command %q", f[0])
	}
	return nil
}
