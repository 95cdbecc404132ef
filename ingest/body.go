package ingest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
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
	var th textproto.Header
	if len(hb.fields) > 0 {
		th = mailHeader(hb.fields).Header.Header
	}
	seg := p.entity(th, hb.body, 0, "body")
	text := strings.TrimSpace(seg.text)
	if len(text) > p.lim.MaxTextBytes { // separators and enclosed-message lines
		text = strings.TrimSpace(cutUTF8(text, p.lim.MaxTextBytes))
		seg.truncated = true
	}
	if seg.truncated {
		p.problem("text longer than %d bytes; the rest is cut", p.lim.MaxTextBytes)
	}
	p.req.Text = text
}

// entity reads one MIME entity from raw (its undecoded body) and returns
// its readable text; attachments are recorded as they go past.
func (p *parser) entity(th textproto.Header, raw io.Reader, depth int, where string) segment {
	p.parts++
	mt, params := p.contentType(th, where)
	disp, dparams := p.disposition(th, where)

	switch {
	case strings.HasPrefix(mt, "multipart/") && params["boundary"] == "":
		p.problem("%s: %s without boundary; read as text", where, mt)
		mt = "text/plain"
	case strings.HasPrefix(mt, "multipart/") && depth >= p.lim.MaxDepth:
		p.problem("%s: nested deeper than %d; kept as an attachment", where, p.lim.MaxDepth)
		mt = "application/octet-stream"
	case strings.HasPrefix(mt, "multipart/"):
		return p.multipart(mt, params["boundary"], raw, depth, where)
	}

	// Let go-message decode the transfer encoding, and the charset of text
	// that is read as text (an attachment is hashed as it was sent), from a
	// header whose Content-Type we may have repaired. Only the charset
	// parameter is passed on: a salvaged parameter that cannot be formatted
	// again must not lose it.
	asText := disp != "attachment" && (mt == "text/plain" || mt == "text/html")
	newParams := map[string]string{}
	if cs := strings.TrimSpace(params["charset"]); asText && cs != "" {
		newParams["charset"] = cs
	}
	mh := message.Header{Header: th}
	mh.SetContentType(mt, newParams)
	e, err := message.New(mh, raw)
	if err != nil {
		p.problem("%s: %v", where, err)
	}

	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	switch {
	case disp == "attachment":
	case (mt == "message/rfc822" || mt == "message/global") && depth < p.lim.MaxDepth:
		return p.enclosed(e.Body, depth, where)
	case asText:
		charsetKnown := err == nil || !message.IsUnknownCharset(err)
		return p.text(e.Body, mt == "text/html", charsetKnown, where)
	}
	p.attachment(e.Body, mt, name, where)
	return segment{}
}

// multipart reads the parts of a multipart entity and combines their text:
// the plain alternative when there is one, otherwise everything in order.
func (p *parser) multipart(mt, boundary string, raw io.Reader, depth int, where string) segment {
	// The preamble is kept: when not a single delimiter turns up, the body
	// is read as text rather than lost.
	mr := newMultipartReader(raw, boundary, p.lim.MaxTextBytes)
	alternative := mt == "multipart/alternative"
	start := p.textLen
	var (
		segs []segment
		cut  bool // a part without text was cut by the budget
	)
	for i := 1; ; i++ {
		if p.parts >= p.lim.MaxParts {
			if !p.partsCapped {
				p.problem("more than %d MIME parts; the rest is not read", p.lim.MaxParts)
				p.partsCapped = true
			}
			break
		}
		if !mr.next() {
			switch {
			case mr.readErr() != nil: // the source failed: Parse reports it
			case i == 1:
				p.problem("%s: no MIME boundary %q found; the body is read as text", where, clip(boundary, 70))
				return p.text(bytes.NewReader(mr.preamble), false, false, where)
			case !mr.closed():
				p.problem("%s: closing MIME boundary %q missing; the last part may be cut", where, clip(boundary, 70))
			}
			break
		}
		partWhere := fmt.Sprintf("%s.%d", where, i)
		hb, err := readHeader(bufio.NewReader(mr), p.lim.MaxHeaderBytes, false, func(f string, a ...any) {
			p.problem(partWhere+": "+f, a...)
		})
		if err != nil {
			break // the source failed
		}
		var th textproto.Header
		if len(hb.fields) > 0 {
			th = mailHeader(hb.fields).Header.Header
		}
		if alternative { // each alternative may use the whole budget
			p.textLen = start
		}
		s := p.entity(th, hb.body, depth+1, partWhere)
		if strings.TrimSpace(s.text) != "" {
			segs = append(segs, s)
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
	br := bufio.NewReader(r)
	hb, err := readHeader(br, p.lim.MaxHeaderBytes, true, func(f string, a ...any) {
		p.problem(where+": enclosed message: "+f, a...)
	})
	if err != nil {
		p.problem("%s: enclosed message: %v", where, err)
		return segment{}
	}
	th := mailHeader(hb.fields)
	from, _ := th.Text("From")
	subject, _ := th.Text("Subject")
	if from == "" {
		from = "an unknown sender"
	}
	seg := p.entity(th.Header.Header, hb.body, depth+1, where)
	intro := fmt.Sprintf("---- enclosed message from %s, subject %q ----",
		p.headerText("enclosed From", from), p.headerText("enclosed Subject", subject))
	seg.text = intro + "\n" + seg.text
	return seg
}

// text reads a text/plain or text/html part within the text budget.
func (p *parser) text(r io.Reader, html, charsetKnown bool, where string) segment {
	budget := p.lim.MaxTextBytes - p.textLen
	if budget <= 0 {
		return segment{truncated: true}
	}
	max := budget
	if html {
		max = 4 * budget // markup is bulkier than the text it yields
	}
	b, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		p.problem("%s: %v (text kept up to there)", where, err)
	}
	var cut bool
	if len(b) > max {
		// Cut at a character boundary, or the text would no longer be
		// UTF-8 and would all be read as windows-1252.
		b = trimPartialRune(b[:max])
		cut = true
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
// a hash and the key-material detector.
func (p *parser) attachment(r io.Reader, mt, name, where string) {
	name = p.headerText("attachment name", name)
	d := newSecretDetector(mt, name)
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(sum, d), r)
	a := Attachment{Name: name, ContentType: mt, Size: n}
	if err != nil {
		p.problem("%s: attachment %q: %v", where, clip(name, 60), err)
		a.Truncated = true
	}
	if a.Secret = d.secret(); a.Secret == "" {
		a.SHA256 = hex.EncodeToString(sum.Sum(nil))
	}
	p.req.Attachments = append(p.req.Attachments, a)
}

// contentType parses Content-Type leniently: a malformed value still yields
// its media type and whatever parameters can be read.
func (p *parser) contentType(th textproto.Header, where string) (string, map[string]string) {
	v := th.Get("Content-Type")
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

func (p *parser) disposition(th textproto.Header, where string) (string, map[string]string) {
	v := th.Get("Content-Disposition")
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
// than tab and newline.
func cleanText(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
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
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
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
