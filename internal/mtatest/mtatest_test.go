package mtatest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ticketrouter/ticketrouter/ingest/imaptest"
)

const (
	customer = "customer@customer.example"
	admin    = "admin@acme.example"
	// arrival bounds how long a mail may take from the MTA to the mailbox.
	arrival = 30 * time.Second
)

// startPair starts a Dovecot mail host with the customer's and the
// admin's accounts, and an MTA relaying into it.
func startPair(t *testing.T) (*imaptest.Dovecot, *MTA) {
	t.Helper()
	dc := imaptest.StartDovecot(t, imaptest.Options{LMTP: true, Accounts: []string{customer, admin}}).(*imaptest.Dovecot)
	m := Start(t, Options{LMTP: dc.LMTPAddr(), SASL: dc.AuthAddr()})
	return dc, m
}

// way is how a client reaches the MTA.
type way int

const (
	submission  way = iota // STARTTLS, then AUTH
	submissions            // implicit TLS, then AUTH
	smtpIn                 // plain SMTP from loopback, no AUTH
)

// send sends raw from one address to others with net/smtp, the way w
// says, logging in as user with pass on the submission ports.
func send(m *MTA, w way, user, pass, from string, to []string, raw string) error {
	var c *smtp.Client
	var err error
	switch w {
	case submissions:
		conn, derr := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", m.SubmissionsAddr(), m.ClientTLS())
		if derr != nil {
			return derr
		}
		c, err = smtp.NewClient(conn, "127.0.0.1")
	case submission:
		c, err = smtp.Dial(m.SubmissionAddr())
		if err == nil {
			err = c.StartTLS(m.ClientTLS())
		}
	default:
		c, err = smtp.Dial(m.SMTPAddr())
	}
	if err != nil {
		return err
	}
	defer c.Close()
	if w != smtpIn && user != "" {
		if err := c.Auth(smtp.PlainAuth("", user, pass, "127.0.0.1")); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	if err := c.Mail(from); err != nil {
		return fmt.Errorf("mail from: %w", err)
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			return fmt.Errorf("rcpt to %s: %w", r, err)
		}
	}
	wc, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := wc.Write([]byte(raw)); err != nil {
		return err
	}
	if err := wc.Close(); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	return c.Quit()
}

func mail(from, to, subject, msgID, body string) string {
	return fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s>\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s", from, to, subject, msgID, body)
}

// TestRelay: mail sent through each port arrives, headers and body
// intact, in the recipient's INBOX on the Dovecot.
func TestRelay(t *testing.T) {
	t.Parallel()
	dc, m := startPair(t)
	for i, tc := range []struct {
		name       string
		how        way
		user, pass string
		from, to   string
	}{
		{"submission STARTTLS AUTH to customer", submission, dc.Username(), dc.Password(), dc.Address(), customer},
		{"submission as the address", submission, dc.Address(), dc.Password(), dc.Address(), admin},
		{"submissions implicit TLS to customer", submissions, dc.Username(), dc.Password(), dc.Address(), customer},
		{"customer in by SMTP to support", smtpIn, "", "", customer, dc.Address()},
		{"account submits", submission, admin, imaptest.AccountPassword, admin, dc.Address()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(dc.AccountBodies(t, tc.to, "INBOX"))
			id := fmt.Sprintf("relay%d@test.example", i)
			body := fmt.Sprintf("Hello %d,\r\n\r\n.leading dot, ümlaut, a long line %s\r\n", i, strings.Repeat("x", 900))
			raw := mail(tc.from, tc.to, fmt.Sprintf("Relay test %d [TR-1%05d]", i, i), id, body)
			if err := send(m, tc.how, tc.user, tc.pass, tc.from, []string{tc.to}, raw); err != nil {
				t.Fatalf("send: %v\n%s", err, m.Log(20))
			}
			bodies := dc.WaitBodies(t, tc.to, "INBOX", before+1, arrival)
			got := string(bodies[len(bodies)-1])
			for _, want := range []string{
				"Message-ID: <" + id + ">\r\n",
				fmt.Sprintf("Subject: Relay test %d [TR-1%05d]\r\n", i, i),
				"From: <" + tc.from + ">\r\n",
				"Received: from ",
			} {
				if !strings.Contains(got, want) {
					t.Errorf("arrived mail lacks %q:\n%s", want, got)
				}
			}
			if !strings.HasSuffix(got, "\r\n\r\n"+body) {
				t.Errorf("body changed on the way: %q", got[strings.Index(got, "\r\n\r\n"):])
			}
		})
	}
}

// TestSubmissionRefuses: the submission ports relay nothing without AUTH,
// refuse a wrong password, and offer AUTH only under TLS.
func TestSubmissionRefuses(t *testing.T) {
	t.Parallel()
	dc, m := startPair(t)
	raw := mail(dc.Address(), customer, "refused", "refused@test.example", "x\r\n")
	for _, tc := range []struct {
		name       string
		how        way
		user, pass string
		want       string
	}{
		{"no AUTH on submission", submission, "", "", "rcpt to"},
		{"no AUTH on submissions", submissions, "", "", "rcpt to"},
		{"wrong password", submission, dc.Username(), "wrong", "auth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := send(m, tc.how, tc.user, tc.pass, dc.Address(), []string{customer}, raw)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("send = %v, want a refusal at %q", err, tc.want)
			}
		})
	}
	c, err := smtp.Dial(m.SubmissionAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("submission offers AUTH before STARTTLS")
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Fatal("submission offers no STARTTLS")
	}
	if err := c.StartTLS(m.ClientTLS()); err != nil {
		t.Fatalf("STARTTLS with the MTA's certificate: %v", err)
	}
	if ok, mechs := c.Extension("AUTH"); !ok || !strings.Contains(mechs, "PLAIN") || !strings.Contains(mechs, "LOGIN") {
		t.Errorf("after STARTTLS: AUTH %v %q, want PLAIN and LOGIN", ok, mechs)
	}
}

// TestStopStart: a stopped MTA refuses connections; started again it
// listens on the same ports, and the mail it had queued before the stop
// is delivered.
func TestStopStart(t *testing.T) {
	t.Parallel()
	dc, m := startPair(t)
	m.PauseDelivery(t)
	raw := mail(dc.Address(), customer, "queued across a restart", "queued@test.example", "kept\r\n")
	if err := send(m, submission, dc.Username(), dc.Password(), dc.Address(), []string{customer}, raw); err != nil {
		t.Fatalf("send: %v\n%s", err, m.Log(20))
	}
	if n := m.Queued(); n != 1 {
		t.Fatalf("Queued() = %d after one mail with delivery paused", n)
	}
	addrs := []string{m.SMTPAddr(), m.SubmissionAddr(), m.SubmissionsAddr()}

	t0 := time.Now()
	m.Stop(t)
	t.Logf("stop took %v", time.Since(t0))
	if m.Running() {
		t.Fatal("Running() after Stop")
	}
	err := send(m, submission, dc.Username(), dc.Password(), dc.Address(), []string{customer}, raw)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("send to a stopped MTA = %v, want connection refused", err)
	}
	if n := m.Queued(); n != 1 {
		t.Fatalf("Queued() = %d after Stop, want the mail kept", n)
	}

	t0 = time.Now()
	m.Start(t)
	t.Logf("start took %v", time.Since(t0))
	if got := []string{m.SMTPAddr(), m.SubmissionAddr(), m.SubmissionsAddr()}; strings.Join(got, " ") != strings.Join(addrs, " ") {
		t.Fatalf("addresses after a restart %v, before %v", got, addrs)
	}
	t0 = time.Now()
	m.ResumeDelivery(t)
	t.Logf("resume took %v", time.Since(t0))
	bodies := dc.WaitBodies(t, customer, "INBOX", 1, arrival)
	t.Logf("delivered %v after resume", time.Since(t0))
	if len(bodies) != 1 || !strings.Contains(string(bodies[0]), "Message-ID: <queued@test.example>") {
		t.Fatalf("customer's INBOX after the restart: %q", bodies)
	}
	m.WaitQueueEmpty(t, arrival)

	after := mail(dc.Address(), customer, "after the restart", "after@test.example", "new\r\n")
	if err := send(m, submissions, dc.Username(), dc.Password(), dc.Address(), []string{customer}, after); err != nil {
		t.Fatalf("send after the restart: %v\n%s", err, m.Log(20))
	}
	dc.WaitBodies(t, customer, "INBOX", 2, arrival)
}

// TestBounce: mail to a recipient the Dovecot does not know comes back to
// its envelope sender as a DSN in the sender's INBOX; the other
// recipients of the same mail get it.
func TestBounce(t *testing.T) {
	t.Parallel()
	dc, m := startPair(t)
	raw := mail(dc.Address(), "nobody@customer.example", "to nobody", "bounced@test.example", "anyone there?\r\n")
	if err := send(m, submission, dc.Username(), dc.Password(), dc.Address(), []string{"nobody@customer.example", customer}, raw); err != nil {
		t.Fatalf("send: %v\n%s", err, m.Log(20))
	}
	dc.WaitBodies(t, customer, "INBOX", 1, arrival)
	bodies := dc.WaitBodies(t, dc.Address(), "INBOX", 1, arrival)
	dsn := string(bodies[0])
	for _, want := range []string{
		"From: Mail Delivery System <MAILER-DAEMON@" + m.Hostname() + ">",
		"Return-Path: <>",
		"Content-Type: multipart/report; report-type=delivery-status;",
		"Final-Recipient: rfc822; nobody@customer.example",
		"Action: failed",
		"Status: 5.1.1",
		"Message-ID: <bounced@test.example>",
	} {
		if !strings.Contains(dsn, want) {
			t.Errorf("the DSN lacks %q:\n%s", want, dsn)
		}
	}
	if strings.Contains(dsn, "Final-Recipient: rfc822; "+customer) {
		t.Errorf("the DSN names the recipient that got the mail:\n%s", dsn)
	}
}
