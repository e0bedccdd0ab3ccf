package metrics

import (
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/shopkit/relay/relay"
)

// Queue is the outbox as the metrics see it (relay/store.Store and buffer.Store have both).
type Queue interface {
	Depth() int
	OldestAge(now time.Time) time.Duration
}

// SignalReading is signal-cli's supervisor health (signalbridge.Health, reduced).
type SignalReading struct {
	State    string // up, starting, down, unregistered, captcha_required
	Restarts int    // restarts (or reconnects) since relayd started
}

// ModemReading is the modem's health (modem.Health, reduced).
type ModemReading struct {
	State       string // starting, ready, recovering, needs_staff, stopped
	Registered  bool   // on the network (home or roaming): SMS can go out
	SignalKnown bool   // the modem reported a signal strength
	SignalDBm   int    // RSSI in dBm, when SignalKnown
}

// Sources are read at every scrape. Each must be safe to call from any goroutine and cheap; a
// nil source leaves its metrics out (the modem's when there is no modem).
type Sources struct {
	Outbox        Queue
	Quarantined   func() string // where a database that would not open was moved; "" if none
	Health        func() relay.Summary
	MQTTConnected func() bool
	SpoolDepth    func() int   // events, inbound messages and status waiting for the broker
	SpoolSkipped  func() int64 // spooled records that could not be decoded and were dropped
	Signal        func() SignalReading
	Modem         func() ModemReading
	OnBattery     func() bool // nil: no UPS configured (reported as 0)
	Unidentified  func() int64
	// UnknownSenders counts keywords from a Signal sender known only by a uuid relay never
	// sent to (phone number privacy): they cannot be applied and go to P/inbound.
	UnknownSenders func() int64
	Now            func() time.Time // nil: time.Now
}

// Known states get a series each (0 or 1), so an alert can test state="up" == 0. A state not
// listed here still appears, as 1, while it is current.
var (
	signalStates  = []string{"starting", "up", "down", "unregistered", "captcha_required"}
	modemStates   = []string{"starting", "ready", "recovering", "needs_staff", "stopped"}
	overallStates = []string{string(relay.Online), string(relay.Degraded), string(relay.OnBattery), string(relay.ShuttingDown)}
	components    = []relay.Component{relay.ComponentMQTT, relay.ComponentSignal, relay.ComponentModem, relay.ComponentOutbox, relay.ComponentPower}
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	descOutboxDepth = desc("relay_outbox_depth", "Jobs in the outbox not yet finished (queued, leased or waiting for a retry).")
	descOutboxAge   = desc("relay_outbox_oldest_age_seconds", "Age of the oldest job in the outbox since it was accepted; 0 when empty.")
	descQuarantined = desc("relay_outbox_quarantined",
		"1 when the outbox database could not be opened at start-up and was moved aside (<dir>.corrupt-<time>) and a fresh one started; staff must look at it. 0 otherwise.")
	descState     = desc("relay_state", "The box's overall state as on the status topic: 1 for the current state, 0 for the others.", "state")
	descComponent = desc("relay_component_state",
		"Health of each part as reported to the roll-up: 0 ok, 1 starting, 2 degraded, 3 staff needed.", "component")
	descMQTTUp      = desc("relay_mqtt_connected", "1 while the broker connection is up (connected and subscribed).")
	descSpool       = desc("relay_mqtt_spool_depth", "Events, inbound messages and status updates stored durably and waiting to be published to the broker.")
	descSpoolSkip   = desc("relay_mqtt_spool_skipped_total", "Spooled records that could not be decoded and were dropped unpublished.")
	descSignalState = desc("relay_signal_state", "signal-cli as the supervisor sees it: 1 for the current state, 0 for the others.", "state")
	descSignalRest  = desc("relay_signal_restarts_total", "Restarts of signal-cli (or reconnects to an external daemon) since relayd started.")
	descModemState  = desc("relay_modem_state", "The modem's state: 1 for the current state, 0 for the others.", "state")
	descModemReg    = desc("relay_modem_registered", "1 when the modem is registered on the mobile network (home or roaming).")
	descModemDBm    = desc("relay_modem_signal_dbm", "Received signal strength (RSSI) reported by the modem, in dBm; absent while the modem does not know it.")
	descOnBattery   = desc("relay_on_battery", "1 while the UPS reports mains power lost (running on battery), including during a power shutdown.")
	descUnident     = desc("relay_payloads_unidentified_total",
		"Payloads on P/jobs or P/consent refused without an id to answer to (not JSON, no readable id, invalid consent record); logged, not answered.")
	descUnknownSender = desc("relay_keywords_unknown_sender_total",
		"Keywords (STOP, START, ...) from a Signal sender known only by a uuid relay never sent to: not applied, published on P/inbound for the shop.")
)

// sourceCollector turns Sources into metrics at scrape time.
type sourceCollector struct{ src Sources }

func (c sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descOutboxDepth, descOutboxAge, descQuarantined, descState, descComponent,
		descMQTTUp, descSpool, descSpoolSkip, descSignalState, descSignalRest, descModemState, descModemReg, descModemDBm,
		descOnBattery, descUnident, descUnknownSender} {
		ch <- d
	}
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// stateSet emits one series per known state (and the current one if it is not known).
func stateSet(ch chan<- prometheus.Metric, d *prometheus.Desc, known []string, current string) {
	for _, s := range known {
		gauge(ch, d, b2f(s == current), s)
	}
	if current != "" && !slices.Contains(known, current) {
		gauge(ch, d, 1, current)
	}
}

func (c sourceCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.src
	if s.Outbox != nil {
		now := time.Now
		if s.Now != nil {
			now = s.Now
		}
		gauge(ch, descOutboxDepth, float64(s.Outbox.Depth()))
		gauge(ch, descOutboxAge, s.Outbox.OldestAge(now()).Seconds())
	}
	if s.Quarantined != nil {
		gauge(ch, descQuarantined, b2f(s.Quarantined() != ""))
	}
	if s.Health != nil {
		sum := s.Health()
		stateSet(ch, descState, overallStates, string(sum.Overall))
		for _, comp := range components {
			if h, ok := sum.Components[comp]; ok {
				gauge(ch, descComponent, float64(h.State), string(comp))
			}
		}
		for comp, h := range sum.Components { // parts added after this list was written
			if !slices.Contains(components, comp) {
				gauge(ch, descComponent, float64(h.State), string(comp))
			}
		}
	}
	if s.MQTTConnected != nil {
		gauge(ch, descMQTTUp, b2f(s.MQTTConnected()))
	}
	if s.SpoolDepth != nil {
		gauge(ch, descSpool, float64(s.SpoolDepth()))
	}
	if s.SpoolSkipped != nil {
		counter(ch, descSpoolSkip, float64(s.SpoolSkipped()))
	}
	if s.Signal != nil {
		r := s.Signal()
		stateSet(ch, descSignalState, signalStates, r.State)
		counter(ch, descSignalRest, float64(r.Restarts))
	}
	if s.Modem != nil {
		r := s.Modem()
		stateSet(ch, descModemState, modemStates, r.State)
		gauge(ch, descModemReg, b2f(r.Registered))
		if r.SignalKnown {
			gauge(ch, descModemDBm, float64(r.SignalDBm))
		}
	}
	onBattery := false
	if s.OnBattery != nil {
		onBattery = s.OnBattery()
	}
	gauge(ch, descOnBattery, b2f(onBattery))
	if s.Unidentified != nil {
		counter(ch, descUnident, float64(s.Unidentified()))
	}
	if s.UnknownSenders != nil {
		counter(ch, descUnknownSender, float64(s.UnknownSenders()))
	}
}

// Metrics is relayd's private registry: the relay_* metrics, Go runtime and process figures.
type Metrics struct {
	reg *prometheus.Registry
	log *slog.Logger
}

// New registers the counters of ev, the gauges read from src, and the Go and process
// collectors in a new private registry. ev may be nil (no job or event counts).
func New(ev *Events, src Sources, log *slog.Logger) *Metrics {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		sourceCollector{src: src})
	if ev != nil {
		reg.MustRegister(ev.collectors()...)
	}
	return &Metrics{reg: reg, log: orDiscard(log).With("component", "metrics")}
}

// Registry is the registry, for tests and for adding a part's own collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text (or negotiated) format. A collector that
// fails is logged and the rest is still served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            slogPrintln{m.log},
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            m.reg,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
}

// slogPrintln adapts slog to promhttp's Logger.
type slogPrintln struct{ log *slog.Logger }

func (l slogPrintln) Println(v ...any) {
	l.log.Warn("serving metrics", "err", slogArgs(v))
}

func slogArgs(v []any) any {
	if len(v) == 1 {
		return v[0]
	}
	return v
}
