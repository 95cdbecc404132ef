package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The ceiling: one command, `UID FETCH 1:* BODY.PEEK[]`, whose answer is
// read as fast as a client can and only counted. It runs as a child
// process (the bench binary again, in its -rawfetch mode) so that its
// peak RSS and CPU time are its own.

const (
	rawFetchFlag    = "-rawfetch"         // os.Args[1] of the child: then addr,user
	rawFetchPassEnv = "BENCH_RAWFETCH_PW" // the password, kept off the command line
)

// rawFetchResult is what the child prints, one JSON line.
type rawFetchResult struct {
	Messages int   `json:"messages"`
	Bytes    int64 `json:"bytes"`
}

// rawFetchMain is the child: it fetches, prints the counts, and exits.
func rawFetchMain(arg string) int {
	addr, user, ok := strings.Cut(arg, ",")
	if !ok {
		fmt.Fprintln(os.Stderr, "rawfetch: want ADDR,USER (password in $"+rawFetchPassEnv+")")
		return 2
	}
	timeout := 30 * time.Minute
	if s := os.Getenv("BENCH_RAWFETCH_TIMEOUT"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			timeout = d
		}
	}
	res, err := rawFetch(addr, user, os.Getenv(rawFetchPassEnv), timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rawfetch:", err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

// rawFetch logs in, selects INBOX, fetches every body and counts.
func rawFetch(addr, user, pass string, timeout time.Duration) (rawFetchResult, error) {
	var res rawFetchResult
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return res, fmt.Errorf("connect %s: %w", addr, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	rd := &imapReader{r: bufio.NewReaderSize(conn, 256<<10), buf: make([]byte, 256<<10)}
	if line, err := rd.line(); err != nil || !bytes.HasPrefix(line, []byte("* OK")) {
		return res, fmt.Errorf("greeting: %q %v", line, err)
	}
	send := func(tag, cmd string) error {
		_, err := io.WriteString(conn, tag+" "+cmd+"\r\n")
		return err
	}
	if err := send("a1", "LOGIN "+quote(user)+" "+quote(pass)); err != nil {
		return res, fmt.Errorf("login: %w", err)
	}
	if _, err := rd.until("a1", nil); err != nil {
		return res, fmt.Errorf("login: %w", err)
	}
	if err := send("a2", "SELECT INBOX"); err != nil {
		return res, fmt.Errorf("select: %w", err)
	}
	if _, err := rd.until("a2", nil); err != nil {
		return res, fmt.Errorf("select: %w", err)
	}
	if err := send("a3", "UID FETCH 1:* BODY.PEEK[]"); err != nil {
		return res, fmt.Errorf("fetch: %w", err)
	}
	n, err := rd.until("a3", &res.Bytes)
	if err != nil {
		return res, fmt.Errorf("fetch: %w", err)
	}
	res.Messages = n
	send("a4", "LOGOUT")
	rd.until("a4", nil)
	return res, nil
}

// quote makes an IMAP quoted string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// imapReader reads IMAP responses: lines, and the literals ({n} at the
// end of a line, then exactly n bytes) within them.
type imapReader struct {
	r   *bufio.Reader
	buf []byte
}

// line reads one line (without its CRLF), however long.
func (rd *imapReader) line() ([]byte, error) {
	var long []byte
	for {
		chunk, err := rd.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long, chunk...)
			continue
		}
		if err != nil {
			return nil, err
		}
		if long != nil {
			chunk = append(long, chunk...)
		}
		return bytes.TrimRight(chunk, "\r\n"), nil
	}
}

// until reads responses up to the tagged one of tag, which must be OK. It
// returns the number of untagged FETCH responses, and adds the bytes of
// every literal to *literalBytes (when not nil).
func (rd *imapReader) until(tag string, literalBytes *int64) (fetches int, err error) {
	continuation := false // the line goes on after a literal: not a new response
	for {
		line, err := rd.line()
		if err != nil {
			return fetches, fmt.Errorf("read: %w", err)
		}
		if !continuation {
			if rest, ok := bytes.CutPrefix(line, []byte(tag+" ")); ok {
				if !bytes.HasPrefix(rest, []byte("OK")) {
					return fetches, fmt.Errorf("%s", line)
				}
				return fetches, nil
			}
			if bytes.HasPrefix(line, []byte("* ")) {
				if f := bytes.Fields(line[2:]); len(f) >= 2 && string(f[1]) == "FETCH" {
					fetches++
				}
			}
		}
		continuation = false
		n, ok := literalSize(line)
		if !ok {
			continue
		}
		// Read exactly n bytes, counting them.
		for left := n; left > 0; {
			k, err := rd.r.Read(rd.buf[:min(left, int64(len(rd.buf)))])
			if err != nil {
				return fetches, fmt.Errorf("read literal: %w", err)
			}
			left -= int64(k)
		}
		if literalBytes != nil {
			*literalBytes += n
		}
		continuation = true
	}
}

// literalSize reports the size of the literal a line ends with ({n} or
// {n+}).
func literalSize(line []byte) (int64, bool) {
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false
	}
	open := bytes.LastIndexByte(line, '{')
	if open < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSuffix(string(line[open+1:len(line)-1]), "+"), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// runRaw drains a fresh copy of the mailbox with the raw fetch child.
func (b *bench) runRaw(ctx context.Context, dir string) (res result) {
	res = result{Tool: toolRaw, Mails: len(b.mb.files), Bytes: b.mb.bytes}
	self, err := os.Executable()
	if err != nil {
		return res.fail(fmt.Errorf("raw fetch: %w", err))
	}
	d, err := b.seedDovecot(ctx, b.mb)
	if err != nil {
		return res.fail(err)
	}
	defer d.Close()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res.fail(fmt.Errorf("raw fetch: %w", err))
	}
	timeout := b.drainTimeout()
	var out bytes.Buffer
	b.logf("raw: UID FETCH 1:* BODY.PEEK[] of %d mails", len(b.mb.files))
	cpu := readCPU()
	p, err := b.startChild("raw fetch", filepath.Join(dir, "rawfetch.log"), &out,
		[]string{rawFetchPassEnv + "=" + d.Password(), "BENCH_RAWFETCH_TIMEOUT=" + timeout.String()},
		self, rawFetchFlag, d.Addr()+","+d.Username())
	if err != nil {
		return res.fail(err)
	}
	defer p.Kill()
	if err := p.wait(ctx, timeout+time.Minute); err != nil {
		return res.fail(fmt.Errorf("%w:\n%s", err, p.Tail(10)))
	}
	elapsed := time.Since(p.Started())
	res.MachineBusy = cpu.busySince()
	if !p.ProcessState().Success() {
		return res.fail(fmt.Errorf("raw fetch: %v:\n%s", p.Err(), p.Tail(10)))
	}
	var got rawFetchResult
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		return res.fail(fmt.Errorf("raw fetch: its output %q: %w", out.String(), err))
	}
	if got.Messages != len(b.mb.files) || got.Bytes != b.mb.bytes {
		return res.fail(fmt.Errorf("raw fetch: read %d messages of %d bytes, want %d of %d", got.Messages, got.Bytes, len(b.mb.files), b.mb.bytes))
	}
	res.Seconds = elapsed.Seconds()
	res.PeakRSSMiB, res.CPUSeconds, res.RSSSource = p.usage()
	res.finish()
	b.logf("raw: %d mails in %.2f s (%.0f mails/s, %.0f MB/s)", got.Messages, res.Seconds, res.MailsPerSec, res.MBPerSec)
	return res
}
