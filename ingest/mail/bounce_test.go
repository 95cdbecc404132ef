package mail

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ticketrouter/ticketrouter/internal/corpus"
)

// dsn is a Postfix-style delivery status notification returning the mail
// <ack.abc@support.example>, with action and status as given.
func dsn(action, status string) string {
	return "From: MAILER-DAEMON@mx.example (Mail Delivery System)\r\n" +
		"Subject: Undelivered Mail Returned to Sender\r\n" +
		"Auto-Submitted: auto-replied\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"B\"\r\n\r\n" +
		"--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n" +
		"--B\r\nContent-Type: message/delivery-status\r\n\r\n" +
		"Reporting-MTA: dns; mx.example\r\nArrival-Date: Fri,  4 Dec 2026 10:00:00 +0000 (UTC)\r\n\r\n" +
		"Final-Recipient: rfc822; nobody@customer.example\r\nOriginal-Recipient: rfc822;nobody@customer.example\r\n" +
		"Action: " + action + "\r\nStatus: " + status + "\r\nDiagnostic-Code: X-Postfix; unknown user: \"nobody\"\r\n\r\n" +
		"--B\r\nContent-Type: message/rfc822\r\n\r\n" +
		"From: Support <support@support.example>\r\nTo: nobody@customer.example\r\nSubject: Your reference TR-100001\r\n" +
		"Message-ID: <ack.abc@support.example>\r\n\r\nWe received your mail.\r\n" +
		"--B--\r\n"
}

func TestReadBounce(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want Bounce
		ok   bool
	}{
		{"failed", dsn("failed", "5.1.1"), Bounce{MessageID: "ack.abc@support.example", Recipient: "nobody@customer.example", Status: "5.1.1", Diagnostic: `X-Postfix; unknown user: "nobody"`}, true},
		{"delayed only", dsn("delayed", "4.4.1"), Bounce{}, false},
		{"headers only", strings.Replace(dsn("failed", "5.1.1"), "message/rfc822", "text/rfc822-headers", 1), Bounce{MessageID: "ack.abc@support.example", Recipient: "nobody@customer.example", Status: "5.1.1", Diagnostic: `X-Postfix; unknown user: "nobody"`}, true},
		{"no returned mail", strings.Replace(dsn("failed", "5.1.1"), "Message-ID: <ack.abc@support.example>\r\n", "", 1), Bounce{}, false},
		{"not a report", "From: a@b.example\r\nSubject: hi\r\n\r\nAction: failed\r\n", Bounce{}, false},
		{"another report type", strings.Replace(dsn("failed", "5.1.1"), "report-type=delivery-status", "report-type=disposition-notification", 1), Bounce{}, false},
		{"no boundary", "Content-Type: multipart/report; report-type=delivery-status\r\n\r\n--B\r\n", Bounce{}, false},
		{"empty", "", Bounce{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ReadBounce(strings.NewReader(tt.raw))
			if ok != tt.ok || ok && got != tt.want {
				t.Errorf("ReadBounce = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestReadBounceCorpus: the third-party bounces read without a failure,
// and the ones that report a failed recipient with the returned mail's
// Message-ID give it.
func TestReadBounceCorpus(t *testing.T) {
	root, _ := corpus.Files(t)
	dir := filepath.Join(root, "flanker", "bounce")
	want := map[string]string{
		"mailbox-full.eml": "4E326A95.3010907@example.com",
		"office365.eml":    "20171013111011.20866.254C2F3A4D7AA526@ninomail.com",
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no bounces in %s: %v", dir, err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b, ok := ReadBounce(strings.NewReader(string(raw)))
		if id := want[filepath.Base(f)]; ok != (id != "") || b.MessageID != id && ok {
			t.Errorf("%s: ReadBounce = %+v, %v; want Message-ID %q", filepath.Base(f), b, ok, id)
		}
	}
}
