package config

import (
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ticketrouter/ticketrouter/ingest"
	"go.yaml.in/yaml/v3"
)

// decode decodes the file's YAML into c as far as it can: a value of the
// wrong kind, an unknown key or a key written twice is a problem of its
// own, and decoding goes on with the next key. It records the line of
// every key, and reports whether the YAML parsed at all (when it did not,
// there are no values worth checking).
func (c *Config) decode(data []byte) bool {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		c.src.add(syntaxError(c.src.file, data, err))
		return false
	}
	if len(root.Content) == 0 {
		return true // an empty file: every setting at its default
	}
	d := &decoder{src: c.src}
	d.value(root.Content[0], reflect.ValueOf(c).Elem(), "")
	return true
}

// decoder walks the YAML node tree along the Config type.
type decoder struct {
	src *source
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	secretType   = reflect.TypeFor[ingest.Secret]()
)

// value decodes n into v, the setting at path ("" for the whole file).
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // written empty: the default
	}
	switch {
	case v.Type() == durationType:
		d.leaf(n, v, path)
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(n, v.Elem(), path)
	case v.Kind() == reflect.Struct:
		d.mapping(n, v, path)
	case v.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(path, n.Line, "want a list, got %s", kindOf(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.src.lines[p] = item.Line
			d.value(item, s.Index(i), p)
		}
		v.Set(s)
	default:
		d.leaf(n, v, path)
	}
}

// mapping decodes a mapping into the struct v, key by key.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		what := "a mapping of settings"
		if v.Type() == secretType {
			what = "a mapping: {env: NAME}, {file: PATH} or {command: [ARGV...]}" // never the secret itself
		}
		d.fail(path, n.Line, "want %s, got %s", what, kindOf(n))
		return
	}
	d.keys(n, v, path, map[*yaml.Node]bool{n: true})
}

// keys decodes the keys of the mapping n into the struct v. merging holds
// the mappings merged into v so far: each is merged once, which keeps a
// merge of itself from looping and a tree of merges from growing
// exponentially.
func (d *decoder) keys(n *yaml.Node, v reflect.Value, path string, merging map[*yaml.Node]bool) {
	fields := fieldsOf(v.Type())
	// Merged mappings (<<: *anchor) first: the mapping's own keys win.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Tag == "!!merge" {
			for _, m := range merged(n.Content[i+1]) {
				switch {
				case merging[m]:
				case m.Kind != yaml.MappingNode:
					d.fail(path, k.Line, "<< merges a mapping, got %s", kindOf(m))
				default:
					merging[m] = true
					d.keys(m, v, path, merging)
				}
			}
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" {
			continue
		}
		p := join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			// The first value stands, and is checked as usual.
			d.src.problems = append(d.src.problems, &FieldError{File: d.src.file, Line: k.Line, Field: p,
				Msg: fmt.Sprintf("written twice (first on line %d)", first)})
			continue
		}
		seen[k.Value] = k.Line
		index, ok := fields[k.Value]
		if !ok {
			d.fail(p, k.Line, "unknown field%s", suggest(k.Value, path, fields))
			continue
		}
		d.src.lines[p] = k.Line
		d.value(val, v.FieldByIndex(index), p)
	}
}

// leaf decodes a scalar: text, a number, true or false, a duration.
func (d *decoder) leaf(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(path, n.Line, "want %s, got %s", want(v.Type()), kindOf(n))
		return
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		d.fail(path, n.Line, "want %s, got %q", want(v.Type()), n.Value)
	}
}

// fail records a problem of the setting at path, on line.
func (d *decoder) fail(path string, line int, format string, args ...any) {
	d.src.add(&FieldError{File: d.src.file, Line: line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

// want says what a value of type t is written as.
func want(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 30s, 5m or 2h"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return "a whole number"
	case t.Kind() == reflect.String:
		return "text"
	}
	return t.String()
}

// kindOf names what a node holds, without its value (which may be a
// secret written where it should not be).
func kindOf(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "a single value"
}

// resolve follows an alias (*anchor) to the node it stands for.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// merged returns the mappings a merge key (<<) brings in: one, or a list.
func merged(n *yaml.Node) []*yaml.Node {
	n = resolve(n)
	if n.Kind == yaml.SequenceNode {
		out := make([]*yaml.Node, 0, len(n.Content))
		for _, m := range n.Content {
			out = append(out, resolve(m))
		}
		return out
	}
	return []*yaml.Node{n}
}

// join appends a key to a setting's path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fieldsOf maps the YAML keys of struct type t to its fields' indexes;
// the fields of an inline struct are t's own.
func fieldsOf(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		switch name, inline := yamlKey(f); {
		case inline:
			for k, idx := range fieldsOf(f.Type) {
				out[k] = append([]int{i}, idx...)
			}
		case name != "":
			out[name] = []int{i}
		}
	}
	return out
}

// yamlKey returns the key of a struct field in YAML ("" for none), or
// that its fields are its struct's own (inline).
func yamlKey(f reflect.StructField) (name string, inline bool) {
	name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if !f.IsExported() || name == "-" {
		return "", false
	}
	return name, opts == "inline"
}

// yamlMessage splits a yaml.v3 error into the line it names (0 when it
// names none) and the problem.
var yamlMessage = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// syntaxError is the problem of a file that is not YAML. yaml.v3 counts
// the lines of some of its errors from 0 and puts others at the start of
// the construct they are in, so the line reported is found here instead:
// the first line whose addition to the lines before it makes the file fail
// with the same problem. It falls back to the library's line.
func syntaxError(file string, data []byte, err error) *FieldError {
	line, problem := splitYAMLError(err)
	if l := problemLine(data, problem, max(line, 1)); l > 0 {
		line = l
	}
	return &FieldError{File: file, Line: line, Msg: "not valid YAML: " + problem, Err: err}
}

// splitYAMLError splits a yaml.v3 error into the line it names (0 when it
// names none) and the problem.
func splitYAMLError(err error) (int, string) {
	m := yamlMessage.FindStringSubmatch(err.Error())
	if m == nil {
		return 0, err.Error()
	}
	line, _ := strconv.Atoi(m[1])
	return line, m[2]
}

// problemLine returns the first line k, from line from on, such that the
// first k lines of data fail to parse with problem; 0 when the whole of
// data does not. An error the parser meets stays when more lines follow,
// so the prefixes that fail so are those from some k on, and k is found by
// bisection: a parse of a few prefixes, not of each.
func problemLine(data []byte, problem string, from int) int {
	var ends []int // of each line, its line break included
	for off := 0; off < len(data); {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			off = len(data)
		} else {
			off += i + 1
		}
		ends = append(ends, off)
	}
	fails := func(k int) bool {
		var n yaml.Node
		err := yaml.Unmarshal(data[:ends[k-1]], &n)
		if err == nil {
			return false
		}
		_, p := splitYAMLError(err)
		return p == problem
	}
	lo, hi := from, len(ends)
	if lo > hi || !fails(hi) {
		return 0
	}
	for lo < hi {
		if mid := (lo + hi) / 2; fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return hi
}
