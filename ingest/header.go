package ingest

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
}

// readHeader reads a header block the way real mail needs: it skips an
// mbox "From " line and a byte order mark, accepts a first line indented by
// mistake, drops malformed field lines instead of giving up, takes a line
// that is no header field at all for the start of the body, and keeps at
// most maxBytes of fields. Every deviation is reported through problem.
// Only errors of the underlying reader are returned.
func readHeader(br *bufio.Reader, maxBytes int, problem func(string, ...any)) (headerBlock, error) {
	var (
		hb      headerBlock
		kept    int  // bytes of fields kept
		skipped bool // over maxBytes: fields are read but dropped
		lineNo  int
	)
	hb.body = br
	for {
		raw, err := readLine(br, maxBytes)
		if err != nil && !errors.Is(err, io.EOF) {
			return hb, err
		}
		if len(raw) == 0 && err != nil { // end of input, no body
			return hb, nil
		}
		lineNo++
		line := trimEOL(raw)
		if lineNo == 1 {
			line = bytes.TrimPrefix(line, utf8BOM)
			if bytes.HasPrefix(line, []byte("From ")) {
				continue // mbox envelope line
			}
		}
		if len(line) == 0 {
			return hb, nil // the blank line that ends the header
		}
		if len(hb.fields) == 0 && len(bytes.TrimSpace(line)) == 0 {
			problem("header line %d holds only white space; skipped", lineNo)
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(hb.fields) > 0 {
				if !skipped {
					last := &hb.fields[len(hb.fields)-1]
					last.Value += " " + string(bytes.TrimSpace(line))
					kept += len(line)
				}
				continue
			}
			problem("header line %d starts with white space", lineNo)
			line = bytes.TrimLeft(line, " \t")
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			if len(hb.fields) == 0 {
				problem("line %d is not a header field: the message has no header", lineNo)
			} else {
				problem("header line %d is not a header field: no blank line ends the header; the body is taken to start there", lineNo)
			}
			hb.body = io.MultiReader(bytes.NewReader(raw), br)
			return hb, nil
		}
		name := bytes.TrimRight(line[:colon], " \t")
		if !validFieldName(name) {
			problem("header line %d: malformed field name %q; skipped", lineNo, clip(string(name), 40))
			continue
		}
		kept += len(line)
		if kept > maxBytes {
			if !skipped {
				problem("header exceeds %d bytes; later fields skipped", maxBytes)
				skipped = true
			}
			continue
		}
		hb.fields = append(hb.fields, Field{
			Name:  string(name),
			Value: string(bytes.TrimSpace(line[colon+1:])),
		})
		if err != nil { // last line of the input
			return hb, nil
		}
	}
}

// readLine reads one line including its line end, keeping at most max bytes
// of it while consuming it whole, so a giant line costs no memory.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if room := max - len(line); room > 0 {
			line = append(line, frag[:min(room, len(frag))]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return line, err
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
