package main

import (
	"context"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/ticketrouter/ticketrouter/router"
	"github.com/ticketrouter/ticketrouter/router/config"
)

// newRunCmd is 'ticketrouter run'.
func newRunCmd() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Watch the mailbox and publish tickets (the service)",
		Long: `run is the service: it watches the configured mailboxes over IMAP, decides
each mail as route does, stores the raw mail and publishes the ticket to
JetStream, and moves the mail to the processed folder once both are stored.
It stops on SIGTERM or SIGINT, finishing or abandoning (never losing) the
mails in flight. Started by systemd with Type=notify, it reports READY=1
once it serves, STOPPING=1 as it stops, and its state in STATUS= lines.
With desk.listen set it also serves the agents' desk (see desk) on that
listener, over the same NATS connection: one process for one machine.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configPath == "" {
				return usagef("--config FILE is required")
			}
			return exitCode(serve(cmd.Context(), configPath, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "the configuration `FILE` (required)")
	return cmd
}

// serve runs the service until ctx is done.
func serve(ctx context.Context, configPath string, stdout, stderr io.Writer) int {
	cfg, err := config.LoadService(configPath)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	log, err := router.NewLogger(cfg.Log, stdout)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	// Under systemd's Type=notify: READY=1 once serving, STOPPING=1, STATUS=.
	notifier, err := router.NewNotifier(os.Getenv("NOTIFY_SOCKET"))
	if err != nil {
		log.Warn().Err(err).Msg("not telling the service manager how the service is doing")
	}
	if err := router.NewService(cfg, log, router.Options{LimitMemory: true, Notifier: notifier}).Run(ctx); err != nil {
		// In the log, and on stderr for whoever started it: the log may
		// be JSON on a pipe nobody reads.
		log.Error().Err(err).Msg("stopped")
		printError(stderr, err)
		return exitError
	}
	log.Info().Msg("stopped cleanly")
	return exitOK
}
