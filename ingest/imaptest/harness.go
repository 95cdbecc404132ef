package imaptest

// The part both servers share: everything done over the harness account's
// own short-lived connections (Append, UIDs, Bodies, Flags), and the
// worker-facing accessors (Addr, Username, Password, Caps).

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

type imapHarness struct {
	addr string
	caps imap.CapSet

	portsMu      sync.Mutex
	harnessPorts map[int]bool // client-side ports of the harness's own connections
}

func (h *imapHarness) Addr() string     { return h.addr }
func (h *imapHarness) Username() string { return imapTestUser }
func (h *imapHarness) Password() string { return imapTestPassword }
func (h *imapHarness) Caps() imap.CapSet {
	return h.caps.Copy()
}

func (h *imapHarness) isHarnessPort(port int) bool {
	h.portsMu.Lock()
	defer h.portsMu.Unlock()
	return h.harnessPorts[port]
}

// imaptestConn is one short-lived helper connection, bounded by a watchdog
// that closes the socket when imapHarnessOpTimeout runs out.
type imaptestConn struct {
	*imapclient.Client
	watchdog *time.Timer
}

func (hc *imaptestConn) close() {
	hc.watchdog.Stop()
	done := make(chan struct{})
	go func() {
		hc.Logout().Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	hc.Close()
}

// dial opens a connection and logs in, as the harness account or as the worker's user.
func (h *imapHarness) dial(username, password string) (*imaptestConn, error) {
	conn, err := net.DialTimeout("tcp", h.addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if la, ok := conn.LocalAddr().(*net.TCPAddr); ok {
		h.portsMu.Lock()
		h.harnessPorts[la.Port] = true
		h.portsMu.Unlock()
	}
	c := imapclient.New(conn, nil)
	hc := &imaptestConn{Client: c, watchdog: time.AfterFunc(imapHarnessOpTimeout, func() { conn.Close() })}
	if err := c.Login(username, password).Wait(); err != nil {
		hc.watchdog.Stop()
		c.Close()
		return nil, fmt.Errorf("login as %s: %w", username, err)
	}
	return hc, nil
}

func (h *imapHarness) admin(t testing.TB) *imaptestConn {
	t.Helper()
	hc, err := h.dial(imapHarnessUser, imapHarnessPass)
	if err != nil {
		t.Fatalf("imaptest: harness connection to %s: %v", h.addr, err)
	}
	return hc
}

// loginCaps logs in as the worker's user and returns what the server advertises then.
func (h *imapHarness) loginCaps() (imap.CapSet, error) {
	hc, err := h.dial(imapTestUser, imapTestPassword)
	if err != nil {
		return nil, err
	}
	defer hc.close()
	caps := hc.Client.Caps()
	if caps == nil {
		return nil, errors.New("no capabilities after login")
	}
	return caps.Copy(), nil
}

func imaptestMailboxExists(c *imapclient.Client, mailbox string) (bool, error) {
	list, err := c.List("", mailbox, nil).Collect()
	if err != nil {
		return false, err
	}
	for _, l := range list {
		if imaptestSameMailbox(l.Mailbox, mailbox) && !slices.Contains(l.Attrs, imap.MailboxAttrNoSelect) &&
			!slices.Contains(l.Attrs, imap.MailboxAttrNonExistent) {
			return true, nil
		}
	}
	return false, nil
}

func imaptestEnsureMailbox(c *imapclient.Client, mailbox string) error {
	ok, err := imaptestMailboxExists(c, mailbox)
	if err != nil || ok {
		return err
	}
	err = c.Create(mailbox, nil).Wait()
	var ie *imap.Error
	if errors.As(err, &ie) && ie.Code == imap.ResponseCodeAlreadyExists {
		return nil
	}
	return err
}

func (h *imapHarness) Append(t testing.TB, mailbox string, raw []byte) imap.UID {
	t.Helper()
	return h.AppendStream(t, mailbox, int64(len(raw)), bytes.NewReader(raw))
}

func (h *imapHarness) AppendStream(t testing.TB, mailbox string, size int64, r io.Reader) imap.UID {
	t.Helper()
	hc := h.admin(t)
	defer hc.close()
	if err := imaptestEnsureMailbox(hc.Client, mailbox); err != nil {
		t.Fatalf("imaptest: create mailbox %q: %v", mailbox, err)
	}
	return imaptestAppend(t, hc, mailbox, size, r)
}

func (h *imapHarness) AppendAll(t testing.TB, mailbox string, raws [][]byte) []imap.UID {
	t.Helper()
	hc := h.admin(t)
	defer hc.close()
	if err := imaptestEnsureMailbox(hc.Client, mailbox); err != nil {
		t.Fatalf("imaptest: create mailbox %q: %v", mailbox, err)
	}
	uids := make([]imap.UID, len(raws))
	for i, raw := range raws {
		uids[i] = imaptestAppend(t, hc, mailbox, int64(len(raw)), bytes.NewReader(raw))
	}
	return uids
}

// imaptestAppend appends one mail on an open harness connection.
func imaptestAppend(t testing.TB, hc *imaptestConn, mailbox string, size int64, r io.Reader) imap.UID {
	t.Helper()
	cmd := hc.Client.Append(mailbox, size, nil)
	n, err := io.Copy(cmd, io.LimitReader(r, size))
	if err == nil && n != size {
		err = fmt.Errorf("reader gave %d of %d bytes", n, size)
	}
	if err != nil {
		hc.Client.Close() // the literal is incomplete: the connection is unusable
		t.Fatalf("imaptest: append to %q: %v", mailbox, err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatalf("imaptest: append to %q: %v", mailbox, err)
	}
	data, err := cmd.Wait()
	if err != nil {
		t.Fatalf("imaptest: append to %q: %v", mailbox, err)
	}
	if data == nil || data.UID == 0 {
		t.Fatalf("imaptest: append to %q: server sent no APPENDUID", mailbox)
	}
	return data.UID
}

type imaptestMessage struct {
	uid   imap.UID
	flags []imap.Flag
	date  time.Time
	body  []byte
}

func imaptestIsDeleted(flags []imap.Flag) bool {
	for _, f := range flags {
		if strings.EqualFold(string(f), string(imap.FlagDeleted)) {
			return true
		}
	}
	return false
}

func imaptestWithoutRecent(flags []imap.Flag) []imap.Flag {
	out := make([]imap.Flag, 0, len(flags))
	for _, f := range flags {
		if !strings.EqualFold(string(f), `\Recent`) {
			out = append(out, f)
		}
	}
	return out
}

// imaptestFetchAll EXAMINEs mailbox (read-only: no flag changes, no \Recent stolen) and
// fetches its messages in UID order; exists is false when there is no such mailbox.
func imaptestFetchAll(c *imapclient.Client, mailbox string, uids imap.UIDSet, withBody bool) (msgs []imaptestMessage, exists bool, err error) {
	ok, err := imaptestMailboxExists(c, mailbox)
	if err != nil || !ok {
		return nil, false, err
	}
	sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return nil, true, fmt.Errorf("examine: %w", err)
	}
	if sel.NumMessages == 0 {
		return nil, true, nil
	}
	if uids == nil {
		uids = imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}} // 1:*
	}
	opts := &imap.FetchOptions{UID: true, Flags: true, InternalDate: true}
	section := &imap.FetchItemBodySection{Peek: true}
	if withBody {
		opts.BodySection = []*imap.FetchItemBodySection{section}
	}
	bufs, err := c.Fetch(uids, opts).Collect()
	if err != nil {
		return nil, true, fmt.Errorf("fetch: %w", err)
	}
	for _, b := range bufs {
		m := imaptestMessage{uid: b.UID, flags: imaptestWithoutRecent(b.Flags), date: b.InternalDate}
		if withBody {
			m.body = b.FindBodySection(section)
			if m.body == nil {
				m.body = []byte{}
			}
		}
		msgs = append(msgs, m)
	}
	slices.SortFunc(msgs, func(a, b imaptestMessage) int { return int(a.uid) - int(b.uid) })
	return msgs, true, nil
}

func (h *imapHarness) UIDs(t testing.TB, mailbox string) []imap.UID {
	t.Helper()
	hc := h.admin(t)
	defer hc.close()
	msgs, _, err := imaptestFetchAll(hc.Client, mailbox, nil, false)
	if err != nil {
		t.Fatalf("imaptest: UIDs of %q: %v", mailbox, err)
	}
	uids := []imap.UID{}
	for _, m := range msgs {
		if !imaptestIsDeleted(m.flags) {
			uids = append(uids, m.uid)
		}
	}
	return uids
}

func (h *imapHarness) Bodies(t testing.TB, mailbox string) [][]byte {
	t.Helper()
	hc := h.admin(t)
	defer hc.close()
	msgs, _, err := imaptestFetchAll(hc.Client, mailbox, nil, true)
	if err != nil {
		t.Fatalf("imaptest: bodies of %q: %v", mailbox, err)
	}
	bodies := [][]byte{}
	for _, m := range msgs {
		if !imaptestIsDeleted(m.flags) {
			bodies = append(bodies, m.body)
		}
	}
	return bodies
}

func (h *imapHarness) Flags(t testing.TB, mailbox string, uid imap.UID) []imap.Flag {
	t.Helper()
	hc := h.admin(t)
	defer hc.close()
	msgs, exists, err := imaptestFetchAll(hc.Client, mailbox, imap.UIDSetNum(uid), false)
	if err != nil {
		t.Fatalf("imaptest: flags of %q UID %d: %v", mailbox, uid, err)
	}
	if !exists {
		t.Fatalf("imaptest: flags of %q UID %d: no such mailbox", mailbox, uid)
	}
	for _, m := range msgs {
		if m.uid == uid {
			return m.flags
		}
	}
	t.Fatalf("imaptest: flags of %q UID %d: no such message", mailbox, uid)
	return nil
}
