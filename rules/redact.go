package rules

import (
	"bytes"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ticketrouter/ticketrouter/rules/address"
)

// Replacements for what redaction removes.
const (
	redactedSecret     = "[redacted]"
	redactedPrivateKey = "[private key removed]"
)

// span is a byte range [start, end) of a text.
type span struct{ start, end int }

// redact removes secrets from text: PEM private-key blocks, and the value
// after a password cue ("Password: correct horse", "mein Passwort ist X",
// "パスワードはX"). text is a subject line and a body joined by "\n", as
// Decide reads a mail, or a single line: a cue that ends the first line
// never takes the next one (a subject "My password:" announces nothing in
// the body). hits are the matcher's hits in text. It reports whether a
// private key was found, which for a certificate authority is a key
// compromise.
func (p *Policy) redact(text string, hits []hit) (string, bool) {
	spans := privateKeyBlocks(text)
	keyFound := len(spans) > 0
	firstLine := strings.IndexByte(text, '\n')
	covered := 0 // the end of the values found so far
	for _, h := range hits {
		// A cue inside a value already removed is part of the secret; and
		// skipping it keeps a line of a thousand cues linear.
		if h.start < covered || !hasKind(h.kw, cuePassword) {
			continue
		}
		n := len(spans)
		spans = p.secretAfter(spans, text, h.start, h.end, firstLine)
		for _, s := range spans[n:] {
			covered = max(covered, s.end)
		}
	}
	if len(spans) == 0 {
		return text, keyFound
	}
	// Stable: a key block and a value that start at the same place (a
	// "Password:" line before a key) are removed as the key.
	slices.SortStableFunc(spans, func(a, b span) int { return a.start - b.start })
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

// Bounds of the redaction's look-ahead after a cue.
const (
	// maxStemSuffix is how many letters a word may go on after a cue that
	// is a stem before the value's sign: "şifre|niz:".
	maxStemSuffix = 4
	// maxPhraseWords is how many words a phrase between a cue and its
	// sign or connector may have, the qualifier included: "password |for
	// the portal user jsmith| is".
	maxPhraseWords = 5
)

// secretAfter appends to spans the secret that follows the password cue
// text[cueStart:cueEnd], if any: a quoted value, a value after a sign or
// a connector, or after a short phrase and then a sign or a connector; or,
// when the cue stands alone on its line like a label in a form, the next
// non-empty line. firstLine is the end of the first line of text (the
// subject).
func (p *Policy) secretAfter(spans []span, text string, cueStart, cueEnd, firstLine int) []span {
	pos, ok := stemEnd(text, cueEnd)
	if !ok {
		return spans
	}
	if s, ok := quotedAt(text, pos); ok {
		return append(spans, s)
	}
	if aloneOnLine(text, cueStart, pos) {
		out, _ := p.valueSpans(spans, text, pos, true, firstLine)
		return out
	}
	if start, connector, ok := p.valueStart(text, pos); ok {
		if out, ok := p.valueSpans(spans, text, start, connector, firstLine); ok {
			return out
		}
	}
	out, _ := p.afterPhrase(spans, text, pos, firstLine)
	return out
}

// aloneOnLine reports whether text[start:end] is all its line holds but
// white space and the '>' of a quoted reply: "Password" above its value.
func aloneOnLine(text string, start, end int) bool {
	if e := skipInline(text, end); e < len(text) && text[e] != '\n' {
		return false
	}
	for start > 0 {
		r, size := utf8.DecodeLastRuneInString(text[:start])
		if r == '\n' {
			return true
		}
		if !unicode.IsSpace(r) && r != '>' {
			return false
		}
		start -= size
	}
	return true
}

// valueStart finds where a value starts after pos: after ':' or '=' or a
// tab (a table cell or a form's field: a value, whatever it says) or after
// a connector (connector is true: a harmless word there is no value), or
// ok is false.
func (p *Policy) valueStart(text string, pos int) (start int, connector, ok bool) {
	if pos < len(text) && text[pos] == '\t' {
		return pos + 1, false, true
	}
	pos = skipInline(text, pos)
	if n := signAt(text, pos); n > 0 {
		return pos + n, false, true
	}
	end, ok := p.connectorAt(text, pos)
	if !ok {
		return 0, false, false
	}
	if q := skipInline(text, end); signAt(text, q) > 0 { // "password is: x"
		return q + signAt(text, q), false, true
	}
	return end, true, true
}

// afterPhrase finds a value after a short phrase that opens with a
// qualifier: "password for the portal is x", "hasło do konta: x".
func (p *Policy) afterPhrase(spans []span, text string, pos, firstLine int) ([]span, bool) {
	pos = skipInline(text, pos)
	w, ok := shortWordAt(text, pos)
	if !ok || !inFoldedSet(p.qualifiers, trimPunct(w)) {
		return spans, false
	}
	for range maxPhraseWords {
		pos += len(w)
		if w != strings.TrimRight(w, ":=：＝") { // "jsmith: x"
			return p.valueSpans(spans, text, pos, false, firstLine)
		}
		if endsClause(w) {
			// "the password of x; the form is attached": what follows
			// is another clause, not the value.
			break
		}
		if start, connector, ok := p.valueStart(text, pos); ok {
			return p.valueSpans(spans, text, start, connector, firstLine)
		}
		pos = skipInline(text, pos)
		if w, ok = shortWordAt(text, pos); !ok || w == "" {
			break
		}
	}
	return spans, false
}

// endsClause reports whether word w ends a clause or a sentence: it ends
// in ',', ';', '.', '!' or '?' (ASCII or fullwidth, or the ideographic
// stops).
func endsClause(w string) bool {
	r, _ := utf8.DecodeLastRuneInString(w)
	return strings.ContainsRune(",;.!?，；．！？。、", r)
}

// valueSpans appends the spans of a value that starts at start: the rest
// of its line, or, when that is blank, the next non-empty line. A few
// words ending in ':' announce the next non-empty line, which is taken
// too ("my password is the following:"). After a connector, a harmless
// first word means there is no value ("is expired", "is not working, the
// error says:"), unless the line announces the next. The first line of
// text (the subject, ending at firstLine) never runs into the next.
func (p *Policy) valueSpans(spans []span, text string, start int, connector bool, firstLine int) ([]span, bool) {
	start = skipInline(text, start)
	if start == len(text) || text[start] == '\n' {
		next, ok := nextLine(text, start, firstLine)
		if !ok || connector && p.harmlessAt(text[next.start:]) {
			return spans, false
		}
		return append(spans, next), true
	}
	// Decide on the first words before reading to the end of the line: a
	// harmless value is no span, and a line of harmless values must not
	// be read once a cue.
	announces := announcement(text[start:])
	if connector && !announces && p.harmlessAt(text[start:]) {
		return spans, false
	}
	value, lineEnd := lineRest(text, start)
	spans = append(spans, value)
	if announces {
		if next, ok := nextLine(text, lineEnd, firstLine); ok {
			spans = append(spans, next)
		}
	}
	return spans, true
}

// maxAnnouncementWords is how many words a value may have and still
// announce the next line by ending in ':' ("is as follows:").
const maxAnnouncementWords = 3

// announcement reports whether the line at the start of text is a few
// words that end in ':', announcing that the value follows on the next
// line. It reads no more than those few words.
func announcement(text string) bool {
	last := ""
	for i, n := 0, 0; ; n++ {
		i = skipInline(text, i)
		if i == len(text) || text[i] == '\n' {
			return n > 0 && (strings.HasSuffix(last, ":") || strings.HasSuffix(last, "："))
		}
		if n == maxAnnouncementWords {
			return false
		}
		w, ok := shortWordAt(text, i)
		if !ok {
			return false
		}
		last, i = w, i+len(w)
	}
}

// lineRest returns the rest of the line at i without the white space
// around it, and the end of the line (the offset of its "\n", or
// len(text)).
func lineRest(text string, i int) (span, int) {
	i = skipInline(text, i)
	end := strings.IndexByte(text[i:], '\n')
	if end < 0 {
		end = len(text)
	} else {
		end += i
	}
	return span{i, i + len(strings.TrimRightFunc(text[i:end], unicode.IsSpace))}, end
}

// nextLine returns the first non-blank line after the line that ends at
// lineEnd, without the white space around it. The first line of text,
// ending at firstLine, has no next line.
func nextLine(text string, lineEnd, firstLine int) (span, bool) {
	if lineEnd == firstLine {
		return span{}, false
	}
	for lineEnd < len(text) {
		s, end := lineRest(text, lineEnd+1)
		if s.start < s.end {
			return s, true
		}
		lineEnd = end
	}
	return span{}, false
}

// stemEnd returns the end of the word that a cue ending at pos starts: a
// cue may be a stem, and the word go on for a few letters ("şifre|m:",
// "password|s:"). ok is false when it goes on longer: the cue is the
// start of another word ("Passwortrichtlinie"). Letters of scripts without
// spaces never continue a word: "パスワード|は" ends at the cue.
func stemEnd(text string, pos int) (int, bool) {
	for n := 0; pos < len(text); n++ {
		r, size := utf8.DecodeRuneInString(text[pos:])
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r)) || spaceless(r) {
			return pos, true
		}
		if n == maxStemSuffix {
			return pos, false
		}
		pos += size
	}
	return pos, true
}

// signAt returns the length of the ':' or '=' (or fullwidth '：', '＝')
// at text[i:], or 0.
func signAt(text string, i int) int {
	if i < len(text) && (text[i] == ':' || text[i] == '=') {
		return 1
	}
	if strings.HasPrefix(text[i:], "：") || strings.HasPrefix(text[i:], "＝") {
		return len("：")
	}
	return 0
}

// connectorAt returns the end of the connector at text[pos:]: a whole
// word of the list ("is", "lautet", "—"), or a connector written in a
// script without spaces, glued to what follows ("は", "是").
func (p *Policy) connectorAt(text string, pos int) (int, bool) {
	w, whole := shortWordAt(text, pos)
	if w == "" {
		return 0, false
	}
	if c := strings.TrimRight(w, ":："); whole && inFoldedSet(p.connectors, c) {
		return pos + len(c), true
	}
	if len(p.gluedConnectors) == 0 || w[0] < utf8.RuneSelf {
		return 0, false
	}
	for _, c := range p.gluedConnectors { // most are written as folded
		if strings.HasPrefix(w, c) {
			return pos + len(c), true
		}
	}
	head := prefix(w, 32)
	f, offs := foldMap(head)
	for _, c := range p.gluedConnectors {
		if bytes.HasPrefix(f, []byte(c)) {
			return pos + offs.orig(len(c), len(head)), true
		}
	}
	return 0, false
}

// harmlessAt reports whether a value starts with a harmless word: its
// first word is one, or it starts with one written in a script without
// spaces ("期限切れです").
func (p *Policy) harmlessAt(value string) bool {
	w, whole := shortWordAt(value, 0)
	if whole && inFoldedSet(p.harmless, trimPunct(w)) {
		return true
	}
	if len(p.harmlessPrefixes) == 0 || w == "" || w[0] < utf8.RuneSelf {
		return false
	}
	head := strings.TrimLeftFunc(w, isPunctOrSymbol)
	for _, h := range p.harmlessPrefixes { // most are written as folded
		if strings.HasPrefix(head, h) {
			return true
		}
	}
	folded, _ := foldMap(head)
	for _, h := range p.harmlessPrefixes {
		if bytes.HasPrefix(folded, []byte(h)) {
			return true
		}
	}
	return false
}

// quotePairs maps the quotation marks a value may open with to the marks
// that may close it.
var quotePairs = map[rune]string{
	'"': `"`, '\'': `'`, '“': `”“`, '„': `“”`, '‚': `‘’`, '‘': `’‘`, '«': `»`, '»': `«`,
	'‹': `›`, '”': `”`, '「': `」`, '『': `』`,
}

// quotedAt finds a value in quotation marks right after a cue: 'the
// password "Hunter 2" fails', "パスワード「abc」". An ASCII quote must
// stand apart from the cue, so that "password's" is no quotation. Without
// a closing mark on the line, the value runs to the end of the line.
func quotedAt(text string, pos int) (span, bool) {
	q := skipInline(text, pos)
	if q >= len(text) {
		return span{}, false
	}
	r, size := utf8.DecodeRuneInString(text[q:])
	closers, ok := quotePairs[r]
	if !ok || q == pos && r < utf8.RuneSelf {
		return span{}, false
	}
	// Up to the closing mark or the end of the line, whichever comes
	// first: never further, so that a line of quotes is read once.
	start := q + size
	end := start
	for end < len(text) && text[end] != '\n' {
		r, size := utf8.DecodeRuneInString(text[end:])
		if strings.ContainsRune(closers, r) {
			break
		}
		end += size
	}
	end = start + len(strings.TrimRightFunc(text[start:end], unicode.IsSpace))
	return span{start, end}, start < end
}

// maxWordBytes is the longest word the redaction word lists may hold (as
// written), and how far the look-ahead after a cue reads one word: a
// longer word is no connector, harmless word or qualifier.
const maxWordBytes = 64

// shortWordAt returns the run of non-space characters at s[i:], and
// whether it is whole; it reads at most maxWordBytes.
func shortWordAt(s string, i int) (string, bool) {
	if i >= len(s) {
		return "", true
	}
	end := min(len(s), i+maxWordBytes+1)
	w := wordAt(s[:end], i)
	if len(w) > maxWordBytes {
		return prefix(w, maxWordBytes), false
	}
	return w, true
}

// inFoldedSet reports whether word, folded, is in set (a set of folded
// words), without allocating for a short ASCII word: the look-ahead after
// a cue runs on every mail that says "password".
func inFoldedSet(set map[string]bool, word string) bool {
	var buf [maxWordBytes]byte
	if len(word) > len(buf) {
		return false
	}
	for i := 0; i < len(word); i++ {
		c := word[i]
		if c >= utf8.RuneSelf || asciiFold[c] == ' ' {
			return set[fold(word)]
		}
		buf[i] = asciiFold[c]
	}
	return set[string(buf[:len(word)])]
}

// skipBlanks skips spaces and tabs, never a line end.
func skipBlanks(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// skipInline skips white space other than a line break: spaces, tabs, a
// carriage return, no-break and ideographic spaces.
func skipInline(s string, i int) int {
	for i < len(s) {
		if c := s[i]; c < utf8.RuneSelf {
			if c == '\n' || !unicode.IsSpace(rune(c)) {
				return i
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsSpace(r) {
			return i
		}
		i += size
	}
	return i
}

// prefix returns the first n bytes of s or fewer, cut at a character
// boundary.
func prefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
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
	return strings.TrimFunc(w, isPunctOrSymbol)
}

func isPunctOrSymbol(r rune) bool { return unicode.IsPunct(r) || unicode.IsSymbol(r) }

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
	lw := address.LowerASCII(word)
	f := asciiFoldFinder{lower: lw, nextLow: -2, nextUp: -2}
	for pos := 0; ; {
		start := f.next(text, pos)
		if start < 0 {
			return false
		}
		before, _ := utf8.DecodeLastRuneInString(text[:start])
		after, _ := utf8.DecodeRuneInString(text[start+len(lw):])
		if !isUsernameRune(before) && !isUsernameRune(after) {
			return true
		}
		pos = start + 1
	}
}

// asciiFoldFinder finds lower, a string with no upper-case ASCII letter,
// in a text, its ASCII letters compared case-insensitively and every
// other byte as it is: without a lower-cased copy of the text.
type asciiFoldFinder struct {
	lower string
	// The next places of lower's first byte in either case, at or after
	// the last start: -1 none, -2 not searched yet (the value to start
	// with).
	nextLow, nextUp int
}

// next returns the first match in text at or after start, or -1. Calls
// on one text must have growing starts: each byte is searched once.
func (f *asciiFoldFinder) next(text string, start int) int {
	n := len(f.lower)
	if n == 0 || n > len(text) {
		return -1
	}
	low := f.lower[0]
	up := low
	if 'a' <= low && low <= 'z' {
		up = low - ('a' - 'A')
	}
	last := len(text) - n // the last place a match can start
	for start <= last {
		if f.nextLow != -1 && f.nextLow < start {
			f.nextLow = indexByteFrom(text, start, low)
		}
		if f.nextUp != -1 && f.nextUp < start {
			f.nextUp = indexByteFrom(text, start, up)
		}
		i := f.nextLow
		if i < 0 || f.nextUp >= 0 && f.nextUp < i {
			i = f.nextUp
		}
		if i < 0 || i > last {
			return -1
		}
		if address.EqualFoldASCII(text[i:i+n], f.lower) {
			return i
		}
		start = i + 1
	}
	return -1
}

// indexByteFrom returns the index of the first c in s at or after i, or -1.
func indexByteFrom(s string, i int, c byte) int {
	if j := strings.IndexByte(s[i:], c); j >= 0 {
		return i + j
	}
	return -1
}

// isUsernameRune reports whether r can continue a username, so that a
// match inside a longer name does not count.
func isUsernameRune(r rune) bool {
	return r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-' || r == '@')
}
