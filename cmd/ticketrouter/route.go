package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/ticketrouter/ticketrouter/router"
	"github.com/ticketrouter/ticketrouter/router/config"
	"github.com/ticketrouter/ticketrouter/router/ticket"
	"github.com/ticketrouter/ticketrouter/rules"
)

// routeFlags are the flags of route.
type routeFlags struct {
	config, accounts, policy, senderAuth string
	trusted                              []string
	explain                              bool
}

// newRouteCmd is 'ticketrouter route'.
func newRouteCmd() *cobra.Command {
	var f routeFlags
	cmd := &cobra.Command{
		Use:   "route [flags] MSG.eml... ('-' reads stdin)",
		Short: "Route saved mails through the policy and print their tickets (a dry run)",
		Long: `route parses each mail, decides it and prints its ticket as one JSON line:
exactly what the service would publish. An unreadable file is reported and
skipped; a malformed mail is not an error, its ticket records what was wrong.
The account directory comes from --accounts or the configuration's accounts.`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, files []string) error {
			return exitCode(route(cmd.Context(), f, files, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.config, "config", "", "the service's configuration `FILE`; the flags below override it")
	fs.StringVar(&f.accounts, "accounts", "", "account directory: YAML (`accounts:` list) or JSON Lines `FILE`")
	fs.StringVar(&f.policy, "policy", "", "routing policy YAML `FILE` replacing the built-in default")
	fs.StringVar(&f.senderAuth, "sender-auth", "", "sender authentication `MODE`: off, authentication-results, dkim or both")
	fs.StringArrayVar(&f.trusted, "trust-authserv-id", nil, "an authserv-`ID` whose Authentication-Results are believed (repeatable; replaces the config's list)")
	fs.BoolVar(&f.explain, "explain", false, "print to stderr, for each mail, which policy row fired and why")
	return cmd
}

// route routes each of files and prints its ticket.
func route(ctx context.Context, f routeFlags, files []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg := &config.Config{}
	if f.config != "" {
		c, err := config.Load(f.config)
		if err != nil {
			printError(stderr, err)
			return exitError
		}
		cfg = c
	}
	if f.accounts != "" {
		cfg.Accounts = f.accounts
	}
	if f.policy != "" {
		cfg.Policy = f.policy
	}
	if f.senderAuth != "" {
		cfg.SenderAuth.Mode = f.senderAuth
	}
	if len(f.trusted) > 0 {
		cfg.SenderAuth.TrustedAuthservIDs = f.trusted
	}
	if err := cfg.Check(); err != nil {
		fmt.Fprintf(stderr, "ticketrouter route: %v\n", err)
		return exitUsage
	}
	if cfg.Accounts == "" {
		fmt.Fprintln(stderr, "ticketrouter route: no account directory: give --accounts FILE, or --config FILE with accounts set\nRun 'ticketrouter route --help' for usage.")
		return exitUsage
	}

	r, err := router.NewPipeline(cfg)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	code := exitOK
	for _, name := range files {
		if ctx.Err() != nil {
			return exitError
		}
		t, d, err := r.File(ctx, name, stdin)
		if err != nil {
			printError(stderr, err)
			code = exitError
			continue
		}
		if err := enc.Encode(t); err != nil {
			printError(stderr, fmt.Errorf("write ticket: %w", err))
			return exitError
		}
		if d.Retry {
			fmt.Fprintf(stderr, "ticketrouter: %s: sender not yet authenticated (temporary DNS failure): the service would decide this mail again later\n", name)
		}
		if f.explain {
			printExplanation(stderr, name, t, d)
		}
	}
	return code
}

// printExplanation writes the human-readable trace of one decision, with
// what the mail put into it made safe for a terminal.
func printExplanation(w io.Writer, name string, t *ticket.Ticket, d *rules.Decision) {
	fmt.Fprintf(w, "== %s\n", sanitize(name, false))
	fmt.Fprintf(w, "ticket %s -> %s\n", t.ID[:12], t.Queue)
	for _, l := range d.Trace {
		fmt.Fprintf(w, "  %s\n", sanitize(l, false))
	}
	fmt.Fprintf(w, "  sender authentication: %s\n", t.Checks.SenderAuthenticated.Reason)
	fmt.Fprintln(w, "  guidance:")
	for _, g := range t.Guidance {
		fmt.Fprintf(w, "    - %s\n", g)
	}
}
