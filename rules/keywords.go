package rules

import (
	"maps"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// cueKind says what a keyword of the policy is for.
type cueKind uint8

const (
	cueIntent cueKind = iota
	cueUsername
	cuePassword
)

// keyword is one policy keyword, as written, with what it signals.
type keyword struct {
	kind   cueKind
	intent int // index into policyFile.Intents for cueIntent
	lang   string
	text   string
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
}

type trieNode struct {
	edges listRef // the node's edges in matcher.edges, sorted by byte
}

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
	return buildTrie(byFolded)
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
		m.nodes[n].edges = listRef{uint32(len(m.edges)), uint32(len(keys))}
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
// "password reset").
func (m *matcher) find(text string) []hit {
	folded, offs := foldMap(text)
	var hits []hit
	for i := 0; i < len(folded); i++ {
		n := m.root[folded[i]]
		if n == 0 {
			continue
		}
		if i > 0 {
			if c := folded[i-1]; c < utf8.RuneSelf {
				if wordByte[c] {
					continue
				}
			} else if r, _ := utf8.DecodeLastRune(folded[:i]); isWordRune(r) {
				continue
			}
		}
		for j := i + 1; ; j++ {
			if kw := m.keywords[n]; kw != nil {
				hits = append(hits, hit{kw: kw, start: offs.orig(i, len(text)), end: offs.orig(j, len(text))})
			}
			if j == len(folded) {
				break
			}
			if n = m.child(n, folded[j]); n == 0 {
				break
			}
		}
	}
	return hits
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
// which folds to nothing.
func foldRune(r rune) rune {
	switch {
	case unicode.IsSpace(r):
		return ' '
	case r == '\u2019' || r == '\u2018' || r == '\u02bc' || r == '\u00b4':
		return '\''
	case unicode.Is(unicode.Mn, r):
		return -1
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
