package imaptest

import (
	"net"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// lmtpSend delivers raw to the recipients over LMTP and returns the reply
// code to each RCPT TO (0 for those after a refusal ends the session early).
func lmtpSend(t *testing.T, addr, from string, rcpts []string, raw string) []int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	tp := textproto.NewConn(conn)
	cmd := func(code int, format string, args ...any) {
		t.Helper()
		if err := tp.PrintfLine(format, args...); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := tp.ReadResponse(code); err != nil {
			t.Fatalf("LMTP %q: %v %s", format, err, msg)
		}
	}
	if _, _, err := tp.ReadResponse(220); err != nil {
		t.Fatalf("LMTP greeting: %v", err)
	}
	cmd(250, "LHLO test.example")
	cmd(250, "MAIL FROM:<%s>", from)
	codes := make([]int, len(rcpts))
	accepted := 0
	for i, r := range rcpts {
		tp.PrintfLine("RCPT TO:<%s>", r)
		code, _, err := tp.ReadResponse(0)
		if err != nil && code == 0 {
			t.Fatal(err)
		}
		codes[i] = code
		if code == 250 {
			accepted++
		}
	}
	if accepted == 0 {
		return codes
	}
	cmd(354, "DATA")
	w := tp.DotWriter()
	w.Write([]byte(raw))
	w.Close()
	for range accepted { // LMTP answers DATA once per accepted recipient
		if _, msg, err := tp.ReadResponse(250); err != nil {
			t.Fatalf("LMTP DATA: %v %s", err, msg)
		}
	}
	cmd(221, "QUIT")
	return codes
}

// TestDovecotLMTP: with Options.LMTP, mail delivered over LMTP lands in
// the INBOX of each recipient's account (the worker's address in the
// worker's INBOX), unknown recipients are refused, and accounts log in
// with their address over IMAP.
func TestDovecotLMTP(t *testing.T) {
	srv := StartDovecot(t, Options{LMTP: true, Accounts: []string{"customer@customer.example", "Admin@Acme.example"}}).(*Dovecot)
	if srv.Address() != DefaultAddress {
		t.Fatalf("Address() = %q", srv.Address())
	}
	raw := "From: <customer@customer.example>\r\nTo: <support@ca.example>\r\nSubject: over LMTP\r\nMessage-ID: <lmtp1@customer.example>\r\n\r\nHello over LMTP.\r\n"
	codes := lmtpSend(t, srv.LMTPAddr(), "customer@customer.example",
		[]string{"Support@CA.example", "customer@customer.example", "admin@acme.example", "nobody@ca.example"}, raw)
	if want := []int{250, 250, 250, 550}; !slices.Equal(codes, want) {
		t.Fatalf("RCPT TO replies %v, want %v", codes, want)
	}

	for _, tc := range []struct {
		name, address string
		bodies        func() [][]byte
	}{
		{"worker's INBOX (Bodies)", "", func() [][]byte { return srv.Bodies(t, "INBOX") }},
		{"worker's address", "support@ca.example", nil},
		{"customer", "customer@customer.example", nil},
		{"admin, any case", "ADMIN@acme.example", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var bodies [][]byte
			if tc.bodies != nil {
				bodies = tc.bodies()
			} else {
				bodies = srv.WaitBodies(t, tc.address, "INBOX", 1, 10*time.Second)
			}
			if len(bodies) != 1 {
				t.Fatalf("%d mails, want 1", len(bodies))
			}
			if got := string(bodies[0]); !strings.Contains(got, "Subject: over LMTP\r\n") || !strings.HasSuffix(got, "\r\n\r\nHello over LMTP.\r\n") {
				t.Errorf("mail arrived as %q", got)
			}
		})
	}

	// An account is an IMAP user of its own: it logs in with its address.
	c, err := imapclient.DialInsecure(srv.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("customer@customer.example", AccountPassword).Wait(); err != nil {
		t.Fatalf("login as an account: %v", err)
	}
}

// TestDovecotAccountsChecked: addresses the passwd file cannot hold are
// refused at start, naming the address.
func TestDovecotAccountsChecked(t *testing.T) {
	for _, addr := range []string{"no-at-sign", "a:b@example.com", "../x@example.com", "a b@example.com", "@example.com"} {
		if err := checkAccountAddress(addr); err == nil {
			t.Errorf("checkAccountAddress(%q) = nil", addr)
		} else if !strings.Contains(err.Error(), addr) {
			t.Errorf("checkAccountAddress(%q) = %v, which does not name it", addr, err)
		}
	}
	if err := checkAccountAddress("customer@customer.example"); err != nil {
		t.Errorf("a plain address refused: %v", err)
	}
}
