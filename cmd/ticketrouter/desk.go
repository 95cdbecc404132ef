package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/ticketrouter/ticketrouter/router"
	"github.com/ticketrouter/ticketrouter/router/config"
	"github.com/ticketrouter/ticketrouter/router/desk"
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
	log, err := router.NewLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	report := func(err error) { log.Error().Err(err).Msg("desk") }
	return desk.Run(ctx, cfg, router.SlogLogger(log), report, func(url string) { fmt.Fprintf(stdout, "desk: serving %s\n", url) })
}
