package mail

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// utf8BOM is the byte order mark some mailers put before the first header.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// headerBlock is a header read leniently, with what follows it.
type headerBlock struct {
	fields []Field
	// body yields the bytes after the header: a line taken for the start
	// of the body (when the blank separator line is missing) and the rest.
	body io.Reader
	// fromPastCap counts the From fields that start past the byte cap:
	// they are not kept, but a second From must not hide there.
	fromPastCap int
	// cut holds the indices of kept fields that lost bytes to the cap (a
	// line cut short, or continuation lines dropped).
	cut []int
}

// readHeader reads a header block the way real mail needs: it skips an
// mbox "From " line and a byte order mark (when envelope is set: a message,
// not a MIME part), accepts a first line indented by
// mistake, drops malformed field lines instead of giving up, takes a line
// that is no header field at all for the start of the body, and keeps at
// most maxBytes of fields (counting the From fields past them). Every
// deviation is reported through problem. Only errors of the underlying
// reader are returned.
func readHeader(br *bufio.Reader, maxBytes int, envelope bool, scratch *headerScratch, problem func(string, ...any)) (headerBlock, error) {
	var (
		hb      headerBlock
		kept    int  // bytes of fields kept
		skipped bool // over maxBytes: fields are read but dropped
		curKept bool // the field being read is kept
		lineNo  int
		lineBuf = scratch.line[:0] // reused for every line
		// Every field's name and unfolded value are appended to all, and
		// become strings in one allocation at the end (starts holds where
		// each name and value begins): a folded value costs linear time.
		all    = scratch.all[:0]
		starts = scratch.starts[:0]
	)
	hb.body = br
	defer func() { scratch.line, scratch.all, scratch.starts = lineBuf, all, starts }()
	flush := func() {
		text := string(all)
		hb.fields = make([]Field, len(starts))
		for i, st := range starts {
			end := len(text)
			if i+1 < len(starts) {
				end = starts[i+1][0]
			}
			hb.fields[i] = Field{Name: text[st[0]:st[1]], Value: text[st[1]:end]}
		}
	}
	// markCut records that the field being read lost bytes.
	markCut := func() {
		if i := len(starts) - 1; curKept && (len(hb.cut) == 0 || hb.cut[len(hb.cut)-1] != i) {
			hb.cut = append(hb.cut, i)
		}
	}
	// admit counts a line of a field against maxBytes and reports whether
	// it is kept.
	admit := func(line []byte, cut bool, lineNo int) bool {
		if skipped {
			return false
		}
		if kept += len(line); kept > maxBytes {
			problem("header exceeds %d bytes; later fields skipped", maxBytes)
			skipped = true
			return false
		}
		if cut {
			problem("header line %d longer than %d bytes; cut", lineNo, maxBytes)
		}
		return true
	}
	for {
		raw, cut, err := readLine(br, maxBytes, lineBuf[:0])
		lineBuf = raw
		if err != nil && !errors.Is(err, io.EOF) {
			flush()
			return hb, err
		}
		if len(raw) == 0 && err != nil { // end of input, no body
			flush()
			return hb, nil
		}
		lineNo++
		if lineNo == 1 && envelope {
			raw = bytes.TrimPrefix(raw, utf8BOM)
			if isMboxFromLine(raw) {
				continue // mbox envelope line
			}
		}
		line := trimEOL(raw)
		if len(line) == 0 {
			flush()
			return hb, nil // the blank line that ends the header
		}
		if len(starts) == 0 && len(bytes.TrimSpace(line)) == 0 {
			problem("header line %d holds only white space; skipped", lineNo)
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(starts) > 0 || skipped {
				if !admit(line, cut, lineNo) {
					markCut()
					continue
				}
				if cut {
					markCut()
				}
				if folded := bytes.TrimSpace(line); len(folded) > 0 {
					all = append(append(all, ' '), folded...)
				}
				continue
			}
			problem("header line %d starts with white space", lineNo)
			line = bytes.TrimLeft(line, " \t")
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			if len(starts) == 0 {
				problem("line %d is not a header field: the message has no header", lineNo)
			} else {
				problem("header line %d is not a header field: no blank line ends the header; the body is taken to start there", lineNo)
			}
			if cut {
				problem("line %d longer than %d bytes; cut", lineNo, maxBytes)
			}
			flush()
			hb.body = io.MultiReader(bytes.NewReader(bytes.Clone(raw)), br)
			return hb, nil
		}
		name := bytes.TrimRight(line[:colon], " \t")
		if !validFieldName(name) {
			problem("header line %d: malformed field name %q; skipped", lineNo, clip(string(name), 40))
			continue
		}
		if curKept = admit(line, cut, lineNo); !curKept {
			if bytes.EqualFold(name, fromName) {
				hb.fromPastCap++
			}
			continue
		}
		starts = append(starts, [2]int{len(all), len(all) + len(name)})
		if cut {
			markCut()
		}
		all = append(append(all, name...), bytes.TrimSpace(line[colon+1:])...)
		if err != nil { // last line of the input
			flush()
			return hb, nil
		}
	}
}

var fromName = []byte("From")

// headerScratch holds readHeader's buffers, so that the headers of one
// message, and of the next, reuse them.
type headerScratch struct {
	line, all []byte
	starts    [][2]int
}

// isMboxFromLine reports whether line is an mbox envelope line ("From
// sender date"), not an obsolete "From : address" header field.
func isMboxFromLine(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, []byte("From "))
	return ok && !bytes.HasPrefix(bytes.TrimLeft(rest, " \t"), []byte(":"))
}

// readLine reads one line including its line end, keeping at most limit bytes
// of it while consuming it whole, so a giant line costs no memory. cut
// reports that bytes were dropped.
func readLine(br *bufio.Reader, limit int, line []byte) ([]byte, bool, error) {
	cut := false
	for {
		frag, err := br.ReadSlice('\n')
		room := max(0, limit-len(line))
		line = append(line, frag[:min(room, len(frag))]...)
		if len(frag) > room && len(bytes.TrimRight(frag[room:], "\r\n")) > 0 {
			cut = true
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return line, cut, err
	}
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// validFieldName reports whether b is an RFC 5322 field name: printable
// US-ASCII other than the colon.
func validFieldName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

// clip shortens s to at most n bytes for use in a problem report.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s…", s[:n])
}
