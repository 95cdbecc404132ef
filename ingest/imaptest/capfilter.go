package imaptest

// The capability filter: a net.Conn wrapper that takes capabilities out of
// what a server writes, so that the memserver can pretend to lack MOVE,
// UIDPLUS or IDLE (Options).

import (
	"bytes"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
)

// imaptestCapFilterConn removes capabilities from what the server writes: from
// "* CAPABILITY ..." lines and "[CAPABILITY ...]" response codes. Literals
// pass through untouched, so message bodies are never rewritten.
type imaptestCapFilterConn struct {
	net.Conn
	drop map[string]bool

	mu   sync.Mutex
	line []byte
	lit  int64
}

func newImaptestCapFilterConn(conn net.Conn, drop []imap.Cap) *imaptestCapFilterConn {
	m := map[string]bool{}
	for _, c := range drop {
		m[strings.ToUpper(string(c))] = true
	}
	return &imaptestCapFilterConn{Conn: conn, drop: m}
}

var (
	imaptestCapRespCodeRE = regexp.MustCompile(`(?i)^(\S+ (?:OK|NO|BAD|PREAUTH|BYE) \[CAPABILITY )([^\]]*)(\].*)$`)
	imaptestLiteralEndRE  = regexp.MustCompile(`~?\{(\d+)[+-]?\}\r?\n$`)
)

func (c *imaptestCapFilterConn) filterCaps(list string) string {
	var kept []string
	for _, f := range strings.Fields(list) {
		if !c.drop[strings.ToUpper(f)] {
			kept = append(kept, f)
		}
	}
	return strings.Join(kept, " ")
}

func (c *imaptestCapFilterConn) filterLine(line []byte) []byte {
	const prefix = "* CAPABILITY "
	if len(line) > len(prefix) && strings.EqualFold(string(line[:len(prefix)]), prefix) {
		body := strings.TrimRight(string(line[len(prefix):]), "\r\n")
		return []byte(string(line[:len(prefix)]) + c.filterCaps(body) + "\r\n")
	}
	if m := imaptestCapRespCodeRE.FindSubmatch(bytes.TrimRight(line, "\r\n")); m != nil {
		return []byte(string(m[1]) + c.filterCaps(string(m[2])) + string(m[3]) + "\r\n")
	}
	return line
}

func (c *imaptestCapFilterConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []byte
	rest := p
	for len(rest) > 0 {
		if c.lit > 0 {
			n := min(int64(len(rest)), c.lit)
			out = append(out, rest[:n]...)
			c.lit -= n
			rest = rest[n:]
			continue
		}
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			c.line = append(c.line, rest...)
			break
		}
		c.line = append(c.line, rest[:i+1]...)
		rest = rest[i+1:]
		line := c.filterLine(c.line)
		out = append(out, line...)
		if m := imaptestLiteralEndRE.FindSubmatch(line); m != nil {
			c.lit, _ = strconv.ParseInt(string(m[1]), 10, 64)
		}
		c.line = c.line[:0]
	}
	if len(out) > 0 {
		if _, err := c.Conn.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}
