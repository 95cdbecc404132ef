package mail

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message"
)

// segment is the readable text of one entity.
type segment struct {
	text     string
	fromHTML bool
	// truncated is set when the text was cut to the text budget.
	truncated bool
}

// body walks the message body and fills Text and Attachments.
func (p *parser) body(hb headerBlock) {
	seg := p.entity(hb.fields, hb.body, 0, "body")
	text := strings.TrimSpace(seg.text)
	if len(text) > p.lim.MaxTextBytes { // separators and enclosed-message lines
		text = strings.TrimSpace(cutUTF8(text, p.lim.MaxTextBytes))
		seg.truncated = true
	}
	if seg.truncated {
		p.problem("text longer than %d bytes; the rest is cut", p.lim.MaxTextBytes)
	}
	// The rules remove the PEM blocks they recognise; what only the key
	// scanner recognises (a marker split by a line break, a key without
	// its marker lines) is removed here. The text is searched as it is
	// kept: converting HTML may join what no view of the part showed.
	if r, ok := redactKeys(text, &p.ps.textKeys, &p.ps.textBuf); ok {
		text = strings.TrimSpace(cutUTF8(r, p.lim.MaxTextBytes))
		p.keySeen = true
	}
	p.req.Text = text
}

// entity reads one MIME entity from raw (its undecoded body) and returns
// its readable text; attachments are recorded as they go past.
func (p *parser) entity(fields []Field, raw io.Reader, depth int, where string) segment {
	p.parts++
	mt, params := p.contentType(fieldValue(fields, "Content-Type"), where)
	in := inner{depth: depth, charset: params["charset"]}
	disp, dparams := p.disposition(fieldValue(fields, "Content-Disposition"), where)

	switch {
	case strings.HasPrefix(mt, "multipart/") && params["boundary"] == "":
		p.problem("%s: %s without boundary; read as text", where, mt)
		mt = "text/plain"
	case strings.HasPrefix(mt, "multipart/") && depth >= p.lim.MaxDepth:
		p.problem("%s: nested deeper than %d; kept as an attachment", where, p.lim.MaxDepth)
		mt = "application/octet-stream"
		in.boundary = params["boundary"]
	case strings.HasPrefix(mt, "multipart/"):
		return p.multipart(mt, params["boundary"], raw, depth, where)
	}

	cte := fieldValue(fields, "Content-Transfer-Encoding")
	asText := disp != "attachment" && (mt == "text/plain" || mt == "text/html")
	if asText && mt == "text/html" && p.skipHTML {
		// The plain alternative is already read: the HTML twin adds
		// nothing to the text but the cost of converting it. It is still
		// searched for key material.
		k := p.pipe(cte, mt, "", params["charset"], false)
		scanRest(k, raw, p.copyBuf())
		p.done(k)
		return segment{fromHTML: true}
	}
	if asText {
		return p.text(raw, cte, strings.TrimSpace(params["charset"]), mt == "text/html", where)
	}
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	isMessage := mt == "message/rfc822" || mt == "message/global"
	// Base64, by far the commonest encoding of attachments, is decoded in
	// one pass (go-message makes three of it: white space replaced,
	// newlines filtered, decoded).
	if disp == "attachment" || !isMessage {
		if strings.EqualFold(strings.TrimSpace(cte), "base64") {
			in.message = isMessage
			p.attachment(p.ps.base64Reader(raw), mt, name, where, in)
			return segment{}
		}
	}
	if strings.EqualFold(strings.TrimSpace(cte), "quoted-printable") {
		// go-message's decoder stops at a control character: the raw
		// bytes are searched for key material through a lenient one too.
		in.pipe = p.pipe(cte, mt, "", "", false)
		raw = io.TeeReader(raw, in.pipe)
		in.tee = raw
	}
	// Let go-message decode the transfer encoding of what is not text (an
	// attachment is hashed as it was sent, charset and all).
	var mh message.Header
	if cte != "" {
		mh.Set("Content-Transfer-Encoding", cte)
	}
	mh.SetContentType(mt, nil)
	e, err := message.New(mh, raw)
	if err != nil {
		p.problem("%s: %v", where, err)
	}

	switch {
	case disp == "attachment":
	case isMessage && depth < p.lim.MaxDepth:
		seg := p.enclosed(e.Body, depth, where)
		p.drain(in)
		return seg
	}
	in.message = isMessage
	p.attachment(e.Body, mt, name, where, in)
	return segment{}
}

// inner tells attachment what else to read for key material.
type inner struct {
	// boundary is set when the part is a multipart nested too deep to be
	// read, message when it is a message: its parts are walked in
	// detect-only mode, below depth.
	boundary string
	message  bool
	depth    int
	charset  string // of the part, for detection only
	// tee, when set, is the raw source of the part, teed into pipe: it
	// is read to its end, so that pipe sees what a strict decoder of the
	// part stops short of.
	tee  io.Reader
	pipe *keyPipe
}

// drain reads what is left of in.tee and returns what in.pipe found.
func (p *parser) drain(in inner) string {
	if in.pipe == nil {
		return ""
	}
	io.Copy(io.Discard, in.tee)
	return p.done(in.pipe)
}

// multipart reads the parts of a multipart entity and combines their text:
// the plain alternative when there is one, otherwise everything in order.
func (p *parser) multipart(mt, boundary string, raw io.Reader, depth int, where string) segment {
	// The preamble is kept: when not a single delimiter turns up, the body
	// is read as text rather than lost.
	mr := newMultipartReader(raw, boundary, p.lim.MaxTextBytes)
	alternative := mt == "multipart/alternative"
	if alternative {
		defer func(skip bool) { p.skipHTML = skip }(p.skipHTML)
	}
	start := p.textLen
	var (
		segs []segment
		cut  bool // a part without text was cut by the budget
	)
	for i := 1; ; i++ {
		capped := p.parts >= p.lim.MaxParts
		if capped && !p.partsCapped {
			p.problem("more than %d MIME parts; the rest is only searched for key material", p.lim.MaxParts)
			p.partsCapped = true
		}
		if !mr.next() {
			switch {
			case capped:
			case mr.readErr() != nil: // the source failed: Parse reports it
			case i == 1:
				p.problem("%s: no MIME boundary %q found; the body is read as text", where, clip(boundary, 70))
				return p.text(bytes.NewReader(mr.preamble), "", "", false, where)
			case !mr.closed():
				p.problem("%s: closing MIME boundary %q missing; the last part may be cut", where, clip(boundary, 70))
			}
			break
		}
		if capped {
			hb, err := readHeader(p.ps.reader(depth+1, mr), p.lim.MaxHeaderBytes, false, &p.ps.header, ignoreProblem)
			if err != nil {
				break // the source failed
			}
			p.detectEntity(hb.fields, hb.body, depth+1)
			continue
		}
		partWhere := fmt.Sprintf("%s.%d", where, i)
		hb, err := readHeader(p.ps.reader(depth+1, mr), p.lim.MaxHeaderBytes, false, &p.ps.header, func(f string, a ...any) {
			p.problem(partWhere+": "+f, a...)
		})
		if err != nil {
			break // the source failed
		}
		if alternative { // each alternative may use the whole budget
			p.textLen = start
		}
		s := p.entity(hb.fields, hb.body, depth+1, partWhere)
		if strings.TrimSpace(s.text) != "" {
			segs = append(segs, s)
			if alternative && !s.fromHTML {
				p.skipHTML = true
			}
		} else if s.truncated {
			cut = true
		}
	}
	if alternative {
		chosen := segment{truncated: cut}
		for _, s := range segs {
			if !s.fromHTML {
				chosen = s
				break
			}
		}
		if chosen.text == "" && len(segs) > 0 {
			chosen = segs[0]
		}
		p.textLen = start + len(chosen.text)
		return chosen
	}
	var b strings.Builder
	html := len(segs) > 0
	for _, s := range segs {
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		b.WriteString(strings.TrimSpace(s.text))
		html = html && s.fromHTML
		cut = cut || s.truncated
	}
	return segment{text: b.String(), fromHTML: html, truncated: cut}
}

// enclosed reads a forwarded message (message/rfc822) and returns its text
// below a line saying who wrote it. Its sender is never the request's.
func (p *parser) enclosed(r io.Reader, depth int, where string) segment {
	br := p.ps.reader(depth+1, r)
	hb, err := readHeader(br, p.lim.MaxHeaderBytes, true, &p.ps.header, func(f string, a ...any) {
		p.problem(where+": enclosed message: "+f, a...)
	})
	if err != nil {
		p.problem("%s: enclosed message: %v", where, err)
		return segment{}
	}
	from, _ := wordDecoder.DecodeHeader(fieldValue(hb.fields, "From"))
	subject, _ := wordDecoder.DecodeHeader(fieldValue(hb.fields, "Subject"))
	if from == "" {
		from = "an unknown sender"
	}
	seg := p.entity(hb.fields, hb.body, depth+1, where)
	intro := fmt.Sprintf("---- enclosed message from %s, subject %q ----",
		p.headerText("enclosed From", from), p.headerText("enclosed Subject", subject))
	seg.text = intro + "\n" + seg.text
	return seg
}

// text reads a text/plain or text/html part within the text budget. All
// of it, kept or not, is searched for key material.
func (p *parser) text(r io.Reader, cte, charset string, html bool, where string) segment {
	mt := "text/plain"
	if html {
		mt = "text/html"
	}
	k := p.pipe(cte, mt, "", charset, false)
	defer p.done(k)
	budget := p.lim.MaxTextBytes - p.textLen
	if budget <= 0 {
		scanRest(k, r, p.copyBuf())
		return segment{truncated: true}
	}
	max := budget
	if html {
		max = 4 * budget // markup is bulkier than the text it yields
	}
	// Text is read whole (it is bounded) and its transfer encoding decoded
	// in place: faster than a decoding reader, and lenient.
	cte = strings.ToLower(strings.TrimSpace(cte))
	encoded := max
	switch cte {
	case "quoted-printable":
		encoded = 3 * max
	case "base64":
		encoded = 2 * max
	}
	b, err := ReadAtMost(p.ps.scratch[:0], r, encoded+1)
	p.ps.scratch = b[:0]
	k.Write(b) // before b is decoded in place
	if err != nil {
		p.problem("%s: %v (text kept up to there)", where, err)
	}
	var cut bool
	if len(b) > encoded {
		b, cut = b[:encoded], true
		scanRest(k, r, p.copyBuf())
	}
	switch cte {
	case "", "7bit", "8bit", "binary":
	case "quoted-printable":
		b = decodeQuotedPrintable(b)
	case "base64":
		var n int
		if b, n = decodeBase64(b); n >= 0 {
			p.problem("%s: illegal base64 data at input byte %d (text kept up to there)", where, n)
		}
	default:
		p.problem("%s: unknown Content-Transfer-Encoding %q; read as it is", where, clip(cte, 40))
	}
	charsetKnown := true
	if cs := strings.ToLower(charset); cs != "" && cs != "utf-8" && cs != "us-ascii" && cs != "utf8" && cs != "ascii" {
		if dec, err := message.CharsetReader(cs, bytes.NewReader(b)); err != nil || dec == nil {
			p.problem("%s: unknown charset %q", where, clip(charset, 40))
			charsetKnown = false
		} else if conv, err := io.ReadAll(dec); err == nil {
			b = conv
		}
	}
	if len(b) > max {
		b, cut = b[:max], true
	}
	if cut {
		// Cut at a character boundary, or the text would no longer be
		// UTF-8 and would all be read as windows-1252.
		b = trimPartialRune(b)
	}
	s := string(b)
	if !utf8.ValidString(s) {
		if charsetKnown {
			p.problem("%s: text is not valid UTF-8; read as windows-1252", where)
		}
		s = windows1252(s)
	}
	if html {
		s = htmlToText(s)
	}
	s = cleanText(s)
	if len(s) > budget {
		s = cutUTF8(s, budget)
		cut = true
	}
	p.textLen += len(s)
	return segment{text: s, fromHTML: html, truncated: cut}
}

// decodeQuotedPrintable decodes quoted-printable (RFC 2045 6.7) in place:
// "=XX" becomes its byte, "=" at the end of a line joins the next, white
// space before a line end is dropped. A "=" that starts neither is kept as
// written, so a bad sequence costs one character, not the rest of the text.
func decodeQuotedPrintable(b []byte) []byte {
	w := 0
	for r := 0; r < len(b); {
		switch c := b[r]; c {
		case '=':
			j := r + 1
			for j < len(b) && (b[j] == ' ' || b[j] == '\t') {
				j++
			}
			switch {
			case j == len(b): // soft break at the end
				r = j
			case b[j] == '\n':
				r = j + 1
			case b[j] == '\r' && j+1 < len(b) && b[j+1] == '\n':
				r = j + 2
			case r+2 < len(b) && hexValue(b[r+1]) >= 0 && hexValue(b[r+2]) >= 0:
				b[w] = byte(hexValue(b[r+1])<<4 | hexValue(b[r+2]))
				w++
				r += 3
			default:
				b[w] = c
				w++
				r++
			}
		case ' ', '\t':
			j := r + 1
			for j < len(b) && (b[j] == ' ' || b[j] == '\t') {
				j++
			}
			if j == len(b) || b[j] == '\n' || b[j] == '\r' && j+1 < len(b) && b[j+1] == '\n' {
				r = j // trailing white space is transport padding
				continue
			}
			w += copy(b[w:], b[r:j])
			r = j
		default:
			b[w] = c
			w++
			r++
		}
	}
	return b[:w]
}

func hexValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}

// base64Reader decodes base64 as it streams, ignoring line breaks and
// other white space, and missing padding at the end. Bad input ends it
// with an error naming the offset of the bad byte (white space not
// counted).
type base64Reader struct {
	r     io.Reader
	in    [32 << 10]byte // encoded; in[:carry] is what the last read left undecoded
	carry int
	buf   [24 << 10]byte // decoded
	out   []byte         // of buf, not yet returned
	seen  int            // encoded bytes decoded before
	err   error
	// rest holds, after bad input, the undecoded input from the quantum
	// of the bad byte on (white space dropped): what follows in r is
	// not read.
	rest []byte
}

func (d *base64Reader) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		d.fill()
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

// WriteTo writes the decoded bytes to w straight from the decoder's
// buffer: io.Copy then needs no buffer of its own, nor a copy into it.
func (d *base64Reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		for len(d.out) == 0 {
			if d.err != nil {
				if d.err == io.EOF { // as io.Copy reports the end: no error
					return total, nil
				}
				return total, d.err
			}
			d.fill()
		}
		n, err := w.Write(d.out)
		d.out = d.out[n:]
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
}

// fill reads and decodes the next chunk of input into out, or sets err.
func (d *base64Reader) fill() {
	n, rerr := d.r.Read(d.in[d.carry:])
	if rerr == nil && d.fillLines(d.carry+n) {
		return
	}
	w := d.carry // drop white space in place
	for _, c := range d.in[d.carry : d.carry+n] {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			d.in[w] = c
			w++
		}
	}
	src, enc := d.in[:w/4*4], base64.StdEncoding
	if rerr != nil { // the end: what is left, padded or not
		src, enc = bytes.TrimRight(d.in[:w], "="), base64.RawStdEncoding
	}
	m, err := enc.Decode(d.buf[:], src)
	d.out = d.buf[:m]
	var corrupt base64.CorruptInputError
	switch {
	case errors.As(err, &corrupt):
		d.err = fmt.Errorf("illegal base64 data at input byte %d", d.seen+int(corrupt))
		q := min(int(corrupt), len(src)) &^ 3
		d.rest = append(append([]byte{}, src[q:]...), d.in[len(src):w]...)
	case err != nil:
		d.err = err
	case rerr != nil:
		d.err = rerr
	}
	d.seen += len(src)
	d.carry = copy(d.in[:], d.in[len(src):w])
}

// fillLines decodes in[:end] the quick way, for input that is lines of
// base64 and nothing else, as base64 is sent: the base64 decoder skips
// the line ends itself, so they need not be dropped first. It reports
// false, having changed nothing, for input with other white space, a
// lone CR, or anything the decoder refuses: fill then decodes it the
// careful way, with the same result, and the same error.
func (d *base64Reader) fillLines(end int) bool {
	in := d.in[:end]
	if bytes.IndexByte(in, ' ') >= 0 || bytes.IndexByte(in, '\t') >= 0 {
		return false
	}
	lf, cr := bytes.Count(in, lineLF), bytes.Count(in, lineCR)
	if cr != 0 && cr != bytes.Count(in, lineCRLF) {
		return false
	}
	chars := len(in) - lf - cr
	cut := len(in) // in[:cut] holds chars/4*4 characters
	for left := chars % 4; left > 0 || cut > 0 && (in[cut-1] == '\n' || in[cut-1] == '\r'); cut-- {
		if c := in[cut-1]; c != '\n' && c != '\r' {
			left--
		}
	}
	m, err := base64.StdEncoding.Decode(d.buf[:], in[:cut])
	if err != nil {
		return false
	}
	d.out = d.buf[:m]
	d.seen += chars / 4 * 4
	d.carry = copy(d.in[:], in[cut:])
	return true
}

// decodeBase64 decodes base64, ignoring line breaks and other
// white space and missing padding. On bad input it keeps what decoded
// before it and returns the offset of the bad byte, else -1.
func decodeBase64(b []byte) ([]byte, int) {
	w := 0
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			b[w] = c
			w++
		}
	}
	src := bytes.TrimRight(b[:w], "=")
	dst := make([]byte, base64.RawStdEncoding.DecodedLen(len(src))) // Decode must not run in place
	n, err := base64.RawStdEncoding.Decode(dst, src)
	var corrupt base64.CorruptInputError
	if errors.As(err, &corrupt) {
		return dst[:n], int(corrupt)
	}
	return dst[:n], -1
}

// ReadAtMost appends to buf what r yields, up to n bytes, growing buf as
// needed, so that a caller can reuse one buffer for many reads: the parser
// for every text part, the watcher's spool for every mail.
func ReadAtMost(buf []byte, r io.Reader, n int) ([]byte, error) {
	for len(buf) < n {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		m, err := r.Read(buf[len(buf):min(cap(buf), n)])
		buf = buf[:len(buf)+m]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return buf, err
		}
	}
	return buf, nil
}

// fieldValue returns the value of the first field named name
// (case-insensitive), or "".
func fieldValue(fields []Field, name string) string {
	for _, f := range fields {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// trimPartialRune drops an incomplete UTF-8 sequence from the end of b.
func trimPartialRune(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}

// attachment records a part's metadata while its content streams through
// a hash and the key-material detector. A part that holds parts (a
// message, a multipart nested too deep) is walked in detect-only mode as
// it streams, so that key material in them is seen decoded.
func (p *parser) attachment(r io.Reader, mt, name, where string, in inner) {
	name = p.headerText("attachment name", name)
	mt = p.headerText("attachment type", mt)
	k := p.pipe("", mt, name, in.charset, true)
	sum := sha256.New()
	w := &countingWriter{w: io.MultiWriter(sum, k)}
	var (
		err  error
		kind string
	)
	if in.boundary != "" || in.message {
		tee := io.TeeReader(r, w)
		if in.message {
			kind = p.detectMessage(tee, in.depth)
		} else {
			kind = p.detectMultipart(in.boundary, tee, in.depth)
		}
		_, err = io.Copy(io.Discard, tee)
	} else {
		_, err = io.Copy(w, r)
	}
	a := Attachment{Name: name, ContentType: mt, Size: w.n}
	if err != nil {
		p.problem("%s: attachment %q: %v", where, clip(name, 60), err)
		a.Truncated = true
		if b, ok := r.(*base64Reader); ok && b.rest != nil {
			// A reader shows what follows bad base64: so does detection.
			k.setEncoding("base64")
			k.Write(b.rest)
			scanRest(k, b.r, p.copyBuf())
		}
	}
	kind = cmp.Or(p.drain(in), kind)
	if a.Secret = cmp.Or(p.done(k), kind); a.Secret == "" {
		a.SHA256 = hex.EncodeToString(sum.Sum(nil))
	}
	p.req.Attachments = append(p.req.Attachments, a)
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// Hard bounds of the detect-only walk (of parts past Limits.MaxParts and
// Limits.MaxDepth): past them, only the raw bytes are searched for key
// material.
const (
	detectDepthMax = 64
	detectPartsMax = 10_000
)

// ignoreProblem drops a problem: a detect-only walk records nothing.
func ignoreProblem(string, ...any) {}

// pipe returns a free keyPipe of the parser, reset for a part; done frees
// it and returns what it found.
func (p *parser) pipe(cte, mediaType, name, charset string, labels bool) *keyPipe {
	var k *keyPipe
	for _, q := range p.ps.pipes {
		if !q.busy {
			k = q
			break
		}
	}
	if k == nil {
		k = new(keyPipe)
		p.ps.pipes = append(p.ps.pipes, k)
	}
	k.busy = true
	k.reset(cte, mediaType, name, charset, labels)
	return k
}

func (p *parser) done(k *keyPipe) string {
	k.busy = false
	kind := k.secret()
	if kind != "" {
		p.keySeen = true
	}
	return kind
}

// copyBuf is the buffer for streaming parts through key detection.
// base64Reader returns the parser's base64Reader reset to read r: its
// buffers (56 KiB) are allocated once, not for every attachment.
func (ps *Parser) base64Reader(r io.Reader) *base64Reader {
	if ps.b64 == nil {
		ps.b64 = new(base64Reader)
	}
	d := ps.b64
	d.r, d.carry, d.out, d.seen, d.err, d.rest = r, 0, nil, 0, nil, nil
	return d
}

func (p *parser) copyBuf() []byte {
	if p.ps.copyBuf == nil {
		p.ps.copyBuf = make([]byte, 32<<10)
	}
	return p.ps.copyBuf
}

// detectEntity walks an entity only to search it for key material, and
// returns the kind found, or "". Nothing else is recorded: no text, no
// attachment, no problem but that the walk's own bounds were reached.
func (p *parser) detectEntity(fields []Field, raw io.Reader, depth int) string {
	if depth > detectDepthMax || p.detectParts >= detectPartsMax {
		// The source scanner still sees the raw bytes.
		if !p.detectCapped {
			p.problem("more than %d levels or %d parts to search for key material; the rest is searched in its raw bytes only", detectDepthMax, detectPartsMax)
			p.detectCapped = true
		}
		return ""
	}
	p.detectParts++
	mt, params := "text/plain", map[string]string(nil)
	if v := fieldValue(fields, "Content-Type"); v != "" {
		if t, ps, _ := parseParams(v); strings.Contains(t, "/") {
			mt, params = t, ps
		}
	}
	var disp string
	var dparams map[string]string
	if v := fieldValue(fields, "Content-Disposition"); v != "" {
		disp, dparams, _ = parseParams(v)
	}
	cte := fieldValue(fields, "Content-Transfer-Encoding")
	switch {
	case strings.HasPrefix(mt, "multipart/") && params["boundary"] != "":
		return p.detectMultipart(params["boundary"], raw, depth)
	case mt == "message/rfc822" || mt == "message/global":
		var mh message.Header
		if cte != "" {
			mh.Set("Content-Transfer-Encoding", cte)
		}
		e, _ := message.New(mh, raw)
		return p.detectMessage(e.Body, depth)
	}
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	inline := disp != "attachment" && (mt == "text/plain" || mt == "text/html")
	k := p.pipe(cte, mt, name, params["charset"], !inline)
	scanRest(k, raw, p.copyBuf())
	return p.done(k)
}

// detectMultipart walks the parts of a multipart body in detect-only mode.
func (p *parser) detectMultipart(boundary string, raw io.Reader, depth int) string {
	mr := newMultipartReader(raw, boundary, 0)
	for mr.next() {
		hb, err := readHeader(p.ps.reader(depth+1, mr), p.lim.MaxHeaderBytes, false, &p.ps.header, ignoreProblem)
		if err != nil {
			return ""
		}
		if kind := p.detectEntity(hb.fields, hb.body, depth+1); kind != "" {
			return kind // the caller reads the rest
		}
	}
	return ""
}

// detectMessage walks an enclosed message in detect-only mode.
func (p *parser) detectMessage(r io.Reader, depth int) string {
	hb, err := readHeader(p.ps.reader(depth+1, r), p.lim.MaxHeaderBytes, true, &p.ps.header, ignoreProblem)
	if err != nil {
		return ""
	}
	return p.detectEntity(hb.fields, hb.body, depth+1)
}

// contentType parses Content-Type leniently: a malformed value still yields
// its media type and whatever parameters can be read.
func (p *parser) contentType(v, where string) (string, map[string]string) {
	if v == "" {
		return "text/plain", map[string]string{}
	}
	mt, params, err := parseParams(v)
	if err != nil {
		p.problem("%s: Content-Type %q: %v", where, clip(v, 80), err)
	}
	if !strings.Contains(mt, "/") {
		p.problem("%s: Content-Type %q is no media type; read as text", where, clip(v, 80))
		mt = "text/plain"
	}
	return mt, params
}

func (p *parser) disposition(v, where string) (string, map[string]string) {
	if v == "" {
		return "", map[string]string{}
	}
	d, params, err := parseParams(v)
	if err != nil {
		p.problem("%s: Content-Disposition %q: %v", where, clip(v, 80), err)
	}
	return d, params
}

// parseParams parses a header value with parameters (RFC 2045, 2231), and
// on failure salvages the value and the parameters it can: the first of a
// duplicated parameter wins, unquoted specials are taken as they stand.
// Encoded words in parameter values (common in file names) are decoded.
func parseParams(v string) (string, map[string]string, error) {
	value, params, err := mime.ParseMediaType(v)
	if err != nil {
		fields := strings.Split(v, ";")
		value = strings.ToLower(strings.TrimSpace(fields[0]))
		params = make(map[string]string, len(fields)-1)
		for _, f := range fields[1:] {
			k, pv, ok := strings.Cut(f, "=")
			k = strings.ToLower(strings.TrimSpace(k))
			if !ok || k == "" {
				continue
			}
			if _, dup := params[k]; !dup {
				params[k] = strings.Trim(strings.TrimSpace(pv), `"`)
			}
		}
	}
	for k, pv := range params {
		if strings.Contains(pv, "=?") {
			if dec, derr := wordDecoder.DecodeHeader(pv); derr == nil {
				params[k] = dec
			}
		}
	}
	return value, params, err
}

// cleanText normalises line ends to LF and drops control characters other
// than tab and newline: C0, DEL and C1 (in UTF-8, 0xC2 0x80 to 0xC2 0x9F).
func cleanText(s string) string {
	crlfOnly := true // the only control characters are CRs of CRLF pairs
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != 0x7f && !isC1At(s, i) || c == '\n' || c == '\t' {
			continue
		}
		if c != '\r' || i+1 == len(s) || s[i+1] != '\n' {
			crlfOnly = false
			break
		}
	}
	if crlfOnly {
		return strings.ReplaceAll(s, "\r\n", "\n")
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\r':
			if i+1 < len(s) && s[i+1] == '\n' {
				continue
			}
			b.WriteByte('\n')
		case (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f:
		case isC1At(s, i):
			i++ // both bytes of it
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// isC1At reports whether s holds the UTF-8 form of a C1 control character
// (U+0080 to U+009F) at i.
func isC1At(s string, i int) bool {
	return s[i] == 0xc2 && i+1 < len(s) && s[i+1] >= 0x80 && s[i+1] <= 0x9f
}

// cutUTF8 shortens s to at most n bytes without splitting a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
