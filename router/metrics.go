package router

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// metrics counts what the service does, for Prometheus, and passes the
// connection state of each mailbox on to the readiness /readyz reports.
// It is the watchers' ingest.WatcherObserver.
type metrics struct {
	reg         *prometheus.Registry
	fetched     *prometheus.CounterVec
	tickets     *prometheus.CounterVec
	duplicates  prometheus.Counter
	quarantined *prometheus.CounterVec
	reconnects  *prometheus.CounterVec
	backlog     *prometheus.GaugeVec
	oldest      *prometheus.GaugeVec
	moved       *prometheus.CounterVec
	accounts    prometheus.Gauge
	reloadFails prometheus.Counter
	held        *prometheus.GaugeVec // mailboxes whose lease this replica holds
	imapUp      *prometheus.GaugeVec
	latency     prometheus.Histogram

	ready readiness

	mu    sync.Mutex
	since map[string]time.Time // arrival of each mailbox's oldest waiting mail
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		fetched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ticketrouter_mails_fetched_total", Help: "Mails read from the mailbox to be handled."}, []string{"mailbox"}),
		tickets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ticketrouter_tickets_published_total", Help: "Tickets published, by colour and disposition."}, []string{"colour", "disposition"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ticketrouter_tickets_duplicate_total", Help: "Mails whose ticket was already published (a retry)."}),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ticketrouter_mails_quarantined_total", Help: "Mails moved to the quarantine folder."}, []string{"mailbox"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ticketrouter_imap_reconnects_total", Help: "IMAP connections lost and retried."}, []string{"mailbox"}),
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ticketrouter_backlog_mails", Help: "Mails waiting in the mailbox."}, []string{"mailbox"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ticketrouter_oldest_unprocessed_age_seconds", Help: "Age of the oldest mail waiting in the mailbox (0: none)."}, []string{"mailbox"}),
		accounts: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ticketrouter_accounts", Help: "Accounts in the directory in use."}),
		reloadFails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ticketrouter_accounts_reload_failures_total", Help: "Changed account files that did not load (the accounts in use were kept)."}),
		moved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ticketrouter_mails_moved_total", Help: "Mails moved to the processed folder once their ticket was safe."}, []string{"mailbox"}),
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ticketrouter_mailbox_held", Help: "1 for each mailbox this replica holds the lease of and works."}, []string{"mailbox"}),
		imapUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ticketrouter_imap_connected", Help: "1 while the mailbox's IMAP connection is up."}, []string{"mailbox"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ticketrouter_publish_seconds", Help: "Time to store a raw mail and publish its ticket, acknowledged.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		since: map[string]time.Time{},
	}
	b := Build()
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ticketrouter_build_info", Help: "1, with the version, VCS commit and Go version of this binary as labels."},
		[]string{"version", "revision", "goversion"})
	buildInfo.WithLabelValues(b.Version, b.Revision, b.GoVersion).Set(1)
	m.reg.MustRegister(buildInfo, m.fetched, m.tickets, m.duplicates, m.quarantined, m.reconnects, m.backlog, m.oldest, m.moved, m.accounts, m.reloadFails, m.held, m.imapUp, m.latency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) published(t *ticket.Ticket, d time.Duration, new bool) {
	if !new {
		m.duplicates.Inc()
		return
	}
	m.tickets.WithLabelValues(t.Colour, t.Disposition).Inc()
	m.latency.Observe(d.Seconds())
}

// The ingest.WatcherObserver methods.

func (m *metrics) Connected(mailbox string)   { m.setConnected(mailbox, true, nil) }
func (m *metrics) Fetched(mailbox string)     { m.fetched.WithLabelValues(mailbox).Inc() }
func (m *metrics) Moved(mailbox string)       { m.moved.WithLabelValues(mailbox).Inc() }
func (m *metrics) Quarantined(mailbox string) { m.quarantined.WithLabelValues(mailbox).Inc() }

func (m *metrics) Disconnected(mailbox string, err error) {
	m.reconnects.WithLabelValues(mailbox).Inc()
	m.setConnected(mailbox, false, err)
}

func (m *metrics) Backlog(mailbox string, waiting int, oldest time.Time) {
	m.backlog.WithLabelValues(mailbox).Set(float64(waiting))
	m.mu.Lock()
	m.since[mailbox] = oldest
	m.mu.Unlock()
}

func (m *metrics) setConnected(mailbox string, up bool, err error) {
	m.ready.connection(mailbox, up, err)
	m.imapUp.WithLabelValues(mailbox).Set(b2f(up))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// working marks a mailbox this replica holds (or, with up false, no
// longer holds) the lease of.
func (m *metrics) working(mailbox string, holds bool) {
	m.ready.hold(mailbox, holds)
	m.mu.Lock()
	defer m.mu.Unlock()
	if holds {
		m.held.WithLabelValues(mailbox).Set(1)
		m.imapUp.WithLabelValues(mailbox).Set(0)
		return
	}
	// Another replica works it now: its gauges are that replica's.
	delete(m.since, mailbox)
	m.held.WithLabelValues(mailbox).Set(0)
	m.imapUp.DeleteLabelValues(mailbox)
	m.backlog.DeleteLabelValues(mailbox)
	m.oldest.DeleteLabelValues(mailbox)
}

// refresh updates the gauges that age with time.
func (m *metrics) refresh() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for mailbox, t := range m.since {
		age := 0.0
		if !t.IsZero() {
			age = time.Since(t).Seconds()
		}
		m.oldest.WithLabelValues(mailbox).Set(age)
	}
}

// handler serves /healthz, /readyz and /metrics.
func (m *metrics) handler(ready func() []string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /readyz", readyHandler(ready))
	prom := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		m.refresh()
		prom.ServeHTTP(w, r)
	})
	return mux
}
