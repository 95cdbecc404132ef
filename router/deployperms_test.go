package router

// The shipped nats-server configurations (deploy/nats-server.conf, and
// deploy/nats-cluster/ with its accounts.conf) against what the service
// and the agents' tools really publish and subscribe to: a real
// nats-server, in-process, is started from each file as written (only its
// listeners and store directory moved to loopback ports and a throw-away
// directory), and the whole service runs against it as the user
// ticketrouter, with the desk and the outbox, for two mails end to end.

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ticketrouter/ticketrouter/ingest"
	"github.com/ticketrouter/ticketrouter/ingest/imaptest"
	"github.com/ticketrouter/ticketrouter/router/broker"
	"github.com/ticketrouter/ticketrouter/router/config"
	"github.com/ticketrouter/ticketrouter/router/outbox"
	"github.com/ticketrouter/ticketrouter/router/ticket"
	"golang.org/x/crypto/bcrypt"
)

// TestDeployNATSStandalone runs the service, its desk and outbox, and the
// agents' queue commands against deploy/nats-server.conf.
func TestDeployNATSStandalone(t *testing.T) {
	pw := deployPasswords(t)
	log := &violations{}
	s := startConfiguredNATS(t, "../deploy/nats-server.conf", log, nil)
	exerciseDeployment(t, s.ClientURL(), 1, pw, log)
}

// TestDeployNATSCluster does the same against the 3-node cluster of
// deploy/nats-cluster/ (node1.conf, node2.conf, node3.conf, each including
// accounts.conf), with nats.replicas 3.
func TestDeployNATSCluster(t *testing.T) {
	pw := deployPasswords(t)
	log := &violations{}
	// The routes' ports, picked free before the nodes start, for each
	// node's list of all three.
	ports := make([]int, 3)
	routes := make([]string, 3)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", ports[i])
		ln.Close()
	}
	var nodes []*server.Server
	var urls []string
	for i := range 3 {
		name := fmt.Sprintf("node%d", i+1)
		s := startConfiguredNATS(t, "../deploy/nats-cluster/"+name+".conf", log, func(o *server.Options) {
			if o.ServerName != name || o.Cluster.Name != "ticketrouter" || len(o.Routes) != 3 {
				t.Fatalf("%s.conf: server %q, cluster %q, %d routes: not the cluster the test expects", name, o.ServerName, o.Cluster.Name, len(o.Routes))
			}
			o.Cluster.Host, o.Cluster.Port = "127.0.0.1", ports[i]
			o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		})
		nodes = append(nodes, s)
		urls = append(urls, s.ClientURL())
	}
	// JetStream answers once the nodes have elected a meta leader.
	waitFor(t, log, 30*time.Second, "a JetStream meta leader", func() bool {
		return slices.ContainsFunc(nodes, (*server.Server).JetStreamIsLeader)
	})
	exerciseDeployment(t, strings.Join(urls, ","), 3, pw, log)
}

// deployPasswords gives the configurations' users test passwords: the
// bcrypt hash of each in the environment variable the files read it from,
// as the nats-server unit's EnvironmentFile would. It returns the
// passwords by user.
func deployPasswords(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for user, env := range map[string]string{
		"ticketrouter": "NATS_TICKETROUTER_PASSWORD_HASH",
		"agents":       "NATS_AGENTS_PASSWORD_HASH",
		"admin":        "NATS_ADMIN_PASSWORD_HASH",
	} {
		out[user] = "test password of " + user
		hash, err := bcrypt.GenerateFromPassword([]byte(out[user]), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv(env, string(hash))
	}
	return out
}

// violations collects the permission violations a nats-server logs
// ("Publish Violation - Subject ..."), each line naming the connection's
// account and user.
type violations struct {
	mu    sync.Mutex
	lines []string
}

// of returns the violations of user so far.
func (v *violations) of(user string) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for _, l := range v.lines {
		if strings.Contains(l, "user:"+user+`"`) {
			out = append(out, l)
		}
	}
	return out
}

// check fails the test at once when the service's user was refused
// anything: a refused publish only times out on the client's side.
func (v *violations) check(t *testing.T) {
	t.Helper()
	if refused := v.of("ticketrouter"); len(refused) > 0 {
		t.Fatalf("the server refused the service's user:\n%s", strings.Join(refused, "\n"))
	}
}

func (v *violations) note(format string, a ...any) {
	if line := fmt.Sprintf(format, a...); strings.Contains(line, "Violation") {
		v.mu.Lock()
		v.lines = append(v.lines, line)
		v.mu.Unlock()
	}
}

// has reports whether user was refused subject.
func (v *violations) has(user, subject string) bool {
	return slices.ContainsFunc(v.of(user), func(l string) bool { return strings.Contains(l, fmt.Sprintf("%q", subject)) })
}

// The server's logger: only violations are kept.
func (v *violations) Noticef(string, ...any)         {}
func (v *violations) Debugf(string, ...any)          {}
func (v *violations) Tracef(string, ...any)          {}
func (v *violations) Warnf(format string, a ...any)  { v.note(format, a...) }
func (v *violations) Errorf(format string, a ...any) { v.note(format, a...) }
func (v *violations) Fatalf(format string, a ...any) { v.note(format, a...) }

// startConfiguredNATS starts a nats-server from the configuration file
// path as written, but for where it listens and stores: clients on a free
// loopback port, no monitoring port, JetStream in a throw-away directory;
// adjust may change more (a cluster's routes). Its permission violations
// go to log. It stops when the test ends.
func startConfiguredNATS(t *testing.T, path string, log *violations, adjust func(*server.Options)) *server.Server {
	t.Helper()
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if !opts.JetStream || len(opts.Users) == 0 || opts.NoAuthUser != "" {
		t.Fatalf("%s: JetStream %v, %d users, no_auth_user %q: not the configuration the test expects", path, opts.JetStream, len(opts.Users), opts.NoAuthUser)
	}
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.HTTPHost, opts.HTTPPort = "", 0
	opts.StoreDir = t.TempDir()
	opts.NoSigs = true
	if adjust != nil {
		adjust(opts)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	s.SetLogger(log, false, false)
	go s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatalf("%s: the server was not ready within 10 s", path)
	}
	return s
}

// connectAs connects to url as user, closed when the test ends.
func connectAs(t *testing.T, url, user string, pw map[string]string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.UserInfo(user, pw[user]), nats.Name(user + " (test)"),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})}, // the server's log has the violations
		opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// waitFor polls cond every 50 ms until it holds, failing the test after
// timeout, or at once when the server refused the service's user
// anything.
func waitFor(t *testing.T, log *violations, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(50 * time.Millisecond) {
		log.check(t)
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
	}
	log.check(t)
}

// rawOnly is in the raw mail of the green ticket and never in a ticket:
// it follows a password cue, so the ticket redacts it.
const rawOnly = "Sw0rdfish-raw-only"

// exerciseDeployment runs, against the NATS at natsURL (replicas: the
// nats.replicas to provision with), what a deployment does, and fails on
// anything the server refuses the service: the service (`ticketrouter
// run`) with its desk and outbox, on Dovecot and a submission server, is
// given two mails; it provisions, stores their raw mails, publishes their
// tickets and threads them, enqueues and sends their acknowledgements; an
// agent signs in to the desk, takes the green ticket, reads its raw mail,
// searches, notes and resolves. Then, as the user agents, `ticketrouter
// queue` lists every queue and claims, extends and acknowledges the other
// ticket; and the agents are refused the raw mails, the desk's state and
// any change, and overhear no raw mail on the inboxes they may read.
func exerciseDeployment(t *testing.T, natsURL string, replicas int, pw map[string]string, log *violations) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A version before 2026-12 left the published bucket behind: the
	// service opens it and reads it, through the JetStream API only.
	trJS, err := jetstream.New(connectAs(t, natsURL, "ticketrouter", pw, nats.CustomInboxPrefix(broker.InboxPrefix)))
	if err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = trJS.CreateKeyValue(cctx, jetstream.KeyValueConfig{Bucket: "TICKETS-published", Replicas: replicas})
	ccancel()
	log.check(t)
	if err != nil {
		t.Fatalf("the legacy published bucket: %v", err)
	}

	srv := imaptest.StartDovecot(t, imaptest.Options{})
	smtpAddr := startSMTPSink(t)
	file := agentsFile(t)
	t.Setenv("TICKETROUTER_TEST_NATS_PW", pw["ticketrouter"])
	s, _ := startService(t, srv, natsURL, func(c *config.Config) {
		c.NATS.User, c.NATS.Password, c.NATS.Replicas = "ticketrouter", &ingest.Secret{Env: "TICKETROUTER_TEST_NATS_PW"}, replicas
		c.Desk = config.Desk{Listen: "127.0.0.1:0", Agents: file}
		c.SMTP = config.SMTP{Addr: smtpAddr, Security: "plain", From: "Support <support@ca.example>", RetryBackoffMax: 2 * time.Second}
	})
	log.check(t)

	mail := func(from, msgID, body string) []byte {
		return []byte("From: " + from + "\r\nTo: support@ca.example\r\nSubject: Password reset\r\n" +
			"Date: Fri, 04 Dec 2026 09:00:00 +0000\r\nMessage-ID: <" + msgID + ">\r\n" +
			"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n")
	}
	srv.Append(t, "INBOX", mail("Acme Admin <admin@acmecorp.example>", "green@acmecorp.example",
		"Please reset my password.\r\nMy old password: "+rawOnly))
	srv.Append(t, "INBOX", mail("Nobody <nobody@unknown.example>", "unknown@unknown.example", "Please reset my password."))
	waitFor(t, log, 60*time.Second, "both mails processed", func() bool { return len(srv.UIDs(t, "Processed")) == 2 })
	byMsgID := map[string]ticket.Ticket{}
	for _, list := range streamTickets(t, s.js.JS, "TICKETS") {
		for _, tk := range list {
			byMsgID[tk.MessageID] = tk
		}
	}
	green, unknown := byMsgID["green@acmecorp.example"], byMsgID["unknown@unknown.example"]
	if green.Colour != "green" || unknown.Colour != "unknown" || strings.Contains(green.Body, rawOnly) {
		t.Fatalf("tickets: green %q %q, unknown %q; want the colours, and the password redacted", green.Colour, green.Body, unknown.Colour)
	}
	if green.Answer == nil || green.Answer.MailID == "" {
		t.Fatalf("the green ticket's answer %+v: want an acknowledgement in the outbox", green.Answer)
	}
	waitFor(t, log, 30*time.Second, "the acknowledgement sent", func() bool {
		st, err := s.outbox.Status(ctx, green.Answer.MailID)
		return err == nil && st.State == outbox.StateSent
	})

	// Agents may subscribe to their inboxes, _INBOX.>: they must not see
	// the raw mail the desk reads for alice below (ticketrouter's replies
	// come on broker.InboxPrefix).
	ac := connectAs(t, natsURL, "agents", pw)
	var overheard sync.Map
	if _, err := ac.Subscribe("_INBOX.>", func(m *nats.Msg) {
		if strings.Contains(string(m.Data), rawOnly) {
			overheard.Store(m.Subject, true)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := ac.FlushTimeout(5 * time.Second); err != nil {
		t.Fatal(err)
	}

	// The desk, as the agent alice.
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	desk := func(method, path string, form url.Values) (int, string, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, s.DeskURL()+strings.TrimPrefix(path, "/"), body)
		if err != nil {
			t.Fatal(err)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("Location")
	}
	// A wrong password is counted (the desk's login throttling), then the
	// right one starts a session.
	if code, _, _ := desk("POST", "login", url.Values{"name": {"alice"}, "password": {"not " + password}}); code == http.StatusSeeOther {
		t.Fatal("desk login with a wrong password: signed in")
	}
	log.check(t)
	if code, _, _ := desk("POST", "login", url.Values{"name": {"alice"}, "password": {password}}); code != http.StatusSeeOther {
		log.check(t)
		t.Fatalf("desk login: %d", code)
	}
	_, board, _ := desk("GET", "/", nil)
	csrf := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(board)
	if csrf == nil {
		log.check(t)
		t.Fatalf("no CSRF token on the board: not signed in\n%.500s", board)
	}
	token := url.Values{"csrf_token": {csrf[1]}}
	code, _, page := desk("POST", "take/green", token)
	if code != http.StatusSeeOther || !strings.HasPrefix(page, "/t/TR-") {
		log.check(t)
		t.Fatalf("take next green: %d to %q, want its page", code, page)
	}
	for _, c := range []struct {
		method, path string
		form         url.Values
		code         int
		want         string
	}{
		{"GET", page, nil, http.StatusOK, "Password reset"},
		{"GET", "/t/" + green.ID + "/raw", nil, http.StatusOK, rawOnly},
		{"POST", "/t/" + green.ID + "/note", url.Values{"csrf_token": token["csrf_token"], "note": {"called the admin"}}, http.StatusSeeOther, ""},
		{"POST", "/t/" + green.ID + "/resolve", url.Values{"csrf_token": token["csrf_token"], "outcome": {"reset-done"}}, http.StatusSeeOther, ""},
	} {
		if code, body, _ := desk(c.method, c.path, c.form); code != c.code || !strings.Contains(body, c.want) {
			log.check(t)
			t.Fatalf("desk %s %s: %d, want %d and %q\n%.500s", c.method, c.path, code, c.code, c.want, body)
		}
	}
	// Search finds it by its Message-ID once the desk's indexer (every 5 s)
	// went through the stream.
	waitFor(t, log, 20*time.Second, "the desk's search finding the green ticket", func() bool {
		_, body, _ := desk("GET", "/search?q="+url.QueryEscape("green@acmecorp.example"), nil)
		return strings.Contains(body, `href="`+page+`"`)
	})

	// The agents, as `ticketrouter queue` connects.
	agent, err := broker.ConnectAgent(ctx, broker.Target{URL: natsURL, From: "test", Auth: broker.NATSConfig{User: "agents"}, Password: pw["agents"]},
		"TICKETS", ticket.DefaultPrefix, "ticketrouter queue (test)")
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	for _, q := range broker.Queues() { // queue list
		st, err := agent.Status(ctx, q)
		if err != nil || st.Error != "" {
			t.Errorf("queue list as agents: %s: %v %s\n%s", q, err, st.Error, strings.Join(log.of("agents"), "\n"))
		}
		if q == "unknown" && (st.Waiting != 1 || st.OldestWaiting == nil) {
			t.Errorf("queue list as agents: unknown: %+v, want one waiting", st)
		}
	}
	claim, err := agent.Next(ctx, "unknown", 5*time.Second) // queue next unknown
	if err != nil {
		t.Fatalf("queue next unknown as agents: %v\n%s", err, strings.Join(log.of("agents"), "\n"))
	}
	if !strings.Contains(string(claim.Data), unknown.ID) {
		t.Errorf("queue next unknown: claimed %.200s, want ticket %s", claim.Data, unknown.ID)
	}
	if _, err := agent.InProgress(ctx, claim.ID); err != nil { // queue extend
		t.Errorf("queue extend as agents: %v", err)
	}
	if err := agent.Ack(ctx, claim.ID); err != nil { // queue ack
		t.Errorf("queue ack as agents: %v", err)
	}
	if st, err := agent.Status(ctx, "unknown"); err != nil || st.Pending != 0 {
		t.Errorf("unknown after the ack: %+v, %v; want nothing pending", st, err)
	}
	if refused := log.of("agents"); len(refused) > 0 {
		t.Errorf("the server refused the agents' queue commands:\n%s", strings.Join(refused, "\n"))
	}
	// An operator's `ticketrouter queue list --config` with the service's
	// own file connects as ticketrouter, with the default inboxes.
	operator, err := broker.ConnectAgent(ctx, broker.Target{URL: natsURL, From: "test", Auth: broker.NATSConfig{User: "ticketrouter"}, Password: pw["ticketrouter"]},
		"TICKETS", ticket.DefaultPrefix, "ticketrouter queue (test)")
	if err != nil {
		t.Fatal(err)
	}
	defer operator.Close()
	if st, err := operator.Status(ctx, "green"); err != nil || st.Error != "" {
		t.Errorf("queue list as ticketrouter: %v %s", err, st.Error)
	}
	log.check(t)

	// The raw mail the desk read for alice reached no agent.
	overheard.Range(func(subject, _ any) bool {
		t.Errorf("agents overheard the raw mail (%s) on their _INBOX.>", subject)
		return true
	})

	// What agents must not do: read the raw mails (which hold what tickets
	// redact) or the desk's state (its sessions), publish tickets, or
	// change the queues. Each is a request a client would send.
	meta := "$O.TICKETS-raw.M." + base64.URLEncoding.EncodeToString([]byte(green.ID))
	forbidden := []string{
		"$JS.API.STREAM.INFO.OBJ_TICKETS-raw",                        // open the raw mails' object store
		"$JS.API.DIRECT.GET.OBJ_TICKETS-raw." + meta,                 // a raw mail's meta, by its name
		"$JS.API.DIRECT.GET.OBJ_TICKETS-raw",                         // a raw mail's chunks, by sequence
		"$JS.API.STREAM.MSG.GET.OBJ_TICKETS-raw",                     // the same, the other way
		"$JS.API.CONSUMER.CREATE.OBJ_TICKETS-raw",                    // a consumer of its own on them
		"$JS.API.CONSUMER.CREATE.OBJ_TICKETS-raw.x.$O.TICKETS-raw.>", // the same, filtered
		"$JS.API.DIRECT.GET.KV_DESK-sessions",                        // the desk's sessions
		"$JS.API.STREAM.MSG.GET.KV_DESK-sessions",                    // the same, the other way
		"$JS.API.DIRECT.GET.KV_DESK-tickets",                         // the desk's records
		"$JS.API.CONSUMER.CREATE.TICKETS",                            // a consumer of its own on the tickets
		"$JS.API.CONSUMER.DELETE.TICKETS.green",                      // remove a queue
		"$JS.API.STREAM.PURGE.TICKETS",                               // empty the tickets
		"helpdesk.tickets.green.verified",                            // publish a ticket
		"outbox.x.reply.x",                                           // send mail
		"desk.events.x",                                              // forge the audit trail
	}
	for _, subject := range forbidden {
		if err := ac.PublishRequest(subject, nats.NewInbox(), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := ac.FlushTimeout(5 * time.Second); err != nil { // the server has read them all
		t.Fatal(err)
	}
	for _, subject := range forbidden {
		if !log.has("agents", subject) {
			t.Errorf("agents may publish to %s", subject)
		}
	}
	// And through the library, as a tool would.
	ajs, err := jetstream.New(ac)
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = ajs.ObjectStore(rctx, "TICKETS-raw")
	rcancel()
	if err == nil {
		t.Error("agents opened the raw mails' object store")
	}
	log.check(t)

	// What the service made, beside the account's limits.
	info, err := trJS.AccountInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("account TICKETS: %d streams (limit %d), %d consumers (limit per stream %d)",
		info.Streams, info.Limits.MaxStreams, info.Consumers, info.Limits.MaxConsumers)
}

// startSMTPSink starts a submission server on a free loopback port that
// accepts every mail, until the test ends, and returns its address.
func startSMTPSink(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return sinkSession{}, nil }))
	srv.Domain, srv.ReadTimeout, srv.WriteTimeout = "mx.ca.example", 10*time.Second, 10*time.Second
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// sinkSession takes every mail and keeps nothing.
type sinkSession struct{}

func (sinkSession) Reset()                               {}
func (sinkSession) Logout() error                        { return nil }
func (sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (sinkSession) Data(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}
