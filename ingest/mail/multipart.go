package mail

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// multipartReader splits a multipart body into its parts leniently. Unlike
// go-message's reader it never gives up on the rest of the body: a part
// with a malformed header is still a part (its header is read by
// readHeader), a delimiter followed by junk still delimits, and a missing
// closing delimiter ends the last part at the end of the input.
//
// Only one part is read at a time: next skips what is left of the current
// part (or the preamble) and positions the reader at the next part, whose
// bytes Read then yields up to, not including, the line end before the
// next delimiter line.
type multipartReader struct {
	br   *bufio.Reader
	dash []byte // "--" + boundary

	// pre and then buf are the bytes of the current part ready for Read:
	// pre a line end held back before, buf what follows it. buf may be a
	// slice of br's buffer, valid until br is read again.
	pre       []byte
	buf       []byte
	eol       []byte // line end held back: it belongs to a delimiter if one follows
	lineStart bool   // the next fragment starts a line
	partEnd   bool   // a delimiter line ended the current part
	final     bool   // the delimiter was the closing one
	err       error  // read error of the input; io.EOF at its end
	parts     int    // delimiters seen

	// preamble keeps up to preambleMax bytes before the first delimiter.
	preamble    []byte
	preambleMax int
}

func newMultipartReader(r io.Reader, boundary string, preambleMax int) *multipartReader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 4<<10)
	}
	return &multipartReader{
		br:          br,
		dash:        []byte("--" + boundary),
		lineStart:   true,
		preambleMax: preambleMax,
	}
}

// next moves to the next part and reports whether there is one.
func (r *multipartReader) next() bool {
	for !r.partEnd && r.err == nil {
		r.fill()
		if r.parts == 0 {
			for _, b := range [][]byte{r.pre, r.buf} {
				if room := r.preambleMax - len(r.preamble); room > 0 {
					r.preamble = append(r.preamble, b[:min(room, len(b))]...)
				}
			}
		}
		r.pre, r.buf = nil, nil
	}
	if !r.partEnd || r.final {
		return false
	}
	r.parts++
	r.partEnd, r.eol, r.pre, r.buf, r.lineStart = false, nil, nil, nil, true
	return true
}

// closed reports whether the closing delimiter was seen.
func (r *multipartReader) closed() bool { return r.final }

// readErr returns the input's read error, nil at its end.
func (r *multipartReader) readErr() error {
	if errors.Is(r.err, io.EOF) {
		return nil
	}
	return r.err
}

// Read reads the current part. It returns io.EOF at the delimiter that ends
// the part, and at the end of the input: a missing closing delimiter is
// reported once for the whole multipart (closed), not by every reader of
// the last part.
func (r *multipartReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) { // as many lines as fit: decoders above read in bulk
		if len(r.pre) > 0 {
			c := copy(p[n:], r.pre)
			r.pre = r.pre[c:]
			n += c
			continue
		}
		if len(r.buf) == 0 {
			switch {
			case n > 0 && (r.partEnd || r.err != nil):
				return n, nil
			case r.partEnd:
				return 0, io.EOF
			case r.err != nil:
				return 0, r.err
			}
			r.fill()
			continue
		}
		c := copy(p[n:], r.buf)
		r.buf = r.buf[c:]
		n += c
	}
	return n, nil
}

// fill reads the next lines, or the next line or line fragment, into pre
// and buf, or notes the delimiter line that ends the current part.
func (r *multipartReader) fill() {
	if r.fillLines() {
		return
	}
	line, err := r.br.ReadSlice('\n')
	full := errors.Is(err, bufio.ErrBufferFull)
	if err != nil && !full {
		r.err = err
	}
	if r.lineStart && r.isDelimiter(line) {
		r.partEnd = true
		r.final = bytes.HasPrefix(line[len(r.dash):], []byte("--"))
		r.eol = nil
		for full { // the rest of an overlong delimiter line
			_, err = r.br.ReadSlice('\n')
			if full = errors.Is(err, bufio.ErrBufferFull); err != nil && !full {
				r.err = err
			}
		}
		return
	}
	r.lineStart = !full
	content := line
	var eol []byte
	if bytes.HasSuffix(content, lineLF) {
		content = content[:len(content)-1]
		eol = lineLF
		if bytes.HasSuffix(content, lineCR) {
			content = content[:len(content)-1]
			eol = lineCRLF
		}
	}
	r.pre, r.buf = r.eol, content
	r.eol = eol
	if r.err != nil { // the last line of the input keeps its line end
		r.buf = line
		r.eol = nil
	}
}

// fillLines takes, at the start of a line, the whole lines buffered in br
// up to the first one that starts with a dash (a delimiter or not), as
// fill would one by one but without looking at each: the part's bytes,
// the line end before them held back as fill holds it, the last one's
// held back now. It reports false, having read nothing, when there is no
// such line: the first buffered line starts with a dash or has no end
// yet.
func (r *multipartReader) fillLines() bool {
	if !r.lineStart {
		return false
	}
	data, _ := r.br.Peek(r.br.Buffered())
	if len(data) == 0 {
		_, _ = r.br.Peek(1) // fills the buffer, or finds nothing
		data, _ = r.br.Peek(r.br.Buffered())
	}
	if len(data) == 0 || data[0] == '-' {
		return false
	}
	end := bytes.LastIndexByte(data, '\n') + 1
	if end == 0 {
		return false
	}
	if i := bytes.Index(data[:end], lineDash); i >= 0 {
		end = i + 1 // up to the line that starts with a dash
	}
	content, eol := data[:end-1], lineLF
	if bytes.HasSuffix(content, lineCR) {
		content, eol = content[:len(content)-1], lineCRLF
	}
	r.pre, r.buf, r.eol = r.eol, content, eol
	r.br.Discard(end)
	return true
}

// Line ends, shared and never written to.
var (
	lineCR   = []byte("\r")
	lineLF   = []byte("\n")
	lineCRLF = []byte("\r\n")
	lineDash = []byte("\n-")
)

// isDelimiter reports whether line is a delimiter line: "--boundary",
// then end of line, white space or "-" (the closing "--", or junk that
// real mailers add).
func (r *multipartReader) isDelimiter(line []byte) bool {
	if !bytes.HasPrefix(line, r.dash) {
		return false
	}
	if len(line) == len(r.dash) {
		return true
	}
	switch line[len(r.dash)] {
	case ' ', '\t', '\r', '\n', '-':
		return true
	}
	return false
}
