package senderauth

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// What DKIM verification reads is bounded, so that its cost grows linearly
// with the mail and a hostile one costs milliseconds. go-msgauth is
// quadratic in places: it joins a folded field one line at a time
// (h[len(h)-1] += line), its header picker scans every field for every
// h= entry, and its simple body canonicalization copies a held-back run of
// line breaks again at every write. The bounds are far above what signers
// write; a signature past one is reported as permerror with the bound it
// broke, never passed unchecked.
const (
	// maxDKIMHeaderBytes bounds the header read: a longer one is not
	// verified. (Postfix keeps 100 KiB of a header by default, Exchange
	// Online refuses more than 256 KiB.)
	maxDKIMHeaderBytes = 1 << 20
	// maxHashedHeaderBytes bounds the header bytes that go-msgauth
	// canonicalizes and hashes for all the signatures of a mail together
	// (each signature hashes the fields it picks, unfolded as given): its
	// relaxed canonicalization makes a string of every word.
	maxHashedHeaderBytes = 512 << 10
	// maxSignedFields bounds the h= entries of a signature; signers list
	// 5 to 40. go-msgauth scans every field given to it for each entry.
	maxSignedFields = 128
	// maxSignedNameBytes bounds one h= entry.
	maxSignedNameBytes = 256
	// maxSignatureBytes bounds a DKIM-Signature field; signers write
	// under 2 KB. go-msgauth runs a regular expression over it, at some
	// 50 ns a byte.
	maxSignatureBytes = 16 << 10
	// maxFoldCopyBytes bounds what go-msgauth copies joining the folded
	// lines of the fields it is given: a field of L lines and N bytes
	// costs it about L×N/2. The costliest fields are unfolded until the
	// header costs at most this (a 500-line field of 32 KB does not reach
	// it).
	maxFoldCopyBytes = 16 << 20
	// maxEdgeSpaceBytes bounds the white space at either end of a field's
	// name and value, which go-msgauth's picker trims every time it scans
	// the field.
	maxEdgeSpaceBytes = 32
	// maxLineBreakRun bounds a run of CR and LF bytes in the body (4,096
	// empty lines).
	maxLineBreakRun = 8 << 10
)

// dkimHeader is the header of a message as go-msgauth reads it: each line
// ends in CRLF, a line that starts with SP or HT continues the field before
// it.
type dkimHeader struct {
	raw      []byte  // the fields, one after the other
	starts   []int32 // where each field starts in raw
	tooLarge bool    // reading stopped at maxDKIMHeaderBytes
}

// readDKIMHeader reads the header of a message from br, as go-msgauth's
// readHeader does but in linear time: a line ends at LF (a CR before it is
// dropped), and the header at the first empty line, which is consumed. ok
// is false when the input ends (or fails) before that empty line:
// go-msgauth then checks no signature. Reading stops (ok, h.tooLarge) past
// maxDKIMHeaderBytes.
func readDKIMHeader(br *bufio.Reader) (h dkimHeader, ok bool) {
	for {
		start := len(h.raw)
		for {
			frag, err := br.ReadSlice('\n')
			h.raw = append(h.raw, frag...)
			if len(h.raw) > maxDKIMHeaderBytes {
				h.raw = h.raw[:start]
				h.tooLarge = true
				return h, true
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err != nil {
				return h, false
			}
			break
		}
		h.raw = h.raw[:len(h.raw)-1] // LF
		if len(h.raw) > start && h.raw[len(h.raw)-1] == '\r' {
			h.raw = h.raw[:len(h.raw)-1]
		}
		if len(h.raw) == start {
			return h, true
		}
		if c := h.raw[start]; c != ' ' && c != '\t' || len(h.starts) == 0 {
			h.starts = append(h.starts, int32(start))
		}
		h.raw = append(h.raw, '\r', '\n')
	}
}

// field returns the i-th field, with its CRLF.
func (h *dkimHeader) field(i int) []byte {
	end := len(h.raw)
	if i+1 < len(h.starts) {
		end = int(h.starts[i+1])
	}
	return h.raw[h.starts[i]:end]
}

// splitField splits a field at its first colon as go-msgauth's
// parseHeaderField does; a field without one is all name.
func splitField(f []byte) (name, value []byte) {
	name, value, _ = bytes.Cut(f, []byte(":"))
	return name, value
}

// fieldName is the name go-msgauth matches a field by.
func fieldName(f []byte) []byte {
	name, _ := splitField(f)
	return bytes.TrimSpace(name)
}

// quoteName quotes a field name for a reason, shortened.
func quoteName(name []byte) string {
	if len(name) > 64 {
		return fmt.Sprintf("%q...", name[:64])
	}
	return fmt.Sprintf("%q", name)
}

// appendFoldKey appends to dst a key of name that is the same for two names
// exactly when strings.EqualFold says they are equal, as go-msgauth compares
// them: each rune becomes the smallest of its Unicode simple case folding
// orbit (so K, k and the Kelvin sign K become K), and a byte that is not
// UTF-8 becomes U+FFFD, as EqualFold reads it.
func appendFoldKey(dst, name []byte) []byte {
	for len(name) > 0 {
		c := name[0]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			name = name[1:]
			continue
		}
		r, size := utf8.DecodeRune(name)
		name = name[size:]
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		dst = utf8.AppendRune(dst, least)
	}
	return dst
}

// foldKey is appendFoldKey of a string.
func foldKey(name string) string {
	return string(appendFoldKey(nil, []byte(name)))
}

// dkimSig is a DKIM-Signature field among the first ones of a header, and
// what go-msgauth will be asked about it.
type dkimSig struct {
	field      int      // its index in the header
	domain     string   // d=, as go-msgauth reports it
	identifier string   // i=, as go-msgauth reports it
	simple     bool     // c= canonicalizes the header the simple way
	names      []string // h=, as go-msgauth splits it
	picks      []int    // the fields go-msgauth hashes for it
	// problem, when set, is why it is not given to go-msgauth at all: the
	// reason of its permerror.
	problem string
	// override, when set, is why whatever go-msgauth says of it stands
	// for nothing: the reason of its permerror.
	override string
}

// keptField is a field that verification reads, and the form in which
// go-msgauth is given it.
type keptField struct {
	unfolded []byte // its relaxed-canonical form, given instead of it; nil for as it is
	why      string // why it was unfolded, or dropped
	dropped  bool   // not given to go-msgauth at all: its signatures are not checked
}

// dkimPlan is what go-msgauth is given to verify the first signatures of a
// message: a header of only the fields they read, in their order. The
// header picker of RFC 6376 section 5.4.2, which go-msgauth follows, hashes
// for the n-th entry of a name in h= the n-th field of that name counted
// from the bottom, and nothing else: a field that no h= names never changes
// a hash, so leaving it out (with the bottom-most fields of each name kept,
// in order) leaves every result as it was, and leaves go-msgauth nothing
// hostile to chew on.
type dkimPlan struct {
	sigs   []dkimSig
	header []byte // what go-msgauth reads before the body
	verify int    // how many of its DKIM-Signature fields go-msgauth checks
}

// planDKIM chooses what go-msgauth reads of h to check its first max
// signatures.
func planDKIM(h *dkimHeader, max int) dkimPlan {
	var p dkimPlan
	var key []byte
	sigKey := foldKey("DKIM-Signature")
	for i := range h.starts {
		if len(p.sigs) == max {
			break
		}
		key = appendFoldKey(key[:0], fieldName(h.field(i)))
		if string(key) == sigKey {
			p.sigs = append(p.sigs, parseSig(h.field(i), i))
		}
	}
	if h.tooLarge {
		for i := range p.sigs {
			p.sigs[i].problem = fmt.Sprintf("dkim: header over %d bytes: not verified", maxDKIMHeaderBytes)
		}
		return p
	}
	p.pick(h)
	kept := p.keep(h)
	p.judge(h, kept)
	var given [][]byte // the fields go-msgauth is given, in order
	size := len("\r\n")
	for _, i := range slices.Sorted(maps.Keys(kept)) {
		switch k := kept[i]; {
		case k.dropped:
			continue
		case k.unfolded != nil:
			given = append(given, k.unfolded)
		default:
			given = append(given, h.field(i))
		}
		size += len(given[len(given)-1])
	}
	p.header = make([]byte, 0, size)
	for _, f := range given {
		p.header = append(p.header, f...)
	}
	p.header = append(p.header, '\r', '\n')
	for _, s := range p.sigs {
		if s.problem == "" {
			p.verify++
		}
	}
	return p
}

// parseSig reads what verification needs of the DKIM-Signature field f,
// split into tags as go-msgauth splits it, and checks it against the
// bounds.
func parseSig(f []byte, i int) dkimSig {
	s := dkimSig{field: i, simple: true}
	_, value := splitField(f)
	tags, ok := parseTags(string(bytes.TrimSpace(value)))
	if !ok {
		return s // go-msgauth stops at the malformed tags
	}
	if tags["v"] == "1" {
		s.domain = stripWhitespace(tags["d"])
		s.identifier = "@" + s.domain
		if id, ok := tags["i"]; ok {
			s.identifier = stripWhitespace(id)
		}
	}
	if c, _, _ := strings.Cut(stripWhitespace(tags["c"]), "/"); c != "" && c != "simple" {
		s.simple = false
	}
	if list, ok := tags["h"]; ok {
		s.names = strings.Split(list, ":")
		for j, name := range s.names {
			s.names[j] = stripWhitespace(name)
		}
	}
	if len(s.names) > maxSignedFields {
		s.problem = fmt.Sprintf("dkim: h= lists %d header fields, over %d: not verified", len(s.names), maxSignedFields)
		return s
	}
	for _, name := range s.names {
		if len(name) > maxSignedNameBytes {
			s.problem = fmt.Sprintf("dkim: h= names a field of %d bytes, over %d: not verified", len(name), maxSignedNameBytes)
			break
		}
	}
	return s
}

// parseTags splits a tag list as go-msgauth's parseHeaderParams does; ok
// is false where it fails.
func parseTags(s string) (tags map[string]string, ok bool) {
	tags = make(map[string]string)
	for _, pair := range strings.Split(s, ";") {
		k, v, found := strings.Cut(pair, "=")
		if !found {
			if strings.TrimSpace(pair) == "" {
				continue
			}
			return tags, false
		}
		k = strings.TrimSpace(k)
		if _, dup := tags[k]; dup {
			return tags, false
		}
		tags[k] = strings.TrimSpace(v)
	}
	return tags, true
}

// stripWhitespace drops white space as go-msgauth's stripWhitespace does
// (which also turns bytes that are not UTF-8 into U+FFFD).
func stripWhitespace(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
}

// pick finds the fields go-msgauth's header picker hashes for each
// signature that is checked: for the n-th entry of a name in h= (counted
// by strings.ToLower of the entry), the n-th field from the bottom whose
// name strings.EqualFold matches it.
func (p *dkimPlan) pick(h *dkimHeader) {
	type class struct{ bottomUp []int }
	classes := make(map[string]*class)
	for _, s := range p.sigs {
		if s.problem == "" {
			for _, name := range s.names {
				classes[foldKey(strings.ToLower(name))] = &class{}
			}
		}
	}
	if len(classes) == 0 {
		return
	}
	var key []byte
	for i := len(h.starts) - 1; i >= 0; i-- {
		key = appendFoldKey(key[:0], fieldName(h.field(i)))
		if c, ok := classes[string(key)]; ok && len(c.bottomUp) < maxSignedFields {
			c.bottomUp = append(c.bottomUp, i)
		}
	}
	for j := range p.sigs {
		s := &p.sigs[j]
		if s.problem != "" {
			continue
		}
		seen := make(map[string]int)
		for _, name := range s.names {
			low := strings.ToLower(name)
			n := seen[low]
			seen[low]++
			if c := classes[foldKey(low)]; n < len(c.bottomUp) {
				s.picks = append(s.picks, c.bottomUp[n])
			}
		}
	}
}

// keep returns the fields go-msgauth is to read, each in the form it is to
// read them: the DKIM-Signature fields checked and the fields they pick.
// A field whose ends hold more than maxEdgeSpaceBytes of white space is
// unfolded, and dropped when that does not help (relaxed canonicalization
// keeps white space other than SP and HT); then the fields whose folding
// costs go-msgauth most are unfolded until the header costs at most
// maxFoldCopyBytes.
func (p *dkimPlan) keep(h *dkimHeader) map[int]*keptField {
	kept := make(map[int]*keptField)
	for _, s := range p.sigs {
		if s.problem != "" {
			continue
		}
		kept[s.field] = &keptField{}
		for _, i := range s.picks {
			kept[i] = &keptField{}
		}
	}
	for i, k := range kept {
		f := h.field(i)
		if n := edgeSpace(f); n > maxEdgeSpaceBytes {
			k.why = fmt.Sprintf("has %d bytes of white space at its ends", n)
			k.unfolded = unfoldField(f)
			k.dropped = k.unfolded == nil || edgeSpace(k.unfolded) > maxEdgeSpaceBytes
		}
	}
	type costly struct {
		i, lines int
		cost     int64
	}
	var folded []costly
	var total int64
	for i, k := range kept {
		if f := h.field(i); k.unfolded == nil && !k.dropped {
			if lines := bytes.Count(f, []byte("\n")); lines > 1 {
				folded = append(folded, costly{i, lines, int64(lines-1) * int64(len(f))})
				total += folded[len(folded)-1].cost
			}
		}
	}
	slices.SortFunc(folded, func(a, b costly) int { return cmp.Or(cmp.Compare(b.cost, a.cost), cmp.Compare(a.i, b.i)) })
	for _, c := range folded {
		if total <= maxFoldCopyBytes {
			break
		}
		k := kept[c.i]
		k.why = fmt.Sprintf("is folded over %d lines", c.lines)
		k.unfolded = unfoldField(h.field(c.i))
		k.dropped = k.unfolded == nil
		total -= c.cost
	}
	return kept
}

// judge settles which signatures go-msgauth checks and which of its
// results stand. A signature whose own field is dropped, or over
// maxSignatureBytes as go-msgauth would read it, or that takes the bytes
// hashed past maxHashedHeaderBytes, is not checked. One
// that picks a field not given to go-msgauth (dropped, or a signature that
// is not checked) is not verified. One that canonicalizes the header the
// simple way and picks an unfolded field (or is unfolded itself) is not
// verified either: unfolding changes the bytes it hashes. Relaxed
// canonicalization hashes the same bytes either way.
func (p *dkimPlan) judge(h *dkimHeader, kept map[int]*keptField) {
	given := func(i int) int { // the bytes of field i as go-msgauth is given it
		if k := kept[i]; k.unfolded != nil {
			return len(k.unfolded)
		}
		return len(h.field(i))
	}
	var hashed int // by the signatures before
	for j := range p.sigs {
		s := &p.sigs[j]
		if s.problem != "" {
			continue
		}
		size, total := given(s.field), hashed+given(s.field)
		for _, i := range s.picks {
			total += given(i)
		}
		switch k := kept[s.field]; {
		case k.dropped:
			s.problem = fmt.Sprintf("dkim: DKIM-Signature field %s: not verified", k.why)
		case size > maxSignatureBytes:
			s.problem = fmt.Sprintf("dkim: DKIM-Signature field of %d bytes, over %d: not verified", size, maxSignatureBytes)
		case total > maxHashedHeaderBytes:
			s.problem = fmt.Sprintf("dkim: signatures hash %d bytes of header fields, this one and those above it, over %d: not verified", total, maxHashedHeaderBytes)
		default:
			hashed = total
		}
	}
	unchecked := make(map[int]string)
	for _, s := range p.sigs {
		if s.problem != "" {
			unchecked[s.field] = s.problem
			if k := kept[s.field]; k != nil {
				k.dropped = true
			}
		}
	}
	for i, k := range kept {
		if k.dropped && unchecked[i] == "" {
			unchecked[i] = "it " + k.why
		}
	}
	for j := range p.sigs {
		s := &p.sigs[j]
		if s.problem != "" {
			continue
		}
		for _, i := range s.picks {
			if why, ok := unchecked[i]; ok {
				s.override = fmt.Sprintf("dkim: signs header field %s, which is not checked (%s): not verified", quoteName(fieldName(h.field(i))), why)
				break
			}
		}
		if s.override != "" || !s.simple {
			continue
		}
		for _, i := range append([]int{s.field}, s.picks...) {
			if k := kept[i]; k.unfolded != nil {
				s.override = fmt.Sprintf("dkim: header field %s %s: unfolded to be checked, which a c=simple signature does not survive: not verified", quoteName(fieldName(h.field(i))), k.why)
				break
			}
		}
	}
}

// edgeSpace counts the white space at the ends of the name and the value of
// f, which go-msgauth's parseHeaderField trims each time it looks at f.
func edgeSpace(f []byte) int {
	name, value := splitField(f)
	return len(name) - len(bytes.TrimSpace(name)) + len(value) - len(bytes.TrimSpace(value))
}

// unfoldField returns the field f (CRLF line ends) in a form for which
// relaxed header canonicalization (RFC 6376 section 3.4.2, as go-msgauth
// does it) gives the same bytes, and go-msgauth the same name: its name as
// it is without the white space after it, a colon, and its value with each
// run of SP, HT, CR and LF turned into one space, on one line. A field
// without a colon is all name. It returns nil when there is no such form:
// when the name is empty (the form would be an empty line, the end of the
// header) or folded itself (relaxed canonicalization keeps that fold; no
// name that h= lists is folded).
func unfoldField(f []byte) []byte {
	name, value, colon := bytes.Cut(f, []byte(":"))
	name = bytes.TrimRight(name, " \t\r\n")
	if bytes.IndexByte(name, '\n') >= 0 || !colon && len(name) == 0 {
		return nil
	}
	if !colon {
		return append(name[:len(name):len(name)], '\r', '\n')
	}
	out := make([]byte, 0, len(name)+len(value)+3)
	out = append(append(out, name...), ':')
	for w := range bytes.FieldsFuncSeq(value, isRelaxedSpace) {
		out = append(append(out, ' '), w...)
	}
	return append(out, '\r', '\n')
}

// isRelaxedSpace tells the white space that relaxed header canonicalization
// turns into a single space.
func isRelaxedSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\r' || r == '\n'
}

// lineBreakLimiter reads a body until it holds more than max CR and LF
// bytes in a row (go-msgauth's simple body canonicalization holds such a
// run back and copies it again at every write, quadratic in its length);
// from there on it reads as if the body ended, and over tells.
type lineBreakLimiter struct {
	r    io.Reader
	max  int
	run  int
	over bool
}

func (l *lineBreakLimiter) Read(p []byte) (int, error) {
	if l.over {
		return 0, io.EOF
	}
	n, err := l.r.Read(p)
	for i := 0; i < n; i++ {
		if l.run == 0 && i+l.max < n && !isLineBreak(p[i+l.max]) {
			i += l.max // no run from here on gets past p[i+max]
			continue
		}
		if !isLineBreak(p[i]) {
			l.run = 0
			continue
		}
		if l.run++; l.run > l.max {
			l.over = true
			return i, io.EOF
		}
	}
	return n, err
}

// isLineBreak tells CR and LF.
func isLineBreak(c byte) bool {
	return c == '\r' || c == '\n'
}
