package ingest

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"io"
	"path"
	"slices"
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/transform"
)

// Kinds of key material an attachment can carry.
const (
	SecretPKCS12     = "pkcs12"
	SecretPrivateKey = "private-key"
)

// pkcs12Types and keyExtensions name attachments that are key material by
// their label alone.
var (
	pkcs12Types   = []string{"application/x-pkcs12", "application/pkcs12"}
	pkcs12Ext     = []string{".pfx", ".p12"}
	privateKeyExt = []string{".key", ".pvk", ".p8", ".jks", ".keystore", ".ppk"}
)

// pfxOID is the DER encoding of the id-data content type
// (1.2.840.113549.1.7.1) that opens every PKCS#12 PFX's authSafe.
var pfxOID = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01}

// The OIDs (with their tag and length) of the schemes that encrypt a
// PKCS#8 private key: PKCS#5 (1.2.840.113549.1.5.*, PBES1 and PBES2) and
// PKCS#12 (1.2.840.113549.1.12.1.*).
var (
	pkcs5OID     = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05}
	pkcs12PBEOID = []byte{0x06, 0x0a, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01}
)

// puttyKeyFile opens every PuTTY private key file (.ppk).
var puttyKeyFile = []byte("PuTTY-User-Key-File-")

// keyRemoved replaces key material in the text kept for the ticket.
const keyRemoved = "[private key removed]"

// secretDetector watches a part's decoded bytes for key material: a
// PKCS#12 structure, a DER private key or a PuTTY key file at the start, a
// PEM private key or base64 key anywhere (see keyScanner), or a label
// (type, file extension) that says so. HTML is looked at as a browser
// shows it too, and text in a charset that is not ASCII-compatible
// (UTF-16, EBCDIC) converted to UTF-8.
type secretDetector struct {
	label string // secret kind known from type or name
	head  [32]byte
	headN int // bytes of head filled: the first bytes, for the sniffs
	text  keyScanner
	html  htmlView
	// htmlOn is set for HTML.
	htmlOn bool
	conv   *charsetView // nil unless the charset needs converting
}

func newSecretDetector(mediaType, name string) *secretDetector {
	d := &secretDetector{}
	d.reset(mediaType, name, "", true)
	return d
}

// reset readies d for a new part; labels says whether the type and name
// may mark it as key material (they do for attachments, not for text).
func (d *secretDetector) reset(mediaType, name, charset string, labels bool) {
	d.label, d.headN = "", 0
	d.text.reset()
	d.htmlOn = strings.Contains(mediaType, "html") // text/html, text/watch-html, application/xhtml+xml
	if d.htmlOn {
		d.html.reset()
	}
	d.conv = newCharsetView(charset, d.htmlOn)
	if !labels {
		return
	}
	ext := strings.ToLower(path.Ext(name))
	switch {
	case slices.Contains(pkcs12Types, mediaType), slices.Contains(pkcs12Ext, ext):
		d.label = SecretPKCS12
	case mediaType == "application/pkcs8", slices.Contains(privateKeyExt, ext):
		d.label = SecretPrivateKey
	}
}

func (d *secretDetector) Write(b []byte) (int, error) {
	if d.headN < len(d.head) {
		d.headN += copy(d.head[d.headN:], b)
	}
	d.text.Write(b)
	if d.htmlOn {
		d.html.Write(b)
	}
	if d.conv != nil {
		d.conv.Write(b)
	}
	return len(b), nil
}

// secret returns the kind of key material seen, or "". It ends the part:
// what is held back for a marker that might continue is looked at.
func (d *secretDetector) secret() string {
	d.text.close()
	kind := d.text.kind
	if d.htmlOn {
		d.html.close()
		kind = cmp.Or(kind, d.html.scan.kind)
	}
	if d.conv != nil {
		kind = cmp.Or(kind, d.conv.close())
	}
	head := d.head[:d.headN]
	switch {
	case d.label != "":
		return d.label
	case kind != "":
		return kind
	case isPKCS12(head):
		return SecretPKCS12
	case isKeyDER(head), bytes.HasPrefix(head, puttyKeyFile):
		return SecretPrivateKey
	}
	return ""
}

// isPKCS12 recognises the DER start of a PFX: SEQUENCE { INTEGER 3,
// SEQUENCE { OID id-data ... } }.
func isPKCS12(head []byte) bool {
	if len(head) < 2 || head[0] != 0x30 {
		return false
	}
	i := 2
	if head[1]&0x80 != 0 { // long-form length
		i += int(head[1] & 0x7f)
	}
	if i+3 > len(head) || !bytes.Equal(head[i:i+3], []byte{0x02, 0x01, 0x03}) {
		return false
	}
	return bytes.Contains(head[i+3:], pfxOID)
}

// isKeyDER recognises the DER start of a private key: PKCS#1 RSA or DSA
// (SEQUENCE { INTEGER 0, INTEGER n ... }), PKCS#8 (SEQUENCE { INTEGER 0
// or 1, SEQUENCE { OID ... } ... }), SEC 1 EC (SEQUENCE { INTEGER 1,
// OCTET STRING d ... }) and encrypted PKCS#8 (SEQUENCE { SEQUENCE { OID of
// a PKCS#5 or PKCS#12 scheme ... } ... }). Certificates, requests and
// public keys start otherwise: a SEQUENCE in a SEQUENCE, or an algorithm
// that encrypts nothing.
func isKeyDER(head []byte) bool {
	body, n, ok := derSequence(head)
	if !ok || n < 32 || len(body) < 5 {
		return false
	}
	if body[0] == 0x02 && body[1] == 0x01 { // INTEGER version
		switch v, next := body[2], body[3]; {
		case v == 0 && next == 0x02: // a big INTEGER follows: modulus or prime
			return body[4] >= 0x40 && body[4] != 0x80
		case (v == 0 || v == 1) && next == 0x30:
			alg, _, ok := derSequence(body[3:])
			return ok && len(alg) > 0 && alg[0] == 0x06
		case v == 1 && next == 0x04: // the private scalar, 24 to 127 bytes
			return body[4] >= 0x18 && body[4] < 0x80
		}
		return false
	}
	alg, _, ok := derSequence(body)
	return ok && (bytes.HasPrefix(alg, pkcs5OID) || bytes.HasPrefix(alg, pkcs12PBEOID))
}

// derSequence returns what follows the tag and length of a DER SEQUENCE at
// the start of b, and the length it gives (-1 when indefinite).
func derSequence(b []byte) ([]byte, int, bool) {
	if len(b) < 2 || b[0] != 0x30 {
		return nil, 0, false
	}
	switch l := b[1]; {
	case l < 0x80:
		return b[2:], int(l), true
	case l == 0x80:
		return b[2:], -1, true
	case l <= 0x83 && len(b) >= 2+int(l&0x7f):
		n := 0
		for _, c := range b[2 : 2+int(l&0x7f)] {
			n = n<<8 | int(c)
		}
		return b[2+int(l&0x7f):], n, true
	}
	return nil, 0, false
}

// Kinds of key material a keyScanner finds.
type hitKind uint8

const (
	hitBegin  hitKind = iota + 1 // "-----BEGIN ... PRIVATE KEY-----"
	hitEnd                       // "-----END ... PRIVATE KEY-----"
	hitBase64                    // base64 of a DER key, a PFX or a PEM key
)

// keyHit is where key material starts in a stream. For a marker, end is
// just past its first closing dash; for base64, end is start.
type keyHit struct {
	kind       hitKind
	start, end int64
}

// keyScanner watches a stream of text for private key material, in two
// ways that mailers, people and attackers cannot easily defeat:
//
//   - PEM markers: a run of two or more dashes, BEGIN or END, the words
//     of a key label (RSA, EC, ENCRYPTED, OPENSSH, ...) and PRIVATE KEY
//     (or PRIVATE KEY BLOCK), and a dash. Letters may be of any case;
//     anything that is not a letter, digit or dash may come between them
//     (spaces, line breaks, NULs of UTF-16, the U+200B and U+00A0 of rich
//     text), within bounds. The closing dash may be an en or em dash.
//   - base64 at the start of a word that decodes to the start of a DER
//     private key or PKCS#12 file, or of a PEM private key: key material
//     without its marker lines, or a PEM file as a data: URL.
//
// Words are not enough: "private key" in prose has no dashes and BEGIN;
// a certificate's marker says CERTIFICATE and its DER starts otherwise.
// The scan looks at each byte once; only dashes and the letters M and L
// at the start of a word (found with bytes.IndexByte) cost more.
type keyScanner struct {
	mark   markerScan
	b64    base64Scan
	pos    int64  // stream offset of the next byte written
	kind   string // the first key material found, "" for none
	record bool   // keep every hit in hits (for redaction)
	hits   []keyHit
}

func (s *keyScanner) reset() {
	*s = keyScanner{record: s.record, hits: s.hits[:0]}
}

func (s *keyScanner) Write(b []byte) (int, error) {
	if s.kind == "" || s.record {
		s.mark.scan(b, s.pos, s)
		s.b64.scan(b, s.pos, s)
	}
	s.pos += int64(len(b))
	return len(b), nil
}

// close ends the stream: a base64 run at its very end is looked at.
func (s *keyScanner) close() {
	s.b64.finish(s)
}

func (s *keyScanner) hit(h keyHit, kind string) {
	if s.kind == "" {
		s.kind = kind
	}
	if s.record {
		s.hits = append(s.hits, h)
	}
}

// Bounds of a PEM marker: the letters and digits of BEGIN ... PRIVATE KEY
// BLOCK, and the bytes between the leading dashes and the closing one.
const (
	markLabelMax = 48
	markSpanMax  = 192
)

// States of a markerScan.
const (
	markIdle   = iota
	markDashes // in the leading dashes
	markLabel  // BEGIN or END and the label, up to PRIVATE KEY
	markClose  // after PRIVATE KEY: BLOCK, or the closing dash
)

var (
	markBegin      = []byte("BEGIN")
	markEnd        = []byte("END")
	markPrivateKey = []byte("PRIVATEKEY")
	markBlock      = []byte("BLOCK")
)

// markerScan finds PEM private-key markers; see keyScanner.
type markerScan struct {
	st     uint8
	dashes int   // in the leading run
	start  int64 // offset of the leading run
	span   int   // bytes since the leading run
	n      int   // letters and digits in label
	keyEnd int   // len of label up to PRIVATEKEY
	label  [markLabelMax]byte
}

func (m *markerScan) scan(b []byte, pos int64, s *keyScanner) {
	for i := 0; i < len(b); {
		if m.st == markIdle {
			j := bytes.IndexByte(b[i:], '-')
			if j < 0 {
				return
			}
			i += j
			m.st, m.dashes, m.start = markDashes, 0, pos+int64(i)
		}
		c := b[i]
		if m.st == markDashes {
			switch {
			case c == '-':
				m.dashes++
				i++
			case c == 0: // UTF-16
				i++
			case m.dashes < 2:
				m.st = markIdle
			default:
				m.st, m.span, m.n = markLabel, 0, 0
			}
			continue
		}
		// A byte that ends the match is looked at again from markIdle: a
		// dash may start the next marker.
		if m.span++; m.span > markSpanMax {
			m.st = markIdle
			continue
		}
		switch {
		case m.st == markClose && (c == '-' || c >= 0x90 && c <= 0x97):
			// 0x90-0x97: the last byte of U+2010-U+2015 and U+2212 in
			// UTF-8, en and em dash in windows-1252.
			kind := hitEnd
			if m.label[0] == 'B' {
				kind = hitBegin
			}
			s.hit(keyHit{kind: kind, start: m.start, end: pos + int64(i) + 1}, SecretPrivateKey)
			m.st = markIdle
			if c != '-' {
				i++
			}
		case c == '-':
			m.st = markIdle
		case c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
			if c >= 'a' {
				c -= 'a' - 'A'
			}
			if !m.push(c) {
				m.st = markIdle
				continue
			}
			i++
		default:
			i++
		}
	}
}

// push adds an upper-cased letter or digit to the label and reports
// whether the label can still become a private-key marker.
func (m *markerScan) push(c byte) bool {
	if m.n == len(m.label) {
		return false
	}
	m.label[m.n] = c
	m.n++
	l := m.label[:m.n]
	if m.st == markClose {
		return bytes.HasPrefix(markBlock, l[m.keyEnd:])
	}
	prefix := markBegin
	if l[0] == 'E' {
		prefix = markEnd
	}
	if m.n <= len(prefix) {
		return l[m.n-1] == prefix[m.n-1]
	}
	if c == 'Y' && bytes.HasSuffix(l, markPrivateKey) {
		if !isKeyLabel(l[len(prefix) : m.n-len(markPrivateKey)]) {
			return false // "-- begin with the private key-pair"
		}
		m.st, m.keyEnd = markClose, m.n
	}
	return true
}

// keyLabelWords are the words that come before PRIVATE KEY in the PEM
// labels of OpenSSL, OpenSSH, GnuPG, ssh.com and TPM tools.
var keyLabelWords = [][]byte{
	[]byte("ENCRYPTED"), []byte("RSA"), []byte("DSA"), []byte("ECDSA"), []byte("EC"),
	[]byte("ED25519"), []byte("ED448"), []byte("X25519"), []byte("X448"), []byte("OPENSSH"),
	[]byte("PGP"), []byte("SSH2"), []byte("ANY"), []byte("X942"), []byte("DH"), []byte("TSS2"), []byte("SM2"),
}

// isKeyLabel reports whether mid, the letters and digits between BEGIN or
// END and PRIVATE KEY, is made of label words (or is empty): prose there
// is no marker.
func isKeyLabel(mid []byte) bool {
	for len(mid) > 0 {
		i := slices.IndexFunc(keyLabelWords, func(w []byte) bool { return bytes.HasPrefix(mid, w) })
		if i < 0 {
			return false
		}
		mid = mid[len(keyLabelWords[i]):]
	}
	return true
}

// Bounds of the base64 looked at: up to b64HeadMax characters (48 bytes
// decoded) within b64SpanMax bytes; a first piece of at least b64PieceMin
// characters before any white space (prose words are shorter).
const (
	b64HeadMax  = 64
	b64PieceMin = 16
	b64SpanMax  = 160
)

// base64Scan decodes the start of base64 runs that begin a word with M (a
// DER SEQUENCE) or L (a PEM file's first dashes); see keyScanner.
type base64Scan struct {
	prev  byte // the last byte of the previous write
	on    bool // collecting a run
	start int64
	span  int // bytes since start
	piece int // characters since the last white space
	n     int
	buf   [b64HeadMax]byte
}

func (t *base64Scan) scan(b []byte, pos int64, s *keyScanner) {
	nextM, nextL := -2, -2 // next 'M' and 'L' at or after i; -1 none; -2 to search
	for i := 0; i < len(b); {
		if !t.on {
			if nextM != -1 && nextM < i {
				nextM = indexFrom(b, i, 'M')
			}
			if nextL != -1 && nextL < i {
				nextL = indexFrom(b, i, 'L')
			}
			j := nextM
			if j < 0 || nextL >= 0 && nextL < j {
				j = nextL
			}
			if j < 0 {
				break
			}
			i = j + 1
			prev := t.prev
			if j > 0 {
				prev = b[j-1]
			}
			if !isBase64Char(prev) {
				t.on, t.start, t.span, t.piece, t.n = true, pos+int64(j), 0, 1, 1
				t.buf[0] = b[j]
			}
			continue
		}
		c := b[i]
		t.span++
		switch {
		case isBase64Char(c):
			t.buf[t.n] = c
			t.n++
			t.piece++
			if t.n == len(t.buf) {
				t.finish(s)
			}
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			if t.n < b64PieceMin {
				t.on = false // a word, not base64
			}
			t.piece = 0
		case c == 0 || c >= 0x80: // UTF-16; U+00A0 and other white space
		default:
			t.finish(s)
			continue // c may start nothing, but is not skipped unread
		}
		if t.on && t.span > b64SpanMax {
			t.finish(s)
		}
		i++
	}
	if len(b) > 0 {
		t.prev = b[len(b)-1]
	}
}

// finish ends the current run and decodes its start.
func (t *base64Scan) finish(s *keyScanner) {
	if !t.on {
		return
	}
	t.on = false
	if t.n < b64PieceMin {
		return
	}
	var head [b64HeadMax / 4 * 3]byte
	n, _ := base64.StdEncoding.Decode(head[:], t.buf[:t.n&^3])
	h := head[:n]
	switch {
	case isPKCS12(h):
		s.hit(keyHit{kind: hitBase64, start: t.start, end: t.start}, SecretPKCS12)
	case isKeyDER(h) || hasKeyMarker(h):
		s.hit(keyHit{kind: hitBase64, start: t.start, end: t.start}, SecretPrivateKey)
	}
}

// hasKeyMarker reports whether b holds a PEM private-key marker.
func hasKeyMarker(b []byte) bool {
	var m markerScan
	var s keyScanner
	m.scan(b, 0, &s)
	return s.kind != ""
}

func indexFrom(b []byte, i int, c byte) int {
	if j := bytes.IndexByte(b[i:], c); j >= 0 {
		return i + j
	}
	return -1
}

func isBase64Char(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/'
}

// base64Value is the value of a base64 character, or 0xff.
func base64Value(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c - 'A'
	case c >= 'a' && c <= 'z':
		return c - 'a' + 26
	case c >= '0' && c <= '9':
		return c - '0' + 52
	case c == '+':
		return 62
	case c == '/':
		return 63
	}
	return 0xff
}

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
	out    [2 << 10]byte
	outN   int
	scan   keyScanner
	tap    io.Writer // a test's copy of the text, or nil
}

func (h *htmlView) reset() {
	h.st, h.outN = htmlText, 0
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
			h.emit(b[:j])
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
				h.emitByte('<')
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
				h.emitByte(' ')
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
	h.flush()
	return n, nil
}

// close ends the HTML: a reference cut off at the end still counts.
func (h *htmlView) close() {
	if h.st == htmlEntity {
		h.entity()
	}
	h.st = htmlText
	h.flush()
	h.scan.close()
}

func (h *htmlView) emit(b []byte) {
	for len(b) > 0 {
		if h.outN == len(h.out) {
			h.flush()
		}
		c := copy(h.out[h.outN:], b)
		h.outN += c
		b = b[c:]
	}
}

func (h *htmlView) emitByte(c byte) {
	if h.outN == len(h.out) {
		h.flush()
	}
	h.out[h.outN] = c
	h.outN++
}

func (h *htmlView) flush() {
	h.scan.Write(h.out[:h.outN])
	if h.tap != nil {
		h.tap.Write(h.out[:h.outN])
	}
	h.outN = 0
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
			h.emitByte('&')
			h.emit(e)
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
		h.emitByte(' ')
	case "amp", "AMP":
		h.emitByte('&')
	case "lt", "LT":
		h.emitByte('<')
	case "gt", "GT":
		h.emitByte('>')
	case "hyphen", "dash", "ndash", "mdash", "minus", "horbar":
		h.emitByte('-')
	case "plus":
		h.emitByte('+')
	case "sol":
		h.emitByte('/')
	case "equals":
		h.emitByte('=')
	case "shy", "ZeroWidthSpace", "zwnj", "zwj", "NoBreak", "NegativeThinSpace", "NegativeMediumSpace",
		"NegativeThickSpace", "NegativeVeryThinSpace", "InvisibleTimes", "InvisibleComma", "ic", "it":
	default:
		h.emitByte('&')
		h.emit(e)
	}
}

func (h *htmlView) emitRune(r rune) {
	switch {
	case r > 0 && r < 0x80:
		h.emitByte(byte(r))
	case r >= 0x2010 && r <= 0x2015, r == 0x2212, r == 0xfe58, r == 0xfe63, r == 0xff0d:
		h.emitByte('-')
	case r >= 0xff01 && r <= 0xff5e: // fullwidth ASCII
		h.emitByte(byte(r - 0xfee0))
	case r == 0xad, r >= 0x200b && r <= 0x200d, r >= 0x2060 && r <= 0x2064, r == 0xfeff, r == 0x180e, r == 0:
	default:
		h.emitByte(' ')
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
const (
	cteIdentity = iota
	cteQP
	cteBase64
)

// States of quoted-printable decoding after '='.
const (
	qpText  = iota
	qpEq    // after '='
	qpHex   // after '=' and a hex digit
	qpBlank // after '=' and white space: a soft line break with padding
)

// keyPipe undoes a part's transfer encoding as its bytes stream past, as
// leniently as a mail reader does (bad base64 and bad escapes are
// skipped, not the end), and hands the result to a secretDetector: key
// detection sees every byte decoded, in bounded memory.
type keyPipe struct {
	enc   uint8
	qp    uint8
	qpHi  byte
	acc   uint32 // base64 bits of the current quantum
	accN  int    // characters in it
	out   [4 << 10]byte
	outN  int
	det   secretDetector
	sink  io.Writer // &det, or a test's
	ended bool
	busy  bool // in use by the parser
}

// reset readies k for a part whose Content-Transfer-Encoding is cte.
func (k *keyPipe) reset(cte, mediaType, name, charset string, labels bool) {
	k.setEncoding(cte)
	k.outN, k.ended = 0, false
	k.det.reset(mediaType, name, charset, labels)
	k.sink = &k.det
}

// setEncoding switches to decoding cte from here on.
func (k *keyPipe) setEncoding(cte string) {
	k.enc, k.qp, k.accN = cteIdentity, qpText, 0
	switch cte = strings.TrimSpace(cte); {
	case strings.EqualFold(cte, "quoted-printable"):
		k.enc = cteQP
	case strings.EqualFold(cte, "base64"):
		k.enc = cteBase64
	}
}

// hasPrefixFold reports whether s begins with prefix, ignoring case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func (k *keyPipe) Write(b []byte) (int, error) {
	switch k.enc {
	case cteIdentity:
		k.sink.Write(b)
	case cteQP:
		k.writeQP(b)
		k.flush()
	case cteBase64:
		k.writeBase64(b)
		k.flush()
	}
	return len(b), nil
}

// secret ends the part and returns the kind of key material seen, or "".
func (k *keyPipe) secret() string {
	if !k.ended {
		k.ended = true
		switch {
		case k.enc == cteBase64:
			k.endQuantum()
		case k.enc == cteQP && k.qp == qpEq:
			k.emitByte('=')
		case k.enc == cteQP && k.qp == qpHex:
			k.emitByte('=')
			k.emitByte(k.qpHi)
		}
		k.flush()
	}
	return k.det.secret()
}

func (k *keyPipe) writeQP(b []byte) {
	for len(b) > 0 {
		switch c := b[0]; k.qp {
		case qpText:
			j := bytes.IndexByte(b, '=')
			if j < 0 {
				k.emit(b)
				return
			}
			k.emit(b[:j])
			b, k.qp = b[j+1:], qpEq
		case qpEq:
			switch {
			case hexValue(c) >= 0:
				k.qpHi, k.qp = c, qpHex
				b = b[1:]
			case c == '\n':
				k.qp = qpText
				b = b[1:]
			case c == '\r' || c == ' ' || c == '\t':
				k.qp = qpBlank
				b = b[1:]
			default: // a '=' that escapes nothing is kept
				k.emitByte('=')
				k.qp = qpText
			}
		case qpHex:
			if v := hexValue(c); v >= 0 {
				k.emitByte(byte(hexValue(k.qpHi)<<4 | v))
				b = b[1:]
			} else {
				k.emitByte('=')
				k.emitByte(k.qpHi)
			}
			k.qp = qpText
		case qpBlank:
			switch c {
			case ' ', '\t', '\r':
				b = b[1:]
			case '\n':
				b, k.qp = b[1:], qpText
			default:
				k.qp = qpText
			}
		}
	}
}

// writeBase64 decodes base64, skipping what is not base64; '=' ends a
// quantum (concatenated base64 decodes on).
func (k *keyPipe) writeBase64(b []byte) {
	for _, c := range b {
		v := base64Value(c)
		if v == 0xff {
			if c == '=' {
				k.endQuantum()
			}
			continue
		}
		k.acc = k.acc<<6 | uint32(v)
		if k.accN++; k.accN == 4 {
			if k.outN > len(k.out)-3 {
				k.flush()
			}
			k.out[k.outN], k.out[k.outN+1], k.out[k.outN+2] = byte(k.acc>>16), byte(k.acc>>8), byte(k.acc)
			k.outN += 3
			k.accN = 0
		}
	}
}

// endQuantum emits the bytes of an incomplete base64 quantum.
func (k *keyPipe) endQuantum() {
	switch k.accN {
	case 2:
		k.emitByte(byte(k.acc >> 4))
	case 3:
		k.emitByte(byte(k.acc >> 10))
		k.emitByte(byte(k.acc >> 2))
	}
	k.accN = 0
}

func (k *keyPipe) emit(b []byte) {
	for len(b) > 0 {
		if k.outN == len(k.out) {
			k.flush()
		}
		c := copy(k.out[k.outN:], b)
		k.outN += c
		b = b[c:]
	}
}

func (k *keyPipe) emitByte(c byte) {
	if k.outN == len(k.out) {
		k.flush()
	}
	k.out[k.outN] = c
	k.outN++
}

func (k *keyPipe) flush() {
	if k.outN > 0 {
		k.sink.Write(k.out[:k.outN])
		k.outN = 0
	}
}

// redactKeys replaces the key material in text by keyRemoved: a PEM block
// from its BEGIN marker to its END marker (to the end of the text when
// there is none), base64 key material up to where the base64 ends. It
// reports whether it found any. s and buf are scratch, kept for the next
// call.
func redactKeys(text string, s *keyScanner, buf *[]byte) (string, bool) {
	s.record = true
	s.reset()
	*buf = append((*buf)[:0], text...)
	s.Write(*buf)
	s.close()
	if len(s.hits) == 0 {
		return text, false
	}
	slices.SortFunc(s.hits, func(a, b keyHit) int { return int(a.start - b.start) })
	var b strings.Builder
	pos, replaced := 0, false
	for i, h := range s.hits {
		start, end := int(h.start), int(h.end)
		if start < pos {
			continue // inside what is removed already
		}
		switch h.kind {
		case hitBegin:
			end = len(text)
			for _, e := range s.hits[i+1:] {
				if e.kind == hitEnd && int(e.start) >= int(h.end) {
					end = pastDashes(text, int(e.end))
					break
				}
			}
		case hitEnd: // no BEGIN: the base64 before it is the key
			start = base64Before(text, start, pos)
			end = pastDashes(text, end)
		case hitBase64:
			end = base64After(text, start)
		}
		if replaced && strings.TrimSpace(text[pos:start]) == "" {
			pos = end // one key, found twice over
			continue
		}
		b.WriteString(text[pos:start])
		b.WriteString(keyRemoved)
		pos, replaced = end, true
	}
	b.WriteString(text[pos:])
	return b.String(), true
}

// pastDashes returns the end of the run of dashes at text[i:].
func pastDashes(text string, i int) int {
	for i < len(text) && text[i] == '-' {
		i++
	}
	return i
}

// A key body is base64 in pieces (lines, or words where line breaks
// became spaces) as long as its first, but for the last, which is shorter
// or padded; every piece is a multiple of 4 long. Prose next to a key is
// not: its words are short, or odd, or end in punctuation.

// base64Before returns where the key body before text[i:] starts, not
// before from: i when there is none.
func base64Before(text string, i, from int) int {
	start := i
	for n := 0; ; n++ {
		j := i
		for j > from && isBlank(text[j-1]) {
			j--
		}
		k := j
		for k > from && (isBase64Char(text[k-1]) || text[k-1] == '=') {
			k--
		}
		piece := text[k:j]
		if piece == "" || len(piece)%4 != 0 || n > 0 && len(piece) < b64PieceMin ||
			k > from && !isBlank(text[k-1]) || strings.Count(text[j:i], "\n") > 1 {
			return start
		}
		start, i = k, k
	}
}

// base64After returns where the key body that starts at text[i:] ends.
func base64After(text string, i int) int {
	first := -1
	for {
		j := i
		for j < len(text) && (isBase64Char(text[j]) || text[j] == '=') {
			j++
		}
		piece := text[i:j]
		if first >= 0 && (piece == "" || len(piece)%4 != 0 || len(piece) > first ||
			j < len(text) && !isBlank(text[j])) {
			return i
		}
		if first < 0 {
			first = len(piece)
		}
		if len(piece) < first || strings.Contains(piece, "=") {
			return j // the last piece
		}
		k := j
		for k < len(text) && isBlank(text[k]) {
			k++
		}
		if k == len(text) || strings.Count(text[j:k], "\n") > 1 {
			return j // the end, or a blank line
		}
		i = k
	}
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// scanRest streams what is left of r through k; a read error is the
// source's, which Parse reports.
func scanRest(k io.Writer, r io.Reader, buf []byte) {
	io.CopyBuffer(k, r, buf)
}
