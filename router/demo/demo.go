// Package demo runs the whole service on this machine with nothing to set
// up, for 'ticketrouter demo' and for tests: sample mails in an in-process
// IMAP server, an embedded NATS, the real Service.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
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
	"github.com/ticketrouter/ticketrouter/deploy/examples"
	"github.com/ticketrouter/ticketrouter/router"
	"github.com/ticketrouter/ticketrouter/router/broker"
	"github.com/ticketrouter/ticketrouter/router/config"
	"github.com/ticketrouter/ticketrouter/router/desk/agents"
	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// The demo mailbox's login: a throwaway in-process server, not a secret.
const (
	User     = "support@demo.example"
	Password = "demo"
)

// DeskAgent is the demo desk's supervisor; its password is made afresh by
// each Start (Demo.DeskPassword).
const DeskAgent = "demo"

// Demo is the whole service on this machine with nothing to set up: an
// in-process IMAP server holding the sample mails, an embedded NATS
// keeping its store in Dir, and a Service routing every mail, with the
// same configuration file a real deployment would have.
type Demo struct {
	Dir        string // the configuration, accounts and NATS store
	ConfigPath string
	Config     *config.Config
	IMAPAddr   string
	NATSPort   int
	Mails      int // sample mails delivered
	Service    *router.Service
	// DeskPassword is DeskAgent's password on the demo's desk (served on
	// loopback, plain HTTP, at Service.DeskURL()): a throwaway for this
	// run, printed for whoever runs the demo.
	DeskPassword string

	mbox    *mailbox
	stop    context.CancelFunc
	done    chan error
	cleanup func()
}

// Start delivers the sample mails, writes the configuration into dir (a
// temporary directory, removed by Close, when ""), and starts the
// service; it returns once the service is ready.
func Start(ctx context.Context, dir string, log zerolog.Logger) (_ *Demo, err error) {
	d := &Demo{Dir: dir, cleanup: func() {}}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if d.Dir == "" {
		tmp, err := os.MkdirTemp("", "ticketrouter-demo-")
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		d.Dir, d.cleanup = tmp, func() { os.RemoveAll(tmp) }
	}
	mails, err := examples.FS.ReadDir("mail")
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if d.mbox, err = startMailbox(ctx); err != nil {
		return nil, err
	}
	d.IMAPAddr = d.mbox.addr
	for _, m := range mails {
		raw, err := examples.FS.ReadFile(path.Join("mail", m.Name()))
		if err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		if err := d.mbox.append(raw); err != nil {
			return nil, fmt.Errorf("demo: deliver %s: %w", m.Name(), err)
		}
	}
	d.Mails = len(mails)
	if d.NATSPort, err = freePort(); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if d.ConfigPath, err = writeFiles(d.Dir, d.IMAPAddr, d.NATSPort); err != nil {
		return nil, err
	}
	if d.DeskPassword, err = writeAgents(filepath.Join(d.Dir, "agents.yaml")); err != nil {
		return nil, err
	}
	if d.Config, err = config.LoadService(d.ConfigPath); err != nil {
		return nil, err
	}
	d.Service = router.NewService(d.Config, log, router.Options{})
	sctx, stop := context.WithCancel(ctx)
	d.stop, d.done = stop, make(chan error, 1)
	go func() { d.done <- d.Service.Run(sctx) }()
	select {
	case <-d.Service.Ready():
		return d, nil
	case err := <-d.done:
		d.done <- err // for Close
		if err == nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("demo: the worker stopped: %w", err)
	case <-time.After(time.Minute):
		return nil, errors.New("demo: the worker was not ready within a minute")
	}
}

// Wait blocks until ctx is done (nil) or the service stops (its error).
func (d *Demo) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-d.done:
		d.done <- err
		return fmt.Errorf("demo: the worker stopped: %w", err)
	}
}

// Close stops the service and the mailbox and removes a temporary Dir.
func (d *Demo) Close() {
	if d.stop != nil {
		d.stop()
		<-d.done
	}
	if d.mbox != nil {
		d.mbox.close()
	}
	d.cleanup()
}

// Tickets waits until the service has emptied the mailbox and the stream
// holds an entry for each sample mail, and returns the entries.
func (d *Demo) Tickets(ctx context.Context) ([]Entry, error) {
	return awaitTickets(ctx, d.Service.JetStream(), d.mbox, d.Mails)
}

// writeFiles writes the example accounts and the service's
// configuration into dir and returns the configuration's path: the demo
// runs the same configuration a real deployment would.
func writeFiles(dir, imapAddr string, natsPort int) (string, error) {
	accounts, err := examples.FS.ReadFile("accounts.yaml")
	if err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts.yaml"), accounts, 0o644); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "imap-password"), []byte(Password+"\n"), 0o600); err != nil {
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
desk:
  listen: 127.0.0.1:0    # plain HTTP on loopback only; use tls_cert and tls_key beyond
  agents: agents.yaml
replica:
  id: demo
`, imapAddr, User, natsPort)
	p := filepath.Join(dir, "ticketrouter.yaml")
	if err := os.WriteFile(p, []byte(config), 0o644); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	return p, nil
}

// writeAgents writes the demo desk's agents file at path, replacing any
// left by an earlier run: the supervisor DeskAgent with a new random
// password, which it returns.
func writeAgents(path string) (string, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("demo: agents file: %w", err)
	}
	f, err := agents.OpenFile(path)
	if err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	password := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(randomBytes(10)))
	a := agents.Agent{Name: DeskAgent, Display: "Demo supervisor", Roles: []string{agents.RoleSupervisor}}
	if err := f.Add(a, password); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	if err := f.Save(); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	return password, nil
}

// randomBytes returns n bytes from crypto/rand, which does not fail.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// Entry is one message of the ticket stream: a ticket, or the record of a
// mail quarantined before it could become one.
type Entry struct {
	Subject string
	Ticket  *ticket.Ticket
	Dead    *broker.DeadLetter
}

// awaitTickets waits until the worker has emptied the mailbox and the
// stream holds an entry for each of the n mails, and returns the entries.
func awaitTickets(ctx context.Context, js *broker.JetStream, mbox *mailbox, n int) ([]Entry, error) {
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
func readStream(ctx context.Context, js jetstream.JetStream, stream string, n uint64) ([]Entry, error) {
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("demo: read stream: %w", err)
	}
	var out []Entry
	for range n {
		msg, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			return nil, fmt.Errorf("demo: read stream: %w", err)
		}
		e := Entry{Subject: msg.Subject()}
		var probe struct {
			Kind string `json:"kind"`
		}
		_ = json.Unmarshal(msg.Data(), &probe)
		if probe.Kind == "quarantined" {
			e.Dead = new(broker.DeadLetter)
			err = json.Unmarshal(msg.Data(), e.Dead)
		} else {
			e.Ticket = new(ticket.Ticket)
			err = json.Unmarshal(msg.Data(), e.Ticket)
		}
		if err != nil {
			return nil, fmt.Errorf("demo: %s: %w", msg.Subject(), err)
		}
		out = append(out, e)
	}
	return out, nil
}

// mailbox is the demo's in-process IMAP server: the go-imap memory
// backend on a loopback port, with MOVE and UIDPLUS like a real server.
type mailbox struct {
	addr   string
	user   *imapmemserver.User
	server *imapserver.Server
	served chan struct{}
}

func startMailbox(ctx context.Context) (*mailbox, error) {
	mem := imapmemserver.New()
	user := imapmemserver.NewUser(User, Password)
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
	m := &mailbox{addr: ln.Addr().String(), user: user, server: srv, served: make(chan struct{})}
	go func() {
		defer close(m.served)
		srv.Serve(ln)
	}()
	return m, nil
}

func (m *mailbox) append(raw []byte) error {
	_, err := m.user.Append("INBOX", literal{strings.NewReader(string(raw)), int64(len(raw))}, &imap.AppendOptions{Time: time.Now()})
	return err
}

// waiting is the number of mails in the INBOX.
func (m *mailbox) waiting() uint32 {
	st, err := m.user.Status("INBOX", &imap.StatusOptions{NumMessages: true})
	if err != nil || st.NumMessages == nil {
		return 1
	}
	return *st.NumMessages
}

func (m *mailbox) close() {
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
