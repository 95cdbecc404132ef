package senderauth

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// authResults is the value of an Authentication-Results header field read
// to the grammar of RFC 8601 section 2.2. Comments are skipped wherever
// the grammar allows CFWS, so that text a server copied into a comment
// (an envelope sender, a HELO name) is never read as a result or a
// property; quoted strings are kept whole.
type authResults struct {
	// AuthservID names the server that wrote the field (a token, or a
	// quoted string, unquoted).
	AuthservID string
	// Version is the authres-version, "" when absent (which means "1").
	Version string
	// None is set for the no-result form "; none": nothing was checked.
	None bool
	// Results are the resinfos, in order.
	Results []resinfo
	// Comments are the texts of the top-level comments as written (inner
	// comments and quoted-pairs included) and Quoted the values of the
	// quoted strings: text the grammar does not read as results, kept for
	// the caller's check that nothing in it looks like one.
	Comments, Quoted []string
}

// resinfo is one "method=result" statement with its reason and properties.
type resinfo struct {
	Offset        int    // byte offset of the ';' before it
	Method        string // lower case
	MethodVersion string // "" when absent (which means "1")
	Result        string // lower case
	Reason        string // the reasonspec value
	HasReason     bool   // whether there is a reasonspec
	Props         []resProp
}

// resProp is a "ptype.property=pvalue" property of a result.
type resProp struct {
	Type  string // lower case ptype: "header", "smtp", "policy", ...
	Name  string // lower case property: "from", "d", "mailfrom", ...
	Value string // a quoted string unquoted; an address as written
}

// props returns the values of the properties ptype.name of r.
func (r *resinfo) props(ptype, name string) []string {
	var vs []string
	for _, p := range r.Props {
		if p.Type == ptype && p.Name == name {
			vs = append(vs, p.Value)
		}
	}
	return vs
}

// authResultsError says where (a byte offset into the field value) and why
// an Authentication-Results value does not parse.
type authResultsError struct {
	Offset int
	Msg    string
}

func (e *authResultsError) Error() string { return fmt.Sprintf("byte %d: %s", e.Offset, e.Msg) }

// parseAuthResults reads an (unfolded or folded) Authentication-Results
// field value strictly to RFC 8601 section 2.2, with RFC 5322 CFWS
// (nested comments, quoted-pairs) and RFC 6532 UTF-8 in comments and
// quoted strings. Anything off the grammar is an *authResultsError. On an
// error the returned value holds what was read before it, so that
// AuthservID is set whenever the authserv-id itself could be read: the
// caller must know whose field it could not read.
func parseAuthResults(v string) (authResults, error) {
	p := arParser{s: v}
	err := p.header()
	return p.ar, err
}

// arParser is the state of one parse: the input, the position, what was
// read so far.
type arParser struct {
	s   string
	pos int
	ar  authResults
}

func (p *arParser) header() error {
	if err := p.cfws(); err != nil {
		return err
	}
	id, err := p.value("an authserv-id")
	if err != nil {
		return err
	}
	p.ar.AuthservID = id
	had, err := p.cfwsSeen()
	if err != nil {
		return err
	}
	if had && p.pos < len(p.s) && isDigit(p.s[p.pos]) {
		p.ar.Version = p.digits()
		if err := p.cfws(); err != nil {
			return err
		}
	}
	if p.pos == len(p.s) {
		return p.errorf("want \";\" after the authserv-id, found the end")
	}
	if p.s[p.pos] != ';' {
		return p.errorf("want \";\" after the authserv-id, found %s", p.found())
	}
	if none, err := p.noResult(); none || err != nil {
		return err
	}
	for p.pos < len(p.s) {
		if p.s[p.pos] != ';' {
			return p.errorf("want \";\" or the end after a result, found %s", p.found())
		}
		if err := p.resinfo(); err != nil {
			return err
		}
	}
	return nil
}

// noResult reads "; none" followed by the end of the value, and reports
// whether it was there; anything else is left for resinfo.
func (p *arParser) noResult() (bool, error) {
	save, comments := p.pos, len(p.ar.Comments)
	p.pos++ // ';'
	if err := p.cfws(); err != nil {
		return false, err
	}
	if kw := p.keyword(); strings.EqualFold(kw, "none") {
		if err := p.cfws(); err != nil {
			return false, err
		}
		if p.pos == len(p.s) {
			p.ar.None = true
			return true, nil
		}
	}
	p.pos, p.ar.Comments = save, p.ar.Comments[:comments]
	return false, nil
}

// resinfo reads ";" methodspec [CFWS reasonspec] [CFWS 1*propspec].
func (p *arParser) resinfo() error {
	r := resinfo{Offset: p.pos}
	p.pos++ // ';'
	if err := p.cfws(); err != nil {
		return err
	}
	var err error
	if r.Method, err = p.needKeyword("a method"); err != nil {
		return err
	}
	if err := p.cfws(); err != nil {
		return err
	}
	if p.peek('/') {
		p.pos++
		if err := p.cfws(); err != nil {
			return err
		}
		if p.pos == len(p.s) || !isDigit(p.s[p.pos]) {
			return p.errorf("want a method version after \"%s/\", found %s", r.Method, p.found())
		}
		r.MethodVersion = p.digits()
		if err := p.cfws(); err != nil {
			return err
		}
	}
	if !p.peek('=') {
		return p.errorf("want \"=\" after method %q, found %s", r.Method, p.found())
	}
	p.pos++
	if err := p.cfws(); err != nil {
		return err
	}
	if r.Result, err = p.needKeyword("a result"); err != nil {
		return err
	}
	r.Method, r.Result = strings.ToLower(r.Method), strings.ToLower(r.Result)
	for {
		if err := p.cfws(); err != nil {
			return err
		}
		if p.pos == len(p.s) || p.s[p.pos] == ';' {
			break
		}
		if err := p.reasonOrProp(&r); err != nil {
			return err
		}
	}
	p.ar.Results = append(p.ar.Results, r)
	return nil
}

// reasonOrProp reads a reasonspec ("reason" "=" value, at most once, before
// any property) or a propspec (ptype "." property "=" pvalue).
func (p *arParser) reasonOrProp(r *resinfo) error {
	start := p.pos
	kw, err := p.needKeyword("a property")
	if err != nil {
		return err
	}
	if err := p.cfws(); err != nil {
		return err
	}
	if strings.EqualFold(kw, "reason") && p.peek('=') {
		switch {
		case len(r.Props) > 0:
			p.pos = start
			return p.errorf("reason after the properties")
		case r.HasReason:
			p.pos = start
			return p.errorf("a second reason")
		}
		p.pos++
		if err := p.cfws(); err != nil {
			return err
		}
		r.Reason, err = p.value("a reason")
		r.HasReason = true
		return err
	}
	if !p.peek('.') {
		return p.errorf("want \".\" after ptype %q, found %s", kw, p.found())
	}
	p.pos++
	if err := p.cfws(); err != nil {
		return err
	}
	name, err := p.needKeyword("a property name")
	if err != nil {
		return err
	}
	if err := p.cfws(); err != nil {
		return err
	}
	if !p.peek('=') {
		return p.errorf("want \"=\" after property %q, found %s", kw+"."+name, p.found())
	}
	p.pos++
	val, err := p.pvalue()
	if err != nil {
		return err
	}
	r.Props = append(r.Props, resProp{Type: strings.ToLower(kw), Name: strings.ToLower(name), Value: val})
	return nil
}

// pvalue reads [CFWS] ( value / [ [ local-part ] "@" ] domain-name ); the
// CFWS after it is left to the caller.
func (p *arParser) pvalue() (string, error) {
	if err := p.cfws(); err != nil {
		return "", err
	}
	start := p.pos
	switch {
	case p.pos == len(p.s):
		return "", p.errorf("want a property value, found the end")
	case p.s[p.pos] == '"':
		q, err := p.quotedString()
		if err != nil {
			return "", err
		}
		if !p.peek('@') {
			return q, nil
		}
		p.pos++
		d, err := p.domainName()
		if err != nil {
			return "", err
		}
		return p.s[start:p.pos-len(d)-1] + "@" + d, nil
	case p.s[p.pos] == '@':
		p.pos++
		d, err := p.domainName()
		return "@" + d, err
	}
	for p.pos < len(p.s) && isPvalueChar(p.s[p.pos]) {
		p.pos++
	}
	run := p.s[start:p.pos]
	if p.peek('@') {
		if !isDotAtom(run) {
			p.pos = start
			return "", p.errorf("local-part %s is no dot-atom", p.quote(run))
		}
		p.pos++
		d, err := p.domainName()
		return run + "@" + d, err
	}
	if run == "" {
		return "", p.errorf("want a property value, found %s", p.found())
	}
	if p.pos < len(p.s) && !strings.ContainsRune(" \t\r\n(;", rune(p.s[p.pos])) {
		return "", p.errorf("%s in an unquoted property value", p.char1())
	}
	return run, nil
}

// domainName reads sub-domain 1*("." sub-domain) (RFC 6376).
func (p *arParser) domainName() (string, error) {
	start := p.pos
	for p.pos < len(p.s) && (isLetDig(p.s[p.pos]) || p.s[p.pos] == '-' || p.s[p.pos] == '.') {
		p.pos++
	}
	d := p.s[start:p.pos]
	labels := strings.Split(d, ".")
	if d == "" || len(labels) < 2 {
		p.pos = start
		return "", p.errorf("want a domain name with a dot after \"@\", found %s", p.found())
	}
	for _, l := range labels {
		if l == "" || l[0] == '-' || l[len(l)-1] == '-' {
			p.pos = start
			return "", p.errorf("bad label %q in domain name %s", l, p.quote(d))
		}
	}
	return d, nil
}

// value reads a token or a quoted string (RFC 2045), unquoted.
func (p *arParser) value(what string) (string, error) {
	if p.peek('"') {
		return p.quotedString()
	}
	start := p.pos
	for p.pos < len(p.s) && isTokenChar(p.s[p.pos]) {
		p.pos++
	}
	if p.pos == start {
		return "", p.errorf("want %s, found %s", what, p.found())
	}
	return p.s[start:p.pos], nil
}

// quotedString reads a quoted string starting at '"' and returns its
// content with the quoted-pairs resolved and the folds removed.
func (p *arParser) quotedString() (string, error) {
	open := p.pos
	p.pos++
	var b strings.Builder
	for {
		if p.pos == len(p.s) {
			p.pos = open
			return "", p.errorf("quoted string is not closed")
		}
		c := p.s[p.pos]
		switch {
		case c == '"':
			p.pos++
			p.ar.Quoted = append(p.ar.Quoted, b.String())
			return b.String(), nil
		case c == '\\':
			r, err := p.quotedPair()
			if err != nil {
				return "", err
			}
			b.WriteString(r)
		case c == '\r' || c == '\n':
			if err := p.fold(); err != nil {
				return "", err
			}
		default:
			r, err := p.char()
			if err != nil {
				return "", err
			}
			b.WriteString(r)
		}
	}
}

// cfws skips [CFWS]: white space, folds and comments.
func (p *arParser) cfws() error {
	_, err := p.cfwsSeen()
	return err
}

// cfwsSeen skips [CFWS] and reports whether there was any.
func (p *arParser) cfwsSeen() (bool, error) {
	start := p.pos
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case ' ', '\t':
			p.pos++
		case '\r', '\n':
			if err := p.fold(); err != nil {
				return false, err
			}
		case '(':
			if err := p.comment(); err != nil {
				return false, err
			}
		default:
			return p.pos > start, nil
		}
	}
	return p.pos > start, nil
}

// comment skips a comment starting at '(', with the comments nested in
// it, and keeps its text in Comments. Nesting is counted, not recursed.
func (p *arParser) comment() error {
	open := p.pos
	p.pos++
	for depth := 1; depth > 0; {
		if p.pos == len(p.s) {
			p.pos = open
			return p.errorf("comment is not closed")
		}
		switch c := p.s[p.pos]; c {
		case '(':
			depth++
			p.pos++
		case ')':
			depth--
			p.pos++
		case '\\':
			if _, err := p.quotedPair(); err != nil {
				return err
			}
		case '\r', '\n':
			if err := p.fold(); err != nil {
				return err
			}
		default:
			if _, err := p.char(); err != nil {
				return err
			}
		}
	}
	p.ar.Comments = append(p.ar.Comments, p.s[open+1:p.pos-1])
	return nil
}

// quotedPair reads "\" (VCHAR / WSP) and returns the quoted character.
func (p *arParser) quotedPair() (string, error) {
	p.pos++ // '\'
	if p.pos == len(p.s) {
		p.pos--
		return "", p.errorf("\"\\\" at the end")
	}
	if c := p.s[p.pos]; c == ' ' || c == '\t' {
		p.pos++
		return string(c), nil
	}
	return p.char()
}

// char reads one printable character (ASCII or UTF-8) or WSP.
func (p *arParser) char() (string, error) {
	c := p.s[p.pos]
	if c < utf8.RuneSelf {
		if c != ' ' && c != '\t' && (c < 0x21 || c > 0x7e) {
			return "", p.errorf("control character %q", c)
		}
		p.pos++
		return p.s[p.pos-1 : p.pos], nil
	}
	r, size := utf8.DecodeRuneInString(p.s[p.pos:])
	if r == utf8.RuneError || r >= 0x80 && r <= 0x9f { // invalid, or a C1 control
		return "", p.errorf("invalid UTF-8 or control character")
	}
	p.pos += size
	return p.s[p.pos-size : p.pos], nil
}

// fold reads CRLF 1*WSP: a line break is allowed only as a fold.
func (p *arParser) fold() error {
	if strings.HasPrefix(p.s[p.pos:], "\r\n") && len(p.s) > p.pos+2 && (p.s[p.pos+2] == ' ' || p.s[p.pos+2] == '\t') {
		p.pos += 3
		return nil
	}
	return p.errorf("line break that is no fold")
}

// keyword reads a Keyword (RFC 5321 Ldh-str: letters, digits and hyphens,
// not ending in a hyphen), "" if there is none.
func (p *arParser) keyword() string {
	start := p.pos
	for p.pos < len(p.s) && (isLetDig(p.s[p.pos]) || p.s[p.pos] == '-') {
		p.pos++
	}
	for p.pos > start && p.s[p.pos-1] == '-' { // a hyphen cannot end it
		p.pos--
	}
	return p.s[start:p.pos]
}

func (p *arParser) needKeyword(what string) (string, error) {
	kw := p.keyword()
	if kw == "" {
		return "", p.errorf("want %s, found %s", what, p.found())
	}
	return kw, nil
}

func (p *arParser) digits() string {
	start := p.pos
	for p.pos < len(p.s) && isDigit(p.s[p.pos]) {
		p.pos++
	}
	return p.s[start:p.pos]
}

func (p *arParser) peek(c byte) bool { return p.pos < len(p.s) && p.s[p.pos] == c }

// found describes, escaped and clipped, what is at the current position.
func (p *arParser) found() string {
	if p.pos == len(p.s) {
		return "the end"
	}
	return p.quote(p.s[p.pos:])
}

// char1 describes, escaped, the character at the current position.
func (p *arParser) char1() string {
	r, size := utf8.DecodeRuneInString(p.s[p.pos:])
	if r == utf8.RuneError && size == 1 {
		return fmt.Sprintf("byte %#x", p.s[p.pos])
	}
	return fmt.Sprintf("%q", r)
}

// quote returns s escaped and clipped for an error message.
func (p *arParser) quote(s string) string { return fmt.Sprintf("%q", clipText(s, 24)) }

func (p *arParser) errorf(format string, args ...any) error {
	return &authResultsError{Offset: p.pos, Msg: fmt.Sprintf(format, args...)}
}

// clipText cuts s to at most n bytes, on a rune boundary, marking the cut.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetDig(c byte) bool { return isDigit(c) || c|0x20 >= 'a' && c|0x20 <= 'z' }

// isPvalueChar reports whether c may be in an unquoted property value:
// printable ASCII other than what begins a comment, a quoted string, an
// address's domain or the next result. RFC 8601 wants a token there, but
// servers write base64 (header.b=Xc8n/9m+) and IPv6 addresses
// (smtp.remote-ip=2001:db8::1) unquoted; where a value ends, and so where
// the next property or result begins, is the same either way.
func isPvalueChar(c byte) bool {
	return c > 0x20 && c < 0x7f && !strings.ContainsRune(`();"\@`, rune(c))
}

// isTokenChar reports whether c may be in an RFC 2045 token: printable
// ASCII other than the tspecials.
func isTokenChar(c byte) bool {
	return c > 0x20 && c < 0x7f && !strings.ContainsRune(`()<>@,;:\"/[]?=`, rune(c))
}

// isAtext reports whether c is RFC 5322 atext.
func isAtext(c byte) bool {
	return isLetDig(c) || c < 0x7f && strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// isDotAtom reports whether s is an RFC 5322 dot-atom-text.
func isDotAtom(s string) bool {
	for a := range strings.SplitSeq(s, ".") {
		if a == "" {
			return false
		}
		for i := 0; i < len(a); i++ {
			if !isAtext(a[i]) {
				return false
			}
		}
	}
	return true
}
