package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"
	"github.com/ticketrouter/ticketrouter/router/config"
)

const ticketID = "3f2a9c0b"

// ackMail is an acknowledgement of the test ticket, in German.
func ackMail() Mail {
	return Mail{
		ID: "ack." + ticketID, Ticket: ticketID, Kind: KindAcknowledgement, To: "Jürgen Kunde <kunde@bücher.test>",
		Subject: "Eingegangen: Ihre Nummer ist TR-100042 – Passwort zurücksetzen",
		Text:    "Guten Tag,\n\nwir haben Ihre Nachricht erhalten. Ihre Nummer: TR-100042.\nGrüße\n",
		Lang:    "de", InReplyTo: "orig.1@kunde.test", References: []string{"orig.0@kunde.test", "orig.1@kunde.test"},
		AutoReplied: true,
	}
}

// TestDeliveredOnceWithHeaders: a mail is submitted once, over TLS with
// AUTH PLAIN, and parses back with every header it should have: encoded
// subject, deterministic Message-ID under the sender's domain, threading,
// MIME, language, and RFC 3834's fields only on an automatic answer.
func TestDeliveredOnceWithHeaders(t *testing.T) {
	t.Parallel()
	srv := startMailServer(t, true)
	open := startJetStream(t)
	o := open(Options{})
	ctx := testContext(t)
	reply := Mail{ID: "reply." + ticketID + ".1", Ticket: ticketID, Kind: KindReply, To: "admin@kunde.test",
		Subject: "Re: reset", Text: "Done.", InReplyTo: "orig.1@kunde.test"}
	for _, m := range []Mail{ackMail(), reply} {
		if err := o.Enqueue(ctx, m); err != nil {
			t.Fatalf("Enqueue %s: %v", m.ID, err)
		}
	}
	run(t, o, mustSender(t, srv.config("plain", writeSecret(t, testPassword))))
	st := waitState(t, o, "ack."+ticketID, StateSent)
	waitState(t, o, reply.ID, StateSent)
	if st.Attempts != 1 || st.Sent.IsZero() || st.MessageID != "ack."+ticketID+"@ca.test" || st.Ticket != ticketID || st.Kind != KindAcknowledgement {
		t.Errorf("status %+v", st)
	}

	got := srv.received()
	if len(got) != 2 {
		t.Fatalf("received %d mails, want 2", len(got))
	}
	r := got[0]
	if r.From != "support@ca.test" || r.To != "kunde@xn--bcher-kva.test" {
		t.Errorf("envelope %s -> %s", r.From, r.To)
	}
	mr, err := mail.CreateReader(bytes.NewReader(r.Data))
	if err != nil {
		t.Fatal(err)
	}
	h := mr.Header
	subject, _ := h.Subject()
	msgID, _ := h.MessageID()
	inReplyTo, _ := h.MsgIDList("In-Reply-To")
	refs, _ := h.MsgIDList("References")
	from, _ := h.AddressList("From")
	to, _ := h.AddressList("To")
	ct, params, _ := h.ContentType()
	date, _ := h.Date()
	for _, c := range []struct{ name, got, want string }{
		{"subject", subject, ackMail().Subject},
		{"message-id", msgID, "ack." + ticketID + "@ca.test"},
		{"in-reply-to", strings.Join(inReplyTo, " "), "orig.1@kunde.test"},
		{"references", strings.Join(refs, " "), "orig.0@kunde.test orig.1@kunde.test"},
		{"from", names(from), "Support Desk <support@ca.test>"},
		{"to", names(to), "Jürgen Kunde <kunde@xn--bcher-kva.test>"},
		{"content-type", ct + " " + params["charset"], "text/plain utf-8"},
		{"mime-version", h.Get("Mime-Version"), "1.0"},
		{"content-language", h.Get("Content-Language"), "de"},
		{"auto-submitted", h.Get("Auto-Submitted"), "auto-replied"},
		{"our own", h.Get("X-Ticketrouter-Ticket"), ackMail().Ticket},
		{"x-auto-response-suppress", h.Get("X-Auto-Response-Suppress"), "All"},
		{"date", date.UTC().Format(time.RFC3339), st.Enqueued.Format(time.RFC3339)},
	} {
		if c.got != c.want {
			t.Errorf("%s: %q, want %q", c.name, c.got, c.want)
		}
	}
	if raw := string(r.Data); !strings.Contains(raw, "Subject: =?utf-8?") || !strings.Contains(raw, "Content-Transfer-Encoding: quoted-printable") {
		t.Errorf("subject not RFC 2047 encoded or body not quoted-printable:\n%s", raw)
	}
	p, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(p.Body)
	if want := strings.ReplaceAll(ackMail().Text, "\n", "\r\n"); string(body) != want {
		t.Errorf("body %q, want %q", body, want)
	}
	if id, ok := ParseMessageID("<"+msgID+">", o.Domain()); !ok || id != "ack."+ticketID {
		t.Errorf("ParseMessageID(%q) = %q, %v", msgID, id, ok)
	}

	// The agent's reply is no automatic answer.
	rh, _ := mail.CreateReader(bytes.NewReader(got[1].Data))
	if rh.Header.Has("Auto-Submitted") || rh.Header.Has("X-Auto-Response-Suppress") {
		t.Errorf("a reply carries RFC 3834 fields:\n%s", got[1].Data)
	}

	sts, err := o.Statuses(ctx, ticketID)
	if err != nil || len(sts) != 2 || sts[0].ID != "ack."+ticketID || sts[1].ID != reply.ID {
		t.Errorf("Statuses: %+v, %v", sts, err)
	}
	if m, err := o.Mail(ctx, reply.ID); err != nil || m.Text != "Done." || m.To != "admin@kunde.test" {
		t.Errorf("Mail: %+v, %v", m, err)
	}
	if _, err := o.Status(ctx, "ack.nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Status of an unknown id: %v", err)
	}
}

// names shows a parsed address list as display name <address>, decoded.
func names(l []*mail.Address) string {
	var out []string
	for _, a := range l {
		out = append(out, a.Name+" <"+a.Address+">")
	}
	return strings.Join(out, ", ")
}

// TestEnqueueTwiceSendsOnce: the same id enqueued again, at once and
// after the stream's duplicate window has passed, is sent once.
func TestEnqueueTwiceSendsOnce(t *testing.T) {
	t.Parallel()
	srv := startMailServer(t, true)
	o := startJetStream(t)(Options{DuplicateWindow: 100 * time.Millisecond})
	ctx := testContext(t)
	m := ackMail()
	for range 2 {
		if err := o.Enqueue(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(150 * time.Millisecond) // past the duplicate window
	if err := o.Enqueue(ctx, m); err != nil {
		t.Fatal(err)
	}
	run(t, o, mustSender(t, srv.config("plain", writeSecret(t, testPassword))))
	waitState(t, o, m.ID, StateSent)
	if err := o.Enqueue(ctx, m); err != nil { // after it was sent
		t.Fatal(err)
	}
	// A mail enqueued after all of them; once it is sent, the others have
	// been handled (one loop, in order).
	last := Mail{ID: "ack.last", Ticket: "last", Kind: KindAcknowledgement, To: "x@kunde.test", Subject: "s", Text: "t"}
	if err := o.Enqueue(ctx, last); err != nil {
		t.Fatal(err)
	}
	waitState(t, o, last.ID, StateSent)
	if n := countByMessageID(t, srv.received()); n[m.ID+"@ca.test"] != 1 || len(n) != 2 {
		t.Errorf("received %v, want each once", n)
	}
	if st, _ := o.Status(ctx, m.ID); st.Attempts != 1 {
		t.Errorf("attempts %d, want 1", st.Attempts)
	}
}

// TestTransientThenSent: a 4xx answer is tried again after a delay, and
// the mail is then sent once.
func TestTransientThenSent(t *testing.T) {
	t.Parallel()
	srv := startMailServer(t, true)
	srv.answer = func(n int) error {
		if n == 1 {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
		}
		return nil
	}
	o := startJetStream(t)(Options{BackoffMin: 50 * time.Millisecond})
	if err := o.Enqueue(testContext(t), ackMail()); err != nil {
		t.Fatal(err)
	}
	run(t, o, mustSender(t, srv.config("plain", writeSecret(t, testPassword))))
	st := waitState(t, o, ackMail().ID, StateSent)
	if st.Attempts != 2 || st.LastError != "" {
		t.Errorf("status %+v: want 2 attempts", st)
	}
	if got := srv.received(); len(got) != 1 {
		t.Errorf("received %d, want 1", len(got))
	}
}

// TestPermanentFails: a 5xx answer (a recipient that does not exist)
// ends the mail failed with the server's answer, and it is not tried
// again.
func TestPermanentFails(t *testing.T) {
	t.Parallel()
	srv := startMailServer(t, true)
	srv.rcptAnswer = func(to string) error {
		if strings.HasPrefix(to, "nobody@") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
		}
		return nil
	}
	o := startJetStream(t)(Options{BackoffMin: 10 * time.Millisecond})
	ctx := testContext(t)
	bad := Mail{ID: "ack.bad", Ticket: "bad", Kind: KindAcknowledgement, To: "nobody@kunde.test", Subject: "s", Text: "t"}
	last := Mail{ID: "ack.last", Ticket: "last", Kind: KindAcknowledgement, To: "x@kunde.test", Subject: "s", Text: "t"}
	for _, m := range []Mail{bad, last} {
		if err := o.Enqueue(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	run(t, o, mustSender(t, srv.config("plain", writeSecret(t, testPassword))))
	st := waitState(t, o, bad.ID, StateFailed)
	waitState(t, o, last.ID, StateSent)
	if st.Attempts != 1 || !strings.Contains(st.Reason, "550") || !strings.Contains(st.Reason, "no such user") || st.Done.IsZero() {
		t.Errorf("status %+v", st)
	}
	srv.mu.Lock()
	n := srv.rcpt["nobody@kunde.test"]
	srv.mu.Unlock()
	if n != 1 {
		t.Errorf("RCPT to the bad recipient %d times, want 1", n)
	}
}

// TestRetryMaxAge: a mail still failing transiently after the retry age
// ends failed, saying so.
func TestRetryMaxAge(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	o := startJetStream(t)(Options{Now: func() time.Time { return now }, RetryMaxAge: time.Hour, BackoffMin: 10 * time.Millisecond})
	ctx := testContext(t)
	if err := o.Enqueue(ctx, ackMail()); err != nil {
		t.Fatal(err)
	}
	sends := 0
	sender := senderFunc(func(context.Context, string, string, []byte) error {
		sends++
		if sends == 2 {
			now = now.Add(2 * time.Hour) // read by this goroutine only, after
		}
		return &smtp.SMTPError{Code: 421, Message: "busy"}
	})
	run(t, o, sender)
	st := waitState(t, o, ackMail().ID, StateFailed)
	if st.Attempts != 2 || !strings.Contains(st.Reason, "still failing 2h0m0s after it was enqueued") || !strings.Contains(st.Reason, "421") {
		t.Errorf("status %+v", st)
	}
}

type senderFunc func(ctx context.Context, from, to string, msg []byte) error

func (f senderFunc) Send(ctx context.Context, from, to string, msg []byte) error {
	return f(ctx, from, to, msg)
}

// TestServerDownThenBack: mail enqueued while the server is down (its
// listener closed) is tried again and sent once the server is back:
// nothing lost, nothing twice.
func TestServerDownThenBack(t *testing.T) {
	t.Parallel()
	srv := startMailServer(t, true)
	addr := srv.addr
	o := startJetStream(t)(Options{BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	ctx := testContext(t)
	sender := mustSender(t, srv.config("plain", writeSecret(t, testPassword)))
	srv.stop()
	run(t, o, sender)
	var ids []string
	for i := range 5 {
		m := Mail{ID: fmt.Sprintf("ack.t%d", i), Ticket: fmt.Sprintf("t%d", i), Kind: KindAcknowledgement, To: "x@kunde.test", Subject: "s", Text: "t"}
		ids = append(ids, m.ID)
		if err := o.Enqueue(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second) // the server is down this long
	for _, id := range ids {
		if st, err := o.Status(ctx, id); err != nil || st.State == StateSent || st.State == StateFailed {
			t.Fatalf("%s while the server is down: %+v, %v", id, st, err)
		}
	}
	st, _ := o.Status(ctx, ids[0])
	if st.Attempts < 2 || !strings.Contains(st.LastError, "connect") {
		t.Errorf("while down: %+v, want attempts and a connection error", st)
	}
	srv.start(addr)
	for _, id := range ids {
		waitState(t, o, id, StateSent)
	}
	n := countByMessageID(t, srv.received())
	for _, id := range ids {
		if n[id+"@ca.test"] != 1 {
			t.Errorf("%s received %d times", id, n[id+"@ca.test"])
		}
	}
	if len(n) != len(ids) {
		t.Errorf("received %v", n)
	}
}

// TestTwoRunLoops: two replicas' loops at once send each mail once.
func TestTwoRunLoops(t *testing.T) {
	t.Parallel()
	srv := startMailServer(t, true)
	open := startJetStream(t)
	a, b := open(Options{}), open(Options{})
	sender := mustSender(t, srv.config("plain", writeSecret(t, testPassword)))
	run(t, a, sender)
	run(t, b, sender)
	ctx := testContext(t)
	var ids []string
	for i := range 30 {
		m := Mail{ID: fmt.Sprintf("reply.t%d.1", i), Ticket: fmt.Sprintf("t%d", i), Kind: KindReply, To: "x@kunde.test", Subject: "s", Text: "t"}
		ids = append(ids, m.ID)
		o := a
		if i%2 == 1 {
			o = b
		}
		if err := o.Enqueue(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		if st := waitState(t, a, id, StateSent); st.Attempts != 1 {
			t.Errorf("%s: %d attempts", id, st.Attempts)
		}
	}
	n := countByMessageID(t, srv.received())
	for _, id := range ids {
		if n[id+"@ca.test"] != 1 {
			t.Errorf("%s received %d times", id, n[id+"@ca.test"])
		}
	}
}

// TestCrashBetweenSendAndStatus: the window that remains. A replica that
// dies after the server accepted a mail and before its sent status was
// written leaves it "sending"; after the ack wait another replica sends it
// again, the same bytes with the same Message-ID, and records it sent.
func TestCrashBetweenSendAndStatus(t *testing.T) {
	t.Parallel()
	srv := startMailServer(t, true)
	open := startJetStream(t)
	opts := Options{AckWait: time.Second, SendTimeout: 500 * time.Millisecond, BackoffMin: 50 * time.Millisecond}
	a := open(opts)
	crashed := make(chan struct{})
	a.afterSend = func(id string, err error) bool {
		if err != nil {
			t.Errorf("send: %v", err)
		}
		close(crashed)
		return false // dies here
	}
	sender := mustSender(t, srv.config("plain", writeSecret(t, testPassword)))
	ctx := testContext(t)
	if err := a.Enqueue(ctx, ackMail()); err != nil {
		t.Fatal(err)
	}
	run(t, a, sender)
	<-crashed
	if st, _ := a.Status(ctx, ackMail().ID); st.State != StateSending || st.Attempts != 1 {
		t.Fatalf("after the crash: %+v", st)
	}
	b := open(opts)
	run(t, b, sender)
	st := waitState(t, b, ackMail().ID, StateSent)
	got := srv.received()
	if st.Attempts != 2 || len(got) != 2 {
		t.Fatalf("status %+v, %d mails received; want 2 and 2", st, len(got))
	}
	if !bytes.Equal(got[0].Data, got[1].Data) {
		t.Errorf("the repeat differs from the first:\n%s\n---\n%s", got[0].Data, got[1].Data)
	}
	if n := countByMessageID(t, got); n["ack."+ticketID+"@ca.test"] != 2 {
		t.Errorf("Message-IDs %v", n)
	}
}

// TestMarkBounced: a bounce marks the mail bounced with its reason, once;
// Run then leaves it alone; an unknown id is ErrNotFound.
func TestMarkBounced(t *testing.T) {
	t.Parallel()
	srv := startMailServer(t, true)
	o := startJetStream(t)(Options{})
	ctx := testContext(t)
	if err := o.Enqueue(ctx, ackMail()); err != nil {
		t.Fatal(err)
	}
	run(t, o, mustSender(t, srv.config("plain", writeSecret(t, testPassword))))
	waitState(t, o, ackMail().ID, StateSent)
	for range 2 {
		if err := o.MarkBounced(ctx, ackMail().ID, "550 5.1.1 mailbox unavailable"); err != nil {
			t.Fatal(err)
		}
	}
	st, err := o.Status(ctx, ackMail().ID)
	if err != nil || st.State != StateBounced || st.Reason != "550 5.1.1 mailbox unavailable" || st.Sent.IsZero() {
		t.Errorf("status %+v, %v", st, err)
	}
	if err := o.MarkBounced(ctx, "ack.unknown", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("MarkBounced of an unknown id: %v", err)
	}
}

// TestAuthMechanisms: PLAIN, LOGIN and XOAUTH2, over implicit TLS and
// STARTTLS, against the server's certificate from the CA file; a wrong
// secret is a transient failure (not the mail's fault) whose error never
// holds the secret; a plain-text connection to a server that is not
// loopback never gets the secret.
func TestAuthMechanisms(t *testing.T) {
	t.Parallel()
	for _, implicit := range []bool{true, false} {
		srv := startMailServer(t, implicit)
		for _, c := range []struct {
			mech, secret string
			ok           bool
		}{
			{"plain", testPassword, true},
			{"login", testPassword, true},
			{"xoauth2", testToken, true},
			{"plain", "wrong-secret-123", false},
			{"login", "wrong-secret-123", false},
			{"xoauth2", "wrong-secret-123", false},
		} {
			name := fmt.Sprintf("implicit=%v/%s/ok=%v", implicit, c.mech, c.ok)
			s := mustSender(t, srv.config(c.mech, writeSecret(t, c.secret)))
			err := s.Send(testContext(t), "support@ca.test", "x@kunde.test", []byte("Subject: x\r\n\r\nx\r\n"))
			switch {
			case c.ok && err != nil:
				t.Errorf("%s: %v", name, err)
			case !c.ok && err == nil:
				t.Errorf("%s: sent with a wrong secret", name)
			case !c.ok && (Permanent(err) || strings.Contains(err.Error(), c.secret) || !strings.Contains(err.Error(), "smtp auth")):
				t.Errorf("%s: error %q: want a transient auth error without the secret", name, err)
			}
		}
	}
	// Plain text beyond loopback: refused before AUTH.
	s := mustSender(t, config.SMTP{Addr: "192.0.2.1:25", Security: "plain", Username: "u", Secret: nil, Timeout: time.Second})
	if err := s.auth(testContext(t), nil); err == nil || !strings.Contains(err.Error(), "plain text") {
		t.Errorf("auth over plain text: %v", err)
	}
}

// TestPermanent: which errors end a mail for good.
func TestPermanent(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&smtp.SMTPError{Code: 550}, true},
		{&smtp.SMTPError{Code: 554}, true},
		{&smtp.SMTPError{Code: 451}, false},
		{&SendError{Stage: "rcpt", Permanent: true, Err: &smtp.SMTPError{Code: 550}}, true},
		{&SendError{Stage: "auth", Err: &smtp.SMTPError{Code: 535}}, false},
		{&SendError{Stage: "connect", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, false},
		{context.DeadlineExceeded, false},
		{fmt.Errorf("wrapped: %w", &smtp.SMTPError{Code: 552}), true},
	} {
		if got := Permanent(c.err); got != c.want {
			t.Errorf("Permanent(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestHeaderInjectionRefused: a line break in any header field, an id
// that is no token, or a recipient that is not one address refuses the
// mail; nothing is enqueued.
func TestHeaderInjectionRefused(t *testing.T) {
	t.Parallel()
	o := startJetStream(t)(Options{})
	ctx := testContext(t)
	for _, c := range []struct {
		name  string
		edit  func(*Mail)
		field string
	}{
		{"to", func(m *Mail) { m.To = "a@kunde.test\r\nBcc: all@evil.test" }, "to"},
		{"to, LF only", func(m *Mail) { m.To = "a@kunde.test\nBcc: all@evil.test" }, "to"},
		{"subject", func(m *Mail) { m.Subject = "Hi\r\nBcc: all@evil.test" }, "subject"},
		{"subject, CR only", func(m *Mail) { m.Subject = "Hi\rBcc: all@evil.test" }, "subject"},
		{"lang", func(m *Mail) { m.Lang = "de\r\nX-Evil: 1" }, "lang"},
		{"in-reply-to", func(m *Mail) { m.InReplyTo = "a@b\r\nX-Evil: 1" }, "in_reply_to"},
		{"references", func(m *Mail) { m.References = []string{"a@b", "c@d>\r\nX-Evil: <e@f"} }, "references[1]"},
		{"reference with brackets", func(m *Mail) { m.References = []string{"<a@b>"} }, "references[0]"},
		{"two recipients", func(m *Mail) { m.To = "a@kunde.test, b@kunde.test" }, "to"},
		{"id with a space", func(m *Mail) { m.ID = "ack. x" }, "id"},
		{"id with a wildcard", func(m *Mail) { m.ID = "ack.>" }, "id"},
		{"id empty token", func(m *Mail) { m.ID = "ack..x" }, "id"},
		{"ticket with a dot", func(m *Mail) { m.Ticket = "a.b" }, "ticket"},
		{"kind", func(m *Mail) { m.Kind = "spam" }, "kind"},
		{"non-ascii local part", func(m *Mail) { m.To = "jürgen@kunde.test" }, "to"},
	} {
		m := ackMail()
		m.ID = "ack.inj"
		c.edit(&m)
		err := o.Enqueue(ctx, m)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.field+":") {
			t.Errorf("%s: error %v, want ErrInvalid naming %s", c.name, err, c.field)
		}
	}
	if sts, _ := o.Statuses(ctx, ticketID); len(sts) != 0 {
		t.Errorf("something was enqueued: %+v", sts)
	}
	// Composition refuses as well, should a mail reach it unchecked.
	m := ackMail()
	m.Subject = "x\r\nBcc: all@evil.test"
	if _, err := compose(&m, o.from, time.Now()); !errors.Is(err, ErrInvalid) {
		t.Errorf("compose: %v", err)
	}
	// A body may say anything: it cannot end the header.
	m = ackMail()
	m.Text = "line\r\n\r\nBcc: all@evil.test\r\n.\r\nMAIL FROM:<x@y>\n"
	raw, err := compose(&m, o.from, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	mr, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil || mr.Header.Has("Bcc") {
		t.Errorf("the body reached the header: %v\n%s", err, raw)
	}
}

// TestMessageID: ours are recognised, by id, and nothing else is.
func TestMessageID(t *testing.T) {
	if got := MessageID("reply.abc.2", "CA.test"); got != "reply.abc.2@ca.test" {
		t.Errorf("MessageID = %q", got)
	}
	for _, c := range []struct {
		msgid, id string
		ok        bool
	}{
		{"reply.abc.2@ca.test", "reply.abc.2", true},
		{"<ack.abc@CA.TEST>", "ack.abc", true},
		{" <ack.abc@ca.test> ", "ack.abc", true},
		{"ack.abc@other.test", "", false},
		{"ack.abc@sub.ca.test", "", false},
		{"ack abc@ca.test", "", false},
		{"@ca.test", "", false},
		{"ack.abc", "", false},
		{"", "", false},
	} {
		id, ok := ParseMessageID(c.msgid, "ca.test")
		if id != c.id || ok != c.ok {
			t.Errorf("ParseMessageID(%q) = %q, %v; want %q, %v", c.msgid, id, ok, c.id, c.ok)
		}
	}
	if _, ok := ParseMessageID("ack.abc@", ""); ok {
		t.Error("an empty domain matched")
	}
	for _, id := range []string{"ack.abc", "reply.abc.12", "self-service.abc", "ack.A_b-9"} {
		if !ValidID(id) {
			t.Errorf("ValidID(%q) = false", id)
		}
	}
	if ValidID(strings.Repeat("a", 201)) {
		t.Error("an id of 201 characters is valid")
	}
}
