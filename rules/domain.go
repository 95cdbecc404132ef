package rules

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// canonicalDomain returns a host name in the form domains are compared in:
// lower case, IDNA A-labels (UTS #46 lookup mapping), no trailing dot. A
// homoglyph stays a different name: "аcmecorp.com" with a Cyrillic "а"
// becomes "xn--cmecorp-…", never "acmecorp.com".
func canonicalDomain(s string) (string, error) {
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

// registrableDomain is canonicalDomain for an account's own domains, which
// must lie below a public suffix: an account cannot own "co.uk".
func registrableDomain(s string) (string, error) {
	c, err := canonicalDomain(s)
	if err != nil {
		return "", err
	}
	if _, err := publicsuffix.EffectiveTLDPlusOne(c); err != nil {
		return "", fmt.Errorf("%q is a public suffix, not a domain one can own", c)
	}
	return c, nil
}

// canonicalEmail returns an address in the form addresses are compared in:
// lower case throughout, the domain as A-labels. Nothing else changes:
// "+tags" and dots stay, so "a.b+x@d" and "ab@d" are different senders.
func canonicalEmail(addr string) (string, error) {
	addr = strings.TrimSpace(addr)
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return "", fmt.Errorf("invalid email address %q", addr)
	}
	local := addr[:at]
	if strings.ContainsAny(local, " \t\r\n<>") {
		return "", fmt.Errorf("invalid email address %q", addr)
	}
	domain, err := canonicalDomain(addr[at+1:])
	if err != nil {
		return "", fmt.Errorf("invalid email address %q: %w", addr, err)
	}
	if lower := strings.ToLower(local); lower != local || domain != addr[at+1:] {
		return lower + "@" + domain, nil
	}
	return addr, nil // already canonical: no copy
}

// scanDomains calls fn with every host name written in text, in canonical
// form and in text order: bare ("acmecorp.com"), in URLs and in email
// addresses. Candidates that are no valid host name are skipped.
//
// A host name holds a dot, so only the runs of host characters around the
// dots of the text are looked at (unless the text has one of the other
// full stops IDNA accepts).
func scanDomains(text string, fn func(string)) {
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

// scanDomainsSlow is scanDomains for text with ideographic full stops: it
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
	if c, err := canonicalDomain(s); err == nil {
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
