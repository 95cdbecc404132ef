package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/ticketrouter/ticketrouter/router/broker"
	"github.com/ticketrouter/ticketrouter/router/config"
	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// queueConnectHelp says where the queue commands connect, for their help.
const queueConnectHelp = `Where it connects: the first of
  1. --nats URL, with the credentials of the source below that would
     apply without it;
  2. --context NAME, else $NATS_CONTEXT: that nats CLI context (url, user,
     password, token, creds, nkey, cert, key, ca, tls_first,
     jetstream_domain, jetstream_api_prefix, inbox_prefix);
  3. $NATS_URL, with $NATS_USER and $NATS_PASSWORD, $NATS_CREDS,
     $NATS_NKEY, $NATS_CERT, $NATS_KEY and $NATS_CA;
  4. the nats CLI's selected context ('nats context select':
     $XDG_CONFIG_HOME/nats/context.txt, ~/.config/nats by default);
  5. --config FILE: its nats section (nats.url with its credentials, or
     the embedded server's listener);
  6. ` + broker.DefaultURL + `.
--config also gives the stream name and subject prefix (else TICKETS and
` + ticket.DefaultPrefix + `).`

// newQueueCmd is 'ticketrouter queue': the agents' view of the JetStream
// consumers that the service creates, one per queue.
func newQueueCmd() *cobra.Command {
	var qf queueFlags
	cmd := &cobra.Command{
		Use:   "queue",
		Short: "List the agents' queues, claim the next ticket of one, finish it (agents)",
		Long: `queue is the agents' view of the queues: one JetStream consumer per queue.
A ticket claimed with 'next' is finished with 'ack', 'nak' or 'term' and the
claim ID 'next' printed, from any shell, or kept longer with 'extend'.

queues: ` + strings.Join(broker.Queues(), ", ") + "\n\n" + queueConnectHelp,
	}
	fs := cmd.PersistentFlags()
	fs.StringVar(&qf.config, "config", "", "the service's configuration `FILE` (its nats: section and subject_prefix)")
	fs.StringVar(&qf.natsURL, "nats", "", "NATS server `URL`, overriding every other source (the order: ticketrouter queue --help)")
	fs.StringVar(&qf.context, "context", "", "the nats CLI context `NAME` to connect with (default $NATS_CONTEXT)")
	fs.BoolVar(&qf.json, "json", false, "print JSON instead of the readable view")

	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "Show each queue's waiting and claimed tickets and their ages",
		Long: `list shows, for each queue, the tickets waiting (not yet delivered), claimed
(delivered, not yet acknowledged) and the age of the oldest of each.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return exitCode(queueList(cmd.Context(), qf, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	})

	var nf nextFlags
	next := &cobra.Command{
		Use:   "next QUEUE",
		Short: "Claim the next ticket of a queue and show it",
		Long: `next claims one ticket of a queue and shows it with its claim ID. --ack: done;
--nak: put it back, it is delivered again; --term: never delivered again.
Without them the ticket stays claimed until the queue's ack wait runs out:
finish it later with 'queue ack|nak|term ID', or keep it longer with
'queue extend ID'. --json prints {"ticket": <the ticket as published>,
"claim": {"id": ..., "expires": ..., ...}}.

Rate-limited tickets (more requests than the policy allows: a possible
flood) wait in a queue of their own, rate-limited, not before a colour's
real work.

queues: ` + strings.Join(broker.Queues(), ", "),
		Args:      args(cobra.ExactArgs(1)),
		ValidArgs: broker.Queues(),
		RunE: func(cmd *cobra.Command, pos []string) error {
			if !isQueue(pos[0]) {
				return usagef("unknown queue %q: want one of %s", pos[0], strings.Join(broker.Queues(), ", "))
			}
			if n := b2i(nf.ack) + b2i(nf.nak) + b2i(nf.term); n > 1 {
				return usagef("--ack, --nak and --term exclude each other")
			}
			if nf.wait <= 0 {
				return usagef("--wait %s: want a positive duration", nf.wait)
			}
			return exitCode(queueNext(cmd.Context(), qf, nf, pos[0], cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	nfs := next.Flags()
	nfs.BoolVar(&nf.ack, "ack", false, "acknowledge the ticket once shown: done, never delivered again")
	nfs.BoolVar(&nf.nak, "nak", false, "put the ticket back once shown: it is delivered again")
	nfs.BoolVar(&nf.term, "term", false, "terminate the ticket once shown: never delivered again")
	nfs.DurationVar(&nf.wait, "wait", 2*time.Second, "how long to wait for a ticket")
	cmd.AddCommand(next)

	for _, a := range []struct{ name, short, long string }{
		{"ack", "Acknowledge a claimed ticket: done, never delivered again", "ack acknowledges the ticket of a claim: done, its queue never delivers it again."},
		{"nak", "Put a claimed ticket back: it is delivered again", "nak puts the ticket of a claim back: its queue delivers it again, to you or\nanother agent, before newer tickets."},
		{"term", "Terminate a claimed ticket: never delivered again", "term terminates the ticket of a claim: its queue never delivers it again\n(it stays in the stream for the record)."},
		{"extend", "Keep a claimed ticket longer: its ack wait starts again", "extend keeps a claimed ticket yours for the queue's ack wait from now on\n(JetStream's in-progress acknowledgement); run it again for more."},
	} {
		cmd.AddCommand(&cobra.Command{
			Use:   a.name + " ID",
			Short: a.short,
			Long:  a.long + "\n\nID is the claim ID 'queue next' printed (in --json: claim.id).",
			Args:  args(cobra.ExactArgs(1)),
			RunE: func(cmd *cobra.Command, pos []string) error {
				if _, err := broker.ParseClaimID(pos[0]); err != nil {
					return usageError{err}
				}
				return exitCode(queueAnswer(cmd.Context(), qf, a.name, pos[0], cmd.OutOrStdout(), cmd.ErrOrStderr()))
			},
		})
	}
	return group(cmd)
}

// queueFlags are the flags every queue command shares.
type queueFlags struct {
	config  string
	natsURL string
	context string
	json    bool
}

// nextFlags are the flags of next.
type nextFlags struct {
	ack, nak, term bool
	wait           time.Duration
}

// connect reads the configuration, if any, and connects where the
// sources say (queueConnectHelp).
func (q *queueFlags) connect(ctx context.Context) (*broker.Agent, error) {
	cfg := &config.Config{}
	src := broker.Sources{URL: q.natsURL, Context: q.context, Getenv: os.Getenv}
	if q.config != "" {
		c, err := config.Load(q.config)
		if err != nil {
			return nil, err
		}
		cfg = c
		if err := cfg.CheckNATS(); err != nil {
			return nil, err
		}
		src.Config, src.ConfigFile = &cfg.NATS, q.config
	}
	target, err := broker.ResolveTarget(src)
	if err != nil {
		return nil, err
	}
	return broker.ConnectAgent(ctx, target, cfg.NATS.WithDefaults().Stream, cfg.Prefix(), "ticketrouter queue")
}

// queueListing is the document 'queue list --json' prints.
type queueListing struct {
	Stream string `json:"stream"`
	Prefix string `json:"prefix"`
	// NATS is the server connected to (credentials redacted), From where
	// its address came from.
	NATS   string               `json:"nats"`
	From   string               `json:"from"`
	At     time.Time            `json:"at"`
	Queues []broker.QueueStatus `json:"queues"`
}

func queueList(ctx context.Context, qf queueFlags, stdout, stderr io.Writer) int {
	agent, err := qf.connect(ctx)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	defer agent.Close()

	listing := queueListing{Stream: agent.Stream(), Prefix: agent.Prefix(), NATS: agent.URL(), From: agent.From(), At: time.Now().UTC().Truncate(time.Millisecond)}
	code := exitOK
	for _, q := range broker.Queues() {
		st, err := agent.Status(ctx, q)
		if err != nil {
			printError(stderr, err)
			return exitError
		}
		if st.Error != "" {
			code = exitError
		}
		listing.Queues = append(listing.Queues, st)
	}

	if qf.json {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(listing); err != nil {
			printError(stderr, fmt.Errorf("write: %w", err))
			return exitError
		}
	} else {
		fmt.Fprintf(stdout, "stream %s at %s (from %s), subjects %s.>\n\n", listing.Stream, listing.NATS, listing.From, listing.Prefix)
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "%-12s\tWAITING\tCLAIMED\tPENDING\tOLDEST WAITING\tOLDEST CLAIMED\t\n", "QUEUE")
		for _, st := range listing.Queues {
			if st.Error != "" {
				fmt.Fprintf(tw, "%-12s\t-\t-\t-\t-\t-\t  %s\n", st.Queue, st.Error)
				continue
			}
			fmt.Fprintf(tw, "%-12s\t%d\t%d\t%d\t%s\t%s\t\n", st.Queue, st.Waiting, st.Claimed, st.Pending,
				formatAge(st.OldestWaiting), formatAge(st.OldestClaimed))
		}
		if err := tw.Flush(); err != nil {
			printError(stderr, fmt.Errorf("write: %w", err))
			return exitError
		}
		fmt.Fprintln(stdout, "\nwaiting: not delivered yet; claimed: delivered to an agent, not acknowledged yet")
		fmt.Fprintln(stdout, "(tickets put back with --nak or whose ack wait ran out count as claimed until delivered again)")
	}
	for _, st := range listing.Queues {
		if st.Error != "" {
			printError(stderr, fmt.Errorf("queue %s: %s", st.Queue, st.Error))
		}
	}
	return code
}

// formatAge prints an age as 45s, 12m5s, 3h4m or 2d5h; "-" for none.
func formatAge(o *broker.OldestTicket) string {
	if o == nil {
		return "-"
	}
	d := time.Duration(o.AgeSeconds * float64(time.Second)).Round(time.Second)
	switch {
	case d < time.Hour:
		return d.String()
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}

// claimedTicket is what 'queue next --json' prints: the ticket as
// published, and the claim to finish it by.
type claimedTicket struct {
	Ticket json.RawMessage `json:"ticket"`
	// Raw is a message that is not JSON, as text (Ticket is then null).
	Raw   string        `json:"raw,omitempty"`
	Claim *broker.Claim `json:"claim"`
}

// queueNext implements 'queue next': claim one ticket and show it.
func queueNext(ctx context.Context, qf queueFlags, nf nextFlags, q string, stdout, stderr io.Writer) int {
	agent, err := qf.connect(ctx)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	defer agent.Close()
	claim, err := agent.Next(ctx, q, nf.wait)
	if errors.Is(err, broker.ErrNoTicket) {
		w := stdout
		if qf.json {
			w = stderr // keep stdout for JSON
		}
		fmt.Fprintf(w, "no ticket waiting in %s\n", q)
		return exitOK
	}
	if err != nil {
		printError(stderr, err)
		return exitError
	}

	// Show first, act after: a ticket is acknowledged only once written out.
	shown := &errWriter{w: stdout}
	if qf.json {
		doc := claimedTicket{Claim: claim}
		if json.Valid(claim.Data) {
			doc.Ticket = claim.Data
		} else {
			doc.Raw = string(claim.Data)
		}
		enc := json.NewEncoder(shown)
		enc.SetEscapeHTML(false)
		enc.Encode(doc) // a write error is in shown.err
	} else {
		var t ticket.Ticket
		if err := json.Unmarshal(claim.Data, &t); err != nil {
			printError(stderr, fmt.Errorf("%s: message on %s is not a ticket (%v): shown raw", q, claim.Subject, err))
			fmt.Fprintf(shown, "raw message on %s:\n%s\n", claim.Subject, sanitize(string(claim.Data), true))
		} else {
			if t.Version > ticket.Version {
				printError(stderr, fmt.Errorf("ticket version %d is newer than this ticketrouter knows (%d): some fields may not be shown", t.Version, ticket.Version))
			}
			renderTicket(shown, &t, claim)
		}
	}
	if shown.err != nil {
		printError(stderr, fmt.Errorf("write: %w (the ticket stays claimed until its ack wait runs out)", shown.err))
		return exitError
	}

	out := stdout
	if qf.json {
		out = stderr
	}
	switch {
	case nf.ack:
		return finish(ctx, agent, "ack", claim.ID, false, out, stderr)
	case nf.nak:
		return finish(ctx, agent, "nak", claim.ID, false, out, stderr)
	case nf.term:
		return finish(ctx, agent, "term", claim.ID, false, out, stderr)
	}
	fmt.Fprintf(out, "claimed: this ticket is yours for %s (until %s); not finished by then, it goes back to %s.\n",
		claim.AckWait, claim.Expires.Local().Format("15:04:05"), q)
	fmt.Fprintf(out, "claim ID %s\n", claim.ID)
	fmt.Fprintf(out, "finish it: ticketrouter queue ack|nak|term %s   (done | put back | drop); more time: queue extend %s\n", claim.ID, claim.ID)
	return exitOK
}

// queueAnswer implements 'queue ack|nak|term|extend ID'.
func queueAnswer(ctx context.Context, qf queueFlags, action, id string, stdout, stderr io.Writer) int {
	agent, err := qf.connect(ctx)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	defer agent.Close()
	return finish(ctx, agent, action, id, qf.json, stdout, stderr)
}

// answerResult is what 'queue ack|nak|term|extend --json' prints.
type answerResult struct {
	ID      string     `json:"id"`
	Done    string     `json:"done"`              // ack, nak, term or extend
	Expires *time.Time `json:"expires,omitempty"` // extend: the claim's new expiry
}

// finish answers claim id with action and says what it did on out.
func finish(ctx context.Context, agent *broker.Agent, action, id string, asJSON bool, out, stderr io.Writer) int {
	ref, err := broker.ParseClaimID(id)
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	q := ref.Consumer
	res := answerResult{ID: id, Done: action}
	var what string
	switch action {
	case "ack":
		err = agent.Ack(ctx, id)
		what = fmt.Sprintf("acknowledged: done, %s will not deliver this ticket again.", q)
	case "nak":
		err = agent.Nak(ctx, id)
		what = fmt.Sprintf("put back: %s will deliver this ticket again, to you or another agent.", q)
	case "term":
		err = agent.Term(ctx, id)
		what = fmt.Sprintf("terminated: %s will never deliver this ticket again (it stays in the stream for the record).", q)
	case "extend":
		var until time.Time
		until, err = agent.InProgress(ctx, id)
		res.Expires = &until
		what = fmt.Sprintf("extended: this ticket is yours until %s; not finished by then, it goes back to %s.", until.Local().Format("15:04:05"), q)
	}
	if err != nil {
		printError(stderr, err)
		return exitError
	}
	if asJSON {
		json.NewEncoder(out).Encode(res)
		return exitOK
	}
	fmt.Fprintln(out, what)
	return exitOK
}

func isQueue(q string) bool {
	for _, name := range broker.Queues() {
		if q == name {
			return true
		}
	}
	return false
}

// renderTicket writes the readable view of a ticket for an agent. Every
// string from the mail is sanitized: a mail cannot move the cursor, change
// colours or reorder text on the agent's terminal.
func renderTicket(w io.Writer, t *ticket.Ticket, claim *broker.Claim) {
	line := func(s string) string { return sanitize(s, false) }
	rule := strings.Repeat("=", 72)
	fmt.Fprintln(w, rule)
	fmt.Fprintf(w, "TICKET %s\n", line(t.ID))
	fmt.Fprintf(w, "queue %s  (stream seq %d, delivery #%d", line(claim.Subject), claim.StreamSeq, claim.Delivery)
	if claim.Delivery > 1 {
		fmt.Fprint(w, ": delivered before and not finished")
	}
	fmt.Fprintf(w, ", %d more waiting)\n", claim.Waiting)
	fmt.Fprintln(w, rule)

	if t.KeyExposed {
		fmt.Fprintln(w)
		banner := strings.Repeat("#", 72)
		fmt.Fprintln(w, banner)
		fmt.Fprintln(w, "##   K E Y   E X P O S E D")
		fmt.Fprintln(w, "##   KEY_EXPOSED: a private key or PFX was in this mail: a key compromise.")
		fmt.Fprintln(w, "##   The revocation team must see this ticket. Never reply with or forward the key.")
		fmt.Fprintln(w, banner)
	}
	if t.RateLimited {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "!! RATE LIMITED: more requests than the policy allows: a possible flood. Answer at most once.")
	}

	fmt.Fprintln(w, "\nWHO WROTE")
	from := line(t.From.Address)
	if t.From.Name != "" {
		from = fmt.Sprintf("%q <%s>", line(t.From.Name), from)
	}
	if from == "" {
		from = "(none)"
	}
	fmt.Fprintf(w, "  From:        %s\n", from)
	if t.From.Problem != "" {
		fmt.Fprintf(w, "  !! From problem: %s\n", line(t.From.Problem))
	}
	if len(t.ReplyTo) > 0 {
		rt := make([]string, len(t.ReplyTo))
		for i, a := range t.ReplyTo {
			rt[i] = line(a)
		}
		fmt.Fprintf(w, "  Reply-To:    %s (never used to identify the sender)\n", strings.Join(rt, ", "))
	}
	fmt.Fprintf(w, "  Subject:     %s\n", line(t.EmailSubject))
	date := "(missing or unreadable)"
	if t.Date != nil {
		date = t.Date.Format(time.RFC1123Z)
	}
	fmt.Fprintf(w, "  Date:        %s\n", date)
	if t.MessageID != "" {
		fmt.Fprintf(w, "  Message-ID:  %s\n", line(t.MessageID))
	}

	fmt.Fprintln(w, "\nACCOUNT")
	if a := t.Account; a != nil {
		name := ""
		if a.Name != "" {
			name = "  " + line(a.Name)
		}
		fmt.Fprintf(w, "  Account:     %s (%s)%s\n", line(a.ID), line(a.Colour), name)
		fmt.Fprintf(w, "  Admin email: %s\n", line(a.AdminEmail))
		if a.Partner != "" || a.PartnerName != "" {
			fmt.Fprintf(w, "  Partner:     %s %s\n", line(a.PartnerName), parens(line(a.Partner)))
		}
		fmt.Fprintf(w, "  Matched by:  %s\n", line(a.MatchedBy))
	} else {
		fmt.Fprintf(w, "  no account matched (colour %s)\n", line(t.Colour))
	}
	if len(t.Candidates) > 0 {
		fmt.Fprintf(w, "  Candidates:  %s\n", line(strings.Join(t.Candidates, ", ")))
	}

	fmt.Fprintln(w, "\nREQUEST")
	intent := line(t.Intent)
	if t.IntentReason != "" {
		intent += " (" + line(t.IntentReason) + ")"
	}
	fmt.Fprintf(w, "  Intent:      %s\n", intent)
	fmt.Fprintf(w, "  Disposition: %s (policy row %d)\n", line(t.Disposition), t.PolicyRow)
	if t.IgnoredReason != "" {
		fmt.Fprintf(w, "  Ignored:     %s\n", line(t.IgnoredReason))
	}

	fmt.Fprintln(w, "\nCHECKS")
	for _, c := range []struct {
		name string
		ok   bool
		why  string
	}{
		{"sender_authenticated", t.Checks.SenderAuthenticated.OK, t.Checks.SenderAuthenticated.Reason},
		{"sender_is_admin", t.Checks.SenderIsAdmin.OK, t.Checks.SenderIsAdmin.Reason},
		{"sender_is_partner_admin", t.Checks.SenderIsPartnerAdmin.OK, t.Checks.SenderIsPartnerAdmin.Reason},
		{"domain_named", t.Checks.DomainNamed.OK, t.Checks.DomainNamed.Reason},
		{"order_matched", t.Checks.OrderMatched.OK, t.Checks.OrderMatched.Reason},
		{"username_named", t.Checks.UsernameNamed.OK, t.Checks.UsernameNamed.Reason},
	} {
		mark := "[ no]"
		if c.ok {
			mark = "[yes]"
		}
		fmt.Fprintf(w, "  %s %-24s %s\n", mark, c.name, line(c.why))
	}

	fmt.Fprintln(w, "\nWHAT TO DO, AND NEVER TO DO  (!! marks what must never be done)")
	if len(t.Guidance) == 0 {
		fmt.Fprintln(w, "  (no guidance)")
	}
	for _, g := range t.Guidance {
		mark := "  - "
		if l := strings.ToLower(g); strings.Contains(l, "never") || strings.Contains(l, "do not") {
			mark = "  !! "
		}
		fmt.Fprintf(w, "%s%s\n", mark, line(g))
	}

	fmt.Fprintln(w, "\nBODY (secrets redacted)")
	if strings.TrimSpace(t.Body) == "" {
		fmt.Fprintln(w, "  (empty)")
	} else {
		for l := range strings.SplitSeq(strings.TrimRight(sanitize(t.Body, true), "\n"), "\n") {
			fmt.Fprintf(w, "  | %s\n", l)
		}
	}

	fmt.Fprintln(w, "\nATTACHMENTS")
	if len(t.Attachments) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	for _, a := range t.Attachments {
		name := line(a.Name)
		if name == "" {
			name = "(unnamed)"
		}
		fmt.Fprintf(w, "  - %s  %s  %d bytes", name, line(a.ContentType), a.Size)
		if a.Secret != "" {
			fmt.Fprintf(w, "  !! SECRET: %s (content removed)", line(a.Secret))
		} else if a.SHA256 != "" {
			fmt.Fprintf(w, "  sha256 %s", line(a.SHA256))
		}
		if a.Truncated {
			fmt.Fprint(w, "  (truncated)")
		}
		fmt.Fprintln(w)
	}
	if len(t.ParseProblems) > 0 {
		fmt.Fprintln(w, "\nPARSE PROBLEMS")
		for _, p := range t.ParseProblems {
			fmt.Fprintf(w, "  - %s\n", line(p))
		}
	}
	fmt.Fprintln(w, rule)
}

func parens(s string) string {
	if s == "" {
		return ""
	}
	return "(" + s + ")"
}

// sanitize makes text from a mail safe to print on a terminal: control
// characters (escape sequences) and bidirectional overrides become U+FFFD;
// tabs stay, and line ends stay when multiline, else become spaces.
func sanitize(s string, multiline bool) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t':
			return r
		case r == '\n':
			if multiline {
				return r
			}
			return ' '
		case unicode.IsControl(r), r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0x200E, r == 0x200F:
			return '\uFFFD'
		}
		return r
	}, s)
}

// errWriter remembers the first write error and writes nothing after it.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
