package rules

import (
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
	for i, in := range f.Intents {
		for lang, words := range in.Keywords {
			for _, w := range words {
				add(keyword{kind: cueIntent, intent: i, lang: lang, text: w})
			}
		}
	}
	for lang, words := range f.Extraction.UsernameCues {
		for _, w := range words {
			add(keyword{kind: cueUsername, lang: lang, text: w})
		}
	}
	for lang, words := range f.Redaction.PasswordCues {
		for _, w := range words {
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

// fold lower-cases s and strips accents, so that keywords match however a
// customer types them ("Réinitialiser" and "reinitialiser" fold alike).
func fold(s string) string {
	b, _ := foldMap(s)
	return string(b)
}

// foldMap folds s and maps each byte of the result to the offset in s of
// the character it came from; the map is nil when s is ASCII, where
// offsets are unchanged.
func foldMap(s string) ([]byte, []int32) {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
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
	b := make([]byte, 0, len(s))
	offs := make([]int32, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b = append(b, c)
			offs = append(offs, int32(i))
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r = foldRune(r); r >= 0 {
			n := len(b)
			b = utf8.AppendRune(b, r)
			for ; n < len(b); n++ {
				offs = append(offs, int32(i))
			}
		}
		i += size
	}
	return b, offs
}

// foldRune lower-cases r and drops its accents; it returns -1 for a
// combining mark, which folds to nothing.
func foldRune(r rune) rune {
	if unicode.Is(unicode.Mn, r) {
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
