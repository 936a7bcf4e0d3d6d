package server

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pop3kit/pop3kit/pop3"
	"github.com/pop3kit/pop3kit/pop3gen"
)

// metrics are pop3d's Prometheus metrics, in a registry of the server's
// own (two servers in one process, as in tests, do not collide).
// github.com/prometheus/client_golang: the reference client, with the
// text and OpenMetrics expositions and the Go runtime's collectors.
type metrics struct {
	reg *prometheus.Registry

	// The totals Stats reports, kept as plain counters too.
	sessionsN, loginsN, failuresN atomic.Int64

	sessions       *prometheus.CounterVec // ended sessions by profile and TLS mode
	logins         *prometheus.CounterVec // by mechanism
	failures       *prometheus.CounterVec // by mechanism and reason
	penalties      prometheus.Counter
	commands       *prometheus.CounterVec // by command and result
	octets         *prometheus.CounterVec // by direction
	retrSeconds    prometheus.Histogram
	retrBytes      prometheus.Histogram
	removed        prometheus.Counter
	removeFailures prometheus.Counter
	limits         *prometheus.CounterVec // by limit
	storeErrors    *prometheus.CounterVec // by operation
	deliveries     *prometheus.CounterVec // LMTP deliveries by result
	deliveredBytes prometheus.Counter
}

func newMetrics(current func() float64) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := promauto(m.reg)
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pop3d_sessions_current", Help: "Connections being served."}, current))
	m.sessions = f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pop3d_sessions_total", Help: "Sessions ended, by profile and TLS mode (none, stls, implicit)."}, []string{"profile", "tls"})).(*prometheus.CounterVec)
	m.logins = f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pop3d_logins_total", Help: "Successful logins, by mechanism (USER, APOP or the SASL mechanism)."}, []string{"mechanism"})).(*prometheus.CounterVec)
	m.failures = f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pop3d_login_failures_total", Help: "Failed logins, by mechanism and reason."}, []string{"mechanism", "reason"})).(*prometheus.CounterVec)
	m.penalties = f(prometheus.NewCounter(prometheus.CounterOpts{Name: "pop3d_login_penalties_total", Help: "Login attempts delayed by a penalty of their address or user name."})).(prometheus.Counter)
	m.commands = f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pop3d_commands_total", Help: "Commands answered, by keyword and result (ok, err)."}, []string{"command", "result"})).(*prometheus.CounterVec)
	m.octets = f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pop3d_octets_total", Help: "Octets on the wire of ended sessions, by direction (in, out)."}, []string{"direction"})).(*prometheus.CounterVec)
	m.retrSeconds = f(prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pop3d_retr_duration_seconds", Help: "Time to answer a RETR, from the command's arrival to the last octet handed to the connection.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)})).(prometheus.Histogram)
	m.retrBytes = f(prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pop3d_retr_size_bytes", Help: "Octets of the messages RETR sent.",
		Buckets: prometheus.ExponentialBuckets(1024, 4, 10)})).(prometheus.Histogram)
	m.removed = f(prometheus.NewCounter(prometheus.CounterOpts{Name: "pop3d_update_removed_total", Help: "Messages removed in the UPDATE state."})).(prometheus.Counter)
	m.removeFailures = f(prometheus.NewCounter(prometheus.CounterOpts{Name: "pop3d_update_failures_total", Help: "Messages marked deleted that UPDATE could not remove."})).(prometheus.Counter)
	m.limits = f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pop3d_limits_hit_total", Help: "Connections or logins a limit refused or evicted, by limit."}, []string{"limit"})).(*prometheus.CounterVec)
	m.storeErrors = f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pop3d_store_errors_total", Help: "Store errors, by operation (open, read, remove)."}, []string{"op"})).(*prometheus.CounterVec)
	m.deliveries = f(prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pop3d_lmtp_deliveries_total", Help: "LMTP deliveries, one per recipient, by result (saved, tempfail, permfail)."}, []string{"result"})).(*prometheus.CounterVec)
	m.deliveredBytes = f(prometheus.NewCounter(prometheus.CounterOpts{Name: "pop3d_lmtp_delivered_bytes_total", Help: "Octets of the messages LMTP saved, once per recipient."})).(prometheus.Counter)
	b := BuildInfo()
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pop3d_build_info", Help: "Always 1; the labels say which pop3d is running.",
		ConstLabels: prometheus.Labels{"version": b.Version, "revision": b.Revision, "goversion": b.GoVersion, "modified": strconv.FormatBool(b.Modified)}},
		func() float64 { return 1 }))
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// promauto returns a function that registers a collector in reg and
// returns it.
func promauto(reg *prometheus.Registry) func(prometheus.Collector) prometheus.Collector {
	return func(c prometheus.Collector) prometheus.Collector {
		reg.MustRegister(c)
		return c
	}
}

// MetricsHandler serves the server's metrics (Prometheus text, or
// OpenMetrics when the scraper asks for it), for --metrics.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
}

// observe is the core's Observe: every command answered.
func (s *Server) observe(c *pop3.Conn, e pop3.Event) {
	if e.Continued {
		return // an AUTH exchange is one command, counted at its end
	}
	if e.Penalty > 0 {
		s.metrics.penalties.Inc() // the address's failures delayed this login (the runtime's LoginPolicy)
	}
	if e.Err == pop3.ErrPenaltyBusy {
		// Answered by the runtime before pop3d saw the login: nothing
		// was checked, and the log and the metrics say so as for any
		// login not checked.
		c.Log().Warn("login not checked", "command", e.Command, "why", "no turn: the address's failed logins are waiting", "reply", e.Err.Text)
		s.metrics.failuresN.Add(1)
		s.metrics.failures.WithLabelValues(e.Command, "penalty_busy").Inc()
	}
	if e.Err == pop3.ErrPlaintextRefused || e.Err == pop3.ErrPlaintextDisabled || e.Err == pop3.ErrTLSRequired {
		// Refused before any check: the log says so, as it says of
		// every failed login.
		c.Log().Info("login refused: no plaintext login on this connection", "command", e.Command, "reply", e.Err.Text)
	}
	result := "ok"
	if e.Err != nil {
		result = "err"
	}
	name := "unknown"
	if e.Cmd != pop3.CmdNone {
		name = e.Command
	}
	s.metrics.commands.WithLabelValues(name, result).Inc()
	if e.Cmd == pop3gen.CmdRETR && e.Err == nil {
		s.metrics.retrSeconds.Observe(e.Elapsed.Seconds())
		s.metrics.retrBytes.Observe(float64(e.Octets))
	}
}

// onLimit is the core's OnLimit.
func (s *Server) onLimit(e *pop3.Error) {
	limit := "other"
	switch {
	case e == pop3.ErrServerFull:
		limit = "max_sessions"
	case e == pop3.ErrEvicted:
		limit = "evicted"
	case e == pop3.ErrPreauthLimit:
		limit = "max_preauth_per_ip"
	case e == pop3.ErrShutdown:
		limit = "shutdown"
	case e.Code == pop3.CodeInUse && strings.Contains(e.Text, "sessions for this user"):
		limit = "max_sessions_per_user"
	}
	s.metrics.limits.WithLabelValues(limit).Inc()
}

// failureReason names why a login failed, for the metrics' label.
func failureReason(at *attempt, reply *pop3.Error) string {
	switch {
	case at.passwdDown:
		return "users_unavailable"
	case reply == pop3.ErrChecksBusy:
		return "queue_full"
	}
	return "invalid_credentials"
}

// delivered counts an LMTP delivery to one recipient that was answered
// code, of octets.
func (m *metrics) delivered(code int, octets int64) {
	switch {
	case code < 300:
		m.deliveries.WithLabelValues("saved").Inc()
		m.deliveredBytes.Add(float64(octets))
	case code < 500:
		m.deliveries.WithLabelValues("tempfail").Inc()
	default:
		m.deliveries.WithLabelValues("permfail").Inc()
	}
}

// sessionEnded counts an ended session in the metrics.
func (s *Server) sessionEnded(tlsMode string, in, out int64) {
	s.metrics.sessions.WithLabelValues(s.cfg.Profile, tlsMode).Inc()
	s.metrics.octets.WithLabelValues("in").Add(float64(in))
	s.metrics.octets.WithLabelValues("out").Add(float64(out))
}
