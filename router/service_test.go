package router

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/ticketrouter/ticketrouter/ingest"
	"github.com/ticketrouter/ticketrouter/ingest/imaptest"
	"github.com/ticketrouter/ticketrouter/router/config"
	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// startService runs a replica in-process against srv with an embedded
// NATS (or natsURL), until the test ends; it returns once the replica
// serves.
func startService(t testing.TB, srv imaptest.Server, natsURL string, adjust func(*config.Config)) (*Service, context.CancelFunc) {
	t.Helper()
	accounts, err := filepath.Abs("../deploy/examples/accounts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TICKETROUTER_TEST_IMAP_PW", srv.Password())
	cfg := fmt.Sprintf(`accounts: %s
imap:
  addr: %s
  security: plain
  username: %s
  secret: {env: TICKETROUTER_TEST_IMAP_PW}
  liveness: 2s
nats:
  url: %q
  embedded: {store_dir: nats, port: -1}
http:
  listen: 127.0.0.1:0
replica:
  lease_ttl: 3s
`, accounts, srv.Addr(), srv.Username(), natsURL)
	if natsURL != "" {
		cfg = strings.Replace(cfg, "  embedded: {store_dir: nats, port: -1}\n", "", 1)
	}
	path := filepath.Join(t.TempDir(), "ticketrouter.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.LoadService(path)
	if err != nil {
		t.Fatal(err)
	}
	if adjust != nil {
		adjust(c)
	}
	s := NewService(c, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("service: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("the service did not stop within 20 s")
		}
	})
	select {
	case <-s.ready:
	case err := <-done:
		t.Fatalf("service stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the service was not ready within 30 s")
	}
	return s, cancel
}

// streamTickets returns every ticket in the stream, by subject.
func streamTickets(t *testing.T, js jetstream.JetStream, stream string) map[string][]ticket.Ticket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	n := info.CachedInfo().State.Msgs
	out := map[string][]ticket.Ticket{}
	for i := uint64(0); i < n; i++ {
		msg, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("message %d of %d: %v", i+1, n, err)
		}
		var tk ticket.Ticket
		if err := json.Unmarshal(msg.Data(), &tk); err != nil {
			t.Fatalf("%s: not a ticket: %v", msg.Subject(), err)
		}
		out[msg.Subject()] = append(out[msg.Subject()], tk)
	}
	return out
}

// TestRunEndToEnd: the example mails delivered to Dovecot come out as
// tickets on the subjects of their policy rows, their raw mails stored,
// the mails moved to the processed folder; health and metrics answer.
func TestRunEndToEnd(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.Options{})
	files, _ := filepath.Glob("../deploy/examples/mail/*.eml")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		srv.Append(t, "INBOX", raw)
	}
	s, _ := startService(t, srv, "", func(c *config.Config) { c.Debug.Listen = "127.0.0.1:0" })
	deadline := time.Now().Add(60 * time.Second)
	for len(srv.UIDs(t, "Processed")) < len(files) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d mails processed", len(srv.UIDs(t, "Processed")), len(files))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(srv.UIDs(t, "INBOX")); n != 0 {
		t.Errorf("INBOX still holds %d mails", n)
	}
	tickets := streamTickets(t, s.js.JS, "TICKETS")
	want := map[string]int{
		"helpdesk.tickets.deadletter": 1, "helpdesk.tickets.ignored": 1, "helpdesk.tickets.red.blocked": 1,
		"helpdesk.tickets.green.code-signing": 1, "helpdesk.tickets.blue.verified": 1, "helpdesk.tickets.blue.refer-to-web-host": 1,
		"helpdesk.tickets.red.verified": 1, "helpdesk.tickets.red.refer-to-reseller": 1, "helpdesk.tickets.pink.self-service": 1,
		"helpdesk.tickets.pink.verified": 1, "helpdesk.tickets.pink.needs-verification": 1, "helpdesk.tickets.green.self-service": 1,
		"helpdesk.tickets.green.verified": 1, "helpdesk.tickets.green.needs-verification": 1, "helpdesk.tickets.unknown.unmatched": 1,
		"helpdesk.tickets.dark-green.self-service": 1,
	}
	for subject, n := range want {
		if len(tickets[subject]) != n {
			t.Errorf("%s: %d tickets, want %d", subject, len(tickets[subject]), n)
		}
	}
	if len(tickets) != len(want) {
		t.Errorf("subjects %v", keysOf(tickets))
	}
	// Every ticket names its raw mail, which holds the mail's bytes.
	for _, list := range tickets {
		for _, tk := range list {
			if tk.Raw == nil {
				t.Fatalf("ticket %s has no raw mail", tk.ID)
			}
			raw, err := s.js.Raw.GetBytes(context.Background(), tk.Raw.Name)
			if err != nil || int64(len(raw)) != tk.Size {
				t.Errorf("raw mail of %s: %d bytes, %v; want %d", tk.ID, len(raw), err, tk.Size)
			}
		}
	}
	// The operator's endpoints.
	addr := "http://" + s.httpAddr
	for _, c := range []struct{ path, want string }{
		{"/healthz", "ok"},
		{"/readyz", "ready"},
		{"/metrics", `ticketrouter_tickets_published_total{colour="red",disposition="blocked"} 1` + "\n"},
		{"/metrics", `ticketrouter_tickets_published_total{colour="unknown",disposition="deadletter"} 1` + "\n"},
		{"/metrics", fmt.Sprintf("ticketrouter_mails_fetched_total{mailbox=\"INBOX\"} %d\n", len(files))},
		{"/metrics", fmt.Sprintf("ticketrouter_mails_moved_total{mailbox=\"INBOX\"} %d\n", len(files))},
		{"/metrics", fmt.Sprintf("ticketrouter_publish_seconds_count %d\n", len(files))},
		{"/metrics", `ticketrouter_mailbox_held{mailbox="INBOX"} 1` + "\n"},
		{"/metrics", `ticketrouter_imap_connected{mailbox="INBOX"} 1` + "\n"},
		{"/metrics", `ticketrouter_backlog_mails{mailbox="INBOX"} 0` + "\n"},
		{"/metrics", `ticketrouter_oldest_unprocessed_age_seconds{mailbox="INBOX"} 0` + "\n"},
	} {
		// The last mail's move and the final backlog count are reported
		// just after the server shows the mail moved: allow them a moment.
		var status int
		var body []byte
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			resp, err := http.Get(addr + c.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			status = resp.StatusCode
			if status == 200 && strings.Contains(string(body), c.want) || time.Now().After(deadline) {
				break
			}
		}
		if status != 200 || !strings.Contains(string(body), c.want) {
			t.Errorf("%s: status %d, want 200 and a body with %q; got:\n%s", c.path, status, c.want, body)
		}
	}
	// Profiles on the debug listener only.
	if status, body := httpGet(t, "http://"+s.DebugAddr()+"/debug/pprof/"); status != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ on the debug listener: status %d, want 200 and the profiles; got:\n%.300s", status, body)
	}
	if status, _ := httpGet(t, addr+"/debug/pprof/"); status != http.StatusNotFound {
		t.Errorf("/debug/pprof/ on the probe port: status %d, want 404", status)
	}
}

// httpGet fetches url: the status and the body.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// waitMetric waits up to 15 s for /metrics to hold line, and fails the
// test with the last body seen otherwise.
func waitMetric(t *testing.T, s *Service, line string) {
	t.Helper()
	if _, body := waitBody(t, s, "/metrics", line+"\n"); !strings.Contains(body, line+"\n") {
		t.Fatalf("/metrics never held %q; last:\n%s", line, body)
	}
}

// waitBody gets path from the service's HTTP listener until its body
// holds want, for 15 s at most, and returns the last answer.
func waitBody(t *testing.T, s *Service, path, want string) (code int, body string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get("http://" + s.httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if code, body = resp.StatusCode, string(b); strings.Contains(body, want) {
			break
		}
	}
	return code, body
}

// TestRunReloadsAccounts: a changed account file is used without a
// restart; a changed file that does not load is reported and the accounts
// in use are kept.
func TestRunReloadsAccounts(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.Options{})
	accounts := filepath.Join(t.TempDir(), "accounts.yaml")
	example, err := os.ReadFile("../deploy/examples/accounts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(accounts, example, 0o600); err != nil {
		t.Fatal(err)
	}
	s, _ := startService(t, srv, "", func(c *config.Config) { c.Accounts = accounts })
	waitMetric(t, s, "ticketrouter_accounts 9")

	mail := func(n int) []byte {
		return fmt.Appendf(nil, "From: New Co <it@newco.example>\r\nTo: support@ca.example\r\nSubject: Password reset\r\n"+
			"Message-ID: <reload-%d@newco.example>\r\nDate: Fri, 27 Nov 2026 09:00:00 +0000\r\n\r\nPlease reset my password.\r\n", n)
	}
	srv.Append(t, "INBOX", mail(1))
	waitMetric(t, s, `ticketrouter_tickets_published_total{colour="unknown",disposition="unmatched"} 1`)

	added := string(example) + "  - id: N-1\n    colour: green\n    username: newco\n    admin_email: it@newco.example\n    domains: [newco.example]\n"
	if err := os.WriteFile(accounts, []byte(added), 0o600); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, s, "ticketrouter_accounts 10")
	srv.Append(t, "INBOX", mail(2))
	waitMetric(t, s, `ticketrouter_tickets_published_total{colour="green",disposition="verified"} 1`)

	if err := os.WriteFile(accounts, []byte(added+"  - id: N-1\n"), 0o600); err != nil { // a duplicate id
		t.Fatal(err)
	}
	waitMetric(t, s, "ticketrouter_accounts_reload_failures_total 1")
	srv.Append(t, "INBOX", mail(3))
	waitMetric(t, s, `ticketrouter_tickets_published_total{colour="green",disposition="verified"} 2`)
	waitMetric(t, s, "ticketrouter_accounts 10")
}

// TestRunEmptyMailDeadLetter: a mail the server sends no bytes of
// (imapmemserver sends nothing of a mail it cannot parse) is quarantined,
// and its dead-letter record says why.
func TestRunEmptyMailDeadLetter(t *testing.T) {
	srv := imaptest.StartMemServer(t, imaptest.Options{})
	raw, err := os.ReadFile("../deploy/examples/mail/row00-deadletter.eml")
	if err != nil {
		t.Fatal(err)
	}
	srv.Append(t, "INBOX", raw)
	s, _ := startService(t, srv, "", nil)
	for deadline := time.Now().Add(30 * time.Second); len(srv.UIDs(t, "Quarantine")) < 1; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the mail was not quarantined within 30 s")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var msg *jetstream.RawStreamMsg
	for deadline := time.Now().Add(10 * time.Second); msg == nil; time.Sleep(50 * time.Millisecond) {
		msg, _ = s.js.Stream.GetLastMsgForSubject(ctx, "helpdesk.tickets.deadletter")
		if msg == nil && time.Now().After(deadline) {
			t.Fatal("no dead-letter record")
		}
	}
	want := fmt.Sprintf("the server sent no bytes of this mail (its size given as %d)", len(raw))
	if !strings.Contains(string(msg.Data), want) {
		t.Errorf("dead-letter record %s lacks %q", msg.Data, want)
	}
}

// TestRunReadyzNamesCause: /readyz says why a mailbox is not connected,
// not only that it is not.
func TestRunReadyzNamesCause(t *testing.T) {
	srv := imaptest.StartMemServer(t, imaptest.Options{})
	t.Setenv("TICKETROUTER_TEST_WRONG_PW", "not-the-password")
	s, _ := startService(t, srv, "", func(c *config.Config) { c.IMAP.Secret = &ingest.Secret{Env: "TICKETROUTER_TEST_WRONG_PW"} })
	const want = "IMAP mailbox INBOX not connected: authentication failed: authenticate as "
	if code, body := waitBody(t, s, "/readyz", want); code != http.StatusServiceUnavailable || !strings.Contains(body, want) {
		t.Errorf("/readyz: %d %q, want 503 naming %q", code, body, want)
	}
}

// TestRunThreads: a reply to a ticket's mail joins its conversation when
// it comes from the same sender or the account's domain; a forged
// In-Reply-To from another sender, and a tag of a ticket that does not
// exist, leave a signal on the ticket and join nothing.
func TestRunThreads(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.Options{})
	mail := func(from, msgID, subject, headers string) []byte {
		return []byte("From: " + from + "\r\nTo: support@ca.example\r\nSubject: " + subject +
			"\r\nDate: Fri, 27 Nov 2026 09:00:00 +0000\r\nMessage-ID: <" + msgID + ">\r\n" + headers +
			"Content-Type: text/plain; charset=utf-8\r\n\r\nplease reset my password\r\n")
	}
	mails := [][]byte{
		mail("Acme Admin <admin@acmecorp.example>", "root@acmecorp.example", "Password reset", ""),
		mail("Acme Admin <admin@acmecorp.example>", "again@acmecorp.example", "Re: Password reset", "In-Reply-To: <root@acmecorp.example>\r\n"),
		mail("Bob <bob@acmecorp.example>", "bob@acmecorp.example", "Re: Password reset", "References: <x@y.example> <root@acmecorp.example>\r\n"),
		mail("Eve <eve@evil.example>", "forged@evil.example", "Re: Password reset", "In-Reply-To: <root@acmecorp.example>\r\n"),
		mail("Acme Admin <admin@acmecorp.example>", "tag@acmecorp.example", "Re: Password reset [TR-999999]", ""),
	}
	s, _ := startService(t, srv, "", nil)
	// One at a time, so that each reply finds the mail before it.
	for i, raw := range mails {
		srv.Append(t, "INBOX", raw)
		deadline := time.Now().Add(30 * time.Second)
		for len(srv.UIDs(t, "Processed")) < i+1 {
			if time.Now().After(deadline) {
				t.Fatalf("mail %d not processed", i+1)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	byMsgID := map[string]ticket.Ticket{}
	for _, list := range streamTickets(t, s.js.JS, "TICKETS") {
		for _, tk := range list {
			byMsgID[tk.MessageID] = tk
		}
	}
	root := byMsgID["root@acmecorp.example"]
	if root.Conversation != nil {
		t.Errorf("the first mail names a conversation: %+v", root.Conversation)
	}
	for _, c := range []struct {
		msgID  string
		joined bool
		reason string
	}{
		{"again@acmecorp.example", true, "the same sender"},
		{"bob@acmecorp.example", true, "an address at the account's domain acmecorp.example"},
		{"forged@evil.example", false, "names TR-100001 (in-reply-to), a conversation of another sender: not joined"},
		{"tag@acmecorp.example", false, "the subject names TR-999999, which does not exist"},
	} {
		conv := byMsgID[c.msgID].Conversation
		if conv == nil || conv.Joined != c.joined || conv.Reason != c.reason {
			t.Errorf("%s: conversation %+v; want joined %v, %q", c.msgID, conv, c.joined, c.reason)
			continue
		}
		if c.joined && (conv.Root != root.ID || conv.RootNumber != "TR-100001") {
			t.Errorf("%s: joined %s %s, want %s TR-100001", c.msgID, conv.Root, conv.RootNumber, root.ID)
		}
	}
	// A reply to the forged mail joins the forger's own conversation, not
	// the first one.
	srv.Append(t, "INBOX", mail("Eve <eve@evil.example>", "eve2@evil.example", "Re: Re", "In-Reply-To: <forged@evil.example>\r\n"))
	deadline := time.Now().Add(30 * time.Second)
	for len(srv.UIDs(t, "Processed")) < len(mails)+1 {
		if time.Now().After(deadline) {
			t.Fatal("the last mail was not processed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, list := range streamTickets(t, s.js.JS, "TICKETS") {
		for _, tk := range list {
			if tk.MessageID == "eve2@evil.example" && (tk.Conversation == nil || !tk.Conversation.Joined || tk.Conversation.Root != byMsgID["forged@evil.example"].ID) {
				t.Errorf("a reply to the forged mail: conversation %+v, want the forger's own", tk.Conversation)
			}
		}
	}
}
