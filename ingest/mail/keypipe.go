package mail

import (
	"bytes"
	"io"
	"slices"
	"strings"
)

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
	acc   uint32    // base64 bits of the current quantum
	accN  int       // characters in it
	out   byteBatch // to det, or a test's writer
	det   secretDetector
	ended bool
	busy  bool // in use by the parser
}

// reset readies k for a part whose Content-Transfer-Encoding is cte.
func (k *keyPipe) reset(cte, mediaType, name, charset string, labels bool) {
	k.setEncoding(cte)
	k.out.n, k.ended = 0, false
	k.det.reset(mediaType, name, charset, labels)
	k.out.sink = &k.det
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
		k.out.sink.Write(b)
	case cteQP:
		k.writeQP(b)
		k.out.flush()
	case cteBase64:
		k.writeBase64(b)
		k.out.flush()
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
			k.out.writeByte('=')
		case k.enc == cteQP && k.qp == qpHex:
			k.out.writeByte('=')
			k.out.writeByte(k.qpHi)
		}
		k.out.flush()
	}
	return k.det.secret()
}

func (k *keyPipe) writeQP(b []byte) {
	for len(b) > 0 {
		switch c := b[0]; k.qp {
		case qpText:
			j := bytes.IndexByte(b, '=')
			if j < 0 {
				k.out.write(b)
				return
			}
			k.out.write(b[:j])
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
				k.out.writeByte('=')
				k.qp = qpText
			}
		case qpHex:
			if v := hexValue(c); v >= 0 {
				k.out.writeByte(byte(hexValue(k.qpHi)<<4 | v))
				b = b[1:]
			} else {
				k.out.writeByte('=')
				k.out.writeByte(k.qpHi)
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
			k.out.writeByte(byte(k.acc >> 16))
			k.out.writeByte(byte(k.acc >> 8))
			k.out.writeByte(byte(k.acc))
			k.accN = 0
		}
	}
}

// endQuantum emits the bytes of an incomplete base64 quantum.
func (k *keyPipe) endQuantum() {
	switch k.accN {
	case 2:
		k.out.writeByte(byte(k.acc >> 4))
	case 3:
		k.out.writeByte(byte(k.acc >> 10))
		k.out.writeByte(byte(k.acc >> 2))
	}
	k.accN = 0
}

// byteBatch gathers what a decoder hands over a byte or a few at a time
// and passes it on to its sink in batches.
type byteBatch struct {
	buf  [4 << 10]byte
	n    int
	sink io.Writer
}

func (b *byteBatch) write(p []byte) {
	for len(p) > 0 {
		if b.n == len(b.buf) {
			b.flush()
		}
		c := copy(b.buf[b.n:], p)
		b.n += c
		p = p[c:]
	}
}

func (b *byteBatch) writeByte(c byte) {
	if b.n == len(b.buf) {
		b.flush()
	}
	b.buf[b.n] = c
	b.n++
}

func (b *byteBatch) flush() {
	if b.n > 0 {
		b.sink.Write(b.buf[:b.n])
		b.n = 0
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
