package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ticketrouter/ticketrouter/ingest"
	"github.com/ticketrouter/ticketrouter/router"
	"github.com/ticketrouter/ticketrouter/rules"
)

// route implements 'ticketrouter route': parse each mail, decide, print its
// ticket as one JSON line. An unreadable file is reported and skipped; a
// malformed mail is not an error, its ticket records what was wrong.
func route(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("route", flag.ContinueOnError)
	fs.SetOutput(stderr)
	accountsPath := fs.String("accounts", "", "account directory: YAML (`accounts:` list) or JSON Lines `FILE` (required)")
	policyPath := fs.String("policy", "", "routing policy YAML `FILE` replacing the built-in default")
	explain := fs.Bool("explain", false, "print to stderr, for each mail, which policy row fired and why")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ticketrouter route --accounts FILE [--policy FILE] [--explain] MSG.eml... ('-' reads stdin)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *accountsPath == "" || fs.NArg() == 0 {
		fs.Usage()
		return exitUsage
	}

	policy := rules.DefaultPolicy()
	if *policyPath != "" {
		p, err := rules.LoadPolicy(*policyPath)
		if err != nil {
			printError(stderr, err)
			return exitError
		}
		policy = p
	}
	dir, err := rules.LoadDirectory(*accountsPath)
	if err != nil {
		printError(stderr, err)
		return exitError
	}

	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	code := exitOK
	for _, name := range fs.Args() {
		if ctx.Err() != nil {
			return exitError
		}
		t, d, err := routeFile(name, stdin, policy, dir)
		if err != nil {
			printError(stderr, err)
			code = exitError
			continue
		}
		if err := enc.Encode(t); err != nil {
			printError(stderr, fmt.Errorf("write ticket: %w", err))
			return exitError
		}
		if *explain {
			printExplanation(stderr, name, t, d)
		}
	}
	return code
}

// routeFile reads one mail ("-" is stdin) and returns its ticket.
func routeFile(name string, stdin io.Reader, policy *rules.Policy, dir *rules.Directory) (*router.Ticket, *rules.Decision, error) {
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, nil, err // *PathError names the file
		}
		defer f.Close()
		r = f
	}
	t, d, err := routeMessage(r, policy, dir)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return t, d, nil
}

// routeMessage is the whole route of one raw mail: parse, decide, ticket.
func routeMessage(r io.Reader, policy *rules.Policy, dir *rules.Directory) (*router.Ticket, *rules.Decision, error) {
	req, err := ingest.Parse(r, ingest.Limits{})
	if err != nil {
		return nil, nil, err
	}
	d := rules.Decide(policy, dir, rules.SenderAuth{}, req)
	return router.NewTicket(router.DefaultPrefix, req, d), d, nil
}

// printExplanation writes the human-readable trace of one decision.
func printExplanation(w io.Writer, name string, t *router.Ticket, d *rules.Decision) {
	fmt.Fprintf(w, "== %s\n", name)
	fmt.Fprintf(w, "ticket %s -> %s\n", t.ID[:12], t.Queue)
	for _, l := range d.Trace {
		fmt.Fprintf(w, "  %s\n", l)
	}
	fmt.Fprintln(w, "  guidance:")
	for _, g := range t.Guidance {
		fmt.Fprintf(w, "    - %s\n", g)
	}
}

// printError writes err with the command's name, one line per problem.
func printError(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(w, "ticketrouter: %s\n", line)
	}
}
