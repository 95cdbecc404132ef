package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/ticketrouter/ticketrouter/router/broker"
	"github.com/ticketrouter/ticketrouter/router/demo"
)

// newDemoCmd is 'ticketrouter demo'.
func newDemoCmd() *cobra.Command {
	var keep bool
	var dir string
	cmd := &cobra.Command{
		Use:   "demo [--keep] [--dir DIR]",
		Short: "Route sample mails through the whole service on this machine, no setup",
		Long: `demo runs the whole service on this machine with nothing to set up. An
in-process IMAP server holds the sample mails (one per POLICY.md row), an
embedded NATS keeps its store in a temporary directory, the real service
routes every mail, and the demo prints each queue's tickets.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), dir, keep, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the mailbox, NATS and the service running after the tickets are printed, until interrupted")
	cmd.Flags().StringVar(&dir, "dir", "", "keep the demo's files (configuration, accounts, NATS store) in `DIR` instead of a temporary directory")
	return cmd
}

func runDemo(ctx context.Context, dir string, keep bool, stdout, stderr io.Writer) error {
	log := zerolog.New(zerolog.ConsoleWriter{Out: stderr, NoColor: true, TimeFormat: time.TimeOnly}).
		Level(zerolog.WarnLevel).With().Timestamp().Logger()
	d, err := demo.Start(ctx, dir, log)
	if err != nil {
		return err
	}
	defer d.Close()
	fmt.Fprintf(stdout, "ticketrouter demo: %d sample mails (one per POLICY.md row, and one of each colour) delivered to an in-process IMAP server;\n", d.Mails)
	fmt.Fprintf(stdout, "routing them with the example accounts through an embedded NATS (store in %s).\n\n", d.Dir)
	entries, err := d.Tickets(ctx)
	if err != nil {
		return err
	}
	printQueues(stdout, d.Service.Pipeline().Prefix(), entries)
	if !keep {
		return nil
	}
	stream := d.Config.NATS.WithDefaults().Stream
	fmt.Fprintf(stdout, `
Everything keeps running until Ctrl-C:
  NATS        nats://127.0.0.1:%d   (stream %s, one durable consumer per queue)
  IMAP        %s   user %s, password %q, mailbox INBOX (plain text, loopback only)
  health      http://%s/healthz  /readyz  /metrics
  desk        %s   sign in as %s, password %s (this run's; loopback only)
  config      %s

Try:
  ticketrouter queue list --nats nats://127.0.0.1:%d
  ticketrouter queue next green --nats nats://127.0.0.1:%d --ack
  nats --server nats://127.0.0.1:%d consumer next %s green
Mail appended to the IMAP INBOX (any IMAP client) is routed as it arrives.
`, d.NATSPort, stream, d.IMAPAddr, demo.User, demo.Password, d.Service.HTTPAddr(), d.Service.DeskURL(), demo.DeskAgent, d.DeskPassword, d.ConfigPath,
		d.NATSPort, d.NATSPort, d.NATSPort, stream)
	if err := d.Wait(ctx); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\nstopping")
	return nil
}

// printQueues prints each queue with its tickets, in the order agents see
// the queues: the colours, unknown, ignored, deadletter.
func printQueues(w io.Writer, prefix string, entries []demo.Entry) {
	for _, q := range broker.Queues() {
		filter := broker.QueueSubject(prefix, q)
		var in []demo.Entry
		for _, e := range entries {
			if subjectMatches(filter, e.Subject) {
				in = append(in, e)
			}
		}
		fmt.Fprintf(w, "== queue %s: %d (%s)\n", q, len(in), filter)
		for _, e := range in {
			printEntry(w, e)
		}
		fmt.Fprintln(w)
	}
}

func printEntry(w io.Writer, e demo.Entry) {
	if d := e.Dead; d != nil {
		fmt.Fprintf(w, "  quarantined: %s UID %d (%d bytes): %s\n", d.Mailbox, d.UID, d.Size, d.Reason)
		return
	}
	t := e.Ticket
	fmt.Fprintf(w, "  %s  row %d  colour %s  disposition %s\n", e.Subject, t.PolicyRow, t.Colour, t.Disposition)
	fmt.Fprintf(w, "    from %s: %q\n", orNone(t.From.Address), t.EmailSubject)
	if a := t.Account; a != nil {
		fmt.Fprintf(w, "    account %s (%s), matched by %s\n", a.ID, a.Colour, a.MatchedBy)
	}
	for _, g := range t.Guidance {
		fmt.Fprintf(w, "    - %s\n", g)
	}
}

func orNone(s string) string {
	if s == "" {
		return "(no sender)"
	}
	return s
}

// subjectMatches reports whether subject matches a NATS filter whose
// only wildcard is a trailing '>'.
func subjectMatches(filter, subject string) bool {
	if base, ok := strings.CutSuffix(filter, ">"); ok {
		return strings.HasPrefix(subject, base) && len(subject) > len(base)
	}
	return filter == subject
}
