package main

import (
	"github.com/shopkit/relay/buffer"
	"github.com/shopkit/relay/modem"
	"github.com/shopkit/relay/relay"
	"github.com/shopkit/relay/relay/metrics"
	"github.com/shopkit/relay/relay/mqtt"
	"github.com/shopkit/relay/relay/power"
	"github.com/shopkit/relay/relay/store"
	"github.com/shopkit/relay/signalbridge"
)

// metricSources adapts the running parts to what /metrics reads at each scrape. m is nil
// without a modem, w nil without a UPS (GPIO off).
func metricSources(h *relay.Health, b *buffer.Store, st *store.Store, sup *signalbridge.Supervisor, m *modem.Modem,
	mq *mqtt.Client, in *relay.Intake, resp *relay.Responder, w *power.Watcher) metrics.Sources {
	src := metrics.Sources{
		Outbox:         st,
		Quarantined:    b.Quarantined,
		Health:         h.Summary,
		MQTTConnected:  mq.Connected,
		SpoolDepth:     st.SpoolLen,
		SpoolSkipped:   mq.Skipped,
		Unidentified:   in.Unidentified,
		UnknownSenders: resp.UnknownUUIDKeywords,
		Signal: func() metrics.SignalReading {
			sh := sup.Health()
			return metrics.SignalReading{State: string(sh.State), Restarts: sh.Restarts}
		},
	}
	if m != nil {
		src.Modem = func() metrics.ModemReading {
			mh := m.Health()
			return metrics.ModemReading{State: string(mh.State), Registered: mh.Registration.Registered(),
				SignalKnown: mh.Signal.Known, SignalDBm: mh.Signal.RSSI}
		}
	}
	if w != nil {
		// A power shutdown (latched) only starts on battery, so it counts as on battery.
		src.OnBattery = func() bool { return w.Status().State != power.Mains }
	}
	return src
}
