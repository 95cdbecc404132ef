package desk

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/ticketrouter/ticketrouter/router/broker"
	"github.com/ticketrouter/ticketrouter/router/config"
	"github.com/ticketrouter/ticketrouter/router/desk/agents"
	"github.com/ticketrouter/ticketrouter/router/desk/state"
	"github.com/ticketrouter/ticketrouter/router/outbox"
	"github.com/ticketrouter/ticketrouter/router/thread"
	"github.com/ticketrouter/ticketrouter/rules"
	"github.com/ticketrouter/ticketrouter/rules/accounts"
)

// Open builds the desk's handler as the desk section of cfg says, over a
// provisioned JetStream: the desk's state (its buckets and its indexer),
// the agents file (reloaded on change) and the sessions. Problems after
// the start (the indexer, a bad edit of the agents file) go to report.
// Everything it starts stops when ctx ends. Both `ticketrouter desk` (Run)
// and the service (`run` with desk.listen set) call it.
func Open(ctx context.Context, cfg *config.Config, js *broker.JetStream, log *slog.Logger, report func(error), src Sources) (*Server, error) {
	d := cfg.Desk.WithDefaults()
	n := cfg.NATS.WithDefaults()
	dir, err := agents.LoadDirectory(d.Agents)
	if err != nil {
		return nil, fmt.Errorf("desk: %w", err)
	}
	go dir.Watch(ctx, 5*time.Second, report)
	active := func(name string) bool {
		a, ok := dir.Lookup(name)
		return ok && !a.Disabled
	}
	st, err := state.Open(ctx, js, cfg.Prefix(), state.Options{Replicas: n.Replicas, Escalated: d.EscalationQueue,
		BoardMaxAge: time.Second, Active: active})
	if err != nil {
		return nil, fmt.Errorf("desk: open state: %w", err)
	}
	context.AfterFunc(ctx, st.Close)
	go st.RunIndexer(ctx, 5*time.Second, report)
	plain := d.TLSCert == "" && len(d.TrustedProxies) == 0 // plain http on loopback (CheckDesk)
	sess, err := agents.OpenSessions(ctx, js.JS, dir, agents.Options{Replicas: n.Replicas, IdleTimeout: d.SessionIdle,
		TrustedProxies: d.TrustedProxies, UserHeader: d.UserHeader, InsecureCookie: plain})
	if err != nil {
		return nil, fmt.Errorf("desk: open sessions: %w", err)
	}
	opts := Options{SLAAmber: d.SLAAmber, SLARed: d.SLARed, EscalationQueue: d.EscalationQueue, Logger: log}
	if cfg.SMTP.On() {
		if opts.Replies, err = openReplies(ctx, cfg, js, src, report); err != nil {
			return nil, fmt.Errorf("desk: %w", err)
		}
	}
	return New(st, FromSessions(sess, dir), opts)
}

// Sources are the policy and the account directory a desk in the service
// shares with it; the zero value: the desk loads them from the files the
// configuration names.
type Sources struct {
	Policy    *rules.Policy
	Directory func() *accounts.Directory
	// Outbox is the service's, opened already; nil: the desk opens it.
	Outbox *outbox.Outbox
}

// openReplies opens the outbox and the threads for agents' replies, with
// src's policy and directory, or those cfg names (the directory read again
// when its file changes; a file that does not load is reported).
func openReplies(ctx context.Context, cfg *config.Config, js *broker.JetStream, src Sources, report func(error)) (*Replies, error) {
	if src.Policy == nil {
		src.Policy = rules.DefaultPolicy()
		if cfg.Policy != "" {
			p, err := rules.LoadPolicy(cfg.Policy)
			if err != nil {
				return nil, err
			}
			src.Policy = p
		}
	}
	if src.Directory == nil {
		dir, err := accounts.LoadDirectory(cfg.Accounts)
		if err != nil {
			return nil, err
		}
		var current atomic.Pointer[accounts.Directory]
		current.Store(dir)
		// A reset goes to the admin address on file now: read the file
		// again when it changes, as the service does.
		go config.WatchFile(ctx, cfg.Accounts, time.Second, func() {
			if dir, err := accounts.LoadDirectory(cfg.Accounts); err == nil {
				current.Store(dir)
			} else if report != nil {
				report(fmt.Errorf("accounts file changed but does not load: keeping the accounts in use: %w", err))
			}
		})
		src.Directory = current.Load
	}
	ob := src.Outbox
	if ob == nil {
		var err error
		if ob, err = outbox.Open(ctx, js, outbox.OptionsFrom(cfg.SMTP, cfg.NATS)); err != nil {
			return nil, err
		}
	}
	return &Replies{Policy: src.Policy, Account: DirectoryAccount(src.Directory), Outbox: ob, Threads: thread.New(js.Threads, js.Stream)}, nil
}

// Listener is the desk's listener on desk.listen, and its address as a
// URL for people.
type Listener struct {
	net.Listener
	// URL is http://host:port/ (https with TLS), with the port bound.
	URL string
}

// Listen opens the listener of the desk section d.
func Listen(ctx context.Context, d config.Desk) (*Listener, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", d.Listen)
	if err != nil {
		return nil, fmt.Errorf("desk: listen: %w", err)
	}
	scheme := "http"
	if d.TLSCert != "" {
		scheme = "https"
	}
	return &Listener{Listener: ln, URL: fmt.Sprintf("%s://%s/", scheme, ln.Addr())}, nil
}

// Run is `ticketrouter desk` on its own: it connects to NATS as cfg's nats
// section says (the service's embedded server by its address when nats.url
// is empty), provisions JetStream, opens the desk (Open) and serves it on
// desk.listen until ctx ends. Once listening it calls listening with the
// desk's URL. cfg must have passed CheckDesk.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger, report func(error), listening func(url string)) error {
	n := cfg.NATS.WithDefaults()
	if n.URL == "" {
		n.URL = fmt.Sprintf("nats://%s", net.JoinHostPort(n.Embedded.Host, strconv.Itoa(n.Embedded.Port)))
	}
	nc, err := broker.Connect(ctx, n, nil, "ticketrouter desk "+cfg.Replica.ID, zerolog.Nop())
	if err != nil {
		return fmt.Errorf("desk: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("desk: jetstream: %w", err)
	}
	bjs, err := broker.Provision(ctx, js, n, cfg.Prefix(), cfg.Replica.LeaseTTL)
	if err != nil {
		return fmt.Errorf("desk: %w", err)
	}
	octx, cancel := context.WithCancel(ctx)
	defer cancel()
	h, err := Open(octx, cfg, bjs, log, report, Sources{})
	if err != nil {
		return err
	}
	ln, err := Listen(ctx, cfg.Desk)
	if err != nil {
		return err
	}
	if listening != nil {
		listening(ln.URL)
	}
	d := cfg.Desk
	return Serve(ctx, ln, h, d.TLSCert, d.TLSKey)
}
