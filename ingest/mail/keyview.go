package mail

import (
	"bytes"
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/transform"
)

// States of an htmlView.
const (
	htmlText    = iota
	htmlLT      // after '<'
	htmlTagName // reading the tag's name
	htmlTag     // in a tag, up to '>'
	htmlEntity  // after '&'
)

// htmlView hands the text of HTML to its scanner as a browser shows it:
// tags dropped (block-level ones leave a space), character references
// decoded, whatever their spelling (&nbsp; &#45; &#x2D; &mdash;).
type htmlView struct {
	st     uint8
	inline bool // the tag being skipped leaves no space
	name   [8]byte
	nameN  int
	ent    [24]byte // longer than the longest reference that matters
	entN   int
	out    byteBatch // to scan, or to scan and a test's copy of the text
	scan   keyScanner
}

func (h *htmlView) reset() {
	h.st, h.out.n, h.out.sink = htmlText, 0, &h.scan
	h.scan.reset()
}

func (h *htmlView) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		switch h.st {
		case htmlText:
			end := bytes.IndexByte(b, '<')
			if end < 0 {
				end = len(b)
			}
			j := bytes.IndexByte(b[:end], '&')
			if j < 0 {
				j = end
			}
			h.out.write(b[:j])
			if j == len(b) {
				b = nil
				break
			}
			if b[j] == '<' {
				h.st = htmlLT
			} else {
				h.st, h.entN = htmlEntity, 0
			}
			b = b[j+1:]
		case htmlLT:
			c := b[0]
			switch {
			case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
				h.st, h.nameN = htmlTagName, 0
			case c == '/':
				h.st, h.nameN = htmlTagName, 0
				b = b[1:]
			case c == '!' || c == '?':
				h.st, h.inline = htmlTag, false
			default:
				h.out.writeByte('<')
				h.st = htmlText
			}
		case htmlTagName:
			c := b[0]
			if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ':' {
				if h.nameN < len(h.name) {
					h.name[h.nameN] = c | 0x20
				}
				h.nameN++
				b = b[1:]
				break
			}
			h.st, h.inline = htmlTag, h.nameN <= len(h.name) && isInlineTag(h.name[:h.nameN])
		case htmlTag:
			j := bytes.IndexByte(b, '>')
			if j < 0 {
				b = nil
				break
			}
			b = b[j+1:]
			if !h.inline {
				h.out.writeByte(' ')
			}
			h.st = htmlText
		case htmlEntity:
			c := b[0]
			if (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '#') && h.entN < len(h.ent) {
				h.ent[h.entN] = c
				h.entN++
				b = b[1:]
				break
			}
			if c == ';' {
				b = b[1:]
			}
			h.entity()
			h.st = htmlText
		}
	}
	h.out.flush()
	return n, nil
}

// close ends the HTML: a reference cut off at the end still counts.
func (h *htmlView) close() {
	if h.st == htmlEntity {
		h.entity()
	}
	h.st = htmlText
	h.out.flush()
	h.scan.close()
}

// entity emits the character that the reference in ent stands for, as far
// as the scanner cares: ASCII as itself, dashes as '-', white space as a
// space, invisible characters as nothing.
func (h *htmlView) entity() {
	e := h.ent[:h.entN]
	if len(e) > 0 && e[0] == '#' {
		r, base, digits := rune(0), rune(10), e[1:]
		if len(digits) > 0 && (digits[0] == 'x' || digits[0] == 'X') {
			base, digits = 16, digits[1:]
		}
		if len(digits) == 0 { // not a reference
			h.out.writeByte('&')
			h.out.write(e)
			return
		}
		for _, c := range digits {
			v := rune(hexValue(c))
			if v < 0 || v >= base || r > 0x10ffff {
				r = 0x10ffff + 1
				break
			}
			r = r*base + v
		}
		h.emitRune(r)
		return
	}
	switch string(e) {
	case "nbsp", "NBSP", "ensp", "emsp", "thinsp", "hairsp", "numsp", "puncsp", "MediumSpace", "Tab", "NewLine":
		h.out.writeByte(' ')
	case "amp", "AMP":
		h.out.writeByte('&')
	case "lt", "LT":
		h.out.writeByte('<')
	case "gt", "GT":
		h.out.writeByte('>')
	case "hyphen", "dash", "ndash", "mdash", "minus", "horbar":
		h.out.writeByte('-')
	case "plus":
		h.out.writeByte('+')
	case "sol":
		h.out.writeByte('/')
	case "equals":
		h.out.writeByte('=')
	case "shy", "ZeroWidthSpace", "zwnj", "zwj", "NoBreak", "NegativeThinSpace", "NegativeMediumSpace",
		"NegativeThickSpace", "NegativeVeryThinSpace", "InvisibleTimes", "InvisibleComma", "ic", "it":
	default:
		h.out.writeByte('&')
		h.out.write(e)
	}
}

func (h *htmlView) emitRune(r rune) {
	switch {
	case r > 0 && r < 0x80:
		h.out.writeByte(byte(r))
	case r >= 0x2010 && r <= 0x2015, r == 0x2212, r == 0xfe58, r == 0xfe63, r == 0xff0d:
		h.out.writeByte('-')
	case r >= 0xff01 && r <= 0xff5e: // fullwidth ASCII
		h.out.writeByte(byte(r - 0xfee0))
	case r == 0xad, r >= 0x200b && r <= 0x200d, r >= 0x2060 && r <= 0x2064, r == 0xfeff, r == 0x180e, r == 0:
	default:
		h.out.writeByte(' ')
	}
}

// isInlineTag reports whether the tag named name (lower case) flows with
// the text around it, so that dropping it leaves no space.
func isInlineTag(name []byte) bool {
	switch string(name) {
	case "a", "abbr", "b", "bdi", "bdo", "big", "cite", "code", "data", "del", "dfn", "em", "font",
		"i", "ins", "kbd", "mark", "o:p", "q", "s", "samp", "small", "span", "strike", "strong",
		"sub", "sup", "time", "tt", "u", "var", "wbr":
		return true
	}
	return false
}

// charsetView converts text in a charset that is not ASCII-compatible
// (UTF-16, UTF-32, EBCDIC) to UTF-8 for its own scanners.
type charsetView struct {
	w      *transform.Writer
	scan   keyScanner
	html   htmlView
	htmlOn bool
}

// asciiProbe is text that every ASCII-compatible charset decodes to itself.
const asciiProbe = "-----BEGIN PRIVATE KEY-----\nMIIE+/=\n"

// newCharsetView returns a view for text in charset, or nil when the raw
// bytes already show an ASCII marker (ASCII-compatible charsets, unknown
// ones).
func newCharsetView(charset string, html bool) *charsetView {
	cs := strings.TrimSpace(charset)
	switch {
	case cs == "", strings.EqualFold(cs, "utf-8"), strings.EqualFold(cs, "us-ascii"),
		hasPrefixFold(cs, "iso-8859-"), hasPrefixFold(cs, "windows-125"):
		return nil
	}
	enc := lookupCharset(strings.ToLower(cs))
	if enc == nil {
		return nil
	}
	if out, err := enc.NewDecoder().String(asciiProbe); err == nil && out == asciiProbe {
		return nil
	}
	v := &charsetView{htmlOn: html}
	if html {
		v.html.reset()
		v.w = transform.NewWriter(&v.html, enc.NewDecoder())
	} else {
		v.w = transform.NewWriter(&v.scan, enc.NewDecoder())
	}
	return v
}

// lookupCharset finds an encoding the way go-message's charset package
// does, or returns nil.
func lookupCharset(cs string) encoding.Encoding {
	for _, find := range []func() (encoding.Encoding, error){
		func() (encoding.Encoding, error) { return ianaindex.MIME.Encoding(cs) },
		func() (encoding.Encoding, error) { return ianaindex.MIME.Encoding("cs" + cs) },
		func() (encoding.Encoding, error) { return htmlindex.Get(cs) },
	} {
		if enc, err := find(); err == nil && enc != nil {
			return enc
		}
	}
	return nil
}

func (v *charsetView) Write(b []byte) (int, error) {
	v.w.Write(b) // a decoder never fails on bad input: it substitutes
	return len(b), nil
}

func (v *charsetView) close() string {
	v.w.Close()
	if v.htmlOn {
		v.html.close()
		return v.html.scan.kind
	}
	v.scan.close()
	return v.scan.kind
}

// Transfer encodings a keyPipe undoes.
