package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/ticketrouter/ticketrouter/router/broker"
	"github.com/ticketrouter/ticketrouter/router/config"
	"github.com/ticketrouter/ticketrouter/router/desk"
	"github.com/ticketrouter/ticketrouter/router/desk/agents"
	"github.com/ticketrouter/ticketrouter/router/desk/state"
)

// newDeskCmd is 'ticketrouter desk'.
func newDeskCmd() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "desk --config FILE",
		Short: "Serve the agents' desk, the web workbench over the queues",
		Long: `desk serves the agents' web desk on desk.listen: the board of the queues an
agent may see, take next, the ticket page (guidance, account, checks, the
mail as text, attachments and the raw mail as downloads), resolve, return,
escalate, transfer and notes, each recorded in the ticket's history, and
search. Agents sign in with the agents file (desk.agents), or through an
authenticating proxy trusted by desk.trusted_proxies. It keeps no state of
its own: any number of desks can serve one NATS. It stops on SIGTERM or
SIGINT.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configPath == "" {
				return usagef("--config FILE is required")
			}
			return runDesk(cmd.Context(), configPath, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "the configuration `FILE` (required): its desk and nats sections")
	return cmd
}

// runDesk checks the configuration and serves the desk until ctx ends.
func runDesk(ctx context.Context, configPath string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(configPath)
	if err != nil {
		return err
	}
	if err := cfg.CheckDesk(); err != nil {
		return err
	}
	store, auth, err := openDesk(ctx, cfg, stderr)
	if err != nil {
		return fmt.Errorf("desk: %w", err)
	}
	d := cfg.Desk.WithDefaults()
	h, err := desk.New(store, auth, desk.Options{SLAAmber: d.SLAAmber, SLARed: d.SLARed, EscalationQueue: d.EscalationQueue})
	if err != nil {
		return err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", d.Listen)
	if err != nil {
		return fmt.Errorf("desk: %w", err)
	}
	scheme := "http"
	if d.TLSCert != "" {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "desk: serving %s://%s/\n", scheme, ln.Addr())
	return desk.Serve(ctx, ln, h, d.TLSCert, d.TLSKey)
}

// openDesk opens the desk's state on JetStream and its agents: NATS as
// the nats section says (the service's embedded server by its address when
// nats.url is empty), the state's buckets and its indexer, the agents file
// (reloaded on change) and the sessions. Problems after the start (the
// indexer, a bad edit of the agents file) are printed on stderr.
func openDesk(ctx context.Context, cfg *config.Config, stderr io.Writer) (desk.Store, desk.Auth, error) {
	d := cfg.Desk.WithDefaults()
	n := cfg.NATS.WithDefaults()
	if n.URL == "" {
		n.URL = fmt.Sprintf("nats://%s", net.JoinHostPort(n.Embedded.Host, strconv.Itoa(n.Embedded.Port)))
	}
	nc, err := broker.Connect(ctx, n, nil, "ticketrouter desk "+cfg.Replica.ID, zerolog.Nop())
	if err != nil {
		return nil, nil, err
	}
	context.AfterFunc(ctx, nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	bjs, err := broker.Provision(ctx, js, n, cfg.Prefix(), cfg.Replica.LeaseTTL)
	if err != nil {
		return nil, nil, err
	}
	st, err := state.Open(ctx, bjs, cfg.Prefix(), state.Options{Replicas: n.Replicas, Escalated: d.EscalationQueue})
	if err != nil {
		return nil, nil, err
	}
	context.AfterFunc(ctx, st.Close)
	report := func(err error) { fmt.Fprintf(stderr, "desk: %v\n", err) }
	go st.RunIndexer(ctx, 5*time.Second, report)
	dir, err := agents.LoadDirectory(d.Agents)
	if err != nil {
		return nil, nil, err
	}
	go dir.Watch(ctx, 5*time.Second, report)
	plain := d.TLSCert == "" && len(d.TrustedProxies) == 0 // plain http on loopback (CheckDesk)
	sess, err := agents.OpenSessions(ctx, js, dir, agents.Options{Replicas: n.Replicas, IdleTimeout: d.SessionIdle,
		TrustedProxies: d.TrustedProxies, UserHeader: d.UserHeader, InsecureCookie: plain})
	if err != nil {
		return nil, nil, err
	}
	return desk.FromState(st), desk.FromSessions(sess, dir), nil
}
