package desk

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketrouter/ticketrouter/router/outbox"
	"github.com/ticketrouter/ticketrouter/router/ticket"
	"github.com/ticketrouter/ticketrouter/rules"
	"github.com/ticketrouter/ticketrouter/rules/accounts"
)

// fakeOutbox keeps what is enqueued, once per id, as the outbox does.
type fakeOutbox struct {
	mu   sync.Mutex
	sent map[string]outbox.Mail
}

func (o *fakeOutbox) Enqueue(ctx context.Context, m outbox.Mail) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.sent[m.ID]; !ok {
		o.sent[m.ID] = m
	}
	return nil
}

func (o *fakeOutbox) Statuses(ctx context.Context, id string) ([]outbox.Status, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []outbox.Status
	for _, m := range o.sent {
		if m.Ticket == id {
			out = append(out, outbox.Status{ID: m.ID, Ticket: id, Kind: m.Kind, State: outbox.StateQueued})
		}
	}
	return out, nil
}

func (o *fakeOutbox) Mail(ctx context.Context, id string) (outbox.Mail, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	m, ok := o.sent[id]
	if !ok {
		return outbox.Mail{}, outbox.ErrNotFound
	}
	return m, nil
}

func (o *fakeOutbox) Domain() string { return "ca.test" }

// replyHarness is the harness with replies on: alice owns v1, a verified
// ticket from a colleague of the account's admin, whose admin address on
// file is admin@acme.test.
func replyHarness(t *testing.T) (*harness, *fakeOutbox) {
	t.Helper()
	h := &harness{t: t, store: fixture(), auth: newFakeAuth()}
	h.store.put(Record{Number: "TR-100007", ID: "v1", Queue: "blue", Colour: "blue", State: "owned", Owner: "alice"},
		&ticket.Ticket{Colour: "blue", Disposition: "verified", MessageID: "m1@acme.test", From: ticket.From{Address: "jane@acme.test"},
			EmailSubject: "Reset please", Body: "Please reset the password of our account.",
			Account: &ticket.Account{ID: "ACME-1", Name: "Acme", AdminEmail: "old-admin@acme.test"}}, "")
	// The ticket's id is a SHA-256, as every ticket's is.
	rec := h.store.recs["v1"]
	tk := h.store.tickets["v1"]
	delete(h.store.recs, "v1")
	delete(h.store.tickets, "v1")
	rec.ID = strings.Repeat("ab", 32)
	h.store.put(*rec, tk, "")
	ob := &fakeOutbox{sent: map[string]outbox.Mail{}}
	acme := &accounts.Account{ID: "ACME-1", Name: "Acme", Username: "acmeuser", AdminEmail: "admin@acme.test",
		Orders: []accounts.Order{{Number: "9876543"}}}
	srv, err := New(h.store, h.auth, Options{Logger: slog.New(slog.DiscardHandler), Replies: &Replies{
		Policy:  rules.DefaultPolicy(),
		Account: func(id string) *accounts.Account { return map[string]*accounts.Account{"ACME-1": acme}[id] },
		Outbox:  ob,
	}})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	return h, ob
}

// TestReplies: the owner sees the policy's reply templates drafted in the
// customer's language; a reset reply goes to the admin address on file
// whatever the form says; the same form sent twice sends one mail; a
// reply with a password, or account details to the sender, is refused;
// another agent may not reply.
func TestReplies(t *testing.T) {
	h, ob := replyHarness(t)
	page := h.get("alice", "/t/TR-100007").Body.String()
	if !strings.Contains(page, `<summary>reset-done <span class="kind">reset</span> → admin@acme.test</summary>`) {
		t.Fatalf("the page offers no reset-done reply to the admin on file:\n%s", page)
	}
	if !strings.Contains(page, `<summary>free text <span class="kind">info</span> → jane@acme.test</summary>`) {
		t.Error("the page offers no free reply to the sender")
	}
	tokens := regexp.MustCompile(`name="token" value="([0-9a-f]{16})"`).FindAllStringSubmatch(page, -1)
	if len(tokens) != 2 {
		t.Fatalf("%d reply forms, want 2", len(tokens))
	}
	send := func(agent, template, token, body string, extra url.Values) int {
		f := url.Values{"template": {template}, "token": {token}, "subject": {"Re: Reset please"}, "body": {body}, "lang": {"en"}}
		for k, v := range extra {
			f[k] = v
		}
		return h.do(agent, http.MethodPost, "/t/TR-100007/reply", f, false).Code
	}
	reset := tokens[0][1]
	// The form names another recipient: ignored.
	if code := send("alice", "reset-done", reset, "Done: the password reset link went to you.", url.Values{"to": {"eve@evil.test"}}); code != http.StatusSeeOther {
		t.Fatalf("reset reply: status %d", code)
	}
	if code := send("alice", "reset-done", reset, "Done: the password reset link went to you.", nil); code != http.StatusSeeOther {
		t.Fatalf("the same reply again: status %d", code)
	}
	if len(ob.sent) != 1 {
		t.Fatalf("%d mails enqueued, want 1", len(ob.sent))
	}
	for _, m := range ob.sent {
		if m.To != "admin@acme.test" || m.Kind != outbox.KindReply || m.Subject != "Re: Reset please [TR-100007]" || m.InReplyTo != "m1@acme.test" {
			t.Errorf("enqueued %+v; want a reply to admin@acme.test, tagged, in reply to the ticket", m)
		}
	}
	free := tokens[1][1]
	for _, c := range []struct{ name, body string }{
		{"a password", "Your new password: Winter2026!x"},
		{"the account's username to the sender", "Your username is acmeuser."},
		{"the account's order to the sender", "About order 9876543: done."},
	} {
		if code := send("alice", freeText, free, c.body, nil); code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", c.name, code)
		}
	}
	if code := send("bob", freeText, free, "Hello", nil); code != http.StatusForbidden {
		t.Errorf("another agent's reply: status %d, want 403", code)
	}
	if code := send("alice", freeText, "nope", "Hello", nil); code != http.StatusBadRequest {
		t.Errorf("a bad token: status %d, want 400", code)
	}
	if len(ob.sent) != 1 {
		t.Errorf("%d mails enqueued after the refused ones, want 1", len(ob.sent))
	}
	if code := send("alice", freeText, free, "We are on it.", nil); code != http.StatusSeeOther || len(ob.sent) != 2 {
		t.Errorf("a free reply: status %d, %d mails; want 303, 2", code, len(ob.sent))
	}
	page = h.get("alice", "/t/TR-100007").Body.String()
	if !strings.Contains(page, "<h2>Mail sent</h2>") || strings.Count(page, "<b>reply</b>") != 2 {
		t.Error("the page does not list the two replies sent")
	}
	if !strings.Contains(page, `<ol class="timeline">`) || !strings.Contains(page, "→ reply to admin@acme.test: <span class=\"subject\">Re: Reset please [TR-100007]</span>") {
		t.Error("the conversation does not show the reply that went out")
	}
	if !strings.Contains(page, "<b>replied</b> by alice") {
		t.Error("the history has no replied event")
	}
}

// TestTimeline: a conversation's mails in and out come in the order they
// happened, the page's ticket marked.
func TestTimeline(t *testing.T) {
	at := func(m int) time.Time { return time.Date(2026, 12, 4, 10, m, 0, 0, time.UTC) }
	conv := []Record{{ID: "a", Number: "TR-100001", Published: at(0)}, {ID: "b", Number: "TR-100003", Published: at(20)}}
	sent := []sentMail{{Status: outbox.Status{ID: "ack.a", Enqueued: at(1)}}, {Status: outbox.Status{ID: "reply.a.1", Enqueued: at(30)}}}
	var got []string
	for _, tr := range timeline(conv, sent, "b") {
		switch {
		case tr.Incoming && tr.Current:
			got = append(got, tr.In.Number+"*")
		case tr.Incoming:
			got = append(got, tr.In.Number)
		default:
			got = append(got, tr.Out.ID)
		}
	}
	if want := "TR-100001 ack.a TR-100003* reply.a.1"; strings.Join(got, " ") != want {
		t.Errorf("timeline %q, want %q", strings.Join(got, " "), want)
	}
	// Within a second, to the nanosecond: a reply 300 ms after the
	// answer it replies to comes after it.
	conv = []Record{{ID: "a", Number: "TR-100001", Published: at(0)}, {ID: "b", Number: "TR-100002", Published: at(0).Add(500 * time.Millisecond)}}
	sent = []sentMail{{Status: outbox.Status{ID: "ack.a", Enqueued: at(0).Add(200 * time.Millisecond)}}}
	got = got[:0]
	for _, tr := range timeline(conv, sent, "a") {
		if tr.Incoming {
			got = append(got, tr.In.Number)
		} else {
			got = append(got, tr.Out.ID)
		}
	}
	if want := "TR-100001 ack.a TR-100002"; strings.Join(got, " ") != want {
		t.Errorf("timeline within a second %q, want %q", strings.Join(got, " "), want)
	}
}
