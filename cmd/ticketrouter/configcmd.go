package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/ticketrouter/ticketrouter/router/broker"
	"github.com/ticketrouter/ticketrouter/router/config"
	"github.com/ticketrouter/ticketrouter/rules"
	"github.com/ticketrouter/ticketrouter/rules/accounts"
)

// newConfigCmd is 'ticketrouter config'.
func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check a configuration file",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE",
		Short: "Load a configuration and all it names, and report every problem",
		Long: `config check loads the configuration and everything it names (accounts,
policy) the way run does, and says what is wrong, with file, line and field.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, files []string) error {
			return exitCode(checkConfig(files[0], cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	})
	return group(cmd)
}

// checkConfig checks the configuration at path.
func checkConfig(path string, stdout, stderr io.Writer) int {
	cfg, err := config.LoadService(path)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	if cfg.Policy != "" {
		if _, err := rules.LoadPolicy(cfg.Policy); err != nil {
			printError(stderr, err)
			return exitError
		}
	}
	dir, err := accounts.LoadDirectory(cfg.Accounts)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	fmt.Fprintf(stdout, "%s: OK (%d accounts, mailboxes %v, NATS %s)\n", path, dir.Len(), cfg.IMAP.Mailboxes, broker.Where(cfg.NATS))
	return exitOK
}
