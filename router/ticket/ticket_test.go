package ticket

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ticketrouter/ticketrouter/ingest/mail"
	"github.com/ticketrouter/ticketrouter/rules"
	"github.com/ticketrouter/ticketrouter/rules/accounts"
	"github.com/ticketrouter/ticketrouter/rules/senderauth"
)

func TestSubject(t *testing.T) {
	for _, tt := range []struct{ colour, disposition, want string }{
		{"green", "verified", "helpdesk.tickets.green.verified"},
		{"dark-green", "self-service", "helpdesk.tickets.dark-green.self-service"},
		{"unknown", "unmatched", "helpdesk.tickets.unknown.unmatched"},
		{"green", "ignored", "helpdesk.tickets.ignored"},
		{"unknown", "deadletter", "helpdesk.tickets.deadletter"},
	} {
		if got := Subject(DefaultPrefix, tt.colour, tt.disposition); got != tt.want {
			t.Errorf("Subject(%q, %q) = %q, want %q", tt.colour, tt.disposition, got, tt.want)
		}
	}
}

const accountsYAML = `accounts:
  - {id: G-1, colour: green, name: Acme, username: acme, admin_email: admin@acme.example, domains: [acme.example],
     orders: [{number: "1234567"}]}
  - {id: R-1, colour: red, admin_email: admin@red.example, partner: RS-1}
  - {id: RS-1, colour: green, name: ResellCo, admin_email: admin@resell.example}
`

func ticketFor(t *testing.T, raw string) (*Ticket, map[string]any) {
	t.Helper()
	dir, err := accounts.ParseDirectory("accounts.yaml", []byte(accountsYAML))
	if err != nil {
		t.Fatal(err)
	}
	req, err := mail.Parse(strings.NewReader(raw), mail.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	tk := New(DefaultPrefix, req, rules.Decide(rules.DefaultPolicy(), dir, senderauth.Judge(senderauth.Config{}, req, nil), req))
	b, err := json.Marshal(tk)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return tk, doc
}

// TestTicketDocument pins the version 1 document: every documented field is
// present with its JSON type, lists are never null, and the id is stable.
func TestTicketDocument(t *testing.T) {
	raw := "From: Admin <admin@acme.example>\r\nSubject: Password reset\r\nMessage-ID: <m1@acme.example>\r\n" +
		"Date: Fri, 27 Nov 2026 09:00:00 +0000\r\nReply-To: other@acme.example\r\n\r\nplease reset my password, order 1234567\r\n"
	tk, doc := ticketFor(t, raw)
	again, _ := ticketFor(t, raw)
	if tk.ID != again.ID || len(tk.ID) != 64 {
		t.Errorf("id %q not stable (second %q)", tk.ID, again.ID)
	}
	if _, other := ticketFor(t, raw+"x"); other["id"] == doc["id"] {
		t.Error("a different mail has the same id")
	}
	want := map[string]string{
		"version": "number", "id": "string", "message_id": "string", "date": "string", "from": "object",
		"reply_to": "array", "email_subject": "string", "size": "number", "intent": "string",
		"intent_reason": "string", "colour": "string", "disposition": "string", "queue": "string",
		"policy_row": "number", "rate_limited": "bool", "account": "object", "candidates": "array", "checks": "object",
		"guidance": "array", "guidance_never": "array", "body": "string", "attachments": "array", "key_exposed": "bool",
		"parse_problems": "array",
	}
	for field, typ := range want {
		v, ok := doc[field]
		if !ok {
			t.Errorf("field %q missing", field)
			continue
		}
		if got := jsonType(v); got != typ {
			t.Errorf("field %q is %s, want %s", field, got, typ)
		}
	}
	if doc["version"] != float64(1) || doc["queue"] != "helpdesk.tickets.green.self-service" ||
		doc["message_id"] != "m1@acme.example" || doc["date"] != "2026-11-27T09:00:00Z" {
		t.Errorf("unexpected values: %v %v %v %v", doc["version"], doc["queue"], doc["message_id"], doc["date"])
	}
	account := doc["account"].(map[string]any)
	if account["id"] != "G-1" || account["colour"] != "green" || account["admin_email"] != "admin@acme.example" {
		t.Errorf("account %v", account)
	}
	checks := doc["checks"].(map[string]any)
	for _, c := range []string{"sender_authenticated", "sender_is_admin", "domain_named", "order_matched", "username_named", "sender_is_partner_admin"} {
		ck, ok := checks[c].(map[string]any)
		if !ok || jsonType(ck["ok"]) != "bool" || ck["reason"] == "" {
			t.Errorf("check %s = %v", c, checks[c])
		}
	}
	if r := doc["reply_to"].([]any); len(r) != 1 || r[0] != "other@acme.example" {
		t.Errorf("reply_to %v", r)
	}
	if len(tk.GuidanceNever) == 0 || !strings.Contains(tk.Guidance[tk.GuidanceNever[0]], "never") {
		t.Errorf("no never rule marked: guidance %q never %v", tk.Guidance, tk.GuidanceNever)
	}
	var old Ticket // a ticket from before guidance_never still reads
	if err := json.Unmarshal([]byte(`{"version":1,"guidance":["a"]}`), &old); err != nil || old.GuidanceNever != nil {
		t.Errorf("old ticket: %v %v", err, old.GuidanceNever)
	}
}

func TestTicketRateLimited(t *testing.T) {
	dir, err := accounts.ParseDirectory("accounts.yaml", []byte(accountsYAML))
	if err != nil {
		t.Fatal(err)
	}
	p := rules.DefaultPolicy()
	var lim rules.MemoryRateLimiter
	now := time.Now()
	var last *Ticket
	for i := range 6 {
		raw := fmt.Sprintf("From: admin@acme.example\r\nSubject: reset %d\r\n\r\nreset my password\r\n", i)
		req, err := mail.Parse(strings.NewReader(raw), mail.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		d := rules.Decide(p, dir, senderauth.Judge(senderauth.Config{}, req, nil), req)
		p.RateLimit(req, d, &lim, now)
		last = New(DefaultPrefix, req, d)
	}
	if !last.RateLimited || last.Queue != "helpdesk.tickets.rate-limited.green" || last.Disposition != "verified" {
		t.Fatalf("sixth ticket: rate_limited %v queue %s disposition %s", last.RateLimited, last.Queue, last.Disposition)
	}
}

func TestTicketUnmatchedAndPartner(t *testing.T) {
	_, doc := ticketFor(t, "From: x@nowhere.example\r\nSubject: hi\r\n\r\nreset\r\n")
	if doc["account"] != nil || doc["colour"] != "unknown" || doc["queue"] != "helpdesk.tickets.unknown.unmatched" {
		t.Errorf("unmatched: account %v colour %v queue %v", doc["account"], doc["colour"], doc["queue"])
	}
	if doc["date"] != nil {
		t.Errorf("date %v, want null", doc["date"])
	}
	tk, _ := ticketFor(t, "From: admin@red.example\r\nSubject: hi\r\n\r\nreset\r\n")
	if tk.Account == nil || tk.Account.Partner != "RS-1" || tk.Account.PartnerName != "ResellCo" {
		t.Errorf("partner: %+v", tk.Account)
	}
}

// TestTicketNeverCarriesSecrets: passwords, private keys and PFX content
// never reach the serialised ticket.
func TestTicketNeverCarriesSecrets(t *testing.T) {
	raw := "From: admin@acme.example\r\nSubject: my password: Tr0ub4dor&3\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nold password is Hunter2!x\r\n-----BEGIN PRIVATE KEY-----\r\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCsecretkey\r\n-----END PRIVATE KEY-----\r\n" +
		"--b\r\nContent-Type: application/x-pkcs12; name=\"cert.pfx\"\r\nContent-Transfer-Encoding: base64\r\n\r\nMIIKAgEDMIIJyAYJKoZIhvcNAQcBoIIJuQSCCbUwggmxMIIFZgYJKoZIhvcNAQcB\r\n--b--\r\n"
	tk, _ := ticketFor(t, raw)
	b, _ := json.Marshal(tk)
	for _, secret := range []string{"Tr0ub4dor", "Hunter2", "secretkey", "MIIKAgEDMIIJ", "BEGIN PRIVATE KEY"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("ticket holds %q:\n%s", secret, b)
		}
	}
	if !tk.KeyExposed {
		t.Error("key_exposed is false")
	}
	if len(tk.Attachments) != 1 || tk.Attachments[0].Secret != mail.SecretPKCS12 || tk.Attachments[0].SHA256 != "" {
		t.Errorf("attachments %+v", tk.Attachments)
	}
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "?"
}

// TestTicketHasNoControlCharacters: whatever reaches a ticket (a signing
// domain, a parse problem, a reason quoting the mail) carries no control
// character a terminal would obey: C0 other than tab and line feed (line
// feeds only in the body), DEL, or C1 (U+009B is CSI).
func TestTicketHasNoControlCharacters(t *testing.T) {
	dir, err := accounts.ParseDirectory("accounts.yaml", []byte(accountsYAML))
	if err != nil {
		t.Fatal(err)
	}
	const nasty = "\x1b[2J\u009b31m\u009d0;x\x07\x7f\r"
	req, err := mail.Parse(strings.NewReader("From: Admin <admin@acme.example>\r\nSubject: Password reset\r\n\r\nreset please\r\n"), mail.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	// What ingest cleans is tested there; here, text from elsewhere.
	req.Problems = append(req.Problems, "problem"+nasty)
	req.Attachments = append(req.Attachments, mail.Attachment{Name: "a" + nasty + ".pdf", ContentType: "application/pdf" + nasty})
	req.From.Name += nasty
	d := rules.Decide(rules.DefaultPolicy(), dir, senderauth.Verdict{Required: true, Reason: "signature of acme.example" + nasty}, req)
	d.Body += nasty + "\nsecond line\twith a tab"
	d.Guidance = append(d.Guidance, "guidance"+nasty)
	tk := New(DefaultPrefix, req, d)
	b, err := json.Marshal(tk)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				walk(path+"."+k, e)
			}
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		case string:
			for _, r := range v {
				allowed := r == '\t' || r == '\n' && path == ".body"
				if !allowed && (r < 0x20 || r >= 0x7f && r <= 0x9f) {
					t.Errorf("%s holds U+%04X: %q", path, r, v)
					return
				}
			}
		}
	}
	walk("", doc)
	if !strings.Contains(tk.Body, "second line\twith a tab") {
		t.Errorf("body lost its line break or tab: %q", tk.Body)
	}
}
