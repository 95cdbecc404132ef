package answer

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var testTable = Table{
	Dispositions: []string{"ignored", "deadletter", "unmatched", "verified", "self-service", "needs-verification"},
	Rows:         map[int]string{1: "ignored", 8: "self-service", 9: "verified", 10: "needs-verification"},
}

func text(subject, body string) TextConfig { return TextConfig{Subject: subject, Body: body} }

// testConfig is a valid configuration; tests change one thing in it.
func testConfig() *Config {
	return &Config{
		Acknowledgement: AckConfig{
			Dispositions: map[string]bool{"verified": true, "unmatched": true, "needs-verification": true, "self-service": true, "ignored": false},
			Period:       24 * time.Hour,
			Texts: map[string]TextConfig{
				"en": text("Re: {{.Subject}} [{{.Number}}]", "We received your mail. Your reference is {{.Number}}."),
				"de": text("AW: {{.Subject}} [{{.Number}}]", "Wir haben Ihre Nachricht erhalten. Ihre Referenz ist {{.Number}}."),
			},
		},
		SelfService: SelfServiceConfig{
			Link:  "https://www.example-ca.test/support/forgot-password",
			Rows:  []int{8},
			Texts: map[string]TextConfig{"en": text("Re: {{.Subject}} [{{.Number}}]", "Reset it yourself: {{.Link}} ({{.Number}})")},
		},
		Replies: []ReplyConfig{
			{Name: "reset-done", Kind: KindReset, Dispositions: []string{"verified"},
				Texts: map[string]TextConfig{"en": text("Re: {{.Subject}} [{{.Number}}]", "Dear {{.AccountName}}, the password of {{.AccountID}} was reset. {{.Agent}}")}},
			{Name: "ask-admin-mail", Kind: KindInfo, Dispositions: []string{"needs-verification", "unmatched"},
				Texts: map[string]TextConfig{"en": text("Re: {{.Subject}} [{{.Number}}]", "Please write from the admin address. {{.Agent}}"),
					"fr": text("Re: {{.Subject}} [{{.Number}}]", "Écrivez depuis l'adresse de l'administrateur. {{.Agent}}")}},
		},
	}
}

func TestCompileProblems(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		path   string // the problem's path, as fmt prints it
		msg    string // a part of its message
	}{
		{"ignored acknowledged", func(c *Config) { c.Acknowledgement.Dispositions["ignored"] = true },
			"[acknowledgement dispositions ignored]", "may not be true"},
		{"deadletter acknowledged", func(c *Config) { c.Acknowledgement.Dispositions["deadletter"] = true },
			"[acknowledgement dispositions deadletter]", "may not be true"},
		{"unknown disposition", func(c *Config) { c.Acknowledgement.Dispositions["verifed"] = true },
			"[acknowledgement dispositions verifed]", `unknown disposition "verifed"`},
		{"no period", func(c *Config) { c.Acknowledgement.Period = 0 }, "[acknowledgement period]", "above 0"},
		{"negative period", func(c *Config) { c.Acknowledgement.Period = -time.Hour }, "[acknowledgement period]", "above 0"},
		{"no en text", func(c *Config) { delete(c.Acknowledgement.Texts, "en") }, "[acknowledgement texts]", "missing the en text"},
		{"not a language", func(c *Config) { c.Acknowledgement.Texts["German"] = text("x", "y") },
			"[acknowledgement texts German]", "not a language code"},
		{"empty body", func(c *Config) { c.Acknowledgement.Texts["de"] = text("x", " ") }, "[acknowledgement texts de body]", "missing"},
		{"parse error", func(c *Config) { c.Acknowledgement.Texts["de"] = text("x", "Referenz {{.Number}") },
			"[acknowledgement texts de body]", "body:1: bad character"},
		{"account field in an acknowledgement", func(c *Config) { c.Acknowledgement.Texts["de"] = text("x", "{{.AdminEmail}}") },
			"[acknowledgement texts de body]", "unknown field AdminEmail: this text may use only {{.Number}} {{.Subject}} {{.Link}}"},
		{"account id in a self-service subject", func(c *Config) { c.SelfService.Texts["en"] = text("{{.AccountID}}", "y") },
			"[self_service texts en subject]", "unknown field AccountID"},
		{"username in a self-service body", func(c *Config) { c.SelfService.Texts["en"] = text("x", "{{.Username}}") },
			"[self_service texts en body]", "unknown field Username"},
		{"a text that never ends", func(c *Config) { c.SelfService.Texts["en"] = text("x", "{{range 100000000}}spam{{end}}") },
			"[self_service texts en body]", "64 KiB"},
		{"unknown row", func(c *Config) { c.SelfService.Rows = []int{8, 99} }, "[self_service rows 1]", "no row has id 99"},
		{"ignored row", func(c *Config) { c.SelfService.Rows = []int{1} }, "[self_service rows 0]", "never answered"},
		{"row twice", func(c *Config) { c.SelfService.Rows = []int{8, 8} }, "[self_service rows 1]", "twice"},
		{"no link", func(c *Config) { c.SelfService.Link = "" }, "[self_service link]", "http or https"},
		{"a link that is no web address", func(c *Config) { c.SelfService.Link = "javascript:alert(1)" }, "[self_service link]", "http or https"},
		{"reply kind", func(c *Config) { c.Replies[0].Kind = "Reset" }, "[replies 0 kind]", `want reset or info, got "Reset"`},
		{"reply name", func(c *Config) { c.Replies[1].Name = "Ask Admin" }, "[replies 1 name]", "not a name"},
		{"reply name twice", func(c *Config) { c.Replies[1].Name = "reset-done" }, "[replies 1 name]", "used twice"},
		{"reply without dispositions", func(c *Config) { c.Replies[0].Dispositions = nil }, "[replies 0 dispositions]", "missing"},
		{"reply of an unknown disposition", func(c *Config) { c.Replies[1].Dispositions[1] = "nope" },
			"[replies 1 dispositions 1]", `unknown disposition "nope"`},
		{"reply without en", func(c *Config) { delete(c.Replies[1].Texts, "en") }, "[replies 1 texts]", "missing the en text"},
		{"reply field unknown", func(c *Config) { c.Replies[0].Texts["en"] = text("x", "{{.Password}}") },
			"[replies 0 texts en body]", "unknown field Password: this text may use only {{.Number}} {{.Subject}} {{.AccountID}}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			tt.change(c)
			s, problems := Compile(c, testTable)
			if s != nil || len(problems) != 1 {
				t.Fatalf("Compile() = %v, %v; want one problem", s, problems)
			}
			if got := fmt.Sprint(problems[0].Path); got != tt.path || !strings.Contains(problems[0].Msg, tt.msg) {
				t.Errorf("problem %s %q, want %s and a message containing %q", got, problems[0].Msg, tt.path, tt.msg)
			}
		})
	}
}

func TestCompileEmpty(t *testing.T) {
	s, problems := Compile(&Config{}, testTable)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	if _, ok := s.Acknowledgement("verified", "en", AckData{}); ok {
		t.Error("an empty configuration acknowledges")
	}
	if _, ok := s.Automatic(8, "self-service", "en", AckData{}); ok {
		t.Error("an empty configuration answers")
	}
	if len(s.Replies("verified")) != 0 {
		t.Error("an empty configuration offers replies")
	}
}

func mustCompile(t *testing.T) *Set {
	t.Helper()
	s, problems := Compile(testConfig(), testTable)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	return s
}

func TestAcknowledgement(t *testing.T) {
	s := mustCompile(t)
	d := AckData{Number: "TR-104233", Subject: "Passwort\r\nBcc: victim@example.org\t vergessen"}
	tests := []struct {
		disposition, lang string
		ok                bool
		want              Text
	}{
		{"verified", "de", true, Text{"AW: Passwort Bcc: victim@example.org vergessen [TR-104233]", "Wir haben Ihre Nachricht erhalten. Ihre Referenz ist TR-104233.\n", "de"}},
		{"unmatched", "de-AT", true, Text{"AW: Passwort Bcc: victim@example.org vergessen [TR-104233]", "Wir haben Ihre Nachricht erhalten. Ihre Referenz ist TR-104233.\n", "de"}},
		{"verified", "ja", true, Text{"Re: Passwort Bcc: victim@example.org vergessen [TR-104233]", "We received your mail. Your reference is TR-104233.\n", "en"}},
		{"ignored", "en", false, Text{}},
		{"deadletter", "en", false, Text{}},
		{"blocked", "en", false, Text{}},
	}
	for _, tt := range tests {
		got, ok := s.Acknowledgement(tt.disposition, tt.lang, d)
		if ok != tt.ok || got != tt.want {
			t.Errorf("Acknowledgement(%s, %s) = %q, %v; want %q, %v", tt.disposition, tt.lang, got, ok, tt.want, tt.ok)
		}
	}
	if got := s.Languages(); !slices.Equal(got, []string{"en", "de"}) {
		t.Errorf("Languages() = %q", got)
	}
	if s.Period() != 24*time.Hour {
		t.Errorf("Period() = %s", s.Period())
	}
}

// Whatever the customer's subject, it enters an answer as one bounded line.
func TestAcknowledgementSubjectBounded(t *testing.T) {
	s := mustCompile(t)
	long := strings.Repeat("ü", 5000) + "\n\nX-Evil: 1\u202e"
	got, ok := s.Acknowledgement("verified", "en", AckData{Number: "TR-1", Subject: long})
	if !ok {
		t.Fatal("not acknowledged")
	}
	if strings.ContainsAny(got.Subject, "\r\n\u202e") || strings.ContainsAny(got.Body, "\r") {
		t.Errorf("subject %q holds a line break or a control character", got.Subject)
	}
	if n := len([]rune(got.Subject)); n > MaxSubjectRunes+len(" [TR-1]")+len("Re: ") {
		t.Errorf("subject of %d characters", n)
	}
}

func TestSelfServiceAndAutomatic(t *testing.T) {
	s := mustCompile(t)
	d := AckData{Number: "TR-7", Subject: "pw"}
	want := Text{"Re: pw [TR-7]", "Reset it yourself: https://www.example-ca.test/support/forgot-password (TR-7)\n", "en"}
	if got, ok := s.SelfService(8, "fr", d); !ok || got != want {
		t.Errorf("SelfService(8) = %q, %v", got, ok)
	}
	if _, ok := s.SelfService(9, "en", d); ok {
		t.Error("row 9 offers self-service")
	}
	if got, ok := s.Automatic(8, "self-service", "en", d); !ok || got != want {
		t.Errorf("Automatic(8) = %q, %v; want the self-service answer", got, ok)
	}
	if got, ok := s.Automatic(9, "verified", "en", d); !ok || !strings.HasPrefix(got.Body, "We received") {
		t.Errorf("Automatic(9) = %q, %v; want the acknowledgement", got, ok)
	}
	if _, ok := s.Automatic(1, "ignored", "en", d); ok {
		t.Error("ignored mail answered")
	}
	if !s.OffersSelfService(8) || s.OffersSelfService(10) || !s.Acknowledges("verified") || s.Acknowledges("ignored") {
		t.Error("OffersSelfService or Acknowledges wrong")
	}
}

func TestReplies(t *testing.T) {
	s := mustCompile(t)
	var names []string
	for _, r := range s.Replies("unmatched") {
		names = append(names, r.Name)
	}
	if !slices.Equal(names, []string{"ask-admin-mail"}) {
		t.Errorf("Replies(unmatched) = %q", names)
	}
	r, ok := s.Reply("reset-done")
	if !ok || r.Kind != KindReset || !slices.Equal(r.Dispositions(), []string{"verified"}) {
		t.Fatalf("Reply(reset-done) = %+v, %v", r, ok)
	}
	got, err := r.Render("de", ReplyData{Number: "TR-9", Subject: "Reset", AccountID: "A-1001", AccountName: "ACME\nCorp", Agent: "Ana"})
	want := Text{"Re: Reset [TR-9]", "Dear ACME Corp, the password of A-1001 was reset. Ana\n", "en"}
	if err != nil || got != want {
		t.Errorf("Render() = %q, %v; want %q", got, err, want)
	}
	ask, _ := s.Reply("ask-admin-mail")
	if got := ask.Languages(); !slices.Equal(got, []string{"en", "fr"}) {
		t.Errorf("Languages() = %q", got)
	}
	if got, err := ask.Render("fr", ReplyData{Number: "TR-9", Agent: "Ana"}); err != nil || got.Lang != "fr" {
		t.Errorf("Render(fr) = %q, %v", got, err)
	}
	if _, ok := s.Reply("nope"); ok {
		t.Error("Reply(nope) found")
	}
	if _, err := (Reply{Name: "x"}).Render("en", ReplyData{}); err == nil {
		t.Error("the zero Reply renders")
	}
}

func TestOneLine(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"  a \r\n b\t c ", 10, "a b c"},
		{"abcdef", 4, "abc…"},
		{"abc def", 5, "abc…"},
		{"a\u202eb\x00c", 10, "abc"},
		{"\xff", 10, "\uFFFD"},
		{"x", 0, ""},
	} {
		if got := OneLine(tt.in, tt.n); got != tt.want {
			t.Errorf("OneLine(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
