package answer

import (
	"strings"
	"testing"

	"github.com/ticketrouter/ticketrouter/ingest/mail"
)

// parseMail parses a mail given as header lines (joined with CRLF) and a
// short body, the way the service reads one.
func parseMail(t *testing.T, header ...string) *mail.Request {
	t.Helper()
	raw := strings.Join(header, "\r\n") + "\r\n\r\nHallo, Passwort vergessen. Danke\r\n"
	req, err := mail.Parse(strings.NewReader(raw), mail.Limits{})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return req
}

func TestAutoReplyAllowed(t *testing.T) {
	const from, to, subj = "From: Hans <hans@example.com>", "To: support@example-ca.test", "Subject: Passwort"
	tests := []struct {
		name   string
		header []string
		ok     bool
		reason string // a part of the reason when not ok
	}{
		{"a person", []string{from, to, subj}, true, ""},
		{"Auto-Submitted: no", []string{from, "Auto-Submitted: no", subj}, true, ""},
		{"Auto-Submitted: No, any case", []string{from, "AUTO-SUBMITTED: No", subj}, true, ""},
		{"Auto-Submitted: no with a comment", []string{from, "Auto-Submitted: no (a person typed this)", subj}, true, ""},
		{"auto-replied", []string{from, "Auto-Submitted: auto-replied", subj}, false, "Auto-Submitted: auto-replied"},
		{"auto-generated in upper case", []string{from, "auto-submitted: AUTO-GENERATED", subj}, false, "auto-generated"},
		{"auto-replied with parameters", []string{from, "Auto-Submitted: auto-replied; owner-email=\"x@y\"", subj}, false, "auto-replied"},
		{"auto-replied folded", []string{from, "Auto-Submitted:\r\n auto-replied\r\n (vacation)", subj}, false, "auto-replied"},
		{"a second Auto-Submitted after a no", []string{from, "Auto-Submitted: no", "Auto-Submitted: auto-generated", subj}, false, "auto-generated"},
		{"Auto-Submitted of an unknown value", []string{from, "Auto-Submitted: yes-please", subj}, false, "yes-please"},
		{"Precedence bulk", []string{from, "Precedence: bulk", subj}, false, "Precedence: bulk"},
		{"Precedence junk", []string{from, "Precedence: JUNK", subj}, false, "junk"},
		{"Precedence list", []string{from, "precedence:  list ", subj}, false, "list"},
		{"Precedence first-class", []string{from, "Precedence: first-class", subj}, true, ""},
		{"List-Id", []string{from, "List-Id: Users <users.lists.example.com>", subj}, false, "List-Id"},
		{"List-Unsubscribe", []string{from, "List-Unsubscribe: <mailto:leave@lists.example.com>", subj}, false, "List-Unsubscribe"},
		{"List-Post folded", []string{from, "list-post:\r\n <mailto:users@lists.example.com>", subj}, false, "List-Post"},
		{"null sender", []string{"Return-Path: <>", from, subj}, false, "null sender"},
		{"null sender with spaces and a comment", []string{"Return-Path: < > (bounce)", from, subj}, false, ""},
		{"a real Return-Path", []string{"Return-Path: <hans@example.com>", from, subj}, true, ""},
		{"a bounce report", []string{from, subj, "MIME-Version: 1.0", "Content-Type: multipart/report; report-type=delivery-status; boundary=b"}, false, "multipart/report"},
		{"a read receipt", []string{from, subj, "MIME-Version: 1.0", "Content-Type: Multipart/Report; report-type=disposition-notification; boundary=b"}, false, "report"},
		{"MAILER-DAEMON", []string{"From: Mail Delivery System <MAILER-DAEMON@mx.example.com>", subj}, false, "program"},
		{"postmaster", []string{"From: postmaster@example.com", subj}, false, "program"},
		{"noreply", []string{"From: Shop <noreply@shop.example>", subj}, false, "program"},
		{"no-reply", []string{"From: no-reply@shop.example", subj}, false, "program"},
		{"No_Reply with a tag", []string{"From: No_Reply+billing@shop.example", subj}, false, "program"},
		{"do-not-reply", []string{"From: do-not-reply@shop.example", subj}, false, "program"},
		{"donotreply prefix", []string{"From: DoNotReply.Alerts@shop.example", subj}, false, "program"},
		{"a person named Norbert", []string{"From: norbert@example.com", subj}, true, ""},
		{"X-Auto-Response-Suppress: All", []string{from, "X-Auto-Response-Suppress: All", subj}, false, "all"},
		{"X-Auto-Response-Suppress: OOF in a list", []string{from, "x-auto-response-suppress: DR, OOF", subj}, false, "oof"},
		{"X-Auto-Response-Suppress: AutoReply", []string{from, "X-Auto-Response-Suppress: AutoReply", subj}, false, "autoreply"},
		{"X-Auto-Response-Suppress: DR, RN only", []string{from, "X-Auto-Response-Suppress: DR, RN, NRN", subj}, true, ""},
		{"X-Autoreply", []string{from, "X-Autoreply: yes", subj}, false, "X-Autoreply"},
		{"X-Autorespond, any case", []string{from, "x-autorespond: whatever", subj}, false, "X-Autorespond"},
		{"our own mail come back", []string{from, "X-Ticketrouter-Ticket: TR-104233", subj}, false, "X-Ticketrouter-Ticket"},
		{"two From fields", []string{from, "From: eve@example.org", subj}, false, "From"},
		{"two mailboxes in From", []string{"From: hans@example.com, eve@example.org", subj}, false, "From"},
		{"an unparsable From", []string{"From: <<<not an address", subj}, false, "From"},
		{"no From", []string{to, subj}, false, "From"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, reason := AutoReplyAllowed(parseMail(t, tt.header...))
			if ok != tt.ok {
				t.Fatalf("AutoReplyAllowed() = %v (%q), want %v", ok, reason, tt.ok)
			}
			if ok && reason != "" || !ok && (reason == "" || !strings.Contains(reason, tt.reason)) {
				t.Errorf("reason %q, want one containing %q", reason, tt.reason)
			}
		})
	}
}

func TestAutoReplyAllowedWithoutHeader(t *testing.T) {
	if ok, reason := AutoReplyAllowed(nil); ok || reason == "" {
		t.Errorf("AutoReplyAllowed(nil) = %v %q", ok, reason)
	}
	if ok, _ := AutoReplyAllowed(&mail.Request{Headerless: true}); ok {
		t.Error("a headerless mail may be answered")
	}
	// Loop facts set by the parser count even without their fields.
	for _, l := range []mail.Loop{{AutoSubmitted: "auto-replied"}, {Precedence: "bulk"}, {ListID: "x"}, {ReturnPathNull: true}, {ContentType: "multipart/report"}} {
		req := &mail.Request{From: mail.Mailbox{Address: "hans@example.com"}, Loop: l}
		if ok, _ := AutoReplyAllowed(req); ok {
			t.Errorf("Loop %+v may be answered", l)
		}
	}
}

func TestStripComments(t *testing.T) {
	for in, want := range map[string]string{
		"auto-replied (vacation)": "auto-replied ",
		"a (b (c) d) e":           "a  e",
		`a (b \) c) d`:            "a  d",
		"no comment":              "no comment",
		"unclosed (x":             "unclosed ",
	} {
		if got := stripComments(in); got != want {
			t.Errorf("stripComments(%q) = %q, want %q", in, got, want)
		}
	}
}
