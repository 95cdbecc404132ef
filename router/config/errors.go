package config

import (
	"cmp"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
)

// Sentinel errors that FieldErrors wrap, for errors.Is.
var (
	// ErrSecretUnset: a secret's environment variable is unset or empty,
	// so the service could not log in.
	ErrSecretUnset = errors.New("secret unset")
	// ErrPlaceholder: a value is still the example configuration's
	// placeholder (a name reserved for documentation, RFC 2606).
	ErrPlaceholder = errors.New("placeholder")
)

// FieldError is one problem of a configuration: which setting, where its
// value came from (a line of the file or an environment variable), and
// what is wrong.
type FieldError struct {
	// File is the configuration file; "" for a Config built in code.
	File string
	// Line is the line of File where Field (or the closest enclosing
	// setting that is written) is; 0 when not known or not in the file.
	Line int
	// Env is the environment variable the value came from, if it did.
	Env string
	// Field is the setting's path ("imap.addr", "imap.mailboxes[1]"); "" for a
	// problem of the whole file (a YAML syntax error).
	Field string
	// Msg says what is wrong. It never holds a secret's value.
	Msg string
	// Err is the underlying error, if any (fs.ErrNotExist, ErrSecretUnset).
	Err error
}

// Error reads "FILE:LINE: field: problem", or "environment VAR: field:
// problem" for a value from the environment.
func (e *FieldError) Error() string {
	var b strings.Builder
	switch {
	case e.Env != "":
		b.WriteString("environment " + e.Env)
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File)
	}
	if e.Field != "" {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(e.Field)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying error.
func (e *FieldError) Unwrap() error { return e.Err }

// Errors is every problem found in a configuration: those of the file in
// line order, then those of the environment by variable. errors.As finds
// each FieldError in it, and errors.Is their underlying errors.
type Errors []*FieldError

// Error lists the problems, one a line.
func (l Errors) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (l Errors) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// sorted returns the list in reading order: problems of the whole file
// and of the file's lines by line, then those of the environment.
func (l Errors) sorted() Errors {
	out := slices.Clone(l)
	slices.SortStableFunc(out, func(a, b *FieldError) int {
		// Env "" (the file) sorts first.
		return cmp.Or(cmp.Compare(a.Env, b.Env), cmp.Compare(a.Line, b.Line))
	})
	return out
}

// source remembers where a Config's values came from, and collects its
// problems.
type source struct {
	file  string
	lines map[string]int    // setting path -> line of its key in the file
	env   map[string]string // setting path -> environment variable that set it
	// lookup is the environment the file was loaded with.
	lookup func(string) (string, bool)
	// problems are those found so far; bad are the settings among them,
	// whose values the checks then leave alone (one problem a setting).
	problems Errors
	bad      map[string]bool
}

// fieldError returns a problem of field, placed where its value came from.
// src may be nil (a Config built in code).
func (s *source) fieldError(field string, err error, format string, args ...any) *FieldError {
	e := &FieldError{Field: field, Msg: fmt.Sprintf(format, args...), Err: err}
	if s == nil {
		return e
	}
	e.File = s.file
	for f := range enclosing(field) {
		if v, ok := s.env[f]; ok {
			e.Env = v
			return e
		}
	}
	// A section the file does not write, set from the environment.
	if _, written := s.lines[field]; !written {
		for _, path := range slices.Sorted(maps.Keys(s.env)) {
			if strings.HasPrefix(path, field+".") {
				e.Env = s.env[path]
				return e
			}
		}
	}
	e.Line = s.line(field)
	return e
}

// line returns the line where field is written, or the closest enclosing
// setting that is; 0 when none is.
func (s *source) line(field string) int {
	for f := range enclosing(field) {
		if n, ok := s.lines[f]; ok {
			return n
		}
	}
	return 0
}

// enclosing yields field and then the settings that enclose it, innermost
// first: imap.secret.env, imap.secret, imap.
func enclosing(field string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for f := field; f != ""; {
			if !yield(f) {
				return
			}
			i := strings.LastIndexAny(f, ".[")
			if i < 0 {
				return
			}
			f = f[:i]
		}
	}
}

// add records err's problems: FieldErrors as they are, anything else as
// a problem of the whole file.
func (s *source) add(err error) {
	var list Errors
	var fe *FieldError
	switch {
	case errors.As(err, &list):
	case errors.As(err, &fe):
		list = Errors{fe}
	default:
		list = Errors{{File: s.file, Msg: err.Error(), Err: err}}
	}
	for _, e := range list {
		if s.bad == nil {
			s.bad = map[string]bool{}
		}
		s.bad[e.Field] = true
		s.problems = append(s.problems, e)
	}
}

// isBad reports whether field, or a setting enclosing it, already has a
// problem from decoding, so that checking its (zero) value would only
// repeat it.
func (s *source) isBad(field string) bool {
	if s == nil {
		return false
	}
	for f := range enclosing(field) {
		if s.bad[f] {
			return true
		}
	}
	return false
}
