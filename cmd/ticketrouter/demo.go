package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/ticketrouter/ticketrouter/router"
	"github.com/ticketrouter/ticketrouter/router/config"
)

// examples are the example accounts and one sample mail per POLICY.md row,
// built into the binary so that the demo needs no files.
//
//go:embed examples/accounts.yaml examples/mail/*.eml
var examples embed.FS

// The demo mailbox's login: a throwaway in-process server, not a secret.
const (
	demoUser     = "support@demo.example"
	demoPassword = "demo"
)

// demo implements 'ticketrouter demo': the whole service on this machine
// with nothing to set up. An in-process IMAP server holds the sample
// mails, an embedded NATS keeps its store in a temporary directory, the
// real worker routes every mail, and the demo prints each queue's tickets.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keep := fs.Bool("keep", false, "keep the mailbox, NATS and the worker running after the tickets are printed, until interrupted")
	dir := fs.String("dir", "", "keep the demo's files (configuration, accounts, NATS store) in `DIR` instead of a temporary directory")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ticketrouter demo [--keep] [--dir DIR]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	if err := runDemo(ctx, *dir, *keep, stdout, stderr); err != nil {
		printError(stderr, err)
		return exitError
	}
	return exitOK
}

func runDemo(ctx context.Context, dir string, keep bool, stdout, stderr io.Writer) error {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "ticketrouter-demo-")
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	mails, err := examples.ReadDir("examples/mail")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	mbox, err := startDemoMailbox(ctx)
	if err != nil {
		return err
	}
	defer mbox.close()
	for _, m := range mails {
		raw, err := examples.ReadFile(path.Join("examples/mail", m.Name()))
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		if err := mbox.append(raw); err != nil {
			return fmt.Errorf("demo: deliver %s: %w", m.Name(), err)
		}
	}
	natsPort, err := freePort()
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	configPath, err := writeDemoFiles(dir, mbox.addr, natsPort)
	if err != nil {
		return err
	}
	cfg, err := config.LoadService(configPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ticketrouter demo: %d sample mails (one per POLICY.md row, and one of each colour) delivered to an in-process IMAP server;\n", len(mails))
	fmt.Fprintf(stdout, "routing them with the example accounts through an embedded NATS (store in %s).\n\n", dir)

	log := zerolog.New(zerolog.ConsoleWriter{Out: stderr, NoColor: true, TimeFormat: time.TimeOnly}).
		Level(zerolog.WarnLevel).With().Timestamp().Logger()
	s := &service{cfg: cfg, log: log, metrics: newMetrics(), ready: make(chan struct{})}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.run(sctx) }()
	defer func() {
		stop()
		<-done
	}()
	select {
	case <-s.ready:
	case err := <-done:
		done <- err // for the deferred wait
		if err == nil {
			err = ctx.Err()
		}
		return fmt.Errorf("demo: the worker stopped: %w", err)
	case <-time.After(time.Minute):
		return errors.New("demo: the worker was not ready within a minute")
	}

	entries, err := awaitTickets(ctx, s.js, mbox, len(mails))
	if err != nil {
		return err
	}
	printQueues(stdout, s.router.prefix, entries)
	if !keep {
		return nil
	}
	fmt.Fprintf(stdout, `
Everything keeps running until Ctrl-C:
  NATS        nats://127.0.0.1:%d   (stream %s, one durable consumer per queue)
  IMAP        %s   user %s, password %q, mailbox INBOX (plain text, loopback only)
  health      http://%s/healthz  /readyz  /metrics
  config      %s

Try:
  ticketrouter queue list --nats nats://127.0.0.1:%d
  ticketrouter queue next green --nats nats://127.0.0.1:%d --ack
  nats --server nats://127.0.0.1:%d consumer next %s green
Mail appended to the IMAP INBOX (any IMAP client) is routed as it arrives.
`, natsPort, cfg.NATS.WithDefaults().Stream, mbox.addr, demoUser, demoPassword, s.httpAddr, configPath,
		natsPort, natsPort, natsPort, cfg.NATS.WithDefaults().Stream)
	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout, "\nstopping")
		return nil
	case err := <-done:
		done <- err
		return fmt.Errorf("demo: the worker stopped: %w", err)
	}
}

// writeDemoFiles writes the example accounts and the service's
// configuration into dir and returns the configuration's path: the demo
// runs the same configuration a real deployment would.
func writeDemoFiles(dir, imapAddr string, natsPort int) (string, error) {
	accounts, err := examples.ReadFile("examples/accounts.yaml")
	if err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts.yaml"), accounts, 0o644); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "imap-password"), []byte(demoPassword+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	config := fmt.Sprintf(`# ticketrouter demo configuration: a real mailbox needs only the imap
# section changed (see deploy/ticketrouter.single.yaml).
accounts: accounts.yaml
imap:
  addr: %s
  security: plain        # the demo's in-process server; use tls for a real one
  username: %s
  secret: {file: imap-password}
  poll_interval: 5s
nats:
  embedded: {store_dir: nats, port: %d}
http:
  listen: 127.0.0.1:0
replica:
  id: demo
`, imapAddr, demoUser, natsPort)
	p := filepath.Join(dir, "ticketrouter.yaml")
	if err := os.WriteFile(p, []byte(config), 0o644); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	return p, nil
}

// streamEntry is one message of the ticket stream: a ticket, or the record
// of a mail quarantined before it could become one.
type streamEntry struct {
	subject string
	ticket  *router.Ticket
	dead    *router.DeadLetter
}

// awaitTickets waits until the worker has emptied the mailbox and the
// stream holds an entry for each of the n mails, and returns the entries.
func awaitTickets(ctx context.Context, js *router.JetStream, mbox *demoMailbox, n int) ([]streamEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		info, err := js.Stream.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("demo: stream info: %w", err)
		}
		if info.State.Msgs >= uint64(n) && mbox.waiting() == 0 {
			return readStream(ctx, js.JS, info.Config.Name, info.State.Msgs)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("demo: %d of %d mails routed when waiting stopped: %w", info.State.Msgs, n, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// readStream reads the first n messages of the stream without consuming
// them from any queue: the agents' consumers still see every ticket.
func readStream(ctx context.Context, js jetstream.JetStream, stream string, n uint64) ([]streamEntry, error) {
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("demo: read stream: %w", err)
	}
	var out []streamEntry
	for range n {
		msg, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			return nil, fmt.Errorf("demo: read stream: %w", err)
		}
		e := streamEntry{subject: msg.Subject()}
		var probe struct {
			Kind string `json:"kind"`
		}
		_ = json.Unmarshal(msg.Data(), &probe)
		if probe.Kind == "quarantined" {
			e.dead = new(router.DeadLetter)
			err = json.Unmarshal(msg.Data(), e.dead)
		} else {
			e.ticket = new(router.Ticket)
			err = json.Unmarshal(msg.Data(), e.ticket)
		}
		if err != nil {
			return nil, fmt.Errorf("demo: %s: %w", msg.Subject(), err)
		}
		out = append(out, e)
	}
	return out, nil
}

// printQueues prints each queue with its tickets, in the order agents see
// the queues: the colours, unknown, ignored, deadletter.
func printQueues(w io.Writer, prefix string, entries []streamEntry) {
	for _, q := range router.Queues() {
		filter := router.QueueSubject(prefix, q)
		var in []streamEntry
		for _, e := range entries {
			if subjectMatches(filter, e.subject) {
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

func printEntry(w io.Writer, e streamEntry) {
	if d := e.dead; d != nil {
		fmt.Fprintf(w, "  quarantined: %s UID %d (%d bytes): %s\n", d.Mailbox, d.UID, d.Size, d.Reason)
		return
	}
	t := e.ticket
	fmt.Fprintf(w, "  %s  row %d  colour %s  disposition %s\n", e.subject, t.PolicyRow, t.Colour, t.Disposition)
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

// demoMailbox is the demo's in-process IMAP server: the go-imap memory
// backend on a loopback port, with MOVE and UIDPLUS like a real server.
type demoMailbox struct {
	addr   string
	user   *imapmemserver.User
	server *imapserver.Server
	served chan struct{}
}

func startDemoMailbox(ctx context.Context) (*demoMailbox, error) {
	mem := imapmemserver.New()
	user := imapmemserver.NewUser(demoUser, demoPassword)
	if err := user.Create("INBOX", nil); err != nil {
		return nil, fmt.Errorf("demo: mailbox: %w", err)
	}
	mem.AddUser(user)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapMove: {}, imap.CapUIDPlus: {}, imap.CapNamespace: {}},
		InsecureAuth: true,
	})
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo: mailbox: %w", err)
	}
	m := &demoMailbox{addr: ln.Addr().String(), user: user, server: srv, served: make(chan struct{})}
	go func() {
		defer close(m.served)
		srv.Serve(ln)
	}()
	return m, nil
}

func (m *demoMailbox) append(raw []byte) error {
	_, err := m.user.Append("INBOX", literal{strings.NewReader(string(raw)), int64(len(raw))}, &imap.AppendOptions{Time: time.Now()})
	return err
}

// waiting is the number of mails in the INBOX.
func (m *demoMailbox) waiting() uint32 {
	st, err := m.user.Status("INBOX", &imap.StatusOptions{NumMessages: true})
	if err != nil || st.NumMessages == nil {
		return 1
	}
	return *st.NumMessages
}

func (m *demoMailbox) close() {
	m.server.Close()
	<-m.served
}

// literal is an in-memory imap.LiteralReader.
type literal struct {
	*strings.Reader
	size int64
}

func (l literal) Size() int64 { return l.size }

// freePort returns a loopback TCP port nothing listens on right now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
