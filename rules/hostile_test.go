package rules

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ticketrouter/ticketrouter/ingest/mail"
	"github.com/ticketrouter/ticketrouter/rules/senderauth"
)

// hostileDir holds mails written the way an attacker writes them, one class
// of trick per folder; testdata/hostile/README.md says how they are read.
const hostileDir = "testdata/hostile"

// TestHostileMails parses and decides every mail under testdata/hostile
// against the test directory and checks each assertion its X-Expect header
// fields make. A mail without one fails: a file that asserts nothing
// cannot catch anything.
func TestHostileMails(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(hostileDir, "*", "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no hostile mails under %s", hostileDir)
	}
	p, dir := DefaultPolicy(), mustDirectory(t)
	for _, name := range files {
		rel, _ := filepath.Rel(hostileDir, name)
		t.Run(filepath.ToSlash(rel), func(t *testing.T) {
			raw, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			req, err := mail.Parse(strings.NewReader(string(raw)), mail.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			auth, err := hostileAuth(req)
			if err != nil {
				t.Fatalf("X-Test-Auth: %v", err)
			}
			d := Decide(p, dir, senderauth.Judge(auth, req, nil), req)
			expects := req.HeaderValues("X-Expect")
			if len(expects) == 0 {
				t.Fatal("no X-Expect field: the mail asserts nothing")
			}
			for _, e := range expects {
				if err := checkExpect(e, req, d); err != nil {
					t.Errorf("X-Expect: %s: %v", e, err)
				}
			}
			if t.Failed() {
				t.Logf("trace:\n  %s", strings.Join(d.Trace, "\n  "))
			}
		})
	}
}

// hostileAuth reads the sender authentication a hostile mail is decided
// under from its X-Test-Auth field ("MODE [TRUSTED-ID...]"); without one,
// authentication is off.
func hostileAuth(req *mail.Request) (senderauth.Config, error) {
	v := req.HeaderValues("X-Test-Auth")
	if len(v) == 0 {
		return senderauth.Config{}, nil
	}
	f := strings.Fields(v[0])
	if len(f) == 0 {
		return senderauth.Config{}, fmt.Errorf("empty")
	}
	a := senderauth.Config{Mode: f[0], TrustedAuthservIDs: f[1:]}
	return a, a.Check()
}

// checkExpect checks one assertion "FIELD OP VALUE": OP is = or != (the
// whole value), ~ or !~ (a substring).
func checkExpect(expect string, req *mail.Request, d *Decision) error {
	// The operator is the first one written: a value may hold "=" or "~".
	var field, op, want string
	if i := strings.IndexAny(expect, "!=~"); i > 0 {
		op = expect[i : i+1]
		if op == "!" && i+1 < len(expect) && (expect[i+1] == '=' || expect[i+1] == '~') {
			op = expect[i : i+2]
		}
		if op != "!" {
			field, want = strings.TrimSpace(expect[:i]), strings.TrimSpace(expect[i+len(op):])
		} else {
			op = ""
		}
	}
	if op == "" {
		return fmt.Errorf("no operator (=, !=, ~, !~)")
	}
	got, err := hostileField(field, req, d)
	if err != nil {
		return err
	}
	ok := false
	switch op {
	case "=":
		ok = got == want
	case "!=":
		ok = got != want
	case "~":
		ok = strings.Contains(got, want)
	case "!~":
		ok = !strings.Contains(got, want)
	}
	if !ok {
		return fmt.Errorf("got %q", clipTest(got))
	}
	return nil
}

// hostileField returns the named fact of a decision as text.
func hostileField(field string, req *mail.Request, d *Decision) (string, error) {
	checks := map[string]Check{
		"sender_authenticated":    d.Checks.SenderAuthenticated,
		"sender_is_admin":         d.Checks.SenderIsAdmin,
		"sender_is_partner_admin": d.Checks.SenderIsPartnerAdmin,
		"domain_named":            d.Checks.DomainNamed,
		"order_matched":           d.Checks.OrderMatched,
		"username_named":          d.Checks.UsernameNamed,
	}
	if c, ok := checks[field]; ok {
		return strconv.FormatBool(c.OK), nil
	}
	if c, ok := checks[strings.TrimSuffix(field, ".reason")]; ok {
		return c.Reason, nil
	}
	switch field {
	case "disposition":
		return d.Disposition, nil
	case "row":
		return strconv.Itoa(d.Row), nil
	case "colour":
		return d.Colour, nil
	case "intent":
		return d.Intent, nil
	case "account":
		if d.Account == nil {
			return "", nil
		}
		return d.Account.ID, nil
	case "key_exposed":
		return strconv.FormatBool(d.KeyExposed), nil
	case "retry":
		return strconv.FormatBool(d.Retry), nil
	case "from_problem":
		return req.FromProblem, nil
	case "ignored_reason":
		return d.IgnoredReason, nil
	case "subject":
		return d.Subject, nil
	case "body":
		return d.Body, nil
	case "text": // subject, body and problems: all the ticket's mail text
		return d.Subject + "\n" + d.Body + "\n" + strings.Join(d.Problems, "\n"), nil
	case "guidance":
		return strings.Join(d.Guidance, "\n"), nil
	case "controls": // control characters anywhere a ticket shows mail text
		return controlsIn(req, d), nil
	case "problems":
		return strings.Join(d.Problems, "\n"), nil
	}
	return "", fmt.Errorf("unknown field %q", field)
}

// controlsIn names the control characters (C0 other than tab and line
// feed, DEL, C1) in the request's and decision's text, or says "none".
func controlsIn(req *mail.Request, d *Decision) string {
	texts := map[string]string{
		"subject": d.Subject, "body": d.Body, "from name": req.From.Name, "from address": req.From.Address,
		"message id": req.MessageID, "from problem": req.FromProblem, "list id": req.Loop.ListID,
		"ignored reason": d.IgnoredReason, "intent reason": d.IntentReason, "account reason": d.AccountReason,
	}
	for i, g := range d.Guidance {
		texts[fmt.Sprintf("guidance[%d]", i)] = g
	}
	for i, p := range d.Problems {
		texts[fmt.Sprintf("problems[%d]", i)] = p
	}
	for i, r := range req.ReplyTo {
		texts[fmt.Sprintf("reply-to[%d]", i)] = r.Name + " " + r.Address
	}
	for i, a := range req.Attachments {
		texts[fmt.Sprintf("attachments[%d]", i)] = a.Name + " " + a.ContentType
	}
	for _, c := range []Check{d.Checks.SenderAuthenticated, d.Checks.SenderIsAdmin, d.Checks.SenderIsPartnerAdmin,
		d.Checks.DomainNamed, d.Checks.OrderMatched, d.Checks.UsernameNamed} {
		texts["check reason "+c.Reason] = c.Reason
	}
	var found []string
	for where, s := range texts {
		for _, r := range s {
			if (r < 0x20 && r != '\t' && r != '\n') || (r >= 0x7f && r <= 0x9f) {
				found = append(found, fmt.Sprintf("U+%04X in %s", r, where))
				break
			}
		}
	}
	if len(found) == 0 {
		return "none"
	}
	slices.Sort(found)
	return strings.Join(found, ", ")
}

func clipTest(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
