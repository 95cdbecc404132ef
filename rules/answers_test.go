package rules

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ticketrouter/ticketrouter/rules/accounts"
	"github.com/ticketrouter/ticketrouter/rules/answer"
)

// polTestAnswers is an answers section for polTestBase.
const polTestAnswers = `answers:
  acknowledgement:
    dispositions: {verified: true, unmatched: true, ignored: false}
    period: 12h
    texts:
      en: {subject: "Re: {{.Subject}} [{{.Number}}]", body: "Received: {{.Number}}"}
      de:
        subject: "AW: {{.Subject}} [{{.Number}}]"
        body: |
          Erhalten.
          Ihre Referenz ist {{.Number}}.
  self_service:
    link: https://www.example-ca.test/support/forgot-password
    rows: [2]
    texts:
      en: {subject: "Re: {{.Subject}}", body: "{{.Link}}"}
  replies:
    - name: reset-done
      dispositions: [verified]
      kind: reset
      texts:
        en: {subject: "Re: {{.Subject}}", body: "Reset for {{.AccountName}}. {{.Agent}}"}
`

// Mistakes in the answers are reported like the rest of the policy:
// "name:line: field: problem", with the line of the field.
func TestParsePolicyAnswersErrors(t *testing.T) {
	tests := []struct {
		name, old, new string
		line           string // the error's line is the first line containing this, after the change
		field, problem string
	}{
		{"an account field in an acknowledgement", "Ihre Referenz ist {{.Number}}.", "Ihre Adresse ist {{.AdminEmail}}.", "body: |",
			"answers.acknowledgement.texts.de.body", "unknown field AdminEmail"},
		{"a template that does not parse", `body: "Received: {{.Number}}"`, `body: "Received: {{.Number"`, "Received",
			"answers.acknowledgement.texts.en.body", "unclosed action"},
		{"ignored acknowledged", "ignored: false", "ignored: true", "    dispositions: {",
			"answers.acknowledgement.dispositions.ignored", "may not be true"},
		{"deadletter acknowledged", "ignored: false", "deadletter: true", "    dispositions: {",
			"answers.acknowledgement.dispositions.deadletter", "may not be true"},
		{"unknown disposition", "unmatched: true", "unmatchd: true", "    dispositions: {",
			"answers.acknowledgement.dispositions.unmatchd", `unknown disposition "unmatchd"`},
		{"missing en", `      en: {subject: "Re: {{.Subject}} [{{.Number}}]", body: "Received: {{.Number}}"}` + "\n", "", "      de:\n        subject: \"AW",
			"answers.acknowledgement.texts", "missing the en text"},
		{"unknown row", "rows: [2]", "rows: [2, 7]", "rows: [2, 7]", "answers.self_service.rows[1]", "no row has id 7"},
		{"self-service for ignored mail", "rows: [2]", "rows: [1]", "rows: [1]", "answers.self_service.rows[0]", "never answered"},
		{"reply kind", "kind: reset", "kind: both", "kind: both", "answers.replies[0].kind", `got "both"`},
		{"reply of an unknown disposition", "dispositions: [verified]\n      kind", "dispositions: [verifed]\n      kind", "[verifed]",
			"answers.replies[0].dispositions[0]", `unknown disposition "verifed"`},
		{"a password field in a reply", "{{.Agent}}", "{{.Password}}", "Reset for", "answers.replies[0].texts.en.body", "unknown field Password"},
		{"zero period", "period: 12h", "period: 0s", "period", "answers.acknowledgement.period", "above 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			polTestCheckError(t, polTestBase+polTestAnswers, tt.old, tt.new, tt.line, tt.field, tt.problem)
		})
	}
	// An unknown key is yaml's error, worded the same way.
	data := strings.Replace(polTestBase+polTestAnswers, "period: 12h", "period: 12h\n    perod: 1h", 1)
	if _, err := ParsePolicy("p.yaml", []byte(data)); err == nil || !strings.Contains(err.Error(), "perod: unknown field") {
		t.Errorf("unknown key: error %v", err)
	}
}

func TestParsePolicyAnswers(t *testing.T) {
	p, err := ParsePolicy("p.yaml", []byte(polTestBase+polTestAnswers))
	if err != nil {
		t.Fatal(err)
	}
	a := p.Answers()
	if a.Period() != 12*time.Hour || !a.Acknowledges("verified") || a.Acknowledges("ignored") || !a.OffersSelfService(2) {
		t.Errorf("answers: period %s", a.Period())
	}
	got, ok := a.Acknowledgement("unmatched", "de", answer.AckData{Number: "TR-5", Subject: "Passwort"})
	if want := (answer.Text{Subject: "AW: Passwort [TR-5]", Body: "Erhalten.\nIhre Referenz ist TR-5.\n", Lang: "de"}); !ok || got != want {
		t.Errorf("Acknowledgement = %q, %v", got, ok)
	}
	// Without an answers section nothing is sent.
	p, err = ParsePolicy("p.yaml", []byte(polTestBase))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Answers().Automatic(2, "verified", "en", answer.AckData{}); ok || len(p.Answers().Replies("verified")) > 0 {
		t.Error("a policy without answers answers")
	}
}

// The default policy acknowledges every disposition but ignored and
// deadletter, offers self-service on rows 8 and 11, and has every text in
// the seven languages of its keywords; none of its texts trips the reply
// check.
func TestDefaultPolicyAnswers(t *testing.T) {
	p := DefaultPolicy()
	a := p.Answers()
	langs := []string{"de", "en", "es", "fr", "it", "nl", "pt"}
	if got := a.Languages(); !slices.Equal(slices.Sorted(slices.Values(got)), langs) || got[0] != "en" {
		t.Errorf("Languages() = %q", got)
	}
	if a.Period() != 24*time.Hour {
		t.Errorf("period %s", a.Period())
	}
	for _, r := range p.file.Rows {
		want := r.Disposition != DispositionIgnored
		if a.Acknowledges(r.Disposition) != want {
			t.Errorf("row %d: acknowledges %s: %v", r.ID, r.Disposition, !want)
		}
		if got := a.OffersSelfService(r.ID); got != (r.ID == 8 || r.ID == 11) {
			t.Errorf("row %d: self-service %v", r.ID, got)
		}
	}
	if a.Acknowledges(DispositionDeadletter) || !a.Acknowledges(DispositionUnmatched) {
		t.Error("deadletter acknowledged or unmatched not")
	}
	acct := &accounts.Account{ID: "A-1001", AdminEmail: "admin@acme.example", Username: "acmeadmin",
		Orders: []accounts.Order{{Number: "123456"}}}
	d := answer.AckData{Number: "TR-104233", Subject: "Passwort vergessen"}
	for _, lang := range langs {
		for _, render := range []func() (answer.Text, bool){
			func() (answer.Text, bool) { return a.Acknowledgement("verified", lang, d) },
			func() (answer.Text, bool) { return a.SelfService(11, lang, d) },
		} {
			txt, ok := render()
			if !ok || txt.Lang != lang || !strings.Contains(txt.Body, "TR-104233") {
				t.Errorf("%s: %+v, %v", lang, txt, ok)
			}
			if err := p.CheckReply(txt.Subject+"\n"+txt.Body, acct, "hans@example.com"); err != nil {
				t.Errorf("%s: the reply check refuses a default text: %v\n%s", lang, err, txt.Body)
			}
		}
		self, _ := a.SelfService(8, lang, d)
		if !strings.Contains(self.Body, "https://www.example-ca.test/support/forgot-password") {
			t.Errorf("%s: the self-service text has no link", lang)
		}
	}
	kinds := map[string]answer.Kind{"reset-done": answer.KindReset, "ask-admin-mail": answer.KindInfo,
		"refer-to-partner": answer.KindInfo, "code-signing-export": answer.KindInfo}
	for name, kind := range kinds {
		r, ok := a.Reply(name)
		if !ok || r.Kind != kind || !slices.Equal(slices.Sorted(slices.Values(r.Languages())), langs) {
			t.Errorf("reply %s: %+v %v", name, r, ok)
			continue
		}
		for _, lang := range langs {
			txt, err := r.Render(lang, answer.ReplyData{Number: "TR-7", Subject: "Hilfe", AccountID: acct.ID, AccountName: "ACME", Agent: "Ana", Customer: "hans@example.com"})
			if err != nil {
				t.Fatal(err)
			}
			to, err := answer.Recipient(r.Kind, acct.AdminEmail, "hans@example.com")
			if err != nil {
				t.Fatal(err)
			}
			if err := p.CheckReply(txt.Subject+"\n"+txt.Body, acct, to); err != nil {
				t.Errorf("reply %s in %s: %v\n%s", name, lang, err, txt.Body)
			}
		}
	}
	if rs := a.Replies("verified"); len(rs) != 1 || rs[0].Name != "reset-done" {
		t.Errorf("Replies(verified) = %+v", rs)
	}
}
