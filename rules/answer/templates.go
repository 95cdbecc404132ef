package answer

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"
)

// Config is the answers section of a policy file as written: the
// acknowledgement, the self-service answer and the desk's reply
// templates. Compile checks it and turns it into a Set.
type Config struct {
	Acknowledgement AckConfig         `yaml:"acknowledgement"`
	SelfService     SelfServiceConfig `yaml:"self_service"`
	Replies         []ReplyConfig     `yaml:"replies"`
}

// AckConfig configures the acknowledgement ("we received your mail, your
// reference is TR-..."), sent automatically to the mails of the
// dispositions set true, at most once per sender per Period.
type AckConfig struct {
	// Dispositions maps a disposition to whether its mail is
	// acknowledged; one not listed is not. ignored and deadletter can
	// never be.
	Dispositions map[string]bool `yaml:"dispositions"`
	// Period: at most one acknowledgement per sender per Period.
	Period time.Duration         `yaml:"period"`
	Texts  map[string]TextConfig `yaml:"texts"`
}

// SelfServiceConfig configures the self-service answer: for the mails
// decided by the policy rows listed in Rows, the link and the steps to
// reset a password without an agent. It replaces the acknowledgement for
// those mails and is subject to its period.
type SelfServiceConfig struct {
	Link  string                `yaml:"link"`
	Rows  []int                 `yaml:"rows"`
	Texts map[string]TextConfig `yaml:"texts"`
}

// ReplyConfig is one reply template the desk offers an agent on tickets of
// Dispositions; Kind says where it may go (see Recipient).
type ReplyConfig struct {
	Name         string                `yaml:"name"`
	Dispositions []string              `yaml:"dispositions"`
	Kind         Kind                  `yaml:"kind"`
	Texts        map[string]TextConfig `yaml:"texts"`
}

// TextConfig is a subject and a body in one language, each a Go
// text/template.
type TextConfig struct {
	Subject string `yaml:"subject"`
	Body    string `yaml:"body"`
}

// Kind is what a desk reply does, which decides who it may go to.
type Kind string

// The kinds of reply.
const (
	// KindReset confirms or performs a password reset: it goes only to
	// the admin address on file.
	KindReset Kind = "reset"
	// KindInfo informs or asks: it goes to the sender and carries no
	// account details.
	KindInfo Kind = "info"
)

// Dispositions whose mail is never answered automatically; they mirror
// rules.DispositionIgnored and rules.DispositionDeadletter, which this
// package cannot import.
const (
	dispositionIgnored    = "ignored"
	dispositionDeadletter = "deadletter"
)

// Bounds of what answers hold.
const (
	// MaxSubjectRunes bounds the customer's subject inside an answer:
	// enough to recognise it, too little to carry a spammer's text.
	MaxSubjectRunes = 100
	// maxRenderedSubject bounds a rendered subject line.
	maxRenderedSubject = 250
	// maxRenderedBytes bounds a rendered text, so that a template that
	// loops cannot make a mail of any size.
	maxRenderedBytes = 64 << 10
)

// Table is what Compile needs to know of the policy's decision table.
type Table struct {
	// Dispositions are the dispositions a ticket can have: the rows'
	// and the built-in ones.
	Dispositions []string
	// Rows maps each row id to its disposition.
	Rows map[int]string
}

// Problem is one mistake in a Config: Path leads from the answers key to
// the field (map keys and list indexes), Msg says what is wrong.
type Problem struct {
	Path []any
	Msg  string
}

// AckData is what an acknowledgement or a self-service answer is about.
// It holds, on purpose, nothing about an account: these answers go to
// whoever wrote, and must read the same whether or not an account
// matched.
type AckData struct {
	// Number is the ticket number, "TR-104233".
	Number string
	// Subject is the subject of the customer's mail; it is sanitised
	// (one line, at most MaxSubjectRunes) before a template sees it.
	Subject string
}

// ackView is what acknowledgement and self-service templates see:
// {{.Number}}, {{.Subject}}, {{.Link}}. A template naming anything else
// fails when the policy is loaded.
type ackView struct {
	Number, Subject, Link string
}

// ReplyData is what a desk reply template may name: more than an
// automatic answer, since an agent reads and sends it, and the desk
// checks where it goes (Recipient, rules.Policy.CheckReply).
type ReplyData struct {
	Number      string // the ticket number
	Subject     string // the customer's subject, sanitised like AckData's
	AccountID   string // the account's id, "" when none matched
	AccountName string // the account's name
	Agent       string // the agent's display name
	Customer    string // the customer's own address (the sender)
}

// replyView is what reply templates see: ReplyData and the policy's
// self-service link.
type replyView struct {
	Number, Subject, AccountID, AccountName, Agent, Customer, Link string
}

// Text is a rendered answer: a one-line subject, a body with LF line
// ends, and the language it is in.
type Text struct {
	Subject, Body, Lang string
}

// texts are compiled templates by language.
type texts map[string]*pair

type pair struct{ subject, body *template.Template }

// Set is a compiled answers section: immutable, safe for concurrent use.
// The zero Set (a policy without answers) sends nothing and offers no
// replies.
type Set struct {
	ackOn     map[string]bool
	period    time.Duration
	ack       texts
	link      string
	selfRows  map[int]bool
	self      texts
	replies   []Reply
	languages []string
}

// Reply is a reply template the desk offers.
type Reply struct {
	// Name identifies the template, "reset-done".
	Name string
	// Kind says where it may go.
	Kind         Kind
	dispositions []string
	texts        texts
	link         string
}

// Compile checks cfg against the policy's table and compiles its
// templates. It reports every problem found; the Set is nil when there is
// one.
func Compile(cfg *Config, table Table) (*Set, []Problem) {
	c := compiler{table: table}
	s := &Set{ackOn: map[string]bool{}, selfRows: map[int]bool{}, period: cfg.Acknowledgement.Period, link: cfg.SelfService.Link}

	ack := &cfg.Acknowledgement
	for _, d := range slices.Sorted(maps.Keys(ack.Dispositions)) {
		at := []any{"acknowledgement", "dispositions", d}
		switch {
		case !slices.Contains(table.Dispositions, d):
			c.fail(at, "unknown disposition %q (want one of %s)", d, strings.Join(table.Dispositions, ", "))
		case (d == dispositionIgnored || d == dispositionDeadletter) && ack.Dispositions[d]:
			c.fail(at, "%s mail is never answered (automatic mail, or no mail at all): may not be true", d)
		case ack.Dispositions[d]:
			s.ackOn[d] = true
		}
	}
	if ack.Period < 0 || len(s.ackOn) > 0 && ack.Period == 0 {
		c.fail([]any{"acknowledgement", "period"}, "want a duration above 0 such as 24h, got %s", ack.Period)
	}
	if len(s.ackOn) > 0 || len(ack.Texts) > 0 {
		s.ack = c.texts([]any{"acknowledgement"}, ack.Texts, ackView{"TR-1", "subject", "https://example.test/"})
	}

	ss := &cfg.SelfService
	for i, row := range ss.Rows {
		at := []any{"self_service", "rows", i}
		d, ok := table.Rows[row]
		switch {
		case !ok:
			c.fail(at, "no row has id %d", row)
		case d == dispositionIgnored || d == dispositionDeadletter:
			c.fail(at, "row %d decides %s mail, which is never answered", row, d)
		case s.selfRows[row]:
			c.fail(at, "row %d listed twice", row)
		}
		s.selfRows[row] = true
	}
	if len(ss.Rows) > 0 || ss.Link != "" || len(ss.Texts) > 0 {
		if u, err := url.Parse(ss.Link); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			c.fail([]any{"self_service", "link"}, "want an http or https address, got %q", ss.Link)
		}
		s.self = c.texts([]any{"self_service"}, ss.Texts, ackView{"TR-1", "subject", ss.Link})
	}

	names := map[string]bool{}
	for i, rc := range cfg.Replies {
		at := []any{"replies", i}
		switch {
		case !validName(rc.Name):
			c.fail(append(at, "name"), "%q is not a name: want lower-case letters, digits and hyphens", rc.Name)
		case names[rc.Name]:
			c.fail(append(at, "name"), "%q used twice", rc.Name)
		}
		names[rc.Name] = true
		if rc.Kind != KindReset && rc.Kind != KindInfo {
			c.fail(append(at, "kind"), "want %s or %s, got %q", KindReset, KindInfo, rc.Kind)
		}
		if len(rc.Dispositions) == 0 {
			c.fail(append(at, "dispositions"), "missing: the dispositions whose tickets offer this reply")
		}
		for j, d := range rc.Dispositions {
			if !slices.Contains(table.Dispositions, d) {
				c.fail(append(at, "dispositions", j), "unknown disposition %q (want one of %s)", d, strings.Join(table.Dispositions, ", "))
			}
		}
		view := replyView{"TR-1", "subject", "A-1", "name", "agent", "customer@example.test", ss.Link}
		s.replies = append(s.replies, Reply{Name: rc.Name, Kind: rc.Kind, dispositions: slices.Clone(rc.Dispositions),
			texts: c.texts(at, rc.Texts, view), link: ss.Link})
	}
	if len(c.problems) > 0 {
		return nil, c.problems
	}
	s.languages = languagesOf(s.ack, s.self)
	return s, nil
}

// compiler collects the problems of a Compile.
type compiler struct {
	table    Table
	problems []Problem
}

func (c *compiler) fail(path []any, format string, args ...any) {
	c.problems = append(c.problems, Problem{Path: slices.Clone(path), Msg: fmt.Sprintf(format, args...)})
}

// texts compiles the texts under at: an en text is required, every
// language key is a language code, every subject and body parses and
// runs on sample, the data its templates will get.
func (c *compiler) texts(at []any, byLang map[string]TextConfig, sample any) texts {
	at = append(slices.Clone(at), "texts")
	if _, ok := byLang[DefaultLanguage]; !ok {
		c.fail(at, "missing the %s text, used when the customer's language has none", DefaultLanguage)
	}
	out := texts{}
	for _, lang := range slices.Sorted(maps.Keys(byLang)) {
		if primaryTag(lang) != lang {
			c.fail(append(at, lang), "%q is not a language code: want two or three lower-case letters (en, de, pt)", lang)
			continue
		}
		tc := byLang[lang]
		p := &pair{}
		for _, f := range []struct {
			key, text string
			t         **template.Template
		}{{"subject", tc.Subject, &p.subject}, {"body", tc.Body, &p.body}} {
			fat := append(slices.Clone(at), lang, f.key)
			if strings.TrimSpace(f.text) == "" {
				c.fail(fat, "missing")
				continue
			}
			t, err := template.New(f.key).Option("missingkey=error").Parse(f.text)
			if err == nil {
				_, err = render(t, sample)
			}
			if err != nil {
				c.fail(fat, "%s", templateProblem(err, sample))
				continue
			}
			*f.t = t
		}
		out[lang] = p
	}
	return out
}

// unknownField matches text/template's error for a field the data lacks.
var unknownField = regexp.MustCompile(`can't evaluate field (\w+)`)

// templateProblem words a template error for the policy's editor, naming
// the fields the template may use when it named another.
func templateProblem(err error, sample any) string {
	if m := unknownField.FindStringSubmatch(err.Error()); m != nil {
		var fields []string
		for _, f := range reflectFields(sample) {
			fields = append(fields, "{{."+f+"}}")
		}
		return fmt.Sprintf("unknown field %s: this text may use only %s", m[1], strings.Join(fields, " "))
	}
	return strings.TrimPrefix(err.Error(), "template: ")
}

// reflectFields names the fields templates may use with sample.
func reflectFields(sample any) []string {
	switch sample.(type) {
	case ackView:
		return []string{"Number", "Subject", "Link"}
	case replyView:
		return []string{"Number", "Subject", "AccountID", "AccountName", "Agent", "Customer", "Link"}
	}
	return nil
}

// errTooLong is returned when a template renders more than
// maxRenderedBytes.
var errTooLong = errors.New("the text renders to more than 64 KiB")

// boundedWriter keeps at most maxRenderedBytes, then fails.
type boundedWriter struct{ b strings.Builder }

func (w *boundedWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > maxRenderedBytes {
		return 0, errTooLong
	}
	return w.b.Write(p)
}

func render(t *template.Template, data any) (string, error) {
	var w boundedWriter
	if err := t.Execute(&w, data); err != nil {
		return "", err
	}
	return w.b.String(), nil
}

// pick returns the text for lang: that language, its primary language
// ("de-CH" → "de"), else en.
func (ts texts) pick(lang string) (*pair, string) {
	if p, ok := ts[lang]; ok {
		return p, lang
	}
	if l := primaryTag(lang); ts[l] != nil {
		return ts[l], l
	}
	return ts[DefaultLanguage], DefaultLanguage
}

// execute renders the pair for lang on data.
func (ts texts) execute(lang string, data any) (Text, error) {
	p, lang := ts.pick(lang)
	if p == nil {
		return Text{}, errors.New("no text")
	}
	subject, err := render(p.subject, data)
	if err != nil {
		return Text{}, fmt.Errorf("render subject: %w", err)
	}
	body, err := render(p.body, data)
	if err != nil {
		return Text{}, fmt.Errorf("render body: %w", err)
	}
	body = strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\r", "\n")
	if !strings.HasSuffix(body, "\n") {
		body += "\n"
	}
	return Text{Subject: OneLine(subject, maxRenderedSubject), Body: body, Lang: lang}, nil
}

// OneLine returns s as one line of at most n characters: every run of
// white space (line breaks among it) becomes one space, control and
// formatting characters (bidirectional overrides among them) are dropped,
// and a longer line is cut, ending in "…". It is how a customer's subject
// enters an answer: it can never add a header line or hide text.
func OneLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r):
			return ' '
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	s = strings.Join(strings.Fields(s), " ")
	if n < 1 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return strings.TrimRight(string([]rune(s)[:n-1]), " ") + "…"
}

// ackView builds the data of an automatic answer.
func (s *Set) ackView(d AckData) ackView {
	return ackView{Number: OneLine(d.Number, 40), Subject: OneLine(d.Subject, MaxSubjectRunes), Link: s.link}
}

// Period is the acknowledgement's period: at most one automatic answer
// per sender per Period.
func (s *Set) Period() time.Duration { return s.period }

// Acknowledges reports whether mail of the disposition gets an
// acknowledgement.
func (s *Set) Acknowledges(disposition string) bool { return s.ackOn[disposition] }

// Acknowledgement renders the acknowledgement for a mail of disposition in
// lang (or en when the policy has no text in lang). ok is false when that
// disposition is not acknowledged. Whether the mail may be answered at
// all (AutoReplyAllowed) and the period are the caller's to check.
func (s *Set) Acknowledgement(disposition, lang string, d AckData) (t Text, ok bool) {
	if !s.ackOn[disposition] || disposition == dispositionIgnored || disposition == dispositionDeadletter {
		return Text{}, false
	}
	t, err := s.ack.execute(lang, s.ackView(d))
	return t, err == nil
}

// OffersSelfService reports whether the mails decided by the policy row
// get the self-service answer.
func (s *Set) OffersSelfService(row int) bool { return s.selfRows[row] }

// SelfService renders the self-service answer for a mail decided by row,
// in lang (or en). ok is false when the row does not offer it.
func (s *Set) SelfService(row int, lang string, d AckData) (t Text, ok bool) {
	if !s.selfRows[row] {
		return Text{}, false
	}
	t, err := s.self.execute(lang, s.ackView(d))
	return t, err == nil
}

// Automatic renders the one automatic answer a mail decided by row with
// disposition gets: the self-service answer when the row offers it, else
// the acknowledgement when the disposition has one. ok is false when
// neither applies.
func (s *Set) Automatic(row int, disposition, lang string, d AckData) (t Text, ok bool) {
	if t, ok := s.SelfService(row, lang, d); ok {
		return t, true
	}
	return s.Acknowledgement(disposition, lang, d)
}

// Languages returns the languages the automatic answers are written in,
// en first: the offered languages for Language.
func (s *Set) Languages() []string { return slices.Clone(s.languages) }

// languagesOf lists the languages of ts, en first, then sorted.
func languagesOf(ts ...texts) []string {
	out := []string{DefaultLanguage}
	for _, t := range ts {
		for lang := range t {
			if !slices.Contains(out, lang) {
				out = append(out, lang)
			}
		}
	}
	slices.Sort(out[1:])
	return out
}

// Replies returns the reply templates offered on tickets of disposition,
// in policy order.
func (s *Set) Replies(disposition string) []Reply {
	var out []Reply
	for _, r := range s.replies {
		if slices.Contains(r.dispositions, disposition) {
			out = append(out, r)
		}
	}
	return out
}

// Reply returns the reply template named name.
func (s *Set) Reply(name string) (Reply, bool) {
	for _, r := range s.replies {
		if r.Name == name {
			return r, true
		}
	}
	return Reply{}, false
}

// Dispositions returns the dispositions whose tickets offer the reply.
func (r Reply) Dispositions() []string { return slices.Clone(r.dispositions) }

// Languages returns the languages the reply is written in, en first.
func (r Reply) Languages() []string { return languagesOf(r.texts) }

// Render renders the reply in lang (or en) on d, for the agent to edit
// before sending.
func (r Reply) Render(lang string, d ReplyData) (Text, error) {
	if r.texts == nil {
		return Text{}, fmt.Errorf("render reply %q: no such template", r.Name)
	}
	v := replyView{Number: OneLine(d.Number, 40), Subject: OneLine(d.Subject, MaxSubjectRunes), AccountID: d.AccountID,
		AccountName: OneLine(d.AccountName, maxRenderedSubject), Agent: OneLine(d.Agent, maxRenderedSubject), Customer: d.Customer, Link: r.link}
	t, err := r.texts.execute(lang, v)
	if err != nil {
		return Text{}, fmt.Errorf("render reply %q: %w", r.Name, err)
	}
	return t, nil
}

// validName reports whether s is a template name: lower-case letters,
// digits and inner hyphens.
func validName(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	return strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}
