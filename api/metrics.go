package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vigil-auth/vigil"
	"github.com/vigil-auth/vigil/flows"
)

const labelChannel = "channel"

// Metrics is the Prometheus side of Vigil: it implements flows.Observer
// for the engine's counts and records HTTP request durations for the
// server. Labels only ever carry bounded values (channels, outcomes, route
// patterns, status classes), never ids or addresses.
type Metrics struct {
	started        *prometheus.CounterVec
	checks         *prometheus.CounterVec
	attempts       *prometheus.CounterVec
	attemptSeconds *prometheus.HistogramVec
	httpSeconds    *prometheus.HistogramVec
	deliveries     *prometheus.CounterVec
	smsRefused     *prometheus.CounterVec
	conversionLow  *prometheus.CounterVec
	conversion     *prometheus.GaugeVec
}

var _ flows.Observer = (*Metrics)(nil)

// NewMetrics creates Vigil's metrics and registers them with reg (nil:
// not registered). Calling it twice with one registry returns metrics
// backed by the same collectors, so cmd/vigil may hand one Metrics to
// flows and let New find it again through Config.Registry. A collision
// with a different, incompatible metric of the same name panics, as
// prometheus.MustRegister does: that is a programming error.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		started: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_verifications_started_total",
			Help: "Verifications started or restarted, by channel and purpose.",
		}, []string{labelChannel, "purpose"})),
		checks: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_code_checks_total",
			Help: "Codes checked, by channel and outcome (verified, wrong_code, expired, locked, dead).",
		}, []string{labelChannel, "outcome"})),
		attempts: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_message_attempts_total",
			Help: "Attempts to hand a message to a provider, by channel and outcome.",
		}, []string{labelChannel, "outcome"})),
		attemptSeconds: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vigil_message_attempt_seconds",
			Help:    "How long handing one message to a provider took.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{labelChannel})),
		deliveries: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_deliveries_total",
			Help: "Messages by channel, provider, recipient country (empty for email) and status: sent, delivered, undelivered, failed, and verified for the codes they carried.",
		}, []string{labelChannel, "provider", "country", "status"})),
		smsRefused: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_sms_refused_total",
			Help: "SMS sends refused before any provider was called, by country and reason (number, prefix_velocity, global_budget).",
		}, []string{"country", "reason"})),
		conversionLow: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_sms_conversion_alerts_total",
			Help: "SMS sends to a country or prefix whose codes were verified less often than the conversion watch's threshold; throttled=true when the send was refused for it. Alert on any increase.",
		}, []string{"scope", "value", "throttled"})),
		conversion: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_sms_conversion_ratio",
			Help: "The last low conversion ratio (codes verified / codes sent over the watch's window) seen for a country or prefix.",
		}, []string{"scope", "value"})),
		httpSeconds: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vigil_http_request_duration_seconds",
			Help:    "HTTP requests by listener, method, route pattern and status class.",
			Buckets: prometheus.DefBuckets,
		}, []string{"listener", "method", "route", "status"})),
	}
}

// register registers c, or adopts the equal collector already registered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// registerRuntime adds the Go runtime and process collectors, unless the
// registry has them already.
func registerRuntime(reg prometheus.Registerer) {
	register(reg, collectors.NewGoCollector())
	register(reg, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// registerBuildInfo exports the version as vigil_build_info{version} 1.
func registerBuildInfo(reg prometheus.Registerer, version string) {
	if version == "" {
		version = "unknown"
	}
	g := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "vigil_build_info",
		Help: "Always 1; the version label says which build is running.",
	}, []string{"version"}))
	g.WithLabelValues(version).Set(1)
}

// VerificationStarted implements flows.Observer.
func (m *Metrics) VerificationStarted(ch vigil.Channel, purpose vigil.Purpose) {
	m.started.WithLabelValues(string(ch), string(purpose)).Inc()
}

// CodeChecked implements flows.Observer.
func (m *Metrics) CodeChecked(ch vigil.Channel, outcome string) {
	m.checks.WithLabelValues(string(ch), outcome).Inc()
}

// MessageAttempted implements flows.Observer.
func (m *Metrics) MessageAttempted(ch vigil.Channel, outcome string, took time.Duration) {
	m.attempts.WithLabelValues(string(ch), outcome).Inc()
	m.attemptSeconds.WithLabelValues(string(ch)).Observe(took.Seconds())
}

// Delivery implements flows.Observer.
func (m *Metrics) Delivery(ch vigil.Channel, provider, country, status string) {
	m.deliveries.WithLabelValues(string(ch), provider, country, status).Inc()
}

// SMSRefused implements flows.Observer.
func (m *Metrics) SMSRefused(country, reason string) {
	m.smsRefused.WithLabelValues(country, reason).Inc()
}

// ConversionLow implements flows.Observer. Only countries and prefixes
// that fall below the threshold get a series, so the label values stay
// few.
func (m *Metrics) ConversionLow(scope, value string, ratio float64, throttled bool) {
	m.conversionLow.WithLabelValues(scope, value, strconv.FormatBool(throttled)).Inc()
	m.conversion.WithLabelValues(scope, value).Set(ratio)
}

func (m *Metrics) observeHTTP(listener, method, route string, status int, took time.Duration) {
	m.httpSeconds.WithLabelValues(listener, metricMethod(method), route, strconv.Itoa(status/100)+"xx").Observe(took.Seconds())
}

// metricMethod keeps the method label to the standard methods: clients may
// send any token as a method.
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}
