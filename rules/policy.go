// Package rules holds the routing policy as data and the pure logic that
// turns a parsed support email into a routing decision (Decide): which
// account it is about, which channel (colour) that account came through,
// what was checked about the sender, and what the agent must do. The
// account directory is package accounts, sender authentication package
// senderauth, the comparison of addresses and domains package address.
// Nothing here does I/O beyond loading its files.
package rules

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/ticketrouter/ticketrouter/internal/yamlerr"
	"github.com/ticketrouter/ticketrouter/rules/accounts"
	"github.com/ticketrouter/ticketrouter/rules/answer"
	"go.yaml.in/yaml/v3"
)

//go:embed default_policy.yaml
var defaultPolicyYAML []byte

// DefaultPolicyYAML returns the shipped default policy, the decision table of
// POLICY.md, as YAML: a starting point for a custom policy file.
func DefaultPolicyYAML() []byte { return bytes.Clone(defaultPolicyYAML) }

// ColourUnknown is the colour of a request that matched no account.
const ColourUnknown = "unknown"

// Policy is a compiled routing policy: the decision table, the keyword lists
// that recognise intents, username cues and secrets, and the guidance texts.
// It is immutable once loaded and safe for concurrent use.
type Policy struct {
	file    policyFile
	matcher *matcher
	// connectors, harmless and qualifiers are the redaction word lists,
	// folded.
	connectors, harmless, qualifiers map[string]bool
	// gluedConnectors and harmlessPrefixes are the connectors and
	// harmless words written in a script without spaces, folded: they
	// are matched at the start of what follows, not as whole words.
	gluedConnectors, harmlessPrefixes []string
	// answers are the compiled answer templates.
	answers *answer.Set
}

// policyFile is the YAML form of a policy.
type policyFile struct {
	Version       int           `yaml:"version"`
	DefaultIntent string        `yaml:"default_intent"`
	Intents       []intentDef   `yaml:"intents"`
	Extraction    extractionDef `yaml:"extraction"`
	Redaction     redactionDef  `yaml:"redaction"`
	Ignore        ignoreDef     `yaml:"ignore"`
	RateLimits    rateLimitsDef `yaml:"rate_limits"`
	Rows          []Row         `yaml:"rows"`
	Notes         notesDef      `yaml:"notes"`
	// Dispositions in which the customer counts as identified.
	IdentifiedDispositions []string `yaml:"identified_dispositions"`
	// Answers: the acknowledgement, the self-service answer and the
	// desk's reply templates.
	Answers answer.Config `yaml:"answers"`
}

type intentDef struct {
	Name     string              `yaml:"name"`
	Keywords map[string][]string `yaml:"keywords"` // language → keywords
	Near     []nearDef           `yaml:"near"`
}

// nearDef is a proximity rule of an intent: it holds when a word of
// Words and a word of With (keywords by language, of any language) stand
// at most Within characters apart, in either order, in one paragraph.
type nearDef struct {
	Within int                 `yaml:"within"`
	Words  map[string][]string `yaml:"words"`
	With   map[string][]string `yaml:"with"`
}

// maxNearWithin bounds the distance of a proximity rule: beyond a few
// sentences, two words say nothing about each other.
const maxNearWithin = 500

type extractionDef struct {
	OrderNumberLength struct {
		Min int `yaml:"min"`
		Max int `yaml:"max"`
	} `yaml:"order_number_length"`
	UsernameCues map[string][]string `yaml:"username_cues"`
}

type redactionDef struct {
	PasswordCues  map[string][]string `yaml:"password_cues"`
	Connectors    []string            `yaml:"connectors"`
	HarmlessWords []string            `yaml:"harmless_words"`
	Qualifiers    []string            `yaml:"qualifiers"`
}

type ignoreDef struct {
	AutoSubmittedExcept []string `yaml:"auto_submitted_except"`
	Precedence          []string `yaml:"precedence"`
	HeaderFields        []string `yaml:"header_fields"`
	BounceSenders       []string `yaml:"bounce_senders"`
	NullReturnPath      bool     `yaml:"null_return_path"`
	ContentTypes        []string `yaml:"content_types"`
}

type notesDef struct {
	Always           []Line `yaml:"always"`
	Identified       []Line `yaml:"identified"`
	NotIdentified    []Line `yaml:"not_identified"`
	ResetGoesToAdmin []Line `yaml:"reset_goes_to_admin"`
	FromAmbiguous    []Line `yaml:"from_ambiguous"`
	DisplayNameSpoof []Line `yaml:"display_name_spoof"`
	LookalikeSender  []Line `yaml:"lookalike_sender"`
	ReplyToDiffers   []Line `yaml:"reply_to_differs"`
	KeyExposed       []Line `yaml:"key_exposed"`
	SeveralAccounts  []Line `yaml:"several_accounts"`
	NamesDoNotReset  []Line `yaml:"names_do_not_reset"`
	ParseProblems    []Line `yaml:"parse_problems"`
	RateLimited      []Line `yaml:"rate_limited"`
}

// Line is one line of guidance in the policy. In YAML it is a string, or
// {text: ..., never: true} for a rule that says never or do not: Never
// marks it as data, so that a desk can show such rules apart without
// searching the text for words.
type Line struct {
	Text  string
	Never bool
}

// UnmarshalYAML reads a Line from a string or from a mapping with the
// keys text and never.
func (l *Line) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = Line{}
		return n.Decode(&l.Text)
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a guidance line is a string or {text: ..., never: true}", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch k := n.Content[i].Value; k {
		case "text", "never":
		default:
			return fmt.Errorf("line %d: field %s not found in a guidance line (want text, never)", n.Content[i].Line, k)
		}
	}
	var v struct {
		Text  string `yaml:"text"`
		Never bool   `yaml:"never"`
	}
	if err := n.Decode(&v); err != nil {
		return err
	}
	*l = Line{Text: v.Text, Never: v.Never}
	return nil
}

// Row is one line of the decision table: when its condition holds, the
// request gets its disposition and guidance.
type Row struct {
	ID          int       `yaml:"id"`
	When        Condition `yaml:"when"`
	Disposition string    `yaml:"disposition"`
	Guidance    []Line    `yaml:"guidance"`
}

// Condition is a conjunction of facts about a request; unset fields do not
// matter. Any holds when at least one of its conditions holds.
type Condition struct {
	Ignored              *bool       `yaml:"ignored"`
	Account              *bool       `yaml:"account"`
	DoNotReset           *bool       `yaml:"do_not_reset"` // the account, or any other the mail names, is do_not_reset
	Intent               []string    `yaml:"intent"`
	Colour               []string    `yaml:"colour"`
	OrderMatched         *bool       `yaml:"order_matched"`
	SenderIsAdmin        *bool       `yaml:"sender_is_admin"`
	SenderIsPartnerAdmin *bool       `yaml:"sender_is_partner_admin"`
	DomainNamed          *bool       `yaml:"domain_named"`
	UsernameNamed        *bool       `yaml:"username_named"`
	Any                  []Condition `yaml:"any"`
}

// Dispositions with a fixed meaning outside the table.
const (
	DispositionIgnored    = "ignored"
	DispositionDeadletter = "deadletter"
	DispositionUnmatched  = "unmatched"
)

// DefaultPolicy returns the compiled default policy.
func DefaultPolicy() *Policy {
	p, err := ParsePolicy("default policy", defaultPolicyYAML)
	if err != nil {
		panic(fmt.Sprintf("rules: the embedded default policy is invalid: %v", err)) // a build defect, caught by tests
	}
	return p
}

// LoadPolicy reads and compiles a policy file.
func LoadPolicy(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	return ParsePolicy(path, b)
}

// ParsePolicy compiles a policy from YAML. name is used in error messages,
// which have the form "name:line: field: problem".
func ParsePolicy(name string, data []byte) (*Policy, error) {
	var f policyFile
	root, err := decodeYAML(name, data, &f)
	if err != nil {
		return nil, err
	}
	if root.Kind == 0 {
		return nil, fmt.Errorf("%s: empty policy", name)
	}
	v := validator{name: name, root: root}
	v.policy(&f)
	answers := v.answers(&f)
	if err := v.err(); err != nil {
		return nil, err
	}
	return &Policy{
		answers:          answers,
		file:             f,
		matcher:          newMatcher(&f),
		connectors:       foldedSet(f.Redaction.Connectors),
		harmless:         foldedSet(f.Redaction.HarmlessWords),
		qualifiers:       foldedSet(f.Redaction.Qualifiers),
		gluedConnectors:  spacelessWords(f.Redaction.Connectors, endsSpaceless),
		harmlessPrefixes: spacelessWords(f.Redaction.HarmlessWords, startsSpaceless),
	}, nil
}

func foldedSet(words []string) map[string]bool {
	set := make(map[string]bool, len(words))
	for _, w := range words {
		set[fold(strings.TrimSpace(w))] = true
	}
	return set
}

// spacelessWords returns, folded, those of words for which is holds (is
// tells whether a word is written in a script without spaces), longest
// first so that the longest match wins.
func spacelessWords(words []string, is func(string) bool) []string {
	var out []string
	for _, w := range words {
		if f := fold(strings.TrimSpace(w)); is(f) && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

func startsSpaceless(w string) bool {
	r, _ := utf8.DecodeRuneInString(w)
	return spaceless(r)
}

func endsSpaceless(w string) bool {
	r, _ := utf8.DecodeLastRuneInString(w)
	return spaceless(r)
}

// decodeYAML decodes data strictly into v, the way the policy is read
// (unknown keys are errors, and every error reads "name:line: field:
// problem"), and returns the document's node tree.
func decodeYAML(name string, data []byte, v any) (*yaml.Node, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlerr.Wrap(name, nil, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlerr.Wrap(name, &root, err)
	}
	return &root, nil
}

// validator collects semantic errors with the line of the offending node.
type validator struct {
	name string
	root *yaml.Node
	errs []string
}

func (v *validator) err() error {
	if len(v.errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(v.errs, "\n"))
}

// fail records a problem at path (keys and indexes below the document root).
func (v *validator) fail(path []any, format string, args ...any) {
	line := nodeAt(v.root, path)
	var field strings.Builder
	for _, p := range path {
		switch p := p.(type) {
		case int:
			fmt.Fprintf(&field, "[%d]", p)
		case string:
			if field.Len() > 0 {
				field.WriteByte('.')
			}
			field.WriteString(p)
		}
	}
	v.errs = append(v.errs, fmt.Sprintf("%s:%d: %s: %s", v.name, line, field.String(), fmt.Sprintf(format, args...)))
}

// nodeAt returns the line of the deepest node that exists along path.
func nodeAt(n *yaml.Node, path []any) int {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range path {
		var next *yaml.Node
		switch p := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == p {
						next = n.Content[i+1]
						line = n.Content[i].Line
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && p < len(n.Content) {
				next = n.Content[p]
			}
		}
		if next == nil {
			return line
		}
		n, line = next, next.Line
	}
	return line
}

// templateVars are the placeholders guidance texts may use.
var templateVars = []string{"{account}", "{account_name}", "{admin_email}", "{partner}", "{partner_admin_email}", "{reason}"}

func (v *validator) policy(f *policyFile) {
	if f.Version != 1 {
		v.fail([]any{"version"}, "want 1, got %d", f.Version)
	}
	intents := map[string]bool{}
	for i, in := range f.Intents {
		at := []any{"intents", i}
		switch {
		case in.Name == "":
			v.fail(append(at, "name"), "missing")
		case intents[in.Name]:
			v.fail(append(at, "name"), "intent %q defined twice", in.Name)
		}
		intents[in.Name] = true
		v.keywords(append(at, "keywords"), in.Keywords)
		for j := range in.Near {
			v.near(append(at, "near", j), &in.Near[j])
		}
	}
	if !intents[f.DefaultIntent] {
		v.fail([]any{"default_intent"}, "%q is not one of the intents", f.DefaultIntent)
	}
	if l := f.Extraction.OrderNumberLength; l.Min < 3 || l.Max < l.Min {
		v.fail([]any{"extraction", "order_number_length"}, "want 3 <= min <= max, got min %d max %d", l.Min, l.Max)
	}
	v.keywords([]any{"extraction", "username_cues"}, f.Extraction.UsernameCues)
	v.keywords([]any{"redaction", "password_cues"}, f.Redaction.PasswordCues)
	for i, name := range f.Ignore.HeaderFields {
		if !validFieldName(name) {
			v.fail([]any{"ignore", "header_fields", i}, "%q is not a header field name: want printable ASCII without ':' or space", name)
		}
	}
	v.singleWords([]any{"redaction", "connectors"}, f.Redaction.Connectors)
	v.singleWords([]any{"redaction", "harmless_words"}, f.Redaction.HarmlessWords)
	v.singleWords([]any{"redaction", "qualifiers"}, f.Redaction.Qualifiers)
	for key, l := range map[string]rateLimit{"per_sender": f.RateLimits.PerSender, "per_account": f.RateLimits.PerAccount} {
		if l.Requests < 0 || l.Requests > 0 && l.Per <= 0 {
			v.fail([]any{"rate_limits", key}, "want requests >= 0 and, with requests, a duration per > 0; got %d per %s", l.Requests, l.Per)
		}
	}
	if len(f.Rows) == 0 {
		v.fail([]any{"rows"}, "the decision table is empty")
	}
	ids := map[int]bool{}
	for i, r := range f.Rows {
		at := []any{"rows", i}
		if ids[r.ID] {
			v.fail(append(at, "id"), "row id %d used twice", r.ID)
		}
		ids[r.ID] = true
		if !validToken(r.Disposition) {
			v.fail(append(at, "disposition"), "%q is not a valid disposition: want lower-case letters, digits and hyphens", r.Disposition)
		}
		if r.Disposition == DispositionDeadletter {
			v.fail(append(at, "disposition"), "%q is reserved for mail that cannot be parsed", r.Disposition)
		}
		v.condition(append(at, "when"), &r.When, intents)
		v.templates(append(at, "guidance"), r.Guidance)
	}
	for i, d := range f.IdentifiedDispositions {
		if !slices.ContainsFunc(f.Rows, func(r Row) bool { return r.Disposition == d }) {
			v.fail([]any{"identified_dispositions", i}, "%q is no row's disposition", d)
		}
	}
	n := &f.Notes
	for key, lines := range map[string][]Line{
		"always": n.Always, "identified": n.Identified, "not_identified": n.NotIdentified,
		"reset_goes_to_admin": n.ResetGoesToAdmin, "from_ambiguous": n.FromAmbiguous,
		"display_name_spoof": n.DisplayNameSpoof, "lookalike_sender": n.LookalikeSender, "reply_to_differs": n.ReplyToDiffers,
		"key_exposed": n.KeyExposed, "several_accounts": n.SeveralAccounts, "names_do_not_reset": n.NamesDoNotReset, "parse_problems": n.ParseProblems,
		"rate_limited": n.RateLimited,
	} {
		v.templates([]any{"notes", key}, lines)
	}
}

// answers compiles the answers section against the decision table,
// recording its problems at their lines.
func (v *validator) answers(f *policyFile) *answer.Set {
	table := answer.Table{Dispositions: []string{DispositionIgnored, DispositionDeadletter, DispositionUnmatched}, Rows: map[int]string{}}
	for _, r := range f.Rows {
		table.Rows[r.ID] = r.Disposition
		if !slices.Contains(table.Dispositions, r.Disposition) {
			table.Dispositions = append(table.Dispositions, r.Disposition)
		}
	}
	set, problems := answer.Compile(&f.Answers, table)
	for _, p := range problems {
		v.fail(append([]any{"answers"}, p.Path...), "%s", p.Msg)
	}
	return set
}

// Answers returns the policy's compiled answers: what is sent
// automatically, in which languages, and the reply templates of the desk.
// A policy without an answers section sends nothing and offers none.
func (p *Policy) Answers() *answer.Set { return p.answers }

func (v *validator) keywords(at []any, byLang map[string][]string) {
	for lang, words := range byLang {
		for i, w := range words {
			if len(fold(strings.TrimSpace(w))) < 2 {
				v.fail(append(at, lang, i), "keyword %q is too short", w)
			}
		}
	}
}

// near checks a proximity rule: a distance in range, words on both
// sides, and no word on both (it would be near itself).
func (v *validator) near(at []any, n *nearDef) {
	if n.Within < 1 || n.Within > maxNearWithin {
		v.fail(append(at, "within"), "want 1 to %d characters, got %d", maxNearWithin, n.Within)
	}
	words := map[string]bool{}
	for key, side := range map[string]map[string][]string{"words": n.Words, "with": n.With} {
		count := 0
		for _, ws := range side {
			count += len(ws)
		}
		if count == 0 {
			v.fail(append(at, key), "no words: a proximity rule needs words on both sides")
		}
		v.keywords(append(at, key), side)
	}
	for _, ws := range n.Words {
		for _, w := range ws {
			words[fold(strings.TrimSpace(w))] = true
		}
	}
	for _, lang := range slices.Sorted(maps.Keys(n.With)) {
		for i, w := range n.With[lang] {
			if words[fold(strings.TrimSpace(w))] {
				v.fail(append(at, "with", lang, i), "%q is also in words: a word would be near itself", w)
			}
		}
	}
}

// singleWords checks a list of words that are compared whole with one
// word of a mail: none may be blank or hold a space.
func (v *validator) singleWords(at []any, words []string) {
	for i, w := range words {
		switch f := fold(strings.TrimSpace(w)); {
		case f == "":
			v.fail(append(at, i), "blank")
		case strings.Contains(f, " "):
			v.fail(append(at, i), "%q has a space: want one word", w)
		case len(strings.TrimSpace(w)) > maxWordBytes:
			v.fail(append(at, i), "%q is longer than %d bytes", w, maxWordBytes)
		}
	}
}

func (v *validator) condition(at []any, c *Condition, intents map[string]bool) {
	for i, in := range c.Intent {
		if !intents[in] {
			v.fail(append(at, "intent", i), "unknown intent %q", in)
		}
	}
	for i, col := range c.Colour {
		if !slices.Contains(accounts.Colours, col) && col != ColourUnknown {
			v.fail(append(at, "colour", i), "unknown colour %q (want one of %s)", col, strings.Join(accounts.Colours, ", "))
		}
	}
	for i := range c.Any {
		v.condition(append(at, "any", i), &c.Any[i], intents)
	}
}

func (v *validator) templates(at []any, lines []Line) {
	for i, l := range lines {
		rest := l.Text
		for _, t := range templateVars {
			rest = strings.ReplaceAll(rest, t, "")
		}
		if j := strings.IndexByte(rest, '{'); j >= 0 {
			end := strings.IndexByte(rest[j:], '}')
			if end < 0 {
				end = len(rest) - j - 1
			}
			v.fail(append(at, i), "unknown placeholder %s (want one of %s)", rest[j:j+end+1], strings.Join(templateVars, " "))
		}
	}
}

// validFieldName reports whether s is an RFC 5322 field name: printable
// US-ASCII other than the colon.
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

// validToken reports whether s can be one token of a NATS subject and a
// readable name: lower-case letters, digits and inner hyphens.
func validToken(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
