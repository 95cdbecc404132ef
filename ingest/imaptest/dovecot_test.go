package imaptest

import (
	"fmt"
	"strings"
	"testing"
)

// TestDovecotDeliver: mail delivered into the Maildir, as a delivery
// agent does, is served over IMAP, in delivery order.
func TestDovecotDeliver(t *testing.T) {
	srv := StartDovecot(t, Options{}).(*Dovecot)
	for i := range 12 {
		raw := fmt.Sprintf("From: a@example.com\r\nSubject: delivered %d.\r\nMessage-ID: <d%d@example.com>\r\n\r\nHello.\r\n", i, i)
		if err := srv.Deliver("INBOX", []byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
	bodies := srv.Bodies(t, "INBOX")
	if len(bodies) != 12 {
		t.Fatalf("INBOX holds %d mails after 12 deliveries", len(bodies))
	}
	for i, b := range bodies {
		if want := fmt.Sprintf("Subject: delivered %d.", i); !strings.Contains(string(b), want) {
			t.Errorf("mail %d: %q, want %q", i, b, want)
		}
	}
}
