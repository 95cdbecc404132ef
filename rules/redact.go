package rules

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Replacements for what redaction removes.
const (
	redactedSecret     = "[redacted]"
	redactedPrivateKey = "[private key removed]"
)

// span is a byte range [start, end) of a text.
type span struct{ start, end int }

// redact removes secrets from text: PEM private-key blocks, and the word
// after a password cue ("Password: hunter2", "mein Passwort ist X"). hits
// are the matcher's hits in text. It reports whether a private key was
// found, which for a certificate authority is a key compromise.
func (p *Policy) redact(text string, hits []hit) (string, bool) {
	spans := privateKeyBlocks(text)
	keyFound := len(spans) > 0
	for _, h := range hits {
		if hasKind(h.kw, cuePassword) {
			if s, ok := p.secretAfter(text, h.end); ok {
				spans = append(spans, s)
			}
		}
	}
	if len(spans) == 0 {
		return text, keyFound
	}
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	var b strings.Builder
	b.Grow(len(text))
	pos := 0
	for _, s := range spans {
		if s.end <= pos {
			continue // inside a span already removed
		}
		if s.start < pos {
			s.start = pos
		}
		b.WriteString(text[pos:s.start])
		if keyFound && strings.HasPrefix(text[s.start:], "-----BEGIN") {
			b.WriteString(redactedPrivateKey)
		} else {
			b.WriteString(redactedSecret)
		}
		pos = s.end
	}
	b.WriteString(text[pos:])
	return b.String(), keyFound
}

// secretAfter finds the secret that follows a password cue ending at pos:
// after ':' or '=' the next word always; after a connector word ("is")
// the next word unless it is harmless ("is expired").
func (p *Policy) secretAfter(text string, pos int) (span, bool) {
	pos = skipBlanks(text, pos)
	if pos < len(text) && (text[pos] == ':' || text[pos] == '=') {
		pos = skipBlanks(text, pos+1)
		w := wordAt(text, pos)
		return span{pos, pos + len(w)}, w != ""
	}
	w := wordAt(text, pos)
	if !p.connectors[fold(strings.TrimRight(w, ":"))] {
		return span{}, false
	}
	if strings.HasSuffix(w, ":") { // "password is: x"
		pos = skipBlanks(text, pos+len(w))
		w = wordAt(text, pos)
		return span{pos, pos + len(w)}, w != ""
	}
	pos = skipBlanks(text, pos+len(w))
	w = wordAt(text, pos)
	if w == "" || p.harmless[fold(trimPunct(w))] {
		return span{}, false
	}
	return span{pos, pos + len(w)}, true
}

// skipBlanks skips spaces and tabs, never a line end.
func skipBlanks(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// wordAt returns the run of non-space characters at s[i:].
func wordAt(s string, i int) string {
	if i >= len(s) {
		return ""
	}
	end := strings.IndexFunc(s[i:], unicode.IsSpace)
	if end < 0 {
		return s[i:]
	}
	return s[i : i+end]
}

// trimPunct trims quotes and punctuation around a word.
func trimPunct(w string) string {
	return strings.TrimFunc(w, func(r rune) bool {
		return unicode.IsPunct(r) || unicode.IsSymbol(r)
	})
}

// privateKeyBlocks finds PEM private-key blocks ("-----BEGIN ... PRIVATE
// KEY-----" up to the matching END line, or to the end of the text when the
// block is cut off).
func privateKeyBlocks(text string) []span {
	var spans []span
	for pos := 0; ; {
		i := strings.Index(text[pos:], "-----BEGIN ")
		if i < 0 {
			return spans
		}
		start := pos + i
		lineEnd := strings.IndexByte(text[start:], '\n')
		if lineEnd < 0 {
			lineEnd = len(text) - start
		}
		header := text[start : start+lineEnd]
		pos = start + len("-----BEGIN ")
		if !strings.Contains(header, "PRIVATE KEY") {
			continue
		}
		end := len(text)
		if j := strings.Index(text[pos:], "-----END "); j >= 0 {
			end = pos + j + len("-----END ")
			if k := strings.Index(text[end:], "-----"); k >= 0 && k < 80 {
				end += k + len("-----")
			}
		}
		spans = append(spans, span{start, end})
		pos = end
	}
}

func hasKind(kws []keyword, k cueKind) bool {
	for _, kw := range kws {
		if kw.kind == k {
			return true
		}
	}
	return false
}

// containsWord reports whether text holds word as a whole word, ASCII
// letters compared case-insensitively and every other byte as it is:
// "jsmith" in "user JSmith." but not in "jsmith2" or "j\u017fmith".
func containsWord(text, word string) bool {
	if word == "" {
		return false
	}
	lw := lowerASCII(word)
	lt := lowerASCII(text)
	for pos := 0; ; {
		i := strings.Index(lt[pos:], lw)
		if i < 0 {
			return false
		}
		start, end := pos+i, pos+i+len(lw)
		before, _ := utf8.DecodeLastRuneInString(lt[:start])
		after, _ := utf8.DecodeRuneInString(lt[end:])
		if !isUsernameRune(before) && !isUsernameRune(after) {
			return true
		}
		pos = start + 1
	}
}

// isUsernameRune reports whether r can continue a username, so that a
// match inside a longer name does not count.
func isUsernameRune(r rune) bool {
	return r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-' || r == '@')
}
