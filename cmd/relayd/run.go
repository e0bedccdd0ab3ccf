package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/shopkit/relay/buffer"
	"github.com/shopkit/relay/modem"
	"github.com/shopkit/relay/relay"
	"github.com/shopkit/relay/relay/backoff"
	"github.com/shopkit/relay/relay/config"
	"github.com/shopkit/relay/relay/consent"
	"github.com/shopkit/relay/relay/gpio"
	"github.com/shopkit/relay/relay/led"
	"github.com/shopkit/relay/relay/metrics"
	"github.com/shopkit/relay/relay/mqtt"
	"github.com/shopkit/relay/relay/power"
	"github.com/shopkit/relay/relay/store"
	"github.com/shopkit/relay/relay/template"
	"github.com/shopkit/relay/signalbridge"
	"github.com/shopkit/relay/systemd"
)

type runCommand struct{ configCommand }

func (c *runCommand) ParseFlags(args []string) error { return c.parseFlags("run", args) }

func (c *runCommand) Run(ctx context.Context) error {
	cfg, err := config.Load(c.path)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, c.stderr)
	log.Info("relayd starting", "version", versionString(), "config", c.path)
	err = runDaemon(ctx, cfg, log)
	if err != nil {
		log.Error("relayd stopped", "err", err)
	} else {
		log.Info("relayd stopped")
	}
	return err
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	lvl := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}[c.Level]
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// runDaemon wires the components and runs them until ctx is cancelled (SIGTERM). Order of the
// stop: intake first (no new acknowledgements), then the dispatcher finishes the sends in
// flight, the MQTT client publishes what is spooled and the final status, signal-cli and the
// modem stop, and the outbox closes last.
func runDaemon(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	health := relay.NewHealth(nil)
	// Until each part reports, the box is starting (the LED says so, READY is not sent yet).
	health.Set(relay.ComponentMQTT, relay.StateStarting, "connecting")
	health.Set(relay.ComponentSignal, relay.StateStarting, "starting signal-cli")
	notifier := systemd.NewNotifier(log)
	health.Subscribe(func(s relay.Summary) {
		_ = notifier.Status(s.Line())
		log.Info("health", "state", s.Overall, "led", s.Indicator, "summary", s.Line())
	})

	// Prometheus /metrics: bound first, so a taken port fails start-up before anything runs;
	// served from just before READY, once every part it reads exists.
	metricsSrv, err := metrics.Listen(cfg.Metrics.Listen, log)
	if err != nil {
		return err
	}
	defer metricsSrv.Close() // on an early error return; Serve has shut it down otherwise

	var key []byte
	if f := cfg.Buffer.EncryptionKeyFile; f != "" {
		k, err := config.ReadSecret(f)
		if err != nil {
			return err
		}
		key = k
	}
	if err := os.MkdirAll(cfg.Buffer.Dir, 0o700); err != nil {
		return fmt.Errorf("outbox directory: %w", err)
	}
	// A lease outlasts the longest call to signal-cli, plus the margin the dispatcher keeps
	// for recording the outcome.
	lease := max(5*time.Minute, cfg.Signal.CallTimeout.D()+time.Minute)
	b, err := buffer.Open(cfg.Buffer.Dir, buffer.Options{DedupWindow: cfg.Buffer.DedupWindow.D(), EncryptionKey: key, LeaseTimeout: lease,
		Logger: log.With("component", "buffer")})
	if err != nil {
		return fmt.Errorf("opening the outbox: %w", err)
	}
	closeOutbox := closeOnce(b.Close)
	defer func() { _ = closeOutbox() }() // on an early error return; parts.stopAll closes it otherwise
	if q := b.Quarantined(); q != "" {
		health.Set(relay.ComponentOutbox, relay.StateStaffNeeded, "a corrupt outbox was moved aside to "+q)
	} else {
		health.Set(relay.ComponentOutbox, relay.StateOK, "")
	}
	st := store.New(b, log)
	// Every event stored for publication is counted by type, where it is stored: the event
	// sink, the outbox's state changes and the sent index's receipts.
	counts := metrics.NewEvents()
	events, outbox, sent := counts.Sink(st), counts.Outbox(st), counts.SentIndex(st)

	loc, _ := time.LoadLocation(cfg.Shop.TimeZone) // validated by config
	qs, qe, _ := config.ParseQuietHours(cfg.Policy.QuietHours)
	pol, err := consent.New(consent.Config{Store: st.Consent(), Shop: cfg.Shop.Name, DefaultLang: cfg.Shop.DefaultLang,
		TransactionalWithoutConsent: !cfg.Policy.RequireConsent, OptInTimeout: cfg.Policy.OptInTimeout.D(), Logger: log})
	if err != nil {
		return err
	}
	tcfg := template.Config{Shop: cfg.Shop.Name, Sender: template.Sender(cfg.Templates.Sender), DefaultLang: cfg.Shop.DefaultLang, Logger: log}
	if fi, err := os.Stat(cfg.Templates.Dir); err == nil && fi.IsDir() {
		tcfg.Dir = cfg.Templates.Dir
	}
	tr, err := template.New(tcfg)
	if err != nil {
		return err
	}
	keeper := relay.ConsentPolicy(pol)

	// Signal: the supervisor owns signal-cli; its incoming events are handled in order.
	// A small channel: signalbridge's own queue is the bounded one (it pauses the subscription
	// at its high mark so that the rest waits at signal-cli), and a big channel here would
	// hide a slow store from it.
	incoming := make(chan signalbridge.Event, 16)
	scfg := signalbridge.SupervisorConfig{ConfigDir: cfg.Signal.ConfigDir, SocketPath: cfg.Signal.Socket,
		JavaOptions: cfg.Signal.JavaOptions, Account: cfg.Signal.Account, Logger: log,
		ReadyTimeout: cfg.Signal.StartTimeout.D(), ProbeInterval: cfg.Signal.ProbeEvery.D(), CallTimeout: cfg.Signal.CallTimeout.D(),
		// signal-cli has already acknowledged an incoming message to Signal's servers when it
		// reaches us (receive-mode manual acknowledges on receipt), so nothing may be dropped:
		// the handoff blocks (signalbridge queues behind it without delaying replies, up to
		// its high mark; then it unsubscribes until the queue drains).
		OnEvent: func(e signalbridge.Event) { incoming <- e }}
	if cfg.Signal.External {
		scfg.Network, scfg.Address = "unix", cfg.Signal.Socket
	} else {
		scfg.Binary = cfg.Signal.CLI
	}
	sup, err := signalbridge.NewSupervisor(scfg)
	if err != nil {
		return err
	}
	sig := signalSender{sup: sup, account: cfg.Signal.Account, timeout: cfg.Signal.CallTimeout.D()}

	var smsSender relay.SMS
	var mdm *modem.Modem
	var resp *relay.Responder
	if cfg.Modem.Enabled {
		mdm, err = modem.New(modem.Config{Device: cfg.Modem.Device,
			USB:  modem.USBMatch{VID: cfg.Modem.USBVendor, PID: cfg.Modem.USBProduct, Serial: cfg.Modem.USBSerial},
			Baud: cfg.Modem.Baud, PINFile: cfg.Modem.PINFile, HealthEvery: cfg.Modem.HealthEvery.D(), Logger: log,
			OnSMS: func(ctx context.Context, s modem.SMS) error {
				return resp.HandleMessage(ctx, relay.Message{From: s.From, Text: s.Text, At: s.At, Channel: relay.ChannelSMS})
			}})
		if err != nil {
			return err
		}
		smsSender = smsAdapter{mdm}
	}

	disp := relay.NewDispatcher(relay.DispatcherConfig{Concurrency: cfg.Policy.Concurrency, RatePerMinute: cfg.Policy.RatePerMinute,
		RateBurst: cfg.Policy.RateBurst, RetryMin: cfg.Policy.RetryMin.D(), RetryMax: cfg.Policy.RetryMax.D(),
		SMSFallback: cfg.Policy.SMSFallback, TrustNewIdentity: cfg.Signal.TrustPolicy == "always",
		Quiet: relay.QuietHours{Start: qs, End: qe, Location: loc, HighPasses: cfg.Policy.QuietHoursHighPass}},
		relay.DispatcherDeps{Outbox: outbox, Signal: sig, SMS: smsSender, Consent: keeper,
			Health: health, Logger: log})
	intake := relay.NewIntake(relay.JobDefaults{Lang: cfg.Shop.DefaultLang, Expiry: cfg.Policy.DefaultExpiry.D()},
		relay.IntakeDeps{Outbox: outbox, Events: events, Renderer: relay.TemplateRenderer(tr), Consent: keeper, Logger: log, OnAccepted: disp.Kick})
	resp = relay.NewResponder(intake, keeper, sent, events, st, log, nil)

	mcfg := mqtt.Config{Broker: cfg.MQTT.Broker, ClientID: cfg.MQTT.ClientID, TopicPrefix: cfg.MQTT.TopicPrefix,
		Username: cfg.MQTT.Username, KeepAlive: cfg.MQTT.KeepAlive.D(), MaxReconnect: cfg.MQTT.MaxReconnectInterval.D(),
		OnStoreError: func(err error) { // rule 1: a job the outbox cannot store makes the box degraded
			if err != nil {
				health.Set(relay.ComponentOutbox, relay.StateDegraded, "cannot store jobs: "+err.Error())
			} else {
				health.Set(relay.ComponentOutbox, relay.StateOK, "")
			}
		}}
	if mcfg.Password, mcfg.TLS, err = mqtt.Login(cfg.MQTT); err != nil {
		return err
	}
	mq := mqtt.New(mcfg, intake, st, log, func(up bool, reason string) {
		if up {
			health.Set(relay.ComponentMQTT, relay.StateOK, "")
		} else {
			health.Set(relay.ComponentMQTT, relay.StateDegraded, "broker: "+reason)
		}
	})
	st.OnSpool(mq.Notify)

	// Run everything. Each part stops on its own context, in the order of the shutdown steps.
	p := &parts{log: log, health: health, intake: intake, mq: mq, closeOutbox: closeOutbox,
		status: func() []byte { return statusPayload(cfg, health, sup, mdm, st) }, errc: make(chan error, 1)}
	p.signal = p.start("signal-cli", sup.Run)
	if mdm != nil {
		p.modem = p.start("modem", mdm.Run)
	}
	p.incoming = p.start("incoming", func(ctx context.Context) error { return handleIncoming(ctx, incoming, resp, log) })
	p.dispatcher = p.start("dispatcher", disp.Run)
	p.mqtt = p.start("mqtt", mq.Run)
	p.background = p.start("health", func(ctx context.Context) error {
		return watchHealth(ctx, cfg, health, sup, mdm, st, mq, disp, log)
	})
	go func() {
		_ = notifier.RunWatchdog(p.background.ctx, func() bool { return health.Summary().Overall != relay.ShuttingDown })
	}()

	var watcher *power.Watcher
	if cfg.GPIO.Enabled {
		var leds *led.Driver
		watcher, leds, err = openHardware(cfg, p, health, st, log)
		if err != nil {
			p.stopAll()
			return err
		}
		if leds != nil {
			p.start("led", leds.Run)
		}
		p.power = p.start("power", watcher.Run)
	}
	met := metrics.New(counts, metricSources(health, b, st, sup, mdm, mq, intake, resp, watcher), log)
	p.start("metrics", func(ctx context.Context) error { return metricsSrv.Serve(ctx, met.Handler()) })
	if err := notifier.Ready(); err != nil {
		log.Warn("sd_notify READY failed", "err", err)
	}
	log.Info("relayd ready", "broker", cfg.MQTT.Broker, "outbox", cfg.Buffer.Dir, "queued", st.Depth())

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-p.errc:
		if errors.Is(runErr, power.ErrShutdown) {
			// The UPS watcher ran the whole shutdown (and the power-off command).
			runErr = nil
		}
	}
	_ = notifier.Stopping()
	p.stopAll()
	return runErr
}

// part is one running component: cancel stops it, done closes when its Run returned.
type part struct {
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func (pt *part) stop(ctx context.Context) error {
	if pt == nil {
		return nil
	}
	pt.cancel()
	select {
	case <-pt.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// parts are relayd's running components, and the steps of a clean shutdown over them (the UPS
// watcher calls those steps; a SIGTERM runs the same ones through stopAll). Every step is
// idempotent: a power shutdown and a SIGTERM may both run them.
type parts struct {
	log         *slog.Logger
	health      *relay.Health
	intake      *relay.Intake
	mq          *mqtt.Client
	closeOutbox func() error
	status      func() []byte
	errc        chan error

	signal, modem, incoming, dispatcher, mqtt, background, power *part
	all                                                          []*part
}

var _ power.Steps = (*parts)(nil)

func (p *parts) start(name string, run func(context.Context) error) *part {
	ctx, cancel := context.WithCancel(context.Background())
	pt := &part{ctx: ctx, cancel: cancel, done: make(chan struct{})}
	p.all = append(p.all, pt)
	go func() {
		defer close(pt.done)
		err := run(ctx)
		if err == nil || (ctx.Err() != nil && !errors.Is(err, power.ErrShutdown)) {
			return
		}
		select { // the first failure stops relayd; later ones are only logged
		case p.errc <- fmt.Errorf("%s: %w", name, err):
		default:
			p.log.Error("part stopped", "part", name, "err", err)
		}
	}()
	return pt
}

// StopIntake implements power.Steps: no new acknowledgements; staff and the backend see the
// shutdown begin.
func (p *parts) StopIntake(ctx context.Context) error {
	p.intake.Stop()
	p.health.SetShuttingDown()
	p.mq.SetStatus(p.status())
	return nil
}

// DrainInFlight implements power.Steps: the dispatcher takes no new jobs and finishes the sends
// in flight.
func (p *parts) DrainInFlight(ctx context.Context) error { return p.dispatcher.stop(ctx) }

// CloseOutbox implements power.Steps. Everything that writes to the outbox stops first, in the
// order that loses nothing: signal-cli and the modem (no new incoming messages), the incoming
// handler (drains what they delivered), the MQTT client (publishes the spooled events and the
// status while the outbox can still be read). The later steps then find their parts stopped.
func (p *parts) CloseOutbox(ctx context.Context) error {
	return errors.Join(p.StopSignal(ctx), p.incoming.stop(ctx), p.PublishShuttingDown(ctx), p.closeOutbox())
}

// StopSignal implements power.Steps (and stops the modem beside it).
func (p *parts) StopSignal(ctx context.Context) error {
	return errors.Join(p.signal.stop(ctx), p.modem.stop(ctx))
}

// PublishShuttingDown implements power.Steps: the MQTT client publishes the status and says
// goodbye (what events it could not send stay in the spool on disk for the next start).
func (p *parts) PublishShuttingDown(ctx context.Context) error {
	p.mq.SetStatus(p.status())
	return p.mqtt.stop(ctx)
}

// stopAll runs the shutdown steps (each bounded), then stops what is left.
func (p *parts) stopAll() {
	step := func(name string, d time.Duration, f func(context.Context) error) {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		if err := f(ctx); err != nil {
			p.log.Warn("shutdown step did not finish", "step", name, "err", err)
		}
	}
	step("stop_intake", time.Second, p.StopIntake)
	step("drain_in_flight", 30*time.Second, p.DrainInFlight)
	step("close_outbox", 40*time.Second, p.CloseOutbox)
	for _, pt := range p.all {
		step("stop", 10*time.Second, pt.stop)
	}
}

func closeOnce(f func() error) func() error {
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() { err = f() })
		return err
	}
}

// openHardware opens the UPS lines and the LED and returns the power watcher and LED driver.
func openHardware(cfg config.Config, p *parts, health *relay.Health, st *store.Store, log *slog.Logger) (*power.Watcher, *led.Driver, error) {
	bias, err := gpio.ParseBias(cfg.GPIO.Bias)
	if err != nil {
		return nil, nil, err
	}
	opts := gpio.Options{Consumer: "relayd", Logger: log}
	in := func(line string) gpio.LineConfig {
		return gpio.LineConfig{Chip: cfg.GPIO.Chip, Line: line, ActiveLow: cfg.GPIO.ActiveLow, Bias: bias, Debounce: cfg.GPIO.Debounce.D()}
	}
	onBattery, err := gpio.OpenInput(in(cfg.GPIO.OnBatteryLine), opts)
	if err != nil {
		return nil, nil, fmt.Errorf("gpio.on_battery_line: %w", err)
	}
	po := power.Options{Logger: log,
		Journal: func(e power.Entry) {
			detail := e.Detail
			if e.Err != nil {
				detail += ": " + e.Err.Error()
			}
			_ = st.Record(context.Background(), relay.JournalEntry{At: e.At, Event: relay.EventType("power_" + e.Event), Code: e.Step.String(), Detail: detail})
		},
		OnChange: func(s power.Status) { health.SetOnBattery(s.State != power.Mains) }}
	if cfg.GPIO.BatteryLowLine != "" {
		low, err := gpio.OpenInput(in(cfg.GPIO.BatteryLowLine), opts)
		if err != nil {
			return nil, nil, fmt.Errorf("gpio.battery_low_line: %w", err)
		}
		po.BatteryLow = low
	}
	w, err := power.New(power.Config{Debounce: cfg.Power.GlitchFilter.D(), Grace: cfg.Power.Grace.D(),
		DrainDeadline: cfg.Power.ShutdownDeadline.D(), PowerOffCommand: cfg.Power.PowerOff, RebootCommand: cfg.Power.Reboot},
		onBattery, p, po)
	if err != nil {
		return nil, nil, err
	}
	if cfg.GPIO.LEDLine == "" {
		return w, nil, nil
	}
	out, err := gpio.OpenOutput(gpio.LineConfig{Chip: cfg.GPIO.Chip, Line: cfg.GPIO.LEDLine, ActiveLow: cfg.GPIO.LEDActiveLow}, true, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("gpio.led_line: %w", err)
	}
	d := led.New(out, log)
	patterns := map[relay.Indicator]led.Pattern{relay.IndicatorHealthy: led.Healthy, relay.IndicatorStarting: led.Starting,
		relay.IndicatorDegraded: led.Degraded, relay.IndicatorStaffNeeded: led.StaffNeeded, relay.IndicatorOnBattery: led.OnBattery,
		relay.IndicatorShuttingDown: led.ShuttingDown}
	d.Set(patterns[health.Summary().Indicator])
	health.Subscribe(func(s relay.Summary) { d.Set(patterns[s.Indicator]) })
	return w, d, nil
}

// handleIncoming turns signal-cli's notifications into receipts and customer messages, in
// order. A message that cannot be handled (the outbox failing) is tried again, never dropped:
// a lost STOP would mean messages to a customer who opted out.
func handleIncoming(ctx context.Context, in <-chan signalbridge.Event, resp *relay.Responder, log *slog.Logger) error {
	handle := func(ctx context.Context, e signalbridge.Event) error {
		switch e := e.(type) {
		case *signalbridge.Receipt:
			if e.Kind == signalbridge.ReceiptDelivery || e.Kind == signalbridge.ReceiptRead {
				return resp.HandleReceipt(ctx, relay.Receipt{Read: e.Kind == signalbridge.ReceiptRead, From: e.SenderNumber,
					Timestamps: e.Timestamps, At: time.UnixMilli(e.When)})
			}
		case *signalbridge.TextMessage:
			if e.GroupID != "" {
				return nil // the shop's number is not for group chats
			}
			return resp.HandleMessage(ctx, relay.Message{From: e.SenderNumber, FromUUID: e.SenderUUID, Text: e.Text,
				At: time.UnixMilli(e.Timestamp), Channel: relay.ChannelSignal, SignalTimestamp: e.Timestamp})
		}
		return nil
	}
	for {
		var e signalbridge.Event
		select {
		case e = <-in:
		case <-ctx.Done():
			// Stopping: signal-cli was stopped first, so what is queued is all there is.
			for {
				select {
				case e := <-in:
					if err := handle(context.Background(), e); err != nil {
						log.Error("incoming Signal event not handled at shutdown", "err", err)
					}
				default:
					return nil
				}
			}
		}
		for try := 0; ; try++ {
			err := handle(context.WithoutCancel(ctx), e)
			if err == nil {
				break
			}
			if ctx.Err() != nil && try >= 2 {
				log.Error("incoming Signal event dropped at shutdown", "err", err)
				break
			}
			wait := backoff.Delay(try, time.Second, time.Minute, 1) // 1 s doubling to 1 min, no jitter
			log.Error("incoming Signal event not handled; trying again", "err", err, "in", wait)
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
		}
	}
}

// watchHealth polls the supervisors' own health into the roll-up and keeps the retained status
// current.
func watchHealth(ctx context.Context, cfg config.Config, h *relay.Health, sup *signalbridge.Supervisor, m *modem.Modem, st *store.Store, mq *mqtt.Client, disp *relay.Dispatcher, log *slog.Logger) error {
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	var last []byte
	var lastAt, lastPrune time.Time
	for {
		sh := sup.Health()
		if paused, _ := disp.Paused(); paused && sh.State == signalbridge.StateUp {
			// The supervisor leaves captcha_required only when a challenge was solved.
			disp.Resume()
		}
		switch sh.State {
		case signalbridge.StateUp:
			h.Set(relay.ComponentSignal, relay.StateOK, "")
		case signalbridge.StateStarting:
			h.Set(relay.ComponentSignal, relay.StateStarting, sh.Reason)
		case signalbridge.StateUnregistered, signalbridge.StateCaptchaRequired:
			h.Set(relay.ComponentSignal, relay.StateStaffNeeded, string(sh.State)+": "+sh.Reason)
		default:
			h.Set(relay.ComponentSignal, relay.StateDegraded, "signal-cli "+string(sh.State)+": "+sh.Reason)
		}
		if m != nil {
			mh := m.Health()
			switch {
			case mh.NeedsStaff:
				h.Set(relay.ComponentModem, relay.StateStaffNeeded, "modem needs staff: "+mh.Reason)
			case mh.State == "ready":
				h.Set(relay.ComponentModem, relay.StateOK, "")
			case mh.State == "starting":
				h.Set(relay.ComponentModem, relay.StateStarting, "")
			default:
				h.Set(relay.ComponentModem, relay.StateDegraded, "modem "+string(mh.State)+": "+mh.Reason)
			}
		}
		if time.Since(lastPrune) > 24*time.Hour {
			prune(ctx, cfg, st, log)
			lastPrune = time.Now()
		}
		p := statusPayload(cfg, h, sup, m, st)
		// Publish on change of state, and at most once a minute for the queue figures.
		if !sameState(p, last) || time.Since(lastAt) > time.Minute {
			mq.SetStatus(p)
			last, lastAt = p, time.Now()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// prune enforces the retention of the journal, of the sent index (receipts older than the
// dedup window are not matched to jobs any more) and of the recipients' uuids.
func prune(ctx context.Context, cfg config.Config, st *store.Store, log *slog.Logger) {
	now := time.Now()
	if n, err := st.PruneJournal(now.Add(-cfg.Buffer.JournalRetention.D())); err != nil {
		log.Error("journal retention", "err", err)
	} else if n > 0 {
		log.Info("journal retention", "removed", n)
	}
	if n, err := st.PruneSent(ctx, now.Add(-cfg.Buffer.DedupWindow.D())); err != nil {
		log.Error("sent index retention", "err", err)
	} else if n > 0 {
		log.Info("sent index retention", "removed", n)
	}
	// Hidden-number customers are recognised for as long as their sends are journaled.
	if n, err := st.PruneRecipients(ctx, now.Add(-cfg.Buffer.JournalRetention.D())); err != nil {
		log.Error("recipient uuid retention", "err", err)
	} else if n > 0 {
		log.Info("recipient uuid retention", "removed", n)
	}
}

func sameState(a, b []byte) bool {
	var x, y map[string]any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	delete(x, "at")
	delete(y, "at")
	delete(x, "queue")
	delete(y, "queue")
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// statusPayload is the retained P/status message (contract v1).
func statusPayload(cfg config.Config, h *relay.Health, sup *signalbridge.Supervisor, m *modem.Modem, st *store.Store) []byte {
	sum := h.Summary()
	now := time.Now()
	sh := sup.Health()
	signalState := map[signalbridge.State]string{signalbridge.StateUp: "up", signalbridge.StateCaptchaRequired: "captcha_required",
		signalbridge.StateUnregistered: "unregistered"}[sh.State]
	if signalState == "" {
		signalState = "down"
	}
	status := map[string]any{
		"state":   sum.Overall,
		"version": versionString(),
		"at":      relay.Timestamp(now),
		"led":     sum.Indicator,
		"queue":   map[string]any{"depth": st.Depth(), "oldest_age_s": int(st.OldestAge(now).Seconds()), "events_waiting": st.SpoolLen()},
		"signal":  map[string]any{"state": signalState, "account": cfg.Signal.Account},
	}
	if m != nil {
		mh := m.Health()
		status["modem"] = map[string]any{"state": mh.State, "registration": mh.Registration, "operator": mh.Operator,
			"tech": mh.Tech, "signal_dbm": mh.Signal.RSSI, "bars": mh.Signal.Bars, "needs_staff": mh.NeedsStaff}
	} else {
		status["modem"] = map[string]any{"state": "disabled"}
	}
	status["power"] = map[string]any{"state": "mains"}
	if sum.Overall == relay.OnBattery {
		status["power"] = map[string]any{"state": "battery"}
	}
	b, _ := json.Marshal(status)
	return b
}

// signalSender adapts the supervisor to relay.Signal: every call has a deadline, and a failure
// to reach signal-cli at all is a transient outcome, not an error.
type signalSender struct {
	sup     *signalbridge.Supervisor
	account string
	timeout time.Duration
}

var outcomes = map[signalbridge.SendOutcome]relay.SendOutcome{
	signalbridge.OutcomeSent: relay.OutcomeSent, signalbridge.OutcomeNotOnSignal: relay.OutcomeNotOnSignal,
	signalbridge.OutcomeIdentityChanged: relay.OutcomeIdentityChanged, signalbridge.OutcomeRateLimited: relay.OutcomeRateLimited,
	signalbridge.OutcomeCaptchaRequired: relay.OutcomeCaptcha, signalbridge.OutcomeTransient: relay.OutcomeTransient,
	signalbridge.OutcomeUnknown: relay.OutcomeUnknown, signalbridge.OutcomeFailed: relay.OutcomeFailed,
}

func (s signalSender) Send(ctx context.Context, to, text string) relay.SendResult {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	r, err := s.sup.Send(ctx, s.account, to, text)
	if err != nil && r.Outcome == 0 {
		if errors.Is(err, signalbridge.ErrOutcomeUnknown) {
			return relay.SendResult{Outcome: relay.OutcomeUnknown, Detail: err.Error()}
		}
		return relay.SendResult{Outcome: relay.OutcomeTransient, Detail: err.Error()}
	}
	out, ok := outcomes[r.Outcome]
	if !ok {
		out = relay.OutcomeFailed
	}
	return relay.SendResult{Outcome: out, Timestamp: r.Timestamp, RetryAfter: r.RetryAfter, ChallengeToken: r.ChallengeToken,
		MaybeLookupFailure: r.MaybeLookupFailure, Detail: r.Detail, UUID: r.UUID}
}

func (s signalSender) Trust(ctx context.Context, to string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.sup.Trust(ctx, s.account, to, signalbridge.TrustOptions{TrustAllKnownKeys: true})
}

// smsAdapter adapts the modem to relay.SMS: a modem's refusal of the destination (a +CMS error
// other than a network or memory problem) is permanent; everything else is worth a retry.
type smsAdapter struct{ m *modem.Modem }

func (a smsAdapter) SendSMS(ctx context.Context, to, text string) (int, error) {
	refs, err := a.m.SendSMS(ctx, to, text)
	return len(refs), smsError(err)
}

// smsError maps the modem's send errors onto the dispatcher's: unknown outcome, permanent, or
// (anything else) transient.
func smsError(err error) error {
	if err == nil {
		return nil
	}
	// Unknown wins over permanent: a later part refused for good after earlier parts went out
	// is a partial delivery, and resending would duplicate those parts (rule 6).
	if errors.Is(err, modem.ErrOutcomeUnknown) {
		return fmt.Errorf("%w: %w", relay.ErrOutcomeUnknown, err)
	}
	var re *modem.ResultError
	if errors.As(err, &re) && re.Kind == modem.KindCMS && permanentCMS(re.Code) {
		return fmt.Errorf("%w: %w", relay.ErrPermanent, err)
	}
	return err
}

// permanentCMS lists +CMS ERROR causes (3GPP TS 27.005 / 24.011) that name a bad destination or
// a barred service rather than a passing condition.
func permanentCMS(code int) bool {
	switch code {
	case 1, 8, 10, 21, 29, 30, 50, 57, 96, 304, 325:
		return true
	}
	return false
}
