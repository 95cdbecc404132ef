package main

// The words of the generated mailbox: the types the generator reads, and
// texts.yaml, where the prose is (what customers write to a certificate
// authority's support, in eight languages), parsed when the bench starts.

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// textsFile names texts.yaml in errors, as the repository knows it.
const textsFile = "deploy/bench/texts.yaml"

// textsYAML is the prose of the generated mails.
//
//go:embed texts.yaml
var textsYAML string

// outlookStyle is Outlook's HTML prelude: most of the weight of a real
// HTML support mail.
//
//go:embed outlook.html
var outlookStyle string

// language is everything the generator writes in one language.
type language struct {
	code     string // Content-Language
	weight   int    // share of the mails, out of the sum of weights
	japanese bool   // written in ISO-2022-JP, Shift_JIS or UTF-8, never wrapped
	// intents: the request itself, by intent.
	intents map[string][]string
	// subjects by intent.
	subjects map[string][]string
	// refOrder, refDomain, refUsername name the account: {order},
	// {domain}, {username}.
	refOrder, refDomain, refUsername []string
	// onBehalf: a partner writing for its customer {cname} ({domain}).
	onBehalf []string
	// secret: a customer pasting a password, {secret}; may be empty.
	secret  []string
	closing []string
	// quoteHead introduces a quoted earlier message: {date}.
	quoteHead string
	// supportReply is what support answered earlier (quoted back).
	supportReply []string
	disclaimer   string
	autoSubject  string // auto-reply subject prefix
	autoBody     []string
	people       []person
	freemail     []string // domains of unknown senders
}

// person is a writer: display name and the local part of the address.
type person struct{ name, local string }

// weighted is a choice and its share.
type weighted struct {
	name   string
	weight int
}

// intentWeights spreads mails over the intents (out of 100). Every
// language of texts.yaml has requests and subjects for each.
func intentWeights() []weighted {
	return []weighted{
		{"password-reset", 50}, {"username-reminder", 15}, {"code-signing", 10},
		{"password-disclosure", 7}, {"other", 18},
	}
}

// languages parses the embedded texts.yaml: a fresh copy each call.
func languages() ([]*language, error) {
	return parseTexts(textsFile, []byte(textsYAML), intentWeights())
}

// textsDoc is the layout of texts.yaml.
type textsDoc struct {
	SupportReplies []string       `yaml:"support_replies"`
	Languages      []languageText `yaml:"languages"`
}

// languageText is one language of texts.yaml (see language).
type languageText struct {
	Code        string              `yaml:"code"`
	Weight      int                 `yaml:"weight"`
	Japanese    bool                `yaml:"japanese"`
	Intents     map[string][]string `yaml:"intents"`
	Subjects    map[string][]string `yaml:"subjects"`
	RefOrder    []string            `yaml:"ref_order"`
	RefDomain   []string            `yaml:"ref_domain"`
	RefUsername []string            `yaml:"ref_username"`
	OnBehalf    []string            `yaml:"on_behalf"`
	Secret      []string            `yaml:"secret"`
	Closing     []string            `yaml:"closing"`
	QuoteHead   string              `yaml:"quote_head"`
	Disclaimer  string              `yaml:"disclaimer"`
	AutoSubject string              `yaml:"auto_subject"`
	AutoBody    []string            `yaml:"auto_body"`
	People      []struct {
		Name  string `yaml:"name"`
		Local string `yaml:"local"`
	} `yaml:"people"`
	Freemail []string `yaml:"freemail"`
}

// parseTexts parses texts in the layout of texts.yaml and checks that the
// generator finds everything it picks from, for each of intents: an error
// names the file (name) and the line.
func parseTexts(name string, data []byte, intents []weighted) ([]*language, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var doc textsDoc
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) { // EOF: no document, no languages
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	top := &root
	if top.Kind == yaml.DocumentNode && len(top.Content) > 0 {
		top = top.Content[0]
	}
	if len(doc.Languages) == 0 {
		return nil, fmt.Errorf("%s:%d: no languages", name, keyLine(top, "languages"))
	}
	if err := nonEmpty(doc.SupportReplies); err != nil {
		return nil, fmt.Errorf("%s:%d: support_replies: %w", name, keyLine(top, "support_replies"), err)
	}
	var items []*yaml.Node
	if v := valueOf(top, "languages"); v != nil {
		items = v.Content
	}
	seen := map[string]bool{}
	var langs []*language
	for i, lt := range doc.Languages {
		node := top
		if i < len(items) {
			node = items[i]
		}
		if err := checkLanguage(lt, node, intents, seen); err != nil {
			return nil, fmt.Errorf("%s:%w", name, err)
		}
		seen[lt.Code] = true
		langs = append(langs, lt.language(doc.SupportReplies))
	}
	return langs, nil
}

// checkLanguage checks one language; node is its mapping in the file. An
// error starts with the line, "12: ".
func checkLanguage(lt languageText, node *yaml.Node, intents []weighted, seen map[string]bool) error {
	fail := func(key, format string, args ...any) error {
		return fmt.Errorf("%d: language %q: %s", keyLine(node, key), lt.Code, fmt.Sprintf(format, args...))
	}
	switch {
	case lt.Code == "":
		return fail("code", "no code (Content-Language)")
	case seen[lt.Code]:
		return fail("code", "listed twice")
	case lt.Weight <= 0:
		return fail("weight", "weight %d: want a share above 0", lt.Weight)
	}
	for _, key := range []string{"intents", "subjects"} {
		m := lt.Intents
		if key == "subjects" {
			m = lt.Subjects
		}
		for _, in := range intents {
			if err := nonEmpty(m[in.name]); err != nil {
				return fail(key, "%s of %s: %v", key, in.name, err)
			}
		}
		for k := range m {
			if !knownIntent(intents, k) {
				return fmt.Errorf("%d: language %q: %s: unknown intent %q", keyLine(valueOf(node, key), k), lt.Code, key, k)
			}
		}
	}
	lists := []struct {
		key  string
		list []string
	}{
		{"ref_order", lt.RefOrder}, {"ref_domain", lt.RefDomain}, {"ref_username", lt.RefUsername},
		{"on_behalf", lt.OnBehalf}, {"closing", lt.Closing}, {"auto_body", lt.AutoBody}, {"freemail", lt.Freemail},
	}
	for _, l := range lists {
		if err := nonEmpty(l.list); err != nil {
			return fail(l.key, "%s: %v", l.key, err)
		}
	}
	for _, s := range []struct{ key, value string }{
		{"quote_head", lt.QuoteHead}, {"disclaimer", lt.Disclaimer}, {"auto_subject", lt.AutoSubject},
	} {
		if s.value == "" {
			return fail(s.key, "no %s", s.key)
		}
	}
	if len(lt.People) == 0 {
		return fail("people", "no people")
	}
	for i, p := range lt.People {
		if p.Name == "" || p.Local == "" {
			line := keyLine(node, "people")
			if v := valueOf(node, "people"); v != nil && i < len(v.Content) {
				line = v.Content[i].Line
			}
			return fmt.Errorf("%d: language %q: person %d: want a name and a local part", line, lt.Code, i+1)
		}
	}
	return nil
}

// language converts what the file says into what the generator reads.
func (lt languageText) language(supportReplies []string) *language {
	l := &language{
		code: lt.Code, weight: lt.Weight, japanese: lt.Japanese,
		intents: lt.Intents, subjects: lt.Subjects,
		refOrder: lt.RefOrder, refDomain: lt.RefDomain, refUsername: lt.RefUsername,
		onBehalf: lt.OnBehalf, secret: lt.Secret, closing: lt.Closing,
		quoteHead: lt.QuoteHead, supportReply: supportReplies, disclaimer: lt.Disclaimer,
		autoSubject: lt.AutoSubject, autoBody: lt.AutoBody, freemail: lt.Freemail,
	}
	for _, p := range lt.People {
		l.people = append(l.people, person{name: p.Name, local: p.Local})
	}
	return l
}

// nonEmpty checks that the generator can pick from list.
func nonEmpty(list []string) error {
	if len(list) == 0 {
		return errors.New("none")
	}
	for i, s := range list {
		if strings.TrimSpace(s) == "" {
			return fmt.Errorf("entry %d is empty", i+1)
		}
	}
	return nil
}

func knownIntent(intents []weighted, name string) bool {
	for _, in := range intents {
		if in.name == name {
			return true
		}
	}
	return false
}

// valueOf returns the value of key in mapping m, or nil.
func valueOf(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// keyLine returns the line of key in mapping m, or of m when it has no
// such key.
func keyLine(m *yaml.Node, key string) int {
	if m == nil || m.Line == 0 { // no document at all
		return 1
	}
	if m.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				return m.Content[i].Line
			}
		}
	}
	return m.Line
}
