package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ticketrouter/ticketrouter/ingest/mail"
	"github.com/ticketrouter/ticketrouter/internal/natstest"
	"github.com/ticketrouter/ticketrouter/router/broker"
	"github.com/ticketrouter/ticketrouter/router/ticket"
	"github.com/ticketrouter/ticketrouter/rules"
)

// queueServer is an embedded nats-server on a free loopback port with the
// service's stream and consumers provisioned.
type queueServer struct {
	url string
	js  jetstream.JetStream
}

func startQueueServer(t *testing.T, cfg broker.NATSConfig, prefix string) *queueServer {
	t.Helper()
	isolateNATSEnv(t)
	return provisionQueueServer(t, natstest.Start(t).ClientURL(), cfg, prefix)
}

// provisionQueueServer provisions the service's stream and consumers on
// the server at url, connecting with opts.
func provisionQueueServer(t *testing.T, url string, cfg broker.NATSConfig, prefix string, opts ...nats.Option) *queueServer {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := broker.Provision(ctx, js, cfg, prefix, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return &queueServer{url: url, js: js}
}

// testTicket builds a ticket for queue subject <prefix>.<colour>.<disposition>.
func testTicket(n int, prefix, colour, disposition string) *ticket.Ticket {
	date := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	return &ticket.Ticket{
		Version:      ticket.Version,
		ID:           fmt.Sprintf("%064x", n),
		MessageID:    fmt.Sprintf("m%d@acmecorp.example", n),
		Date:         &date,
		From:         ticket.From{Address: "admin@acmecorp.example", Name: "Ada Admin"},
		ReplyTo:      []string{},
		EmailSubject: fmt.Sprintf("Password reset please (%d)", n),
		Size:         1234,
		Intent:       "password-reset", IntentReason: `"reset" (en)`,
		Colour: colour, Disposition: disposition,
		Queue:     ticket.Subject(prefix, colour, disposition),
		PolicyRow: 12,
		Account: &ticket.Account{
			ID: "A-1001", Colour: colour, Name: "Acme Corp", AdminEmail: "admin@acmecorp.example",
			Partner: "P-7", PartnerName: "Hosting Heroes", MatchedBy: "order number 4711",
		},
		Candidates: []string{},
		Checks: rules.Checks{
			SenderAuthenticated: rules.Check{OK: true, Reason: "dmarc=pass by mx.acmecorp.example"},
			SenderIsAdmin:       rules.Check{OK: true, Reason: "From is the admin address"},
			OrderMatched:        rules.Check{OK: false, Reason: "no order number named"},
		},
		Guidance: []string{
			"Send the reset link to the admin address on file.",
			"Passwords are never given out, by phone or by mail.",
		},
		Body:          "Hello,\nplease reset my password.\x1b[2J\u009b31m\nPassword: [redacted]\n",
		Attachments:   []mail.Attachment{{Name: "key.pfx", ContentType: "application/x-pkcs12", Size: 2048, Secret: "pkcs12"}},
		KeyExposed:    true,
		ParseProblems: []string{},
	}
}

func (qs *queueServer) publish(t *testing.T, tickets ...*ticket.Ticket) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tk := range tickets {
		data, err := json.Marshal(tk)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := qs.js.Publish(ctx, tk.Queue, data, jetstream.WithMsgID(tk.ID)); err != nil {
			t.Fatal(err)
		}
	}
}

// listJSON runs 'queue list --json' and returns the queues by name.
func listJSON(t *testing.T, args ...string) map[string]broker.QueueStatus {
	t.Helper()
	code, out, errOut := runCmd(t, "", append([]string{"queue", "list", "--json"}, args...)...)
	if code != exitOK {
		t.Fatalf("queue list: exit %d, stderr %q", code, errOut)
	}
	var l queueListing
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("queue list --json: %v\n%s", err, out)
	}
	m := map[string]broker.QueueStatus{}
	for _, q := range l.Queues {
		m[q.Queue] = q
	}
	if len(m) != len(broker.Queues()) {
		t.Fatalf("queue list shows %d queues, want %d", len(m), len(broker.Queues()))
	}
	return m
}

// waitPending polls until queue q shows waiting and claimed (acks, naks and
// terms are processed by the server after they are sent), for at most 5 s.
func waitPending(t *testing.T, url, q string, waiting, claimed uint64) broker.QueueStatus {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := listJSON(t, "--nats", url)[q]
		if st.Waiting == waiting && st.Claimed == claimed {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue %s: waiting %d claimed %d, want %d and %d", q, st.Waiting, st.Claimed, waiting, claimed)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestQueueList(t *testing.T) {
	p := ticket.DefaultPrefix
	qs := startQueueServer(t, broker.NATSConfig{}, p)
	qs.publish(t,
		testTicket(1, p, "green", "verified"), testTicket(2, p, "green", "needs-verification"),
		testTicket(3, p, "blue", "refer-to-web-host"), testTicket(4, p, "unknown", "deadletter"))
	time.Sleep(1100 * time.Millisecond) // so that the oldest is at least a second old

	code, out, errOut := runCmd(t, "", "queue", "list", "--nats", qs.url)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	t.Logf("\n%s", out)
	for _, want := range []string{"QUEUE", "WAITING", "CLAIMED", "OLDEST WAITING", "stream TICKETS"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	rows := map[string][]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) >= 6 {
			rows[f[0]] = f
		}
	}
	if f := rows["green"]; len(f) < 6 || f[1] != "2" || f[2] != "0" || f[3] != "2" || !strings.HasSuffix(f[4], "s") || f[5] != "-" {
		t.Errorf("green row %q, want 2 waiting, 0 claimed, 2 pending, an age, no claimed age", f)
	}
	if f := rows["red"]; len(f) < 6 || f[1] != "0" || f[4] != "-" {
		t.Errorf("red row %q, want empty", f)
	}

	m := listJSON(t, "--nats", qs.url)
	for q, want := range map[string]uint64{"green": 2, "blue": 1, "deadletter": 1, "red": 0, "pink": 0, "unknown": 0} {
		if st := m[q]; st.Waiting != want || st.Claimed != 0 || st.Pending != want {
			t.Errorf("%s: %+v, want %d waiting", q, st, want)
		}
	}
	g := m["green"]
	if g.OldestWaiting == nil || g.OldestWaiting.AgeSeconds < 1 || g.OldestWaiting.TicketID != fmt.Sprintf("%064x", 1) || g.OldestWaiting.Subject != p+".green.verified" {
		t.Errorf("green oldest waiting %+v, want ticket 1, at least 1 s old", g.OldestWaiting)
	}
	if g.Subject != p+".green.>" || g.OldestClaimed != nil || m["red"].OldestWaiting != nil {
		t.Errorf("green %+v, red %+v", g, m["red"])
	}

	// Claim one without acknowledging: it counts as claimed, the next one
	// becomes the oldest waiting.
	if code, _, errOut := runCmd(t, "", "queue", "next", "green", "--nats", qs.url); code != exitOK {
		t.Fatalf("next: exit %d, %q", code, errOut)
	}
	g = waitPending(t, qs.url, "green", 1, 1)
	if g.OldestClaimed == nil || g.OldestClaimed.TicketID != fmt.Sprintf("%064x", 1) ||
		g.OldestWaiting == nil || g.OldestWaiting.TicketID != fmt.Sprintf("%064x", 2) || g.Pending != 2 {
		t.Errorf("after a claim: %+v", g)
	}
}

func TestQueueNextAck(t *testing.T) {
	p := ticket.DefaultPrefix
	qs := startQueueServer(t, broker.NATSConfig{}, p)
	qs.publish(t, testTicket(1, p, "green", "verified"), testTicket(2, p, "green", "verified"))

	code, out, errOut := runCmd(t, "", "queue", "next", "green", "--ack", "--nats", qs.url)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	t.Logf("\n%s", out)
	for _, want := range []string{
		fmt.Sprintf("TICKET %064x", 1), p + ".green.verified", "delivery #1",
		`"Ada Admin" <admin@acmecorp.example>`, "Password reset please (1)", "Mon, 02 Mar 2026 09:30:00",
		"A-1001 (green)", "Acme Corp", "admin@acmecorp.example", "Hosting Heroes (P-7)", "order number 4711",
		"password-reset", "verified (policy row 12)",
		"[yes] sender_authenticated", "dmarc=pass by mx.acmecorp.example", "[ no] order_matched", "no order number named",
		"  - Send the reset link to the admin address on file.",
		"  !! Passwords are never given out, by phone or by mail.",
		"  | please reset my password.", "Password: [redacted]",
		"key.pfx", "SECRET: pkcs12",
		"K E Y   E X P O S E D", "acknowledged",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.ContainsAny(out, "\x1b\u009b") {
		t.Error("an escape or CSI character from the body reached the terminal")
	}
	if strings.Contains(out, "RATE LIMITED") {
		t.Error("RATE LIMITED shown for a ticket that is not")
	}
	// Acknowledged: gone for good; the other one is still waiting.
	waitPending(t, qs.url, "green", 1, 0)

	// Rate limited, without a key: the banner changes.
	tk := testTicket(3, p, "red", "verified")
	tk.RateLimited, tk.KeyExposed, tk.Attachments = true, false, []mail.Attachment{}
	tk.Queue = ticket.RateLimitedSubject(p, "red")
	qs.publish(t, tk)
	code, out, _ = runCmd(t, "", "queue", "next", ticket.RateLimited, "--nats", qs.url, "--ack")
	if code != exitOK || !strings.Contains(out, "RATE LIMITED") || strings.Contains(out, "E X P O S E D") {
		t.Errorf("rate-limited ticket: exit %d\n%s", code, out)
	}
}

func TestQueueNextNakRedelivers(t *testing.T) {
	p := ticket.DefaultPrefix
	qs := startQueueServer(t, broker.NATSConfig{}, p)
	qs.publish(t, testTicket(7, p, "pink", "verified"))

	code, out, errOut := runCmd(t, "", "queue", "next", "--nak", "pink", "--json", "--nats", qs.url)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var doc struct {
		Ticket ticket.Ticket `json:"ticket"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("--json prints no ticket: %v\n%s", err, out)
	}
	first := doc.Ticket
	if first.ID != fmt.Sprintf("%064x", 7) || first.Account == nil || first.Account.PartnerName != "Hosting Heroes" {
		t.Errorf("ticket %+v", first)
	}
	if !strings.Contains(errOut, "put back") {
		t.Errorf("stderr %q: want the nak reported there (stdout is JSON)", errOut)
	}

	// Put back: delivered again, the same ticket, as a redelivery.
	code, out, errOut = runCmd(t, "", "queue", "next", "pink", "--nats", qs.url, "--wait", "5s", "--ack")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if !strings.Contains(out, "TICKET "+first.ID) || !strings.Contains(out, "delivery #2") {
		t.Errorf("second next is not the same ticket redelivered:\n%s", out)
	}
	waitPending(t, qs.url, "pink", 0, 0)
}

func TestQueueNextTerm(t *testing.T) {
	p := ticket.DefaultPrefix
	qs := startQueueServer(t, broker.NATSConfig{}, p)
	qs.publish(t, testTicket(9, p, "red", "verified"))

	code, out, errOut := runCmd(t, "", "queue", "next", "red", "--term", "--nats", qs.url)
	if code != exitOK || !strings.Contains(out, "terminated") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	waitPending(t, qs.url, "red", 0, 0)
	code, out, _ = runCmd(t, "", "queue", "next", "red", "--nats", qs.url, "--wait", "300ms")
	if code != exitOK || out != "no ticket waiting in red\n" {
		t.Errorf("after --term: exit %d, %q; want the empty-queue message", code, out)
	}
}

func TestQueueNextClaimed(t *testing.T) {
	p := ticket.DefaultPrefix
	qs := startQueueServer(t, broker.NATSConfig{}, p)
	qs.publish(t, testTicket(5, p, "dark-green", "self-service"))

	code, out, errOut := runCmd(t, "", "queue", "next", "dark-green", "--nats", qs.url)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if !strings.Contains(out, "claimed: this ticket is yours for 5m0s") || !strings.Contains(out, "queue ack|nak|term TICKETS.dark-green.") {
		t.Errorf("no claim notice:\n%s", out)
	}
	// Claimed by the first agent: the next one finds nothing.
	code, out, _ = runCmd(t, "", "queue", "next", "dark-green", "--nats", qs.url, "--wait", "200ms")
	if code != exitOK || out != "no ticket waiting in dark-green\n" {
		t.Errorf("exit %d, %q", code, out)
	}
	waitPending(t, qs.url, "dark-green", 0, 1)
}

func TestQueueEmptyAndUsage(t *testing.T) {
	p := ticket.DefaultPrefix
	qs := startQueueServer(t, broker.NATSConfig{}, p)

	code, out, errOut := runCmd(t, "", "queue", "next", "blue", "--nats", qs.url, "--wait", "200ms")
	if code != exitOK || out != "no ticket waiting in blue\n" {
		t.Errorf("empty queue: exit %d, %q, %q", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "", "queue", "next", "blue", "--json", "--nats", qs.url, "--wait", "200ms")
	if code != exitOK || out != "" || errOut != "no ticket waiting in blue\n" {
		t.Errorf("empty queue --json: exit %d, %q, %q", code, out, errOut)
	}

	for _, args := range [][]string{
		{"queue"},
		{"queue", "peek"},
		{"queue", "next"},
		{"queue", "next", "purple"},
		{"queue", "next", "green", "--ack", "--term"},
		{"queue", "next", "green", "--wait", "0s"},
		{"queue", "next", "green", "blue"},
		{"queue", "list", "green"},
		{"queue", "list", "--bogus"},
	} {
		code, out, errOut := runCmd(t, "", append(args, "--nats", qs.url)...)
		if code != exitUsage || out != "" {
			t.Errorf("%q: exit %d, stdout %q; want usage error 2", args, code, out)
		}
		if args[len(args)-1] == "purple" && !strings.Contains(errOut, `unknown queue "purple": want one of blue, red, pink, dark-green, green, unknown, rate-limited, ignored, deadletter`) {
			t.Errorf("unknown queue: stderr %q", errOut)
		}
	}
}

func TestQueueErrors(t *testing.T) {
	// No server listening: one line, exit 1.
	code, _, errOut := runCmd(t, "", "queue", "list", "--nats", "nats://127.0.0.1:1")
	if code != exitError || !strings.HasPrefix(errOut, "ticketrouter: connect to NATS at nats://127.0.0.1:1") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("exit %d, %q", code, errOut)
	}
	// A server without the stream.
	s := natstest.Start(t)
	for _, args := range [][]string{{"queue", "list"}, {"queue", "next", "green"}} {
		code, _, errOut = runCmd(t, "", append(args, "--nats", s.ClientURL())...)
		if code != exitError || !strings.HasPrefix(errOut, "ticketrouter: stream TICKETS not found") {
			t.Errorf("%q: exit %d, %q", args, code, errOut)
		}
	}
}

// TestQueueConfig reads the stream name, the prefix and the URL from the
// service's configuration file.
func TestQueueConfig(t *testing.T) {
	p := "acme.support"
	qs := startQueueServer(t, broker.NATSConfig{Stream: "ACME"}, p)
	qs.publish(t, testTicket(1, p, "blue", "verified"))

	cfg := filepath.Join(t.TempDir(), "ticketrouter.yaml")
	data := fmt.Sprintf("subject_prefix: %s\nnats:\n  url: %s\n  stream: ACME\n", p, qs.url)
	if err := os.WriteFile(cfg, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	// A consumer's pending count follows the stream a moment later.
	var l queueListing
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		code, out, errOut := runCmd(t, "", "queue", "list", "--json", "--config", cfg)
		if code != exitOK {
			t.Fatalf("exit %d, %q", code, errOut)
		}
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatal(err)
		}
		if l.Queues[0].Waiting == 1 || time.Now().After(deadline) {
			break
		}
	}
	if l.Stream != "ACME" || l.Prefix != p || l.Queues[0].Queue != "blue" || l.Queues[0].Waiting != 1 || l.Queues[0].Subject != p+".blue.>" {
		t.Errorf("listing %+v", l)
	}
	code, out, errOut := runCmd(t, "", "queue", "next", "blue", "--config", cfg, "--ack")
	if code != exitOK || !strings.Contains(out, "queue "+p+".blue.verified") {
		t.Errorf("exit %d, %q\n%s", code, errOut, out)
	}
	// --nats overrides the file's URL.
	code, _, errOut = runCmd(t, "", "queue", "list", "--config", cfg, "--nats", "nats://127.0.0.1:1")
	if code != exitError || !strings.Contains(errOut, "127.0.0.1:1") {
		t.Errorf("--nats did not override: exit %d, %q", code, errOut)
	}
}
