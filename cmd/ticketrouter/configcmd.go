package main

import (
	"fmt"
	"io"

	"github.com/ticketrouter/ticketrouter/router/config"
	"github.com/ticketrouter/ticketrouter/rules"
)

// configCmd implements 'ticketrouter config check FILE': load the
// configuration and everything it names (accounts, policy) the way run
// does, and say what is wrong, with file, line and field.
func configCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 || args[0] != "check" {
		fmt.Fprintln(stderr, "usage: ticketrouter config check FILE")
		return exitUsage
	}
	path := args[1]
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
	dir, err := rules.LoadDirectory(cfg.Accounts)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	fmt.Fprintf(stdout, "%s: OK (%d accounts, mailboxes %v, NATS %s)\n", path, dir.Len(), cfg.IMAP.Mailboxes, natsWhere(cfg))
	return exitOK
}

func natsWhere(cfg *config.Config) string {
	if cfg.NATS.URL != "" {
		return cfg.NATS.URL
	}
	e := cfg.NATS.WithDefaults().Embedded
	return fmt.Sprintf("embedded on %s:%d", e.Host, e.Port)
}
