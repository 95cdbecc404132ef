package mail

import (
	"bytes"
	"encoding/base64"
	"slices"
)

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
	// In lines of base64 an M or an L is in most words, and looking for
	// them costs more than looking at each word's first byte: words says
	// the last word skipped was as long as base64's.
	words := false
	for i := 0; i < len(b); {
		if !t.on {
			var j int
			if words {
				for i < len(b) && base64Set[b[i]] != '1' {
					i++
				}
				if i == len(b) {
					break
				}
				if j = i; b[j] != 'M' && b[j] != 'L' {
					i = skipBase64(b, j+1)
					words = i-j >= b64PieceMin
					continue
				}
			} else {
				if nextM != -1 && nextM < i {
					nextM = indexFrom(b, i, 'M')
				}
				if nextL != -1 && nextL < i {
					nextL = indexFrom(b, i, 'L')
				}
				j = nextM
				if j < 0 || nextL >= 0 && nextL < j {
					j = nextL
				}
				if j < 0 {
					break
				}
			}
			i = j + 1
			prev := t.prev
			if j > 0 {
				prev = b[j-1]
			}
			if !isBase64Char(prev) {
				t.on, t.start, t.span, t.piece, t.n = true, pos+int64(j), 0, 1, 1
				t.buf[0] = b[j]
				continue
			}
			// Inside a word of base64: no run starts before the next byte
			// that is not base64 (in base64 text, the line end), which
			// itself starts none.
			i = skipBase64(b, i)
			words = i-j >= b64PieceMin
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

// skipBase64 returns the index of the first byte of b at or after i that
// is not a base64 character, or len(b).
func skipBase64(b []byte, i int) int {
	for i < len(b) && base64Set[b[i]] == '1' {
		i++
	}
	return i
}

func indexFrom(b []byte, i int, c byte) int {
	if j := bytes.IndexByte(b[i:], c); j >= 0 {
		return i + j
	}
	return -1
}

// base64Set marks, by byte value, the characters isBase64Char accepts:
// a table, for the loops that skip words of base64.
const base64Set = "0000000000000000000000000000000000000000000100011111111111000000" +
	"0111111111111111111111111110000001111111111111111111111111100000" +
	"0000000000000000000000000000000000000000000000000000000000000000" +
	"0000000000000000000000000000000000000000000000000000000000000000"

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
