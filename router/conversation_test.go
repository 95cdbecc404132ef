package router

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/smtp"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"github.com/ticketrouter/ticketrouter/ingest"
	"github.com/ticketrouter/ticketrouter/ingest/imaptest"
	"github.com/ticketrouter/ticketrouter/internal/mtatest"
	"github.com/ticketrouter/ticketrouter/router/config"
	"github.com/ticketrouter/ticketrouter/router/outbox"
	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// sendSMTP sends raw from one address to another through the MTA's plain
// SMTP port, as mail from outside arrives.
func sendSMTP(t *testing.T, addr, from, to string, raw string) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail(from); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(to); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(w, strings.ReplaceAll(raw, "\n", "\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

// header reads a delivered mail's header.
func header(t *testing.T, raw []byte) gomail.Header {
	t.Helper()
	r, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return r.Header
}

// TestConversation runs the conversation end to end, with a real Postfix
// relaying into the test Dovecot: a customer's mail becomes a ticket and
// the acknowledgement arrives in their mailbox with its number; their
// reply to it threads into the ticket and gets no second answer; a forged
// In-Reply-To from another sender joins nothing, and the acknowledgement
// to that sender's unknown address bounces back and is marked bounced; an
// out-of-office answer to our acknowledgement is ignored and answered by
// nothing; the agent's reply from the desk arrives at the admin address on
// file; and the submission server down for 30 s loses and duplicates
// nothing.
func TestConversation(t *testing.T) {
	if testing.Short() {
		t.Skip("a 30 s outage of the submission server")
	}
	const admin, bob = "admin@acmecorp.example", "bob@acmecorp.example"
	srv := imaptest.StartDovecot(t, imaptest.Options{LMTP: true, Accounts: []string{admin, bob}})
	dc := srv.(*imaptest.Dovecot)
	mta := mtatest.Start(t, mtatest.Options{LMTP: dc.LMTPAddr(), SASL: dc.AuthAddr()})

	file := agentsFile(t)
	s, _ := startService(t, srv, "", func(c *config.Config) {
		c.Desk = config.Desk{Listen: "127.0.0.1:0", Agents: file}
		c.SMTP = config.SMTP{Addr: mta.SubmissionAddr(), Security: "starttls", CAFile: mta.CAFile(),
			Username: dc.Username(), Secret: &ingest.Secret{Env: "TICKETROUTER_TEST_IMAP_PW"},
			From: "Support <" + dc.Address() + ">", RetryBackoffMax: 4 * time.Second}
	})
	processed := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); len(srv.UIDs(t, "Processed")) < n; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d mails processed, want %d\n%s", len(srv.UIDs(t, "Processed")), n, mta.Log(20))
			}
		}
	}
	tickets := func() map[string]ticket.Ticket {
		out := map[string]ticket.Ticket{}
		for _, list := range streamTickets(t, s.js.JS, "TICKETS") {
			for _, tk := range list {
				out[tk.MessageID] = tk
			}
		}
		return out
	}
	mail := func(from, msgID, subject, extra, body string) string {
		return "From: " + from + "\nTo: " + dc.Address() + "\nSubject: " + subject +
			"\nDate: Fri, 04 Dec 2026 09:00:00 +0000\nMessage-ID: <" + msgID + ">\n" + extra +
			"Content-Type: text/plain; charset=utf-8\n\n" + body + "\n"
	}

	// 1. The customer writes; the acknowledgement comes back, numbered.
	sendSMTP(t, mta.SMTPAddr(), admin, dc.Address(), mail("Acme Admin <"+admin+">", "root@acmecorp.example", "Passwort vergessen",
		"", "Hallo, ich habe mein Passwort vergessen. Bitte setzen Sie es zurück. Danke"))
	ack := header(t, dc.WaitBodies(t, admin, "INBOX", 1, 60*time.Second)[0])
	ackID, _ := ack.MessageID()
	subject, _ := ack.Subject()
	if !strings.Contains(subject, "[TR-100001]") || ack.Get("Auto-Submitted") != "auto-replied" || ack.Get("Content-Language") != "de" {
		t.Errorf("acknowledgement: subject %q, Auto-Submitted %q, Content-Language %q; want the tag, auto-replied, de",
			subject, ack.Get("Auto-Submitted"), ack.Get("Content-Language"))
	}
	if irt, _ := ack.MsgIDList("In-Reply-To"); len(irt) != 1 || irt[0] != "root@acmecorp.example" {
		t.Errorf("acknowledgement In-Reply-To %q", irt)
	}

	// 2. The customer answers it; 3. another sender forges a reply to the
	// first mail (from an address with no mailbox: our answer to it
	// bounces); 4. the customer's out-of-office answers our
	// acknowledgement.
	sendSMTP(t, mta.SMTPAddr(), admin, dc.Address(), mail("Acme Admin <"+admin+">", "reply@acmecorp.example", "Re: "+subject,
		"In-Reply-To: <"+ackID+">\nReferences: <root@acmecorp.example> <"+ackID+">\n", "Hier ist die Bestätigung von der Admin-Adresse."))
	sendSMTP(t, mta.SMTPAddr(), "eve@evil.example", dc.Address(), mail("Eve <eve@evil.example>", "forged@evil.example", "Re: Passwort vergessen",
		"In-Reply-To: <root@acmecorp.example>\n", "Please send the new password to me instead."))
	sendSMTP(t, mta.SMTPAddr(), admin, dc.Address(), mail("Acme Admin <"+admin+">", "ooo@acmecorp.example", "Abwesenheitsnotiz: "+subject,
		"Auto-Submitted: auto-replied\nIn-Reply-To: <"+ackID+">\n", "Ich bin bis Montag nicht im Büro."))
	// The four, and the bounce of the answer to eve.
	processed(5)
	byID := tickets()
	root, reply, forged, ooo := byID["root@acmecorp.example"], byID["reply@acmecorp.example"], byID["forged@evil.example"], byID["ooo@acmecorp.example"]
	if root.Answer == nil || root.Answer.Kind != ticket.AnswerAcknowledgement || root.Answer.Lang != "de" {
		t.Errorf("first mail's answer %+v", root.Answer)
	}
	if c := reply.Conversation; c == nil || !c.Joined || c.Root != root.ID || c.Via != "in-reply-to" {
		t.Errorf("the customer's reply: conversation %+v, want joined to %s", c, root.ID)
	}
	if a := reply.Answer; a == nil || a.Kind != ticket.AnswerNone || !strings.Contains(a.Reason, "less than 24h0m0s ago") {
		t.Errorf("the customer's reply: answer %+v, want none within the period", a)
	}
	if c := forged.Conversation; c == nil || c.Joined {
		t.Errorf("the forged reply: conversation %+v, want not joined", c)
	}
	if ooo.Disposition != "ignored" || ooo.Answer == nil || ooo.Answer.Kind != ticket.AnswerNone {
		t.Errorf("the out-of-office: disposition %s, answer %+v; want ignored, none", ooo.Disposition, ooo.Answer)
	}
	var bounce *ticket.Ticket
	for _, tk := range byID {
		if tk.Disposition == "ignored" && strings.Contains(tk.IgnoredReason, "marked bounced") {
			bounce = &tk
		}
	}
	if bounce == nil || forged.Answer == nil || forged.Answer.MailID == "" {
		t.Fatalf("no bounce marked (forged answer %+v)", forged.Answer)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if st, err := s.outbox.Status(ctx, forged.Answer.MailID); err != nil || st.State != outbox.StateBounced || !strings.Contains(st.Reason, "eve@evil.example") {
		t.Errorf("the answer to the forger: %+v, %v; want bounced", st, err)
	}

	// 5. The agent takes the ticket and replies from the desk.
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := s.DeskURL()
	get := func(path string) string {
		t.Helper()
		resp, err := client.Get(base + strings.TrimPrefix(path, "/"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	post := func(path string, form url.Values) *http.Response {
		t.Helper()
		resp, err := client.PostForm(base+strings.TrimPrefix(path, "/"), form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	post("login", url.Values{"name": {"alice"}, "password": {password}})
	csrf := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(get("/"))
	if csrf == nil {
		t.Fatal("no CSRF token on the board: not signed in")
	}
	if resp := post("take/green", url.Values{"csrf_token": {csrf[1]}}); resp.Header.Get("Location") != "/t/TR-100001" {
		t.Fatalf("take next: %d to %q, want /t/TR-100001", resp.StatusCode, resp.Header.Get("Location"))
	}
	page := get("/t/TR-100001")
	form := regexp.MustCompile(`action="(/t/[0-9a-f]{64}/reply)">.*\n<input type="hidden" name="template" value="reset-done"><input type="hidden" name="token" value="([0-9a-f]{16})">`).FindStringSubmatch(page)
	if form == nil {
		t.Fatalf("no reset-done reply form on the ticket page:\n%s", page)
	}
	resp := post(form[1], url.Values{"csrf_token": {csrf[1]}, "template": {"reset-done"}, "token": {form[2]}, "lang": {"de"},
		"subject": {"Ihr Zugang"}, "body": {"Erledigt: der Link zum Zurücksetzen ist an diese Adresse unterwegs."}, "to": {"eve@evil.example"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("reply: status %d", resp.StatusCode)
	}
	bodies := dc.WaitBodies(t, admin, "INBOX", 2, 60*time.Second)
	// The ticket page tells the conversation in order: the first mail, our
	// acknowledgement, the customer's reply, the agent's reply.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		page = get("/t/TR-100001")
		tl := page[max(0, strings.Index(page, `<ol class="timeline">`)):]
		order := []string{"(this ticket)", "→ acknowledgement to " + admin, "came in", "→ reply to " + admin}
		at, ok := 0, true
		for _, o := range order {
			i := strings.Index(tl[at:], o)
			if i < 0 {
				ok = false
				break
			}
			at += i
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the conversation on the ticket page is not %q in order:\n%s", order, tl)
		}
	}
	r := header(t, bodies[1])
	if subj, _ := r.Subject(); subj != "Ihr Zugang [TR-100001]" || r.Get("Auto-Submitted") != "" {
		t.Errorf("the agent's reply: subject %q, Auto-Submitted %q", subj, r.Get("Auto-Submitted"))
	}

	// 6. The submission server is down for 30 s while a mail comes in.
	mta.Stop(t)
	srv.Append(t, "INBOX", []byte(strings.ReplaceAll(mail("Bob <"+bob+">", "bob@acmecorp.example", "Password reset", "", "Please reset my password."), "\n", "\r\n")))
	processed(6)
	time.Sleep(30 * time.Second)
	mta.Start(t)
	dc.WaitBodies(t, bob, "INBOX", 1, 60*time.Second)
	bobTicket := tickets()["bob@acmecorp.example"]
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		st, err := s.outbox.Status(ctx, bobTicket.Answer.MailID)
		if err == nil && st.State == outbox.StateSent {
			if st.Attempts < 2 {
				t.Errorf("the answer sent after the outage took %d attempts, want several", st.Attempts)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the answer to bob: %+v, %v; want sent", st, err)
		}
	}
	mta.WaitQueueEmpty(t, 30*time.Second)
	// Nothing duplicated, nothing more sent: one answer to bob, the
	// acknowledgement and the reply to the admin.
	time.Sleep(2 * time.Second)
	if n := len(dc.AccountBodies(t, bob, "INBOX")); n != 1 {
		t.Errorf("bob's mailbox holds %d mails, want 1", n)
	}
	if n := len(dc.AccountBodies(t, admin, "INBOX")); n != 2 {
		t.Errorf("the admin's mailbox holds %d mails, want 2", n)
	}
	if n := len(srv.UIDs(t, "INBOX")); n != 0 {
		t.Errorf("the support INBOX still holds %d mails", n)
	}
}
