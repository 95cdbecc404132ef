package rules

import (
	"maps"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/width"
)

// cueKind says what a keyword of the policy is for.
type cueKind uint8

const (
	cueIntent   cueKind = iota
	cueUsername         // a word after which a username may follow
	cuePassword         // a word after which a password may follow
	cueNear             // a word of an intent's proximity rule
	// cueNearPair is no policy keyword but a proximity rule that holds:
	// find adds one hit for it, spanning both words.
	cueNearPair
)

// keyword is one policy keyword, as written, with what it signals.
type keyword struct {
	kind   cueKind
	intent int // index into policyFile.Intents for cueIntent, cueNear and cueNearPair
	near   int // index into the intent's near rules, for cueNear and cueNearPair
	side   int // for cueNear: 0 a word of the rule's words, 1 of its with
	lang   string
	text   string
	// with is, for cueNearPair, the keyword of the rule's with list that
	// was found near this one (a word of its words list).
	with *keyword
}

// matcher finds every policy keyword in a text in one pass. Keywords match
// at the start of a word only (and may end inside one: stems), so all
// keyword lists are compiled into one byte trie over folded text (lower
// case, accents removed) that is walked from each word start: a few steps
// a word, where a general multi-pattern automaton would step through every
// byte and then throw most of its matches away.
type matcher struct {
	nodes    []trieNode
	edges    []trieEdge
	root     [256]int32  // child of the root by byte; 0: none
	keywords [][]keyword // by node; nil unless a keyword ends there
	// near holds the proximity rules of the intents, by intent and rule,
	// as indexes in policyFile.Intents[i].Near.
	near [][]nearRule
}

// nearRule is a compiled proximity rule: a word of one list and a word
// of the other, at most within characters apart in one paragraph.
type nearRule struct{ within int }

type trieNode struct {
	edges edgeRun // the node's edges in matcher.edges, sorted by byte
}

// edgeRun is a run of edges in matcher.edges.
type edgeRun struct{ start, n uint32 }

type trieEdge struct {
	b    byte
	node int32
}

// hit is a keyword found in a text, with byte offsets into the original text.
type hit struct {
	kw         []keyword // every keyword that folds to the matched text
	start, end int
}

func newMatcher(f *policyFile) *matcher {
	byFolded := map[string][]keyword{}
	add := func(k keyword) {
		key := fold(strings.TrimSpace(k.text))
		byFolded[key] = append(byFolded[key], k)
	}
	// Languages in sorted order, so that hits list their keywords the same
	// way on every run.
	for i, in := range f.Intents {
		for _, lang := range slices.Sorted(maps.Keys(in.Keywords)) {
			for _, w := range in.Keywords[lang] {
				add(keyword{kind: cueIntent, intent: i, lang: lang, text: w})
			}
		}
	}
	for _, lang := range slices.Sorted(maps.Keys(f.Extraction.UsernameCues)) {
		for _, w := range f.Extraction.UsernameCues[lang] {
			add(keyword{kind: cueUsername, lang: lang, text: w})
		}
	}
	for _, lang := range slices.Sorted(maps.Keys(f.Redaction.PasswordCues)) {
		for _, w := range f.Redaction.PasswordCues[lang] {
			add(keyword{kind: cuePassword, lang: lang, text: w})
		}
	}
	near := make([][]nearRule, len(f.Intents))
	for i, in := range f.Intents {
		for r, n := range in.Near {
			near[i] = append(near[i], nearRule{within: n.Within})
			for side, words := range [2]map[string][]string{n.Words, n.With} {
				for _, lang := range slices.Sorted(maps.Keys(words)) {
					for _, w := range words[lang] {
						add(keyword{kind: cueNear, intent: i, near: r, side: side, lang: lang, text: w})
					}
				}
			}
		}
	}
	m := buildTrie(byFolded)
	m.near = near
	return m
}

// buildTrie compiles the folded keywords into the matcher's trie.
func buildTrie(byFolded map[string][]keyword) *matcher {
	// Build with maps, then flatten: nodes' edges are stored sorted and
	// contiguous, which is what find walks.
	type buildNode struct {
		children map[byte]int
		kw       []keyword
	}
	nodes := []buildNode{{children: map[byte]int{}}} // 0: the root
	for _, word := range slices.Sorted(maps.Keys(byFolded)) {
		n := 0
		for i := 0; i < len(word); i++ {
			c, ok := nodes[n].children[word[i]]
			if !ok {
				c = len(nodes)
				nodes = append(nodes, buildNode{children: map[byte]int{}})
				nodes[n].children[word[i]] = c
			}
			n = c
		}
		nodes[n].kw = append(nodes[n].kw, byFolded[word]...)
	}
	m := &matcher{nodes: make([]trieNode, len(nodes)), keywords: make([][]keyword, len(nodes))}
	for n, bn := range nodes {
		m.keywords[n] = bn.kw
		keys := slices.Sorted(maps.Keys(bn.children))
		m.nodes[n].edges = edgeRun{uint32(len(m.edges)), uint32(len(keys))}
		for _, b := range keys {
			m.edges = append(m.edges, trieEdge{b, int32(bn.children[b])})
			if n == 0 {
				m.root[b] = int32(bn.children[b])
			}
		}
	}
	return m
}

// child returns the child of node n by byte b, or 0.
func (m *matcher) child(n int32, b byte) int32 {
	r := m.nodes[n].edges
	for _, e := range m.edges[r.start : r.start+r.n] {
		if e.b >= b {
			if e.b == b {
				return e.node
			}
			return 0
		}
	}
	return 0
}

// find returns the keywords that occur in text at the start of a word, in
// text order (several hits may start at one place: "password" and
// "password reset"), and a cueNearPair hit for each proximity rule that
// holds.
func (m *matcher) find(text string) []hit {
	folded, offs := foldMap(text)
	var hits []hit
	nearWords := false
	for i := 0; i < len(folded); i++ {
		n := m.root[folded[i]]
		if n == 0 {
			continue
		}
		if i > 0 {
			if c := folded[i-1]; c < utf8.RuneSelf && wordByte[c] && folded[i] < utf8.RuneSelf {
				continue // the common case: inside an ASCII word
			}
			if !wordStart(folded, i) {
				continue
			}
		}
		for j := i + 1; ; j++ {
			if kw := m.keywords[n]; kw != nil && !(j < len(folded) && isDigit(folded[j]) && isDigit(folded[j-1])) {
				hits = append(hits, hit{kw: kw, start: offs.orig(i, len(text)), end: offs.orig(j, len(text))})
				nearWords = nearWords || hasKind(kw, cueNear)
			}
			if j == len(folded) {
				break
			}
			if n = m.child(n, folded[j]); n == 0 {
				break
			}
		}
	}
	if nearWords {
		hits = m.nearPairs(text, hits)
	}
	return hits
}

// wordStart reports whether a keyword may start at folded[i], i > 0: after
// a character that is no letter or digit, or where either character is of
// a script written without spaces between words (Chinese, Japanese, and
// Korean, which glues particles to nouns).
func wordStart(folded []byte, i int) bool {
	c := folded[i-1]
	if c < utf8.RuneSelf && !wordByte[c] {
		return true
	}
	if folded[i] >= utf8.RuneSelf {
		if r, _ := utf8.DecodeRune(folded[i:]); spaceless(r) {
			return true
		}
	}
	if c < utf8.RuneSelf {
		return false
	}
	r, _ := utf8.DecodeLastRune(folded[:i])
	return !isWordRune(r) || spaceless(r)
}

// spaceless reports whether r belongs to a script written without spaces
// between words: Han, kana and the CJK symbols, Hangul, Thai, Lao,
// Myanmar, Khmer.
func spaceless(r rune) bool {
	switch {
	case r < 0x0E00:
		return false
	case r <= 0x0EFF: // Thai, Lao
		return true
	case r >= 0x1000 && r <= 0x109F, // Myanmar
		r >= 0x1100 && r <= 0x11FF,   // Hangul Jamo
		r >= 0x1780 && r <= 0x17FF,   // Khmer
		r >= 0x2E80 && r <= 0x9FFF,   // CJK radicals, symbols, kana, ideographs
		r >= 0xA960 && r <= 0xA97F,   // Hangul Jamo extended
		r >= 0xAC00 && r <= 0xD7FF,   // Hangul syllables
		r >= 0xF900 && r <= 0xFAFF,   // CJK compatibility ideographs
		r >= 0xFF66 && r <= 0xFFDC,   // halfwidth kana and Hangul
		r >= 0x20000 && r <= 0x3FFFF: // CJK ideographs, supplementary planes
		return true
	}
	return false
}

// nearPairs adds to hits (in text order) one cueNearPair hit for each
// proximity rule that holds: a word of one list at most within
// characters from a word of the other, in either order, with no blank
// line between them. Each hit is compared with the latest word of the
// other list only (the nearest one before it), so the search is linear
// however often an attacker repeats the words.
func (m *matcher) nearPairs(text string, hits []hit) []hit {
	for i, rules := range m.near {
		for r, rule := range rules {
			var last [2]*hit // the latest hit of each side
			var lastKW [2]*keyword
			var pair *hit
			for h := range hits {
				k := nearKeyword(hits[h].kw, i, r)
				if k == nil {
					continue
				}
				if o := last[1-k.side]; o != nil && withinChars(text, o.end, hits[h].start, rule.within) {
					words, with := k, lastKW[1-k.side]
					if k.side == 1 {
						words, with = with, k
					}
					pk := *words
					pk.kind, pk.with = cueNearPair, with
					pair = &hit{kw: []keyword{pk}, start: o.start, end: hits[h].end}
					break
				}
				if last[k.side] == nil || hits[h].end > last[k.side].end {
					last[k.side], lastKW[k.side] = &hits[h], k
				}
			}
			if pair != nil {
				at, _ := slices.BinarySearchFunc(hits, pair.start+1, func(h hit, start int) int { return h.start - start })
				hits = slices.Insert(hits, at, *pair)
			}
		}
	}
	return hits
}

// nearKeyword returns the first keyword of kws that is a word of near
// rule r of intent i, or nil.
func nearKeyword(kws []keyword, i, r int) *keyword {
	for k := range kws {
		if kws[k].kind == cueNear && kws[k].intent == i && kws[k].near == r {
			return &kws[k]
		}
	}
	return nil
}

// withinChars reports whether text[from:to] is at most within characters
// long and holds no paragraph break (a line break, then a blank line).
// Overlapping words (to <= from) are close.
func withinChars(text string, from, to, within int) bool {
	n := 0
	newline := false // a line break, then only blanks so far
	for i := from; i < to; i++ {
		c := text[i]
		if utf8.RuneStart(c) {
			if n++; n > within {
				return false
			}
		}
		switch c {
		case '\n':
			if newline {
				return false
			}
			newline = true
		case ' ', '\t', '\r':
		default:
			newline = false
		}
	}
	return true
}

// wordByte marks the ASCII bytes that continue a word in folded text.
var wordByte = func() (t [utf8.RuneSelf]bool) {
	for c := range t {
		t[c] = isWordRune(rune(c))
	}
	return t
}()

func isWordRune(r rune) bool {
	return r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= '0' && r <= '9') ||
		r >= utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r))
}

// fold lower-cases s, strips accents, turns every run of white space into
// one space and typographic apostrophes into "'", so that keywords match
// however a customer types or wraps them ("Réinitialiser" and
// "reinitialiser", "forgot my\r\nusername" and "forgot my username").
func fold(s string) string {
	b, _ := foldMap(s)
	return string(b)
}

// foldOffsets maps offsets in a folded text back to the original text.
// Between two of its points, folded and original bytes correspond one to
// one; a point is needed only where folding dropped or shrank something
// (a run of white space, an accented letter), so a plain text with line
// breaks needs a point a line.
type foldOffsets []foldPoint

type foldPoint struct{ folded, orig int32 }

// orig returns the offset in the original text (of length n) of folded
// offset f.
func (o foldOffsets) orig(f, n int) int {
	i := sort.Search(len(o), func(i int) bool { return int(o[i].folded) > f }) - 1
	if i < 0 {
		return min(f, n)
	}
	return min(int(o[i].orig)+f-int(o[i].folded), n)
}

// foldMap folds s and returns the map of the folded offsets back to s.
func foldMap(s string) ([]byte, foldOffsets) {
	if plainASCII(s) {
		b := make([]byte, len(s))
		for i := 0; i < len(s); i++ {
			b[i] = asciiFold[s[i]]
		}
		return b, nil
	}
	// Folding never makes ASCII longer, and a non-ASCII character folds
	// to at most as many bytes as it had (a lower-case letter without its
	// accent, a space or an apostrophe), so len(s) is enough.
	b := make([]byte, len(s))
	var offs foldOffsets
	n := 0
	delta := 0            // original offset minus folded offset, as of the last point
	space := false        // the last byte written is a folded space
	mark := func(i int) { // the byte written at n comes from s[i]
		if i-n != delta {
			offs = append(offs, foldPoint{int32(n), int32(i)})
			delta = i - n
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			f := asciiFold[c]
			if f != ' ' || !space {
				mark(i)
				b[n] = f
				n++
			}
			space = f == ' '
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch r = foldRune(r); {
		case r == ' ':
			if !space {
				mark(i)
				b[n] = ' '
				n++
			}
			space = true
		case r >= 0 && utf8.RuneLen(r) <= size:
			mark(i)
			n += utf8.EncodeRune(b[n:], r)
			space = false
		case r >= 0: // longer folded than written: keep the original bytes
			mark(i)
			n += copy(b[n:], s[i:i+size])
			space = false
		}
		i += size
	}
	mark(len(s)) // the end of the folded text is the end of s
	return b[:n], offs
}

// asciiFold maps each ASCII byte to its folded form: letters to lower
// case, white space to ' '.
var asciiFold = func() (t [utf8.RuneSelf]byte) {
	for c := range t {
		switch {
		case 'A' <= c && c <= 'Z':
			t[c] = byte(c) + 'a' - 'A'
		case c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			t[c] = ' '
		default:
			t[c] = byte(c)
		}
	}
	return t
}()

// plainASCII reports whether s is ASCII without line breaks, tabs or runs
// of spaces: folding it changes only the case of letters.
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || c < ' ' || c == ' ' && i > 0 && s[i-1] == ' ' {
			return false
		}
	}
	return true
}

// foldRune lower-cases r and drops its accents; it returns ' ' for white
// space, "'" for typographic apostrophes and -1 for a combining mark,
// which folds to nothing. Fullwidth Latin letters and signs fold to ASCII
// ("Ｐａｓｓｗｏｒｄ：" is "password:"), halfwidth kana to fullwidth, the
// voicing marks of kana to nothing, like accents, the Turkish dotless ı
// to i and the Greek final ς to σ.
func foldRune(r rune) rune {
	switch {
	case unicode.IsSpace(r):
		return ' '
	case r == '\u2019' || r == '\u2018' || r == '\u02bc' || r == '\u00b4':
		return '\''
	case unicode.Is(unicode.Mn, r):
		return -1
	case r >= 0xFF01 && r <= 0xFFEE: // the Halfwidth and Fullwidth Forms block
		if p := width.LookupRune(r); p.Kind() == width.EastAsianFullwidth || p.Kind() == width.EastAsianHalfwidth {
			if f := p.Folded(); f != 0 {
				return foldRune(f)
			}
		}
	case r == '\u309B' || r == '\u309C': // spacing voicing marks of kana
		return -1
	case r == 'ı': // Turkish dotless i: "I" in upper case, often typed as "i"
		return 'i'
	case r == 'ς': // Greek final sigma: "Σ" in upper case
		return 'σ'
	}
	r = unicode.ToLower(r)
	var buf [utf8.UTFMax]byte
	n := utf8.EncodeRune(buf[:], r)
	if d := norm.NFD.Properties(buf[:n]).Decomposition(); len(d) > 0 {
		base, _ := utf8.DecodeRune(d)
		return unicode.ToLower(base)
	}
	return r
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
