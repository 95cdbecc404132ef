package mail

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	netmail "net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decode the common charsets, not only UTF-8
	"github.com/emersion/go-message/mail"
	"golang.org/x/text/encoding/charmap"
)

// Limits caps the work Parse does on one message, so that no mail, however
// large or deeply nested, can exhaust memory or time. A zero field takes
// its default.
type Limits struct {
	MaxHeaderBytes int // top-level header block kept; default 256 KiB
	MaxParts       int // MIME parts read; default 500
	MaxDepth       int // multipart and message/rfc822 nesting; default 10
	MaxTextBytes   int // readable text kept; default 128 KiB
}

func (l Limits) withDefaults() Limits {
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = 256 << 10
	}
	if l.MaxParts <= 0 {
		l.MaxParts = 500
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = 10
	}
	if l.MaxTextBytes <= 0 {
		l.MaxTextBytes = 128 << 10
	}
	return l
}

// Parse reads one raw RFC 5322 message from r and returns what it says.
// Malformed mail is not an error: Parse salvages what it can and records
// each defect in Request.Problems. The error is non-nil only when r itself
// fails, in which case the message must be read again.
//
// Memory stays bounded by the limits whatever the size of the message:
// attachments are hashed as they stream past, and r is read to its end so
// that Request.ID covers every byte.
func Parse(r io.Reader, lim Limits) (*Request, error) {
	return (&Parser{Limits: lim}).Parse(r)
}

// Parser parses one mail after another, reusing its buffers: a worker that
// parses many mails keeps one, and allocates little beyond the requests.
// The zero value uses the default limits. A Parser is not safe for
// concurrent use.
type Parser struct {
	Limits Limits

	sum     hash.Hash
	src     sourceReader
	readers []*bufio.Reader // by nesting depth; [0] reads the message
	scratch []byte          // reused by every text part
	header  headerScratch
	// raw watches the raw bytes for key material; pipes decode the parts
	// for it, one per part being read (a part may hold parts); textKeys
	// and textBuf search the text kept.
	raw      keyScanner
	pipes    []*keyPipe
	copyBuf  []byte
	b64      *base64Reader // of the attachment being read
	textKeys keyScanner
	textBuf  []byte
}

// reader returns the buffered reader for nesting depth, reset to r. The
// parts at one depth are read one after another, so they share a reader.
func (ps *Parser) reader(depth int, r io.Reader) *bufio.Reader {
	for len(ps.readers) <= depth {
		size := 2 << 10
		if len(ps.readers) == 0 {
			size = 4 << 10
		}
		ps.readers = append(ps.readers, bufio.NewReaderSize(nil, size))
	}
	ps.readers[depth].Reset(r)
	return ps.readers[depth]
}

// Parse reads one raw message from r, as the function Parse does.
func (ps *Parser) Parse(r io.Reader) (*Request, error) {
	if ps.sum == nil {
		ps.sum = sha256.New()
	}
	ps.sum.Reset()
	ps.raw.reset()
	for _, k := range ps.pipes { // free after a panic too
		k.busy = false
	}
	ps.src = sourceReader{r: r, h: ps.sum, keys: &ps.raw}
	src := &ps.src
	p := &parser{lim: ps.Limits.withDefaults(), req: &Request{}, ps: ps, sum: ps.sum}
	br := ps.reader(0, src)
	defer br.Reset(nil) // drop the reference to r

	hb, err := readHeader(br, p.lim.MaxHeaderBytes, true, &ps.header, p.problem)
	if err == nil {
		p.req.Header = hb.fields
		p.fromPastCap, p.cutFields = hb.fromPastCap, hb.cut
		p.read(hb)
		_, err = io.Copy(io.Discard, br)
	}
	if src.err != nil {
		return nil, fmt.Errorf("read message: %w", src.err)
	}
	if err != nil {
		return nil, fmt.Errorf("read message: %w", err)
	}
	p.req.Size = src.n
	p.req.ID = hex.EncodeToString(p.sum.Sum(nil))
	ps.raw.close()
	p.req.KeyMaterial = p.keySeen || ps.raw.kind != ""
	if len(p.req.Header) == 0 {
		p.req.Headerless = true
	} else if r := p.req; r.From == (Mailbox{}) && r.Subject == "" && r.Text == "" && len(r.Attachments) == 0 {
		p.problem("the message is empty: no sender, subject, text or attachment")
	}
	return p.req, nil
}

// read fills the request from the header and body. A panic in the code
// it runs (go-message, the HTML tokenizer, or a bug here) must not stop the
// mailbox on one poison message: it is recorded as a problem, what was
// read so far is kept, and the rest of the message is still hashed.
func (p *parser) read(hb headerBlock) {
	defer func() {
		if r := recover(); r != nil {
			p.problem("internal error: %v", r)
		}
	}()
	p.header()
	p.body(hb)
}

// sourceReader counts and (when h is set) hashes the raw bytes, shows
// them to keys (when set), and remembers the first error of the underlying
// reader, so that a failing source is never taken for a malformed message.
// After an error it returns that error without reading again (an IMAP
// literal must not be read once its connection failed: the client has
// moved on).
type sourceReader struct {
	r    io.Reader
	h    hash.Hash
	keys *keyScanner
	n    int64
	err  error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(p)
	s.n += int64(n)
	if s.h != nil {
		s.h.Write(p[:n])
	}
	if s.keys != nil {
		s.keys.Write(p[:n])
	}
	if err != nil && !errors.Is(err, io.EOF) && s.err == nil {
		s.err = err
	}
	return n, err
}

type parser struct {
	lim     Limits
	req     *Request
	sum     hash.Hash
	parts   int
	textLen int
	// once-only problems
	partsCapped bool
	// skipHTML is set inside a multipart/alternative once its plain text
	// is read.
	skipHTML bool
	// fromPastCap and cutFields are what the top-level header's byte cap
	// hid: From fields past it, and the kept fields it cut short.
	fromPastCap int
	cutFields   []int
	// keySeen is set once a part held key material; detectParts counts
	// the parts read in detect-only mode, detectCapped says that their
	// bound was reached.
	keySeen      bool
	detectParts  int
	detectCapped bool
	ps           *Parser // the buffers
}

func (p *parser) problem(format string, args ...any) {
	const maxProblems = 50
	switch {
	case len(p.req.Problems) < maxProblems:
		// One line each, short: library errors quote whole input lines.
		msg := strings.Join(strings.Fields(oneLine(fmt.Sprintf(format, args...))), " ")
		msg = strings.ToValidUTF8(msg, "\uFFFD")
		p.req.Problems = append(p.req.Problems, cutUTF8(msg, 200))
	case len(p.req.Problems) == maxProblems:
		p.req.Problems = append(p.req.Problems, "more problems not recorded")
	}
}

// wordDecoder decodes RFC 2047 encoded words in any charset go-message knows.
var wordDecoder = mime.WordDecoder{CharsetReader: func(cs string, in io.Reader) (io.Reader, error) {
	return message.CharsetReader(strings.ToLower(cs), in)
}}

// header fills the request from the top-level header fields.
func (p *parser) header() {
	req := p.req
	h := func(name string) string { return fieldValue(req.Header, name) }

	p.from()
	if list, err := p.addressList("Reply-To", h("Reply-To")); err != nil {
		p.problem("Reply-To: %v", err)
	} else {
		for _, a := range list {
			req.ReplyTo = append(req.ReplyTo, Mailbox{Name: p.headerText("Reply-To name", a.Name), Address: p.headerText("Reply-To address", a.Address)})
		}
	}
	if raw := h("Subject"); raw != "" {
		s, err := wordDecoder.DecodeHeader(raw)
		if err != nil {
			p.problem("Subject: %v", err)
			s = raw
		}
		req.Subject = p.headerText("Subject", s)
	}
	if v := h("Message-Id"); v != "" {
		req.MessageID = p.headerText("Message-ID", messageID(v))
	}
	req.InReplyTo = p.messageIDs("In-Reply-To", h("In-Reply-To"))
	req.References = p.messageIDs("References", h("References"))
	if v := h("Date"); v != "" {
		if t, err := parseDate(v); err != nil {
			p.problem("Date: unparsable %q", clip(v, 60))
		} else {
			req.Date = t
		}
	}

	l := &req.Loop
	l.AutoSubmitted = strings.ToLower(firstToken(h("Auto-Submitted")))
	l.Precedence = strings.ToLower(firstToken(h("Precedence")))
	l.ListID = p.headerText("List-Id", h("List-Id"))
	l.ReturnPathNull = strings.ReplaceAll(h("Return-Path"), " ", "") == "<>"
	l.ContentType = "text/plain"
	if v := h("Content-Type"); v != "" {
		mt, params, _ := parseParams(v) // salvaged; the problem is reported with the body
		l.ContentType = mt
		l.ReportType = strings.ToLower(strings.TrimSpace(params["report-type"]))
	}
}

// from sets the request's sender and says why it cannot be trusted when it
// is not exactly one mailbox in exactly one From header. From fields past
// the header's byte cap count, though they are not kept, and a From field
// the cap cut short is no sender: what was cut may have named another.
func (p *parser) from() {
	req := p.req
	var values []string
	cut := false
	for i, f := range req.Header {
		if strings.EqualFold(f.Name, "From") {
			values = append(values, f.Value)
			cut = cut || slices.Contains(p.cutFields, i)
		}
	}
	switch n := len(values) + p.fromPastCap; {
	case n == 0:
		req.FromProblem = "no From header"
		return
	case len(values) == 0:
		req.FromProblem = "From header past the header cap: not read"
		return
	case n > 1 && p.fromPastCap > 0:
		req.FromProblem = fmt.Sprintf("%d From headers (%d past the header cap)", n, p.fromPastCap)
	case n > 1:
		req.FromProblem = fmt.Sprintf("%d From headers", n)
	case cut:
		req.FromProblem = "From header runs past the header cap: cut"
	}
	list, err := p.addressList("From", values[0])
	if err != nil {
		if req.FromProblem == "" {
			req.FromProblem = "From header unparsable"
		}
		p.problem("From: %v", err)
		req.From = salvageMailbox(p.headerText("From", values[0]))
		return
	}
	switch {
	case len(list) == 0:
		req.FromProblem = "From header holds no mailbox"
		return
	case len(list) > 1 && req.FromProblem == "":
		req.FromProblem = fmt.Sprintf("From header holds %d mailboxes", len(list))
	}
	req.From = Mailbox{Name: p.headerText("From name", list[0].Name), Address: p.headerText("From address", list[0].Address)}
}

// addressList parses an address list header value. Raw 8-bit bytes that
// are not UTF-8 (a Latin-1 display name) make net/mail refuse the whole
// value; such a value is read again as windows-1252, which maps every
// 8-bit byte to a non-ASCII character and so keeps the list's structure.
func (p *parser) addressList(field, v string) ([]*mail.Address, error) {
	if strings.TrimSpace(v) == "" && field != "From" {
		return nil, nil
	}
	list, err := mail.ParseAddressList(v)
	if err != nil && !utf8.ValidString(v) {
		if l, err2 := mail.ParseAddressList(windows1252(v)); err2 == nil {
			p.problem("%s: 8-bit bytes that are not UTF-8; read as windows-1252", field)
			return l, nil
		}
	}
	return list, err
}

// salvageMailbox pulls an address-like token out of an unparsable From
// value for display. It is never trusted.
func salvageMailbox(v string) Mailbox {
	if i := strings.LastIndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j > 0 {
			return Mailbox{Name: strings.TrimSpace(v[:i]), Address: strings.TrimSpace(v[i+1 : i+j])}
		}
	}
	for _, tok := range strings.Fields(v) {
		if strings.Contains(tok, "@") {
			return Mailbox{Address: strings.Trim(tok, `"'<>(),;`)}
		}
	}
	return Mailbox{Name: v}
}

// headerText makes a decoded header value valid UTF-8 on one line,
// reading raw 8-bit bytes as windows-1252 when they are not UTF-8, and
// turning control characters (a NUL, or a line break from an encoded word)
// into spaces.
func (p *parser) headerText(what, s string) string {
	if !utf8.ValidString(s) {
		p.problem("%s: 8-bit bytes that are not UTF-8; read as windows-1252", what)
		s = windows1252(s)
	}
	return oneLine(s)
}

// isControl reports whether r is a control character: C0, DEL or C1. A
// terminal obeys all of them (U+009B is CSI, like ESC [), so none of them
// may reach a ticket from a mail.
func isControl(r rune) bool { return r < 0x20 || r >= 0x7f && r <= 0x9f }

// oneLine replaces control characters in s by spaces.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return ' '
		}
		return r
	}, s)
}

func windows1252(s string) string {
	out, err := charmap.Windows1252.NewDecoder().String(s)
	if err != nil {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	return out
}

// messageID returns the identifier of a Message-ID value without its
// angle brackets; a value without them is taken trimmed.
func messageID(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j > 0 {
			return strings.TrimSpace(v[i+1 : i+j])
		}
	}
	return strings.Trim(v, "<>")
}

// maxReferences bounds the Message-IDs kept of one In-Reply-To or
// References field, and maxMessageID the length of one.
const (
	maxReferences = 20
	maxMessageID  = 250
)

// messageIDs reads the <id> tokens of a threading field (name), the last
// maxReferences of them: a long References list keeps its newest. An id
// longer than maxMessageID, or holding a space or a control, is not one
// that this service or a sane mailer wrote, and is skipped.
func (p *parser) messageIDs(name, v string) []string {
	var ids []string
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			break
		}
		id := v[i+1 : i+j]
		v = v[i+j+1:]
		if id == "" || len(id) > maxMessageID || strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			continue
		}
		ids = append(ids, p.headerText(name, id))
	}
	if len(ids) > maxReferences {
		ids = ids[len(ids)-maxReferences:]
	}
	return ids
}

// parseDate parses a Date value: the common RFC 5322 form directly, the
// rest (obsolete zones, comments) through net/mail.
func parseDate(v string) (time.Time, error) {
	if t, err := time.Parse("Mon, 2 Jan 2006 15:04:05 -0700", strings.TrimSpace(v)); err == nil {
		return t, nil
	}
	return netmail.ParseDate(v)
}

// firstToken returns v up to its first ';' or white space.
func firstToken(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexAny(v, "; \t("); i >= 0 {
		v = v[:i]
	}
	return v
}
