// Package yamlerr words the errors of go.yaml.in/yaml/v3 for people who
// edit the file: "name:line: field.path: problem", one line per problem,
// with the type names of Go replaced by what a YAML writer knows.
package yamlerr

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// yamlLine matches the line of a yaml.v3 error message.
var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlUnmarshal matches yaml.v3's type errors.
var yamlUnmarshal = regexp.MustCompile("^cannot unmarshal !!(\\w+) (`.*`) into (.+)$")

// yamlNotFound matches yaml.v3's unknown-field errors.
var yamlNotFound = regexp.MustCompile(`^field (\S+) not found in type \S+$`)

// yamlKinds names YAML node tags for readers who do not know them.
var yamlKinds = map[string]string{"str": "a string", "int": "a number", "float": "a number", "bool": "true or false",
	"map": "a mapping", "seq": "a list", "null": "nothing"}

// Wrap turns a yaml.v3 error into "name:line: field: problem" lines,
// taking the field from the key written on that line of root.
func Wrap(name string, root *yaml.Node, err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	out := make([]string, 0, len(msgs))
	for _, msg := range msgs {
		m := yamlLine.FindStringSubmatch(msg)
		if m == nil {
			out = append(out, fmt.Sprintf("%s: %s", name, strings.TrimPrefix(msg, "yaml: ")))
			continue
		}
		line, problem := m[1], m[2]
		if u := yamlUnmarshal.FindStringSubmatch(problem); u != nil {
			kind := yamlKinds[u[1]]
			if kind == "" {
				kind = u[1]
			}
			problem = fmt.Sprintf("want %s, got %s %s", u[3], kind, u[2])
		}
		key := ""
		if nf := yamlNotFound.FindStringSubmatch(problem); nf != nil {
			key, problem = nf[1], "unknown field"
		}
		n, _ := strconv.Atoi(line)
		if field := pathAtLine(root, n, key); field != "" {
			problem = field + ": " + problem
		}
		out = append(out, fmt.Sprintf("%s:%s: %s", name, line, problem))
	}
	return errors.New(strings.Join(out, "\n"))
}

// pathAtLine returns the path ("rows[2].when.colour") of the deepest key
// written on line (named key, when key is not ""), or "".
func pathAtLine(n *yaml.Node, line int, key string) string {
	if n == nil {
		return ""
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if sub := pathAtLine(v, line, key); sub != "" {
				if sub[0] == '[' {
					return k.Value + sub
				}
				return k.Value + "." + sub
			}
			if k.Line == line && (key == "" || k.Value == key) {
				return k.Value
			}
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			if sub := pathAtLine(item, line, key); sub != "" {
				if sub[0] == '[' {
					return fmt.Sprintf("[%d]%s", i, sub)
				}
				return fmt.Sprintf("[%d].%s", i, sub)
			}
		}
	}
	return ""
}
