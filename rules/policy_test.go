package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestDefaultPolicyCompiles(t *testing.T) {
	p := DefaultPolicy()
	if p == nil || p.matcher == nil {
		t.Fatal("DefaultPolicy() has no matcher")
	}
	if p.file.Version != 1 || p.file.DefaultIntent != "password-reset" {
		t.Errorf("version %d default_intent %q", p.file.Version, p.file.DefaultIntent)
	}
	var intents []string
	for _, in := range p.file.Intents {
		intents = append(intents, in.Name)
		for _, lang := range []string{"en", "de", "fr", "es", "it", "nl", "pt"} {
			if len(in.Keywords[lang]) < 2 {
				t.Errorf("intent %s has %d %s keywords, want at least 2", in.Name, len(in.Keywords[lang]), lang)
			}
		}
	}
	slices.Sort(intents)
	if want := []string{"code-signing", "other", "password-disclosure", "password-reset", "username-reminder"}; !slices.Equal(intents, want) {
		t.Errorf("intents = %q, want %q", intents, want)
	}
	if got := p.file.IdentifiedDispositions; !slices.Equal(got, []string{"verified", "self-service"}) {
		t.Errorf("identified_dispositions = %q", got)
	}
	if !p.connectors["is"] || !p.connectors["etait"] || !p.harmless["oublie"] || !p.harmless["not"] {
		t.Errorf("connectors and harmless words must be folded sets: %v %v", p.connectors, p.harmless)
	}
}

// The shipped table is POLICY.md's: 14 rows, in order.
func TestDefaultPolicyRowsFollowPolicyMD(t *testing.T) {
	rows := DefaultPolicy().file.Rows
	tr, fa := true, false
	want := []struct {
		disposition string
		when        Condition
	}{
		{"ignored", Condition{Ignored: &tr}},
		{"blocked", Condition{DoNotReset: &tr}}, // the account, or any the mail names
		{"code-signing", Condition{Intent: []string{"code-signing"}}},
		{"verified", Condition{Colour: []string{"blue"}, SenderIsPartnerAdmin: &tr}},
		{"refer-to-web-host", Condition{Colour: []string{"blue"}}},
		{"verified", Condition{Colour: []string{"red"}, SenderIsPartnerAdmin: &tr}},
		{"refer-to-reseller", Condition{Colour: []string{"red"}}},
		{"self-service", Condition{Colour: []string{"pink"}, OrderMatched: &tr}},
		{"verified", Condition{Colour: []string{"pink"}, SenderIsAdmin: &tr, DomainNamed: &tr}},
		{"needs-verification", Condition{Colour: []string{"pink"}}},
		{"self-service", Condition{Colour: []string{"green", "dark-green"}, OrderMatched: &tr,
			Any: []Condition{{SenderIsAdmin: &tr}, {UsernameNamed: &tr}}}},
		{"verified", Condition{Colour: []string{"green", "dark-green"}, SenderIsAdmin: &tr}},
		{"needs-verification", Condition{Colour: []string{"green", "dark-green"}}},
		{"unmatched", Condition{Account: &fa}},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for i, r := range rows {
		if r.ID != i+1 || r.Disposition != want[i].disposition || !reflect.DeepEqual(r.When, want[i].when) {
			t.Errorf("row %d = id %d %s %+v; want id %d %s %+v", i, r.ID, r.Disposition, r.When, i+1, want[i].disposition, want[i].when)
		}
		if len(r.Guidance) == 0 {
			t.Errorf("row %d has no guidance", r.ID)
		}
	}
}

func TestDefaultPolicyYAMLRoundTrip(t *testing.T) {
	y := DefaultPolicyYAML()
	p, err := ParsePolicy("copy.yaml", y)
	if err != nil {
		t.Fatal(err)
	}
	d := DefaultPolicy()
	if !reflect.DeepEqual(p.file, d.file) {
		t.Error("DefaultPolicyYAML() parses to a different policy file than DefaultPolicy()")
	}
	if !reflect.DeepEqual(p.connectors, d.connectors) || !reflect.DeepEqual(p.harmless, d.harmless) || len(p.matcher.keywords) != len(d.matcher.keywords) {
		t.Error("DefaultPolicyYAML() compiles to different word lists than DefaultPolicy()")
	}
	// The bytes are a copy: changing them changes neither the next copy
	// nor the default policy.
	y[0] = 'X'
	if again := DefaultPolicyYAML(); bytes.Equal(again, y) || !bytes.Equal(again, defaultPolicyYAML) {
		t.Error("DefaultPolicyYAML() returns the embedded bytes, not a copy")
	}
	// Through a file too.
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, DefaultPolicyYAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	lp, err := LoadPolicy(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(lp.file, d.file) {
		t.Error("LoadPolicy(copy of default) differs from DefaultPolicy()")
	}
}

func TestLoadPolicyMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-policy.yaml")
	_, err := LoadPolicy(path)
	if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadPolicy(missing) error = %v; want one naming %s and wrapping fs.ErrNotExist", err, path)
	}
}

// polTestBase is a small valid policy the error cases change.
const polTestBase = `version: 1
default_intent: password-reset
intents:
  - name: password-reset
    keywords:
      en: [reset my password, forgot password]
      de:
        - passwort vergessen
        - kennwort vergessen
  - name: other
    keywords:
      en: [invoice]
extraction:
  order_number_length: {min: 5, max: 20}
  username_cues:
    en: [username]
redaction:
  password_cues:
    en: [password]
  connectors: [is]
  harmless_words: [not]
rows:
  - id: 1
    when: {intent: [other]}
    disposition: ignored
    guidance: ["No reply for {account}."]
  - id: 2
    when:
      colour: [green, dark-green]
      any:
        - {sender_is_admin: true}
        - {username_named: true}
    disposition: verified
    guidance:
      - "Reset allowed for {account_name}."
      - "Reset goes to {admin_email}."
  - id: 3
    when: {account: false}
    disposition: unmatched
    guidance: [Locate the order by hand.]
notes:
  always: ["Never give out passwords."]
  from_ambiguous: ["Ambiguous ({reason})."]
identified_dispositions: [verified]
`

func TestParsePolicyBase(t *testing.T) {
	p, err := ParsePolicy("p.yaml", []byte(polTestBase))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.file.Rows) != 3 || p.file.Rows[1].Disposition != "verified" || len(p.file.Rows[1].When.Any) != 2 {
		t.Errorf("rows = %+v", p.file.Rows)
	}
}

// A proximity rule of a custom policy decides its intent: the rule is
// data, like the keywords.
func TestParsePolicyNear(t *testing.T) {
	data := strings.Replace(polTestBase, "      en: [invoice]\n",
		"      en: [invoice]\n    near:\n      - within: 10\n        words: {en: [bill], fr: [note]}\n        with: {de: [zahlung]}\n", 1)
	p, err := ParsePolicy("p.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ text, want string }{
		{"the bill and Zahlung", "other"},
		{"Zahlung: note", "other"},
		{"the bill, and then much later the Zahlung", "password-reset"},
		{"the bill\n\nZahlung", "password-reset"},
		{"reset my password, bill Zahlung", "password-reset"}, // the first intent in policy order wins
	} {
		if got, why := p.intent(p.matcher.find(tt.text)); got != tt.want {
			t.Errorf("intent(%q) = %s (%s), want %s", tt.text, got, why, tt.want)
		}
	}
}

func TestParsePolicyErrors(t *testing.T) {
	tests := []struct {
		name    string
		old     string // replaced in polTestBase (first occurrence)
		new     string
		line    string // the error's line is the first line containing this, after the change
		field   string
		problem string
	}{
		{"wrong version", "version: 1", "version: 2", "version: 2", "version", "want 1, got 2"},
		{"missing version", "version: 1\n", "", "default_intent", "version", "want 1, got 0"},
		{"unknown intent in a row", "when: {intent: [other]}", "when: {intent: [othr]}", "othr",
			"rows[0].when.intent[0]", `unknown intent "othr"`},
		{"unknown intent in any", "- {username_named: true}", "- {intent: [nope]}", "nope",
			"rows[1].when.any[1].intent[0]", `unknown intent "nope"`},
		{"unknown colour in a row", "colour: [green, dark-green]", "colour: [green, purple]", "purple",
			"rows[1].when.colour[1]", `unknown colour "purple"`},
		{"colour in upper case", "colour: [green, dark-green]", "colour: [Green, dark-green]", "Green",
			"rows[1].when.colour[0]", `unknown colour "Green"`},
		{"disposition in upper case", "disposition: verified", "disposition: Verified", "Verified",
			"rows[1].disposition", `"Verified" is not a valid disposition`},
		{"disposition with a dot", "disposition: verified", "disposition: green.verified", "green.verified",
			"rows[1].disposition", `"green.verified" is not a valid disposition`},
		{"disposition with a space", "disposition: verified", "disposition: needs verification", "needs verification",
			"rows[1].disposition", `"needs verification" is not a valid disposition`},
		{"disposition with a wildcard", "disposition: verified", "disposition: '>'", "'>'",
			"rows[1].disposition", `">" is not a valid disposition`},
		{"disposition with a leading hyphen", "disposition: verified", "disposition: -x", "-x",
			"rows[1].disposition", `"-x" is not a valid disposition`},
		{"empty disposition", "disposition: verified", "disposition: ''", "disposition: ''",
			"rows[1].disposition", `"" is not a valid disposition`},
		{"missing disposition", "    disposition: verified\n", "", "id: 2",
			"rows[1].disposition", `"" is not a valid disposition`},
		{"reserved deadletter", "disposition: verified", "disposition: deadletter", "deadletter",
			"rows[1].disposition", `"deadletter" is reserved`},
		{"header field with a colon", "rows:\n", "ignore:\n  header_fields: [List-Id, 'X-Autoreply:']\nrows:\n", "header_fields",
			"ignore.header_fields[1]", `"X-Autoreply:" is not a header field name`},
		{"header field with a space", "rows:\n", "ignore:\n  header_fields: [List Id]\nrows:\n", "header_fields",
			"ignore.header_fields[0]", `"List Id" is not a header field name`},
		{"duplicate row id", "id: 3", "id: 1", "id: 1\n    when: {account", "rows[2].id", "row id 1 used twice"},
		{"unknown placeholder in guidance", "Reset goes to {admin_email}.", "Reset goes to {foo}.", "{foo}",
			"rows[1].guidance[1]", "unknown placeholder {foo}"},
		{"unclosed placeholder in guidance", "No reply for {account}.", "No reply for {account.", "No reply for",
			"rows[0].guidance[0]", "unknown placeholder {account."},
		{"unknown placeholder in notes", "Ambiguous ({reason}).", "Ambiguous ({why}).", "{why}",
			"notes.from_ambiguous[0]", "unknown placeholder {why}"},
		{"default_intent not among intents", "default_intent: password-reset", "default_intent: pasword-reset", "default_intent",
			"default_intent", `"pasword-reset" is not one of the intents`},
		{"intent without a name", "  - name: other\n", "  - name: ''\n", "name: ''", "intents[1].name", "missing"},
		{"intent defined twice", "  - name: other\n", "  - name: password-reset\n", "  - name: password-reset\n    keywords:\n      en: [invoice]",
			"intents[1].name", `intent "password-reset" defined twice`},
		{"empty rows", polTestBase[strings.Index(polTestBase, "rows:"):strings.Index(polTestBase, "notes:")], "rows: []\n", "rows: []",
			"rows", "the decision table is empty"},
		{"keyword too short", "en: [invoice]", "en: [invoice, x]", "en: [invoice, x]",
			"intents[1].keywords.en[1]", `keyword "x" is too short`},
		{"keyword blank", "        - kennwort vergessen", "        - '  é '", "'  é '",
			"intents[0].keywords.de[1]", "is too short"},
		{"username cue too short", "en: [username]", "en: [u]", "en: [u]",
			"extraction.username_cues.en[0]", `keyword "u" is too short`},
		{"password cue too short", "en: [password]", "en: [p]", "en: [p]",
			"redaction.password_cues.en[0]", `keyword "p" is too short`},
		{"order_number_length min too small", "{min: 5, max: 20}", "{min: 2, max: 20}", "order_number_length",
			"extraction.order_number_length", "want 3 <= min <= max, got min 2 max 20"},
		{"order_number_length max below min", "{min: 5, max: 20}", "{min: 8, max: 6}", "order_number_length",
			"extraction.order_number_length", "got min 8 max 6"},
		// A missing key is reported at the mapping that should hold it.
		{"order_number_length missing", "  order_number_length: {min: 5, max: 20}\n", "", "username_cues:",
			"extraction.order_number_length", "got min 0 max 0"},
		// Proximity rules of an intent.
		{"near within zero", "      en: [invoice]\n", "      en: [invoice]\n    near:\n      - within: 0\n        words: {en: [password]}\n        with: {en: [pfx]}\n",
			"within: 0", "intents[1].near[0].within", "want 1 to 500 characters, got 0"},
		{"near within missing", "      en: [invoice]\n", "      en: [invoice]\n    near:\n      - words: {en: [password]}\n        with: {en: [pfx]}\n",
			"- words:", "intents[1].near[0].within", "want 1 to 500 characters, got 0"},
		{"near within too large", "      en: [invoice]\n", "      en: [invoice]\n    near:\n      - within: 5000\n        words: {en: [password]}\n        with: {en: [pfx]}\n",
			"within: 5000", "intents[1].near[0].within", "want 1 to 500 characters, got 5000"},
		{"near without words", "      en: [invoice]\n", "      en: [invoice]\n    near:\n      - within: 40\n        with: {en: [pfx]}\n",
			"within: 40", "intents[1].near[0].words", "no words"},
		{"near with empty with", "      en: [invoice]\n", "      en: [invoice]\n    near:\n      - within: 40\n        words: {en: [password]}\n        with: {en: []}\n",
			"with: {en: []}", "intents[1].near[0].with", "no words"},
		{"near word too short", "      en: [invoice]\n", "      en: [invoice]\n    near:\n      - within: 40\n        words: {en: [password]}\n        with: {en: [pfx, x]}\n",
			"with: {en: [pfx, x]}", "intents[1].near[0].with.en[1]", `keyword "x" is too short`},
		{"near word on both sides", "      en: [invoice]\n", "      en: [invoice]\n    near:\n      - within: 40\n        words: {en: [password, PFX]}\n        with:\n          de: [pfx]\n",
			"de: [pfx]", "intents[1].near[0].with.de[0]", `"pfx" is also in words`},
		// Redaction word lists: single words, not blank.
		{"connector blank", "connectors: [is]", "connectors: [is, ' ']", "connectors: [is, ' ']",
			"redaction.connectors[1]", "blank"},
		{"connector with a space", "connectors: [is]", "connectors: [is, is not]", "connectors: [is, is not]",
			"redaction.connectors[1]", `"is not" has a space: want one word`},
		{"harmless word blank", "harmless_words: [not]", "harmless_words: ['', not]", "harmless_words: ['', not]",
			"redaction.harmless_words[0]", "blank"},
		{"qualifier with a space", "harmless_words: [not]", "harmless_words: [not]\n  qualifiers: [for, for the]", "qualifiers:",
			"redaction.qualifiers[1]", `"for the" has a space: want one word`},
		{"identified_dispositions naming no row", "identified_dispositions: [verified]", "identified_dispositions: [verified, self-servce]",
			"identified_dispositions", "identified_dispositions[1]", `"self-servce" is no row's disposition`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			polTestCheckError(t, polTestBase, tt.old, tt.new, tt.line, tt.field, tt.problem)
		})
	}
}

// polTestCheckError changes the first old in base to new, parses it, and
// checks that the error has a line "p.yaml:LINE: field: ...problem...",
// LINE being the first line of the changed policy that contains at.
func polTestCheckError(t *testing.T, base, old, new, at, field, problem string) {
	t.Helper()
	if !strings.Contains(base, old) {
		t.Fatalf("base has no %q", old)
	}
	data := strings.Replace(base, old, new, 1)
	i := strings.Index(data, at)
	if i < 0 {
		t.Fatalf("changed policy has no %q", at)
	}
	line := strings.Count(data[:i], "\n") + 1
	_, err := ParsePolicy("p.yaml", []byte(data))
	if err == nil {
		t.Fatalf("ParsePolicy = nil error; want p.yaml:%d: %s: %s", line, field, problem)
	}
	want := fmt.Sprintf("p.yaml:%d: %s: ", line, field)
	lines := strings.Split(err.Error(), "\n")
	if !slices.ContainsFunc(lines, func(l string) bool {
		return strings.HasPrefix(l, want) && strings.Contains(l[len(want):], problem)
	}) {
		t.Errorf("error\n%s\nhas no line %q...%q", err, want, problem)
	}
}

// Errors that yaml.v3 reports (unknown keys, wrong types, syntax) must have
// the same "NAME:LINE: field: problem" form as the validator's.
func TestParsePolicyDecodeErrors(t *testing.T) {
	tests := []struct {
		name, old, new string
		want           *regexp.Regexp
	}{
		{"unknown top-level key", "default_intent: password-reset\n", "default_intent: password-reset\ncolours: [green]\n",
			regexp.MustCompile(`^p\.yaml:3: colours: .*(unknown|not found)`)},
		{"unknown key in a row", "    disposition: ignored\n", "    disposition: ignored\n    priority: 1\n",
			regexp.MustCompile(`^p\.yaml:26: (rows\[0\]\.)?priority: .*(unknown|not found)`)},
		{"unknown condition", "when: {intent: [other]}", "when: {intent: [other], sender_is_owner: true}",
			regexp.MustCompile(`^p\.yaml:24: (rows\[0\]\.when\.)?sender_is_owner: .*(unknown|not found)`)},
		{"wrong type", "version: 1", "version: one",
			regexp.MustCompile(`^p\.yaml:1: version: `)},
		{"syntax error", "rows:\n", "rows:\n  - id: [\n",
			regexp.MustCompile(`^p\.yaml:\d+: `)},
	}
	var bugs []string
	for _, tt := range tests {
		data := strings.Replace(polTestBase, tt.old, tt.new, 1)
		_, err := ParsePolicy("p.yaml", []byte(data))
		switch {
		case err == nil:
			t.Errorf("%s: ParsePolicy = nil error", tt.name)
		case !tt.want.MatchString(err.Error()):
			bugs = append(bugs, fmt.Sprintf("%s: got %q, want match %s", tt.name, err, tt.want))
		}
	}
	if len(bugs) > 0 {
		t.Errorf("fixed bug regressed: ParsePolicy formats yaml.v3 errors as \"NAME: LINE: yaml message\" (\"%%s: %%w\" with yamlError), not NAME:LINE: field: problem:\n%s", strings.Join(bugs, "\n"))
	}
}

func TestParsePolicyEmpty(t *testing.T) {
	for _, data := range []string{"", "# only a comment\n", "\n\n"} {
		if _, err := ParsePolicy("p.yaml", []byte(data)); err == nil || !strings.HasPrefix(err.Error(), "p.yaml") {
			t.Errorf("ParsePolicy(%q) error = %v, want an error naming p.yaml", data, err)
		}
	}
}

// Several problems are all reported, each on its own line.
func TestParsePolicySeveralErrors(t *testing.T) {
	data := strings.NewReplacer(
		"version: 1", "version: 3",
		"disposition: ignored", "disposition: deadletter",
		"colour: [green, dark-green]", "colour: [mauve]",
	).Replace(polTestBase)
	_, err := ParsePolicy("p.yaml", []byte(data))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"p.yaml:1: version:", "p.yaml:25: rows[0].disposition:", "p.yaml:29: rows[1].when.colour[0]:"} {
		if !slices.ContainsFunc(strings.Split(err.Error(), "\n"), func(l string) bool { return strings.HasPrefix(l, want) }) {
			t.Errorf("error\n%s\nhas no line starting %q", err, want)
		}
	}
}

// An error about one entry of a block list should point at that entry.
func TestParsePolicyIdentifiedDispositionsLine(t *testing.T) {
	data := strings.Replace(polTestBase, "identified_dispositions: [verified]\n", "identified_dispositions:\n  - verified\n  - self-servce\n", 1)
	_, err := ParsePolicy("p.yaml", []byte(data))
	if err == nil {
		t.Fatal("no error")
	}
	line := strings.Count(data[:strings.Index(data, "- self-servce")], "\n") + 1
	if want := fmt.Sprintf("p.yaml:%d: identified_dispositions[1]: ", line); !strings.HasPrefix(err.Error(), want) {
		t.Errorf("fixed bug regressed: error %q, want prefix %q: validator.policy fails at [identified_dispositions] without the index, so the line is the key's, not the entry's", err, want)
	}
}

func TestValidToken(t *testing.T) {
	for _, tt := range []struct {
		s  string
		ok bool
	}{
		{"verified", true}, {"refer-to-web-host", true}, {"row2", true}, {"a", true},
		{"", false}, {"-a", false}, {"a-", false}, {"A", false}, {"a.b", false}, {"a b", false},
		{"a_b", false}, {"*", false}, {">", false}, {"é", false},
	} {
		if got := validToken(tt.s); got != tt.ok {
			t.Errorf("validToken(%q) = %v, want %v", tt.s, got, tt.ok)
		}
	}
}
