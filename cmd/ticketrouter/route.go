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
	"sync/atomic"
	"time"

	"github.com/ticketrouter/ticketrouter/ingest"
	"github.com/ticketrouter/ticketrouter/router"
	"github.com/ticketrouter/ticketrouter/rules"
)

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// route implements 'ticketrouter route': parse each mail, decide, print its
// ticket as one JSON line: exactly what the service would publish. An
// unreadable file is reported and skipped; a malformed mail is not an
// error, its ticket records what was wrong.
func route(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("route", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "the service's configuration `FILE`; the flags below override it")
	accountsPath := fs.String("accounts", "", "account directory: YAML (`accounts:` list) or JSON Lines `FILE`")
	policyPath := fs.String("policy", "", "routing policy YAML `FILE` replacing the built-in default")
	senderAuth := fs.String("sender-auth", "", "sender authentication: off, authentication-results, dkim or both")
	var trusted stringList
	fs.Var(&trusted, "trust-authserv-id", "an authserv-id whose Authentication-Results are believed (repeatable; replaces the config's list)")
	explain := fs.Bool("explain", false, "print to stderr, for each mail, which policy row fired and why")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ticketrouter route [--config FILE] [--accounts FILE] [--policy FILE] [--sender-auth MODE] [--trust-authserv-id ID]... [--explain] MSG.eml... ('-' reads stdin)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}

	cfg := &Config{}
	if *configPath != "" {
		c, err := loadConfig(*configPath)
		if err != nil {
			printError(stderr, err)
			return exitError
		}
		cfg = c
	}
	if *accountsPath != "" {
		cfg.Accounts = *accountsPath
	}
	if *policyPath != "" {
		cfg.Policy = *policyPath
	}
	if *senderAuth != "" {
		cfg.SenderAuth.Mode = *senderAuth
	}
	if len(trusted) > 0 {
		cfg.SenderAuth.TrustedAuthservIDs = trusted
	}
	if err := cfg.check(); err != nil {
		fmt.Fprintf(stderr, "ticketrouter route: %v\n", err)
		return exitUsage
	}
	if cfg.Accounts == "" || fs.NArg() == 0 {
		fs.Usage()
		return exitUsage
	}

	r, err := newRouter(cfg)
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
		t, d, err := r.routeFile(ctx, name, stdin)
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
		if *explain {
			printExplanation(stderr, name, t, d)
		}
	}
	return code
}

// mailRouter holds what deciding a mail needs: the policy, the directory
// (swapped whole when the accounts file changes), the sender
// authentication settings and the rate limiter. route and run share it,
// so a dry run decides exactly as the service does.
type mailRouter struct {
	policy  *rules.Policy
	dir     atomic.Pointer[rules.Directory]
	auth    rules.SenderAuth
	dkim    *ingest.DKIMVerifier // nil: DKIM not checked
	limiter rules.RateLimiter
	prefix  string
}

func newRouter(cfg *Config) (*mailRouter, error) {
	policy := rules.DefaultPolicy()
	if cfg.Policy != "" {
		p, err := rules.LoadPolicy(cfg.Policy)
		if err != nil {
			return nil, err
		}
		policy = p
	}
	dir, err := rules.LoadDirectory(cfg.Accounts)
	if err != nil {
		return nil, err
	}
	m := &mailRouter{
		policy: policy, auth: cfg.SenderAuth.SenderAuth, dkim: cfg.dkimVerifier(),
		limiter: &rules.MemoryRateLimiter{}, prefix: cfg.prefix(),
	}
	m.dir.Store(dir)
	return m, nil
}

// spoolMemory is how much of a mail is held in memory; the rest of a
// larger one goes to a temporary file.
const spoolMemory = 1 << 20

// routeFile reads one mail ("-" is stdin) and returns its ticket.
func (m *mailRouter) routeFile(ctx context.Context, name string, stdin io.Reader) (*router.Ticket, *rules.Decision, error) {
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, nil, err // *PathError names the file
		}
		defer f.Close()
		r = f
	}
	t, d, err := m.routeMessage(ctx, r)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return t, d, nil
}

// routeMessage is the whole route of one raw mail.
func (m *mailRouter) routeMessage(ctx context.Context, r io.Reader) (*router.Ticket, *rules.Decision, error) {
	sp, err := ingest.NewSpool(r, spoolMemory, "")
	if err != nil {
		return nil, nil, err
	}
	defer sp.Close()
	return m.ticket(ctx, &ingest.Parser{}, sp, nil)
}

// ticket decides one spooled mail: parse, check its DKIM signatures when
// the settings ask for it, decide, rate-limit, and build its ticket.
// problems (the watcher's, in reading the mail) head the ticket's list.
func (m *mailRouter) ticket(ctx context.Context, p *ingest.Parser, sp *ingest.Spool, problems []string) (*router.Ticket, *rules.Decision, error) {
	req, err := p.Parse(sp.Reader())
	if err != nil {
		return nil, nil, err
	}
	if len(problems) > 0 {
		req.Problems = append(problems[:len(problems):len(problems)], req.Problems...)
	}
	if m.dkim != nil {
		if req.DKIM, err = m.dkim.Verify(ctx, sp.Reader()); err != nil {
			return nil, nil, err
		}
		req.DKIMChecked = true
	}
	d := rules.Decide(m.policy, m.dir.Load(), m.auth, req)
	m.policy.RateLimit(req, d, m.limiter, time.Now())
	return router.NewTicket(m.prefix, req, d), d, nil
}

// printExplanation writes the human-readable trace of one decision, with
// what the mail put into it made safe for a terminal.
func printExplanation(w io.Writer, name string, t *router.Ticket, d *rules.Decision) {
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

// printError writes err with the command's name, one line per problem.
func printError(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(w, "ticketrouter: %s\n", line)
	}
}
