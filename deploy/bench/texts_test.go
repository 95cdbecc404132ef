package main

import (
	"strings"
	"testing"
)

// TestTexts checks the embedded texts.yaml: every language the generator
// expects, each with something to pick for every intent.
func TestTexts(t *testing.T) {
	langs, err := languages()
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	total := 0
	for _, l := range langs {
		codes = append(codes, l.code)
		total += l.weight
		if len(l.supportReply) == 0 {
			t.Errorf("%s: no support replies", l.code)
		}
	}
	if got, want := strings.Join(codes, " "), "en-GB de-DE fr-FR es-ES it-IT nl-NL pt-BR ja-JP"; got != want {
		t.Errorf("languages %s, want %s", got, want)
	}
	if total != 100 {
		t.Errorf("the weights add up to %d, want 100", total)
	}
	if !strings.HasPrefix(outlookStyle, "<html ") || !strings.HasSuffix(outlookStyle, "<div class=\"WordSection1\">\n") {
		t.Errorf("outlook.html is not the HTML prelude: %.40q...%q", outlookStyle, outlookStyle[max(0, len(outlookStyle)-30):])
	}
}

// validTexts is a small texts file in the layout of texts.yaml, for the
// intent "a"; the cases of TestParseTextsErrors change a line of it.
const validTexts = `support_replies: [We will reply.]
languages:
  - code: en
    weight: 1
    intents:
      a: [Hello]
    subjects:
      a: [Hi]
    ref_order: ['Order {order}.']
    ref_domain: ['Domain {domain}.']
    ref_username: ['User {username}.']
    on_behalf: ['For {cname}.']
    closing: [Regards,]
    quote_head: 'On {date}:'
    disclaimer: Confidential.
    auto_subject: 'Away: '
    auto_body: [I am away.]
    people: [{name: Ann Lee, local: ann}]
    freemail: [mail.example]
`

func TestParseTextsErrors(t *testing.T) {
	intents := []weighted{{"a", 1}}
	langs, err := parseTexts("t.yaml", []byte(validTexts), intents)
	if err != nil || len(langs) != 1 || langs[0].people[0] != (person{"Ann Lee", "ann"}) || langs[0].supportReply[0] != "We will reply." {
		t.Fatalf("the valid texts: %v, %+v", err, langs)
	}
	tests := []struct {
		name     string
		old, new string // the change to validTexts
		want     string // in the error
	}{
		{"syntax", "    weight: 1\n", "    weight: 1: 2\n", "t.yaml: yaml: line 4: mapping values are not allowed"},
		{"unknown field", "    weight: 1\n", "    wieght: 1\n", "line 4: field wieght not found"},
		{"wrong type", "    weight: 1\n", "    weight: many\n", "line 4: cannot unmarshal"},
		{"no weight", "    weight: 1\n", "", `t.yaml:3: language "en": weight 0`},
		{"zero weight", "    weight: 1\n", "    weight: 0\n", `t.yaml:4: language "en": weight 0`},
		{"no code", "  - code: en\n", "  - code: ''\n", `t.yaml:3: language "": no code`},
		{"intent without requests", "      a: [Hello]\n", "      a: []\n", `t.yaml:5: language "en": intents of a: none`},
		{"intent without subjects", "      a: [Hi]\n", "      b: [Hi]\n", `t.yaml:7: language "en": subjects of a: none`},
		{"unknown intent", "      a: [Hello]\n", "      a: [Hello]\n      pasword-reset: [Hi]\n", `t.yaml:7: language "en": intents: unknown intent "pasword-reset"`},
		{"empty list", "    closing: [Regards,]\n", "    closing: []\n", `t.yaml:13: language "en": closing: none`},
		{"empty entry", "    closing: [Regards,]\n", "    closing: [Regards, '']\n", `t.yaml:13: language "en": closing: entry 2 is empty`},
		{"no disclaimer", "    disclaimer: Confidential.\n", "", `t.yaml:3: language "en": no disclaimer`},
		{"person without address", "    people: [{name: Ann Lee, local: ann}]\n", "    people:\n      - {name: Ann Lee, local: ann}\n      - {name: Bo}\n", `t.yaml:20: language "en": person 2`},
		{"no support replies", "support_replies: [We will reply.]\n", "", "t.yaml:1: support_replies: none"},
		{"twice the same language", "    freemail: [mail.example]\n", "    freemail: [mail.example]\n" + strings.SplitN(validTexts, "\n", 3)[2], `t.yaml:20: language "en": listed twice`},
		{"no languages", validTexts, "support_replies: [x]\n", "t.yaml:1: no languages"},
		{"empty file", validTexts, "", "t.yaml:1: no languages"},
		{"languages not a list", validTexts, "support_replies: [x]\nlanguages: {code: en}\n", "line 2: cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(validTexts, tt.old) {
				t.Fatalf("%q is not in validTexts", tt.old)
			}
			data := strings.Replace(validTexts, tt.old, tt.new, 1)
			_, err := parseTexts("t.yaml", []byte(data), intents)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseTexts: %v, want an error with %q", err, tt.want)
			}
		})
	}
}
