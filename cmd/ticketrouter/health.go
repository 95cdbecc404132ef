package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/ticketrouter/ticketrouter/router"
	"github.com/ticketrouter/ticketrouter/router/config"
)

// defaultReadyURL is /readyz of a service with the default http.listen.
const defaultReadyURL = "http://127.0.0.1:8080/readyz"

// newHealthCmd is 'ticketrouter health'.
func newHealthCmd() *cobra.Command {
	var url, configPath string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "health [--url URL | --config FILE] [--timeout 5s]",
		Short: "Ask a running service whether it is ready (exit 0) or not (exit 1)",
		Long: `health asks a running 'ticketrouter run' for its /readyz, for a container's
HEALTHCHECK or a script: it exits 0 when the service is ready, and 1 with
the reason on stderr when it is not (NATS not connected, JetStream not
provisioned, a held mailbox's IMAP connection down) or does not answer.
The URL is --url, else /readyz on the http.listen of --config's file (on
loopback when that is 0.0.0.0 or ::), else ` + defaultReadyURL + `.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url != "" && configPath != "" {
				return usagef("--url and --config: give one")
			}
			if url == "" {
				url = defaultReadyURL
			}
			if configPath != "" {
				cfg, err := config.Load(configPath)
				if err != nil {
					return err
				}
				if url, err = router.ReadyURL(cfg.HTTP.Listen); err != nil {
					return err
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			if err := router.Probe(ctx, url); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ready\n", url)
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "the service's /readyz `URL`")
	cmd.Flags().StringVar(&configPath, "config", "", "the service's configuration `FILE`: its http.listen says where to ask")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "give up after this `duration`")
	return cmd
}
