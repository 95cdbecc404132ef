package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/spf13/cobra"
	"github.com/ticketrouter/ticketrouter/router/config"
	"github.com/ticketrouter/ticketrouter/router/desk"
)

// errDeskNotBuilt: the desk's state and agents packages are not in this
// binary yet, so the desk has nothing to serve from.
var errDeskNotBuilt = errors.New("the desk's state (router/desk/state) and agents (router/desk/agents) are not built into this binary yet: the desk cannot start")

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
			return runDesk(cmd.Context(), configPath, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "the configuration `FILE` (required): its desk and nats sections")
	return cmd
}

// runDesk checks the configuration and serves the desk until ctx ends.
func runDesk(ctx context.Context, configPath string, stdout io.Writer) error {
	cfg, err := config.Load(configPath)
	if err != nil {
		return err
	}
	if err := cfg.CheckDesk(); err != nil {
		return err
	}
	store, auth, err := openDesk(ctx, cfg)
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

// openDesk opens the desk's state on JetStream and its agents; until
// router/desk/state and router/desk/agents are built in it refuses.
func openDesk(ctx context.Context, cfg *config.Config) (desk.Store, desk.Auth, error) {
	return nil, nil, errDeskNotBuilt
}
