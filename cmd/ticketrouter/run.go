package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/ticketrouter/ticketrouter/ingest"
	"github.com/ticketrouter/ticketrouter/router"
	"github.com/ticketrouter/ticketrouter/rules"
)

// serve implements 'ticketrouter run': watch the mailbox, decide each
// mail, publish its ticket, until SIGTERM; then drain and exit 0.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "the configuration `FILE` (required)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ticketrouter run --config FILE")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *configPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	cfg, err := loadRunConfig(*configPath)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	log, err := newLogger(cfg.Log, stdout)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	s := &service{cfg: cfg, log: log, metrics: newMetrics(), limitMemory: true}
	if err := s.run(ctx); err != nil {
		log.Error().Err(err).Msg("stopped")
		return exitError
	}
	log.Info().Msg("stopped cleanly")
	return exitOK
}

// loadRunConfig loads a configuration and checks that it can run the
// service, errors naming the file, line and field.
func loadRunConfig(path string) (*Config, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, err
	}
	if err := cfg.checkRun(); err != nil {
		data, _ := os.ReadFile(path)
		return nil, fieldError(path, data, err)
	}
	return cfg, nil
}

// service is one running replica.
type service struct {
	cfg         *Config
	log         zerolog.Logger
	metrics     *metrics
	router      *mailRouter
	embedded    *server.Server
	nc          *nats.Conn
	js          *router.JetStream
	provisioned atomic.Bool
	// httpAddr is where /healthz, /readyz and /metrics listen, once up.
	httpAddr string
	// ready is closed once the replica serves (tests and demo wait on it).
	ready chan struct{}
	// limitMemory sets the runtime's soft memory limit from the live heap
	// (the run command; not a test or the demo sharing a process).
	limitMemory bool
}

// run starts everything, works until ctx is done, and shuts down in
// order: watchers (in-flight mail finished or abandoned, never lost),
// leases released, HTTP, NATS drained, the embedded server.
func (s *service) run(ctx context.Context) error {
	var err error
	if s.router, err = newRouter(s.cfg); err != nil {
		return err
	}
	s.metrics.accounts.Set(float64(s.router.dir.Load().Len()))
	s.log.Info().Int("accounts", s.router.dir.Load().Len()).Str("file", s.cfg.Accounts).Msg("accounts loaded")
	if s.limitMemory {
		setMemoryLimit(s.log)
	}
	nc := s.cfg.NATS.WithDefaults()
	if nc.URL == "" {
		if s.embedded, err = router.StartEmbedded(nc.Embedded, s.log); err != nil {
			return err
		}
		defer s.embedded.Shutdown()
	}
	// The service may start before its NATS: keep trying, and let
	// provisioning report how it goes.
	if s.nc, err = router.Connect(ctx, nc, s.embedded, "ticketrouter "+s.cfg.Replica.ID, s.log, nats.RetryOnFailedConnect(true)); err != nil {
		return err
	}
	defer drain(s.nc)

	httpSrv, err := s.serveHTTP()
	if err != nil {
		return err
	}
	if httpSrv != nil {
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			httpSrv.Shutdown(sctx)
		}()
	}

	if err := s.provision(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting for NATS
		}
		return err
	}
	go s.reloadAccounts(ctx)
	if s.ready != nil {
		close(s.ready)
	}
	leases := &router.Leases{JS: s.js, Replica: s.cfg.Replica.ID, TTL: s.cfg.Replica.LeaseTTL, Log: s.log}
	pub := &router.Publisher{JS: s.js, Prefix: s.router.prefix}
	s.log.Info().Str("replica", s.cfg.Replica.ID).Strs("mailboxes", s.cfg.IMAP.Mailboxes).Msg("running")
	leases.Run(ctx, s.cfg.IMAP.Mailboxes, func(wctx context.Context, mailbox string) {
		s.metrics.working(mailbox, true)
		defer s.metrics.working(mailbox, false)
		h := &mailHandler{router: s.router, pub: pub, metrics: s.metrics, log: s.log}
		wc, err := s.watcherConfig(mailbox)
		if err != nil { // checked at start; the file changed since
			s.log.Error().Err(err).Str("mailbox", mailbox).Msg("watcher not started")
			return
		}
		w, err := ingest.NewWatcher(wc, h, router.KVCheckpoints{KV: s.js.Checkpoints}, s.log)
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
func (s *service) provision(ctx context.Context) error {
	js, err := jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		s.js, err = router.Provision(pctx, js, s.cfg.NATS, s.router.prefix, s.cfg.Replica.LeaseTTL)
		cancel()
		if err == nil {
			s.provisioned.Store(true)
			s.log.Info().Str("stream", s.cfg.NATS.WithDefaults().Stream).Msg("JetStream provisioned")
			return nil
		}
		s.log.Warn().Err(err).AnErr("nats_error", s.nc.LastError()).Stringer("retry_in", wait).Msg("JetStream not ready")
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
func (s *service) reloadAccounts(ctx context.Context) {
	stamp := func() string {
		fi, err := os.Stat(s.cfg.Accounts)
		if err != nil {
			return ""
		}
		return fmt.Sprint(fi.ModTime().UnixNano(), fi.Size())
	}
	loaded, seen := stamp(), ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(accountsPoll):
		}
		now := stamp()
		if now == loaded || now == "" {
			continue
		}
		if now != seen { // changed since the last poll: let it settle
			seen = now
			continue
		}
		loaded = now
		dir, err := rules.LoadDirectory(s.cfg.Accounts)
		if err != nil {
			s.metrics.reloadFails.Inc()
			s.log.Error().Err(err).Msg("accounts file changed but does not load: keeping the accounts in use")
			continue
		}
		s.router.dir.Store(dir)
		s.metrics.accounts.Set(float64(dir.Len()))
		s.log.Info().Int("accounts", dir.Len()).Msg("accounts reloaded")
		if s.limitMemory {
			setMemoryLimit(s.log)
		}
	}
}

// watcherConfig is the IMAP section as one mailbox's watcher settings.
func (s *service) watcherConfig(mailbox string) (ingest.WatcherConfig, error) {
	c := s.cfg.IMAP
	w := ingest.WatcherConfig{
		Addr: c.Addr, Security: c.Security, AllowInsecure: c.AllowInsecure,
		Username: c.Username, Mechanism: c.Mechanism, Secret: c.Secret,
		Mailboxes: []string{mailbox}, Processed: c.Processed, Quarantine: c.Quarantine,
		MaxSize: c.MaxSize, MaxAttempts: c.MaxAttempts, Concurrency: c.Concurrency, PollInterval: c.PollInterval, NoIdle: c.Idle != nil && !*c.Idle, Liveness: c.Liveness,
		Observer: s.metrics,
	}
	if c.CAFile != "" {
		roots, err := certPool(c.CAFile)
		if err != nil {
			return w, fmt.Errorf("imap.ca_file: %w", err)
		}
		w.TLSConfig = &tls.Config{RootCAs: roots}
	}
	return w, nil
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
func (s *service) serveHTTP() (*http.Server, error) {
	addr := s.cfg.HTTP.Listen
	if addr == "off" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http.listen: %w", err)
	}
	srv := &http.Server{
		Handler:           s.metrics.handler(func() []string { return s.metrics.notReady(s.nc, s.provisioned.Load()) }),
		ReadHeaderTimeout: 5 * time.Second,
	}
	s.httpAddr = ln.Addr().String()
	go srv.Serve(ln)
	s.log.Info().Str("addr", s.httpAddr).Msg("HTTP listening: /healthz /readyz /metrics")
	return srv, nil
}

// newLogger makes the service's logger: JSON, or readable console lines
// when the output is a terminal (format auto).
func newLogger(c LogConfig, w io.Writer) (zerolog.Logger, error) {
	level := zerolog.InfoLevel
	if c.Level != "" {
		l, err := zerolog.ParseLevel(strings.ToLower(c.Level))
		if err != nil {
			return zerolog.Logger{}, fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Level)
		}
		level = l
	}
	out := w
	switch c.Format {
	case "", "auto":
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			out = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
		}
	case "console":
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
	case "json":
	default:
		return zerolog.Logger{}, fmt.Errorf("log.format: %q is not auto, json or console", c.Format)
	}
	return zerolog.New(out).With().Timestamp().Logger().Level(level), nil
}
