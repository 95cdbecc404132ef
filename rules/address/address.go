// Package address puts the e-mail addresses and domain names that mails and
// the account directory hold into the forms they are compared in, and finds
// the domain names written in a text. It is the one place that decides
// when two differently written names are the same: ASCII-only case folding
// for what a mail claims, IDNA mapping for the directory's own data.
package address

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
	"golang.org/x/text/unicode/norm"
)

// StrictDomain returns a domain a mail claims (its From domain, a
// signing domain, a header.from) in the form domains are compared in: IDNA
// A-labels, without a trailing dot. Only ASCII letters are lower-cased:
// a name that needs any other mapping to become a host name (fullwidth
// letters, zero-width characters, soft hyphens, upper-case or decomposed
// non-ASCII letters, other full stops) is no domain here, so it can never
// equal an account's domain however close it looks. A valid IDN is still
// equal to its punycode: "bücher.example" and "xn--bcher-kva.example" are
// one name. A homoglyph stays a different name: "аcmecorp.com" with a
// Cyrillic "а" becomes "xn--cmecorp-…", never "acmecorp.com".
func StrictDomain(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty domain")
	}
	s = LowerASCII(s)
	if !isLowerASCIIHost(s) {
		a, err := idna.Registration.ToASCII(s)
		if err != nil {
			return "", fmt.Errorf("invalid domain %q: not a host name without IDNA mapping: %w", s, err)
		}
		s = a
	}
	return checkHost(s)
}

// MappedDomain is StrictDomain for the account directory's own data
// and for domains a mail's text names: there, UTS #46 mapping (upper-case
// letters, fullwidth forms, ideographic full stops) and a trailing dot are
// what a person typed and mean the name they look like. Naming a domain
// proves nothing; whether a sender is an admin is never decided on it.
func MappedDomain(s string) (string, error) {
	s = strings.TrimSuffix(strings.TrimSpace(s), ".")
	if s == "" {
		return "", errors.New("empty domain")
	}
	if !isLowerASCIIHost(s) {
		a, err := idna.Lookup.ToASCII(s)
		if err != nil {
			return "", fmt.Errorf("invalid domain %q: %w", s, err)
		}
		s = a
	}
	return checkHost(s)
}

// checkHost checks an ASCII host name of lower-case A-labels: its length,
// its labels, their punycode, and at least two labels.
func checkHost(s string) (string, error) {
	if len(s) > 253 {
		return "", fmt.Errorf("invalid domain %q: longer than 253 bytes", s)
	}
	labels := 0
	for l := range strings.SplitSeq(s, ".") {
		labels++
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", fmt.Errorf("invalid domain %q: bad label %q", s, l)
		}
		if strings.HasPrefix(l, "xn--") {
			if _, err := idna.Punycode.ToUnicode(l); err != nil {
				return "", fmt.Errorf("invalid domain %q: bad punycode label %q", s, l)
			}
		}
	}
	if labels < 2 {
		return "", fmt.Errorf("invalid domain %q: want at least two labels", s)
	}
	return s, nil
}

// LowerASCII lower-cases the ASCII letters of s and nothing else: Unicode
// lower-casing would turn a KELVIN SIGN into "k" and a dotted capital I
// into "i", merging mailboxes that differ.
func LowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// isLowerASCIIHost reports whether s has only the bytes of an A-label host
// name, in which case IDNA mapping would not change it.
func isLowerASCIIHost(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Registrable is MappedDomain for an account's own domains, which
// must lie below a public suffix: an account cannot own "co.uk".
func Registrable(s string) (string, error) {
	c, err := MappedDomain(s)
	if err != nil {
		return "", err
	}
	if _, err := publicsuffix.EffectiveTLDPlusOne(c); err != nil {
		return "", fmt.Errorf("%q is a public suffix, not a domain one can own", c)
	}
	return c, nil
}

// CanonicalEmail returns an address of the account directory in the form
// addresses are compared in: ASCII letters lower-cased, every other byte of
// the local part kept as it is, the domain as A-labels (MappedDomain).
// Nothing else changes: "+tags" and dots stay, so "a.b+x@d" and "ab@d" are
// different senders.
func CanonicalEmail(addr string) (string, error) {
	return comparableEmail(strings.TrimSpace(addr), MappedDomain)
}

// SenderEmail is CanonicalEmail for an address a mail claims (From,
// Reply-To, an address in a display name): its domain must be a host name
// without IDNA mapping (StrictDomain), so that no look-alike form of an
// admin address becomes that address.
func SenderEmail(addr string) (string, error) {
	return comparableEmail(addr, StrictDomain)
}

func comparableEmail(addr string, domainForm func(string) (string, error)) (string, error) {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return "", fmt.Errorf("invalid email address %q", addr)
	}
	local := addr[:at]
	if strings.ContainsFunc(local, func(r rune) bool {
		return r == ' ' || r == '<' || r == '>' || unicode.IsControl(r) || r == utf8.RuneError
	}) {
		return "", fmt.Errorf("invalid email address %q", addr)
	}
	domain, err := domainForm(addr[at+1:])
	if err != nil {
		return "", fmt.Errorf("invalid email address %q: %w", addr, err)
	}
	if lower := LowerASCII(local); lower != local || domain != addr[at+1:] {
		return lower + "@" + domain, nil
	}
	return addr, nil // already canonical: no copy
}

// ScanDomains calls fn with every host name written in text, in canonical
// form and in text order: bare ("acmecorp.com"), in URLs and in email
// addresses. Candidates that are no valid host name are skipped.
//
// A host name holds a dot, so only the runs of host characters around the
// dots of the text are looked at (unless the text has one of the other
// full stops IDNA accepts).
func ScanDomains(text string, fn func(string)) {
	if strings.ContainsRune(text, '\u3002') || strings.ContainsRune(text, '\uff0e') || strings.ContainsRune(text, '\uff61') {
		scanDomainsSlow(text, fn)
		return
	}
	done := 0 // text before done is scanned
	for {
		dot := strings.IndexByte(text[done:], '.')
		if dot < 0 {
			return
		}
		start, end := done+dot, done+dot+1
		for start > done {
			c := text[start-1]
			if c < utf8.RuneSelf {
				if !hostByte[c] {
					break
				}
				start--
				continue
			}
			r, size := utf8.DecodeLastRuneInString(text[:start])
			if !isHostRune(r) {
				break
			}
			start -= size
		}
		for end < len(text) {
			c := text[end]
			if c < utf8.RuneSelf {
				if !hostByte[c] {
					break
				}
				end++
				continue
			}
			r, size := utf8.DecodeRuneInString(text[end:])
			if !isHostRune(r) {
				break
			}
			end += size
		}
		emitDomain(text[start:end], fn)
		done = end
	}
}

// scanDomainsSlow is ScanDomains for text with ideographic full stops: it
// looks at every run of host characters.
func scanDomainsSlow(text string, fn func(string)) {
	start, dotted := -1, false
	for i := 0; i <= len(text); {
		r, size := rune(0), 1
		host := false
		if i < len(text) {
			if c := text[i]; c < utf8.RuneSelf {
				r, host = rune(c), hostByte[c]
			} else {
				r, size = utf8.DecodeRuneInString(text[i:])
				host = isHostRune(r)
			}
		}
		if host {
			if start < 0 {
				start, dotted = i, false
			}
			dotted = dotted || r == '.' || r >= utf8.RuneSelf && isIDNADot(r)
		} else if start >= 0 {
			if dotted { // only a dotted run can be a host name
				emitDomain(text[start:i], fn)
			}
			start = -1
		}
		i += size
	}
}

// hostByte marks the ASCII bytes isHostRune accepts.
var hostByte = func() (t [utf8.RuneSelf]bool) {
	for c := range t {
		t[c] = isHostRune(rune(c))
	}
	return t
}()

// isHostRune reports whether r can be part of a host name as written: '_'
// counts, so that "evil_acmecorp.example" stays one (invalid) name instead
// of naming "acmecorp.example"; so do the full stops IDNA maps to '.'.
func isHostRune(r rune) bool {
	if r < utf8.RuneSelf {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_'
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) || isIDNADot(r)
}

// isIDNADot reports whether r is one of the full stops UTS #46 maps to '.'.
func isIDNADot(r rune) bool { return r == '\u3002' || r == '\uff0e' || r == '\uff61' }

// idnaDots turns the full stops UTS #46 maps to '.' into '.'.
var idnaDots = strings.NewReplacer("\u3002", ".", "\uff0e", ".", "\uff61", ".")

func emitDomain(s string, fn func(string)) {
	if !isASCII(s) {
		s = idnaDots.Replace(s)
	}
	s = strings.Trim(s, ".-")
	dot := strings.LastIndexByte(s, '.')
	if dot <= 0 || dot == len(s)-1 {
		return
	}
	tld := s[dot+1:]
	if strings.IndexFunc(tld, unicode.IsLetter) < 0 {
		return // "1.2.3", a version or an amount
	}
	if c, err := MappedDomain(s); err == nil {
		fn(c)
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// EqualFoldASCII reports whether a and b are equal with ASCII letters
// compared case-insensitively and every other byte as it is.
func EqualFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		if y >= 'A' && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// LooseEmail returns the address an address looks like: its local part
// with compatibility forms decomposed, combining marks and invisible
// format characters dropped and letters case-folded onto ASCII where they
// fold onto one (KELVIN SIGN to "k", LATIN SMALL LETTER LONG S to "s"), its
// domain IDNA-mapped. It is for spotting look-alikes, never for deciding
// that two addresses are one.
func LooseEmail(addr string) (string, bool) {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return "", false
	}
	domain, err := MappedDomain(addr[at+1:])
	if err != nil {
		return "", false
	}
	var b strings.Builder
	for _, r := range norm.NFKD.String(addr[:at]) {
		if unicode.In(r, unicode.Mn, unicode.Cf) || unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) {
			continue
		}
		b.WriteRune(foldOntoASCII(r))
	}
	return b.String() + "@" + domain, true
}

// foldOntoASCII returns the lower-case ASCII letter r is a case variant of
// (also through its upper case: dotless ı is a variant of "i"), else r
// lower-cased.
func foldOntoASCII(r rune) rune {
	for _, c := range []rune{r, unicode.ToUpper(r)} {
		for f := unicode.SimpleFold(c); f != c; f = unicode.SimpleFold(f) {
			if f < utf8.RuneSelf {
				return unicode.ToLower(f)
			}
		}
		if c < utf8.RuneSelf {
			return unicode.ToLower(c)
		}
	}
	return unicode.ToLower(r)
}
