package router

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/ticketrouter/ticketrouter/ingest"
	"github.com/ticketrouter/ticketrouter/router/broker"
	"github.com/ticketrouter/ticketrouter/router/config"
	"github.com/ticketrouter/ticketrouter/router/desk"
	"github.com/ticketrouter/ticketrouter/router/outbox"
	"github.com/ticketrouter/ticketrouter/router/thread"
	"github.com/ticketrouter/ticketrouter/rules/accounts"
)

// Service is one running replica of ticketrouter: it watches the
// configured mailboxes (those whose lease it holds), turns each mail into
// its ticket with the Pipeline, stores the raw mail and publishes the
// ticket to JetStream, and serves /healthz, /readyz and /metrics and, when
// desk.listen is set, the agents' desk on a listener of its own.
type Service struct {
	cfg         *config.Config
	log         zerolog.Logger
	metrics     *metrics
	pipeline    *Pipeline
	embedded    *broker.Embedded
	nc          *nats.Conn
	js          *broker.JetStream
	provisioned atomic.Bool
	// httpAddr is where /healthz, /readyz and /metrics listen, once up.
	httpAddr string
	// debugAddr is where Go's profiles are served, once up ("": off).
	debugAddr string
	// deskURL is the agents' desk, once up ("": off).
	deskURL string
	// ready is closed once the replica serves.
	ready chan struct{}
	// limitMemory sets the runtime's soft memory limit from the live heap.
	limitMemory bool
	// notifier tells the service manager how the service is doing.
	notifier *Notifier
	// outbox sends the service's mail; nil without an smtp section.
	outbox *outbox.Outbox
}

// Options are the choices of the process that runs a Service.
type Options struct {
	// LimitMemory sets the Go runtime's soft memory limit from the live
	// heap (see setMemoryLimit): for the run command, not for a test or
	// the demo that share their process with other work.
	LimitMemory bool
	// Notifier, when not nil, is told READY=1 once the replica serves,
	// STOPPING=1 as it stops, and STATUS= lines on the way (systemd's
	// Type=notify).
	Notifier *Notifier
}

// NewService returns a Service for cfg, logging to log. It starts nothing.
func NewService(cfg *config.Config, log zerolog.Logger, opts Options) *Service {
	return &Service{cfg: cfg, log: log, metrics: newMetrics(), ready: make(chan struct{}), limitMemory: opts.LimitMemory, notifier: opts.Notifier}
}

// Ready is closed once the replica serves: JetStream is provisioned and
// the watchers start.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// HTTPAddr is the address /healthz, /readyz and /metrics listen on, once
// Ready ("" when off).
func (s *Service) HTTPAddr() string { return s.httpAddr }

// DebugAddr is the address Go's profiles (/debug/pprof/) are served on,
// once Ready ("" unless debug.listen is set).
func (s *Service) DebugAddr() string { return s.debugAddr }

// DeskURL is the URL of the agents' desk (http://host:port/, https with
// TLS), once Ready ("" unless desk.listen is set).
func (s *Service) DeskURL() string { return s.deskURL }

// JetStream is the provisioned JetStream side, once Ready.
func (s *Service) JetStream() *broker.JetStream { return s.js }

// Pipeline is the pipeline mails go through, once Ready.
func (s *Service) Pipeline() *Pipeline { return s.pipeline }

// Run starts everything, works until ctx is done, and shuts down in
// order: watchers (in-flight mail finished or abandoned, never lost),
// leases released, the desk, HTTP, NATS drained, the embedded server.
func (s *Service) Run(ctx context.Context) error {
	stopping := context.AfterFunc(ctx, func() { s.notify("STOPPING=1", "STATUS=stopping: finishing the mail in flight") })
	defer stopping()
	s.notify(statusLine("loading the account directory %s", s.cfg.Accounts))
	var err error
	if s.pipeline, err = NewPipeline(s.cfg); err != nil {
		return err
	}
	s.metrics.accounts.Set(float64(s.pipeline.Directory().Len()))
	s.log.Info().Int("accounts", s.pipeline.Directory().Len()).Str("file", s.cfg.Accounts).Msg("accounts loaded")
	if s.limitMemory {
		setMemoryLimit(s.log)
	}
	nc := s.cfg.NATS.WithDefaults()
	if nc.URL == "" {
		if s.embedded, err = broker.StartEmbedded(nc.Embedded, s.log); err != nil {
			return err
		}
		defer s.embedded.Shutdown()
	}
	// The service may start before its NATS: keep trying, and let
	// provisioning report how it goes.
	if s.nc, err = broker.Connect(ctx, nc, s.embedded, "ticketrouter "+s.cfg.Replica.ID, s.log, nats.RetryOnFailedConnect(true)); err != nil {
		return err
	}
	defer drain(s.nc)

	for _, serve := range []func() (*http.Server, error){s.serveHTTP, s.serveDebug} {
		srv, err := serve()
		if err != nil {
			return err
		}
		if srv != nil {
			defer func() {
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				srv.Shutdown(sctx)
			}()
		}
	}

	s.notify("STATUS=connecting to NATS and provisioning JetStream")
	if err := s.provision(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting for NATS
		}
		return err
	}
	if s.cfg.SMTP.On() {
		stop, err := s.sendMail(ctx)
		if err != nil {
			return err
		}
		defer stop()
	}
	if s.cfg.Desk.On() {
		stop, err := s.serveDesk(ctx)
		if err != nil {
			return err
		}
		defer stop()
	}
	go s.reloadAccounts(ctx)
	close(s.ready)
	s.notify("READY=1", s.runningStatus())
	leases := &broker.Leases{JS: s.js, Replica: s.cfg.Replica.ID, TTL: s.cfg.Replica.LeaseTTL, Log: s.log}
	pub := &broker.Publisher{JS: s.js, Prefix: s.pipeline.Prefix()}
	s.log.Info().Str("replica", s.cfg.Replica.ID).Strs("mailboxes", s.cfg.IMAP.Mailboxes).Msg("running")
	leases.Run(ctx, s.cfg.IMAP.Mailboxes, func(wctx context.Context, mailbox string) {
		s.metrics.working(mailbox, true)
		defer s.metrics.working(mailbox, false)
		h := &mailHandler{pipeline: s.pipeline, pub: pub, threads: thread.New(s.js.Threads, s.js.Stream), metrics: s.metrics, log: s.log}
		if s.outbox != nil {
			h.outbox, h.answered = s.outbox, s.js.Answered
		}
		wc, err := s.cfg.IMAP.WatcherConfig(mailbox)
		if err != nil { // checked at start; the file changed since
			s.log.Error().Err(err).Str("mailbox", mailbox).Msg("watcher not started")
			return
		}
		wc.Observer = s.metrics
		w, err := ingest.NewWatcher(wc, h, broker.KVCheckpoints{KV: s.js.Checkpoints}, s.log)
		if err != nil { // checked at start: cannot happen
			s.log.Error().Err(err).Msg("watcher not started")
			return
		}
		w.Run(wctx)
	})
	return nil
}

// accountsPoll is how often the account file is looked at.
const accountsPoll = time.Second

// provision sets up JetStream, retrying until NATS answers: the service
// may start before its NATS cluster.
func (s *Service) provision(ctx context.Context) error {
	js, err := jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		s.js, err = broker.Provision(pctx, js, s.cfg.NATS, s.pipeline.Prefix(), s.cfg.Replica.LeaseTTL)
		cancel()
		if err == nil {
			s.provisioned.Store(true)
			s.log.Info().Str("stream", s.cfg.NATS.WithDefaults().Stream).Msg("JetStream provisioned")
			return nil
		}
		s.log.Warn().Err(err).AnErr("nats_error", s.nc.LastError()).Stringer("retry_in", wait).Msg("JetStream not ready")
		s.notify(statusLine("waiting for NATS: %v", err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// reloadAccounts reloads the account directory whenever its file changes
// and then stays unchanged for one more poll, so that a file still being
// written is not loaded half-way; a file that does not load is reported
// and the directory in use kept.
func (s *Service) reloadAccounts(ctx context.Context) {
	config.WatchFile(ctx, s.cfg.Accounts, accountsPoll, func() {
		dir, err := accounts.LoadDirectory(s.cfg.Accounts)
		if err != nil {
			s.metrics.reloadFails.Inc()
			s.log.Error().Err(err).Msg("accounts file changed but does not load: keeping the accounts in use")
			return
		}
		s.pipeline.SetDirectory(dir)
		s.metrics.accounts.Set(float64(dir.Len()))
		s.log.Info().Int("accounts", dir.Len()).Msg("accounts reloaded")
		s.notify(s.runningStatus())
		if s.limitMemory {
			setMemoryLimit(s.log)
		}
	})
}

// drain closes nc after its publishes in flight are acknowledged, waiting
// up to ten seconds, so that the embedded server stops after its clients.
func drain(nc *nats.Conn) {
	if err := nc.Drain(); err != nil {
		nc.Close()
		return
	}
	for deadline := time.Now().Add(10 * time.Second); !nc.IsClosed() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	nc.Close()
}

// serveHTTP starts the /healthz, /readyz and /metrics listener.
func (s *Service) serveHTTP() (srv *http.Server, err error) {
	ready := func() []string { return s.metrics.ready.notReady(s.nc, s.provisioned.Load()) }
	srv, s.httpAddr, err = s.listenHTTP("http.listen", s.cfg.HTTP.Listen, s.metrics.handler(ready))
	if srv != nil {
		s.log.Info().Str("addr", s.httpAddr).Msg("HTTP listening: /healthz /readyz /metrics")
	}
	return srv, err
}

// sendMail opens the outbox and sends its mail through the smtp section's
// server until ctx ends; stop waits for the mail in hand.
func (s *Service) sendMail(ctx context.Context) (stop func(), err error) {
	opts := outbox.OptionsFrom(s.cfg.SMTP, s.cfg.NATS)
	opts.Log = s.log.With().Str("component", "outbox").Logger()
	if s.outbox, err = outbox.Open(ctx, s.js, opts); err != nil {
		return nil, err
	}
	sender, err := outbox.NewSMTPSender(s.cfg.SMTP)
	if err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	for range outboxSenders {
		wg.Go(func() {
			if err := s.outbox.Run(ctx, sender); err != nil {
				s.log.Error().Err(err).Msg("outbox stopped: no mail is sent")
			}
		})
	}
	return wg.Wait, nil
}

// outboxSenders is how many mails a replica submits at once: a backlog
// drained with answers on queues one per mail, and one SMTP transaction
// at a time is slow beside the drain.
const outboxSenders = 4

// serveDesk serves the agents' desk on desk.listen over the service's
// JetStream. The desk outlives ctx, so that agents are served while the
// mail in flight is finished: stop shuts it down, before NATS is drained.
func (s *Service) serveDesk(ctx context.Context) (stop func(), err error) {
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		if err != nil {
			cancel()
		}
	}()
	log := s.log.With().Str("component", "desk").Logger()
	report := func(err error) { log.Error().Err(err).Msg("desk") }
	h, err := desk.Open(dctx, s.cfg, s.js, SlogLogger(log), report, desk.Sources{Policy: s.pipeline.Policy(), Directory: s.pipeline.Directory, Outbox: s.outbox})
	if err != nil {
		return nil, err
	}
	ln, err := desk.Listen(ctx, s.cfg.Desk)
	if err != nil {
		return nil, err
	}
	s.deskURL = ln.URL
	done := make(chan error, 1)
	go func() {
		err := desk.Serve(dctx, ln, h, s.cfg.Desk.TLSCert, s.cfg.Desk.TLSKey)
		if err != nil {
			report(err)
		}
		done <- err
	}()
	s.log.Info().Str("url", ln.URL).Msg("desk listening")
	return func() { cancel(); <-done }, nil
}

// serveDebug starts the listener of Go's profiles when debug.listen is
// set.
func (s *Service) serveDebug() (srv *http.Server, err error) {
	srv, s.debugAddr, err = s.listenHTTP("debug.listen", s.cfg.Debug.Listen, debugHandler())
	if srv == nil {
		return srv, err
	}
	e := s.log.Info()
	if host, _, _ := net.SplitHostPort(s.debugAddr); !net.ParseIP(host).IsLoopback() {
		e = s.log.Warn().Str("risk", "anyone who reaches it can take profiles and read the command line")
	}
	e.Str("addr", s.debugAddr).Msg("debug listening: /debug/pprof/")
	return srv, nil
}

// listenHTTP serves h on addr until shut down; field names the setting
// in errors. An addr "" or "off" serves nothing.
func (s *Service) listenHTTP(field, addr string, h http.Handler) (*http.Server, string, error) {
	if addr == "" || addr == "off" {
		return nil, "", nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", field, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return srv, ln.Addr().String(), nil
}
