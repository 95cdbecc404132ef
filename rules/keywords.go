package rules

import (
	"maps"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	ahocorasick "github.com/petar-dambovaliev/aho-corasick"
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

// matcher finds every policy keyword in a text in one pass: all keyword
// lists are compiled into a single Aho-Corasick automaton over folded text
// (lower case, accents removed).
type matcher struct {
	ac       ahocorasick.AhoCorasick
	keywords [][]keyword // by automaton pattern index
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
	folded := make([]string, 0, len(byFolded))
	for k := range byFolded {
		folded = append(folded, k)
	}
	sort.Strings(folded) // deterministic pattern order
	m := &matcher{keywords: make([][]keyword, len(folded))}
	patterns := make([][]byte, len(folded))
	for i, k := range folded {
		patterns[i] = []byte(k)
		m.keywords[i] = byFolded[k]
	}
	b := ahocorasick.NewAhoCorasickBuilder(ahocorasick.Opts{MatchKind: ahocorasick.StandardMatch, DFA: true})
	m.ac = b.BuildByte(patterns)
	return m
}

// find returns the keywords that occur in text at the start of a word, in
// text order (overlapping hits included).
func (m *matcher) find(text string) []hit {
	folded, offs := foldMap(text)
	var hits []hit
	it := m.ac.IterOverlappingByte(folded)
	for match := it.Next(); match != nil; match = it.Next() {
		start, end := match.Start(), match.End()
		if start > 0 {
			if r, _ := utf8.DecodeLastRune(folded[:start]); isWordRune(r) {
				continue
			}
		}
		if offs != nil {
			start = int(offs[start])
			if end < len(offs) {
				end = int(offs[end])
			} else {
				end = len(text)
			}
		}
		hits = append(hits, hit{kw: m.keywords[match.Pattern()], start: start, end: end})
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].start < hits[j].start })
	return hits
}

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

// foldMap folds s and maps each byte of the result to the offset in s of
// the character it came from; the map is nil when the offsets are
// unchanged (plain ASCII with single spaces).
func foldMap(s string) ([]byte, []int32) {
	if plainASCII(s) {
		b := make([]byte, len(s))
		for i := 0; i < len(s); i++ {
			c := s[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b[i] = c
		}
		return b, nil
	}
	// Folding never makes ASCII longer, and a non-ASCII character folds
	// to at most as many bytes as it had (a lower-case letter without its
	// accent, a space or an apostrophe), so len(s) is enough.
	b := make([]byte, len(s))
	offs := make([]int32, len(s))
	n := 0
	space := false // the last byte written is a folded space
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			f := asciiFold[c]
			if f == ' ' {
				if !space {
					b[n], offs[n] = ' ', int32(i)
					n++
				}
				space = true
			} else {
				b[n], offs[n] = f, int32(i)
				n++
				space = false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch r = foldRune(r); {
		case r == ' ':
			if !space {
				b[n], offs[n] = ' ', int32(i)
				n++
			}
			space = true
		case r >= 0 && utf8.RuneLen(r) <= size:
			w := utf8.EncodeRune(b[n:], r)
			for k := range w {
				offs[n+k] = int32(i)
			}
			n += w
			space = false
		case r >= 0: // longer folded than written: keep the original bytes
			copy(b[n:], s[i:i+size])
			for k := range size {
				offs[n+k] = int32(i)
			}
			n += size
			space = false
		}
		i += size
	}
	return b[:n], offs[:n]
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
