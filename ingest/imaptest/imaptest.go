// Package imaptest runs IMAP servers for tests, the way net/http/httptest
// runs HTTP servers: a real Dovecot daemon and go-imap's in-memory
// imapmemserver behind one interface (Server).
package imaptest

// Shared IMAP test harness: a real Dovecot daemon and an in-memory
// imapmemserver behind one interface (Server), plus its self-test
// TestIMAPTestServers.
//
// Both servers have two accounts on the same mailboxes: the worker's
// (Username/Password, subject to Options) and a private "harness" account
// that the helpers (Append, UIDs, Bodies, Flags, ResetUIDValidity) use over
// their own short-lived connections. The harness account is never read-only,
// is never counted by Connections, and its connections are not the worker's.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/ticketrouter/ticketrouter/internal/testproc"
)

// Server is an IMAP server the worker's tests run against.
type Server interface {
	Addr() string // "127.0.0.1:PORT", plaintext IMAP (no TLS)
	Username() string
	Password() string
	Caps() imap.CapSet // what it advertises after login
	// Append delivers a mail into mailbox (creating the mailbox if needed) and returns its UID.
	Append(t testing.TB, mailbox string, raw []byte) imap.UID
	// AppendStream delivers a mail of the given size whose bytes come from r, without holding it in memory.
	AppendStream(t testing.TB, mailbox string, size int64, r io.Reader) imap.UID
	// AppendAll delivers many mails over one connection (a backlog), returning their UIDs.
	AppendAll(t testing.TB, mailbox string, raws [][]byte) []imap.UID
	// UIDs returns the UIDs a mailbox holds now (empty if the mailbox does not exist), sorted, excluding messages flagged \Deleted.
	UIDs(t testing.TB, mailbox string) []imap.UID
	// Bodies returns the raw bytes of every message of a mailbox, in UID order.
	// Like UIDs it skips messages flagged \Deleted, so Bodies[i] belongs to UIDs[i].
	Bodies(t testing.TB, mailbox string) [][]byte
	// Flags returns the flags of the message with the given UID (\Recent left out).
	Flags(t testing.TB, mailbox string, uid imap.UID) []imap.Flag
	// KickConnections drops every client connection at once, as a crashed server or a cut network would.
	KickConnections(t testing.TB)
	// ResetUIDValidity gives mailbox a new UIDVALIDITY; its messages stay in it (with new UIDs:
	// memserver renumbers them from 1, Dovecot keeps their numbers), and the client connections
	// that have it selected are dropped at once.
	ResetUIDValidity(t testing.TB, mailbox string)
	// Connections returns how many IMAP client connections are open now (for checking reconnects; best effort).
	Connections() int
}

type Options struct {
	NoMove    bool     // do not advertise MOVE
	NoUIDPlus bool     // do not advertise UIDPLUS
	NoIdle    bool     // do not advertise IDLE
	ReadOnly  []string // folders that exist and are listed, but where COPY, MOVE and APPEND into them fail with NO
	// TLS (Dovecot only) adds STARTTLS on Addr and an implicit-TLS listener
	// on TLSAddr, with a self-signed certificate for 127.0.0.1.
	TLS bool
}

const (
	imapTestUser     = "support"
	imapTestPassword = "support-pw-1"
	imapHarnessUser  = "harness"
	imapHarnessPass  = "harness-pw-1"
	// imapHarnessOpTimeout bounds every helper call (dial, login, commands, logout).
	imapHarnessOpTimeout = 2 * time.Minute
)

// removedCaps lists the capabilities the options take away.
func (o Options) removedCaps() []imap.Cap {
	var l []imap.Cap
	if o.NoMove {
		l = append(l, imap.CapMove)
	}
	if o.NoUIDPlus {
		l = append(l, imap.CapUIDPlus)
	}
	if o.NoIdle {
		l = append(l, imap.CapIdle)
	}
	return l
}

func imaptestSameMailbox(a, b string) bool {
	if strings.EqualFold(a, "INBOX") {
		return strings.EqualFold(b, "INBOX")
	}
	return a == b
}

func (o Options) isReadOnly(mailbox string) bool {
	for _, ro := range o.ReadOnly {
		if imaptestSameMailbox(ro, mailbox) {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// Common part: everything done over the harness account's own connections.

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

// ---------------------------------------------------------------------------
// imapmemserver

type memServer struct {
	imapHarness
	opts   Options
	user   *imapmemserver.User
	server *imapserver.Server

	mu       sync.Mutex
	conns    map[*memServerConn]struct{}
	sessions map[*memServerSession]struct{}
	resets   int
}

// memServerConn is a server-side connection, tracked so that KickConnections and
// Connections can see it.
type memServerConn struct {
	net.Conn
	srv  *memServer
	once sync.Once
}

func (c *memServerConn) Close() error {
	c.once.Do(func() {
		c.srv.mu.Lock()
		delete(c.srv.conns, c)
		c.srv.mu.Unlock()
	})
	return c.Conn.Close()
}

type memServerListener struct {
	net.Listener
	srv *memServer
}

func (l *memServerListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if drop := l.srv.opts.removedCaps(); len(drop) > 0 {
		conn = newImaptestCapFilterConn(conn, drop)
	}
	mc := &memServerConn{Conn: conn, srv: l.srv}
	l.srv.mu.Lock()
	l.srv.conns[mc] = struct{}{}
	l.srv.mu.Unlock()
	return mc, nil
}

// memServerSession wraps the memserver's session: two accounts, read-only folders
// for the worker's account, and the selected mailbox tracked for ResetUIDValidity.
type memServerSession struct {
	*imapmemserver.UserSession // nil until logged in

	srv      *memServer
	conn     *imapserver.Conn
	admin    bool
	selected string // guarded by srv.mu
}

func (s *memServerSession) Login(username, password string) error {
	switch {
	case username == imapTestUser && password == imapTestPassword:
	case username == imapHarnessUser && password == imapHarnessPass:
		s.admin = true
	default:
		return imapserver.ErrAuthFailed
	}
	s.UserSession = imapmemserver.NewUserSession(s.srv.user)
	return nil
}

func (s *memServerSession) setSelected(name string) {
	s.srv.mu.Lock()
	s.selected = name
	s.srv.mu.Unlock()
}

func (s *memServerSession) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	data, err := s.UserSession.Select(name, options)
	if err != nil {
		s.setSelected("")
		return nil, err
	}
	s.setSelected(name)
	return data, nil
}

func (s *memServerSession) Unselect() error {
	s.setSelected("")
	return s.UserSession.Unselect()
}

func (s *memServerSession) Close() error {
	s.srv.mu.Lock()
	delete(s.srv.sessions, s)
	s.srv.mu.Unlock()
	return s.UserSession.Close()
}

func (s *memServerSession) denied(dest string) error {
	if s.admin || !s.srv.opts.isReadOnly(dest) {
		return nil
	}
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNoPerm, Text: "Permission denied (read-only folder)"}
}

func (s *memServerSession) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	if err := s.denied(dest); err != nil {
		return nil, err
	}
	return s.UserSession.Copy(numSet, dest)
}

func (s *memServerSession) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	if err := s.denied(dest); err != nil {
		return err
	}
	return s.UserSession.Move(w, numSet, dest)
}

func (s *memServerSession) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	if err := s.denied(mailbox); err != nil {
		return nil, err
	}
	return s.UserSession.Append(mailbox, r, options)
}

// Idle polls the session's update queue instead of using the memserver's own
// IDLE, which misses an update queued between its "+ idling" and the moment it
// starts listening (a mail appended right after the client entered IDLE would
// stay unannounced until the next change).
func (s *memServerSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := s.UserSession.Poll(w, true); err != nil {
			return err
		}
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
	}
}

// memServerLogger sends the server's error log to the test log while the test runs.
type memServerLogger struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (l *memServerLogger) Printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Logf("imapmemserver: "+format, args...)
	}
}

// StartMemServer starts an imapmemserver on 127.0.0.1 on a free port with the options applied.
func StartMemServer(t *testing.T, opts Options) Server {
	t.Helper()
	s := &memServer{
		imapHarness: imapHarness{harnessPorts: map[int]bool{}},
		opts:        opts,
		user:        imapmemserver.NewUser(imapTestUser, imapTestPassword),
		conns:       map[*memServerConn]struct{}{},
		sessions:    map[*memServerSession]struct{}{},
	}
	if err := s.user.Create("INBOX", nil); err != nil {
		t.Fatalf("imaptest: memserver: create INBOX: %v", err)
	}
	for _, name := range opts.ReadOnly {
		if err := s.user.Create(name, nil); err != nil {
			t.Fatalf("imaptest: memserver: create read-only folder %q: %v", name, err)
		}
	}
	// With IMAP4rev1 the memserver always advertises IDLE; MOVE and UIDPLUS
	// only when listed. NoIdle is done by the imaptestCapFilterConn on each connection.
	caps := imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapNamespace: {}}
	if !opts.NoMove {
		caps[imap.CapMove] = struct{}{}
	}
	if !opts.NoUIDPlus {
		caps[imap.CapUIDPlus] = struct{}{}
	}
	logger := &memServerLogger{t: t}
	s.server = imapserver.New(&imapserver.Options{
		NewSession: func(conn *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			sess := &memServerSession{srv: s, conn: conn}
			s.mu.Lock()
			s.sessions[sess] = struct{}{}
			s.mu.Unlock()
			return sess, nil, nil
		},
		Caps:         caps,
		Logger:       logger,
		InsecureAuth: true,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("imaptest: memserver: listen: %v", err)
	}
	s.addr = ln.Addr().String()
	served := make(chan struct{})
	go func() {
		defer close(served)
		s.server.Serve(&memServerListener{Listener: ln, srv: s})
	}()
	t.Cleanup(func() {
		s.server.Close()
		select {
		case <-served:
		case <-time.After(5 * time.Second):
		}
		logger.mu.Lock()
		logger.done = true
		logger.mu.Unlock()
	})
	if s.caps, err = s.loginCaps(); err != nil {
		t.Fatalf("imaptest: memserver: %v", err)
	}
	return s
}

func (s *memServer) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if ra, ok := c.RemoteAddr().(*net.TCPAddr); ok && s.isHarnessPort(ra.Port) {
			continue
		}
		n++
	}
	return n
}

func (s *memServer) KickConnections(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	conns := make([]*memServerConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// ResetUIDValidity rebuilds the mailbox under a fresh name (new UIDVALIDITY,
// UIDs from 1, same bodies, flags and dates), swaps it in, and closes the
// connections that had the old one selected (Dovecot drops those too).
func (s *memServer) ResetUIDValidity(t testing.TB, mailbox string) {
	t.Helper()
	hc := s.admin(t)
	msgs, exists, err := imaptestFetchAll(hc.Client, mailbox, nil, true)
	var oldValidity uint32
	if err == nil && exists {
		var st *imap.StatusData
		st, err = hc.Client.Status(mailbox, &imap.StatusOptions{UIDValidity: true}).Wait()
		if err == nil {
			oldValidity = st.UIDValidity
		}
	}
	hc.close()
	if err != nil {
		t.Fatalf("imaptest: memserver: reset UIDVALIDITY of %q: %v", mailbox, err)
	}
	if !exists {
		t.Fatalf("imaptest: memserver: reset UIDVALIDITY of %q: no such mailbox", mailbox)
	}

	s.mu.Lock()
	s.resets++
	tmp := fmt.Sprintf("%s.uidreset-%d", mailbox, s.resets)
	s.mu.Unlock()
	if err := s.user.Create(tmp, nil); err != nil {
		t.Fatalf("imaptest: memserver: reset UIDVALIDITY of %q: %v", mailbox, err)
	}
	for _, m := range msgs {
		_, err := s.user.Append(tmp, bytes.NewReader(m.body), &imap.AppendOptions{Flags: m.flags, Time: m.date})
		if err != nil {
			t.Fatalf("imaptest: memserver: reset UIDVALIDITY of %q: append: %v", mailbox, err)
		}
	}
	s.mu.Lock()
	err = s.user.Delete(mailbox)
	if err == nil {
		err = s.user.Rename(tmp, mailbox, nil)
	}
	var kick []*imapserver.Conn
	for sess := range s.sessions {
		if sess.selected != "" && imaptestSameMailbox(sess.selected, mailbox) {
			kick = append(kick, sess.conn)
		}
	}
	s.mu.Unlock()
	if err != nil {
		t.Fatalf("imaptest: memserver: reset UIDVALIDITY of %q: swap: %v", mailbox, err)
	}
	for _, c := range kick {
		c.NetConn().Close()
	}
	st, err := s.user.Status(mailbox, &imap.StatusOptions{UIDValidity: true})
	if err != nil || st.UIDValidity == oldValidity {
		t.Fatalf("imaptest: memserver: reset UIDVALIDITY of %q: still %d (err %v)", mailbox, oldValidity, err)
	}
}

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

// ---------------------------------------------------------------------------
// Dovecot

type Dovecot struct {
	imapHarness
	opts    Options
	dir     string
	cfg     string
	doveadm string
	port    int
	pid     int // the master's

	tlsPort   int
	clientTLS *tls.Config       // trusts the server's certificate
	proc      *testproc.Process // the master, in a process group with its children
	delivered atomic.Int64      // names files Deliver writes
}

// TLSAddr is the implicit-TLS listener (with Options.TLS).
func (s *Dovecot) TLSAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.tlsPort))
}

// ClientTLS returns a client configuration that trusts the server's certificate.
func (s *Dovecot) ClientTLS() *tls.Config { return s.clientTLS.Clone() }

// writeCertificate makes a self-signed certificate for 127.0.0.1 and
// localhost, writes it and its key for Dovecot, and keeps a client
// configuration that trusts it.
func (s *Dovecot) writeCertificate() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "imaptest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(s.dir, "cert.pem"), certPEM, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	s.clientTLS = &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
	return nil
}

func imaptestFindBinary(name string, fallbacks ...string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range fallbacks {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}

// dovecotDefaultCaps is what Dovecot 2.3 advertises after login with no
// imap_capability setting, read once per test binary with `doveadm exec imap`.
var (
	dovecotCapsOnce sync.Once
	dovecotCapsList []string
	dovecotCapsErr  error
)

func dovecotDefaultCaps(doveadm, cfg, home string) ([]string, error) {
	dovecotCapsOnce.Do(func() {
		cmd := exec.Command(doveadm, "-c", cfg, "exec", "imap")
		cmd.Env = append(os.Environ(), "USER="+imapHarnessUser, "HOME="+home)
		cmd.Stdin = strings.NewReader("a CAPABILITY\r\nb LOGOUT\r\n")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			dovecotCapsErr = err
			return
		}
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				dovecotCapsErr = fmt.Errorf("doveadm exec imap: %v: %s", err, stderr.String())
				return
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			dovecotCapsErr = errors.New("doveadm exec imap: timed out")
			return
		}
		for _, line := range strings.Split(stdout.String(), "\n") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "* CAPABILITY "); ok {
				dovecotCapsList = strings.Fields(rest)
			}
		}
		if len(dovecotCapsList) == 0 {
			dovecotCapsErr = fmt.Errorf("doveadm exec imap: no CAPABILITY line in %q", stdout.String())
		}
	})
	return dovecotCapsList, dovecotCapsErr
}

func imaptestNobodyIDs() (uid, gid int) {
	uid, gid = 65534, 65534
	if u, err := user.Lookup("nobody"); err == nil {
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	for _, name := range []string{"nogroup", "nobody"} {
		if g, err := user.LookupGroup(name); err == nil {
			gid, _ = strconv.Atoi(g.Gid)
			break
		}
	}
	return uid, gid
}

// dovecotACLName quotes a mailbox name for Dovecot's global ACL file.
func dovecotACLName(name string) (string, error) {
	if strings.ContainsAny(name, "\"\\*?\r\n") {
		return "", fmt.Errorf("read-only folder name %q is not supported (quotes, backslashes, wildcards)", name)
	}
	if strings.ContainsAny(name, " \t") {
		return `"` + name + `"`, nil
	}
	return name, nil
}

func (s *Dovecot) writeConfig(imapCapability string) error {
	d := s.dir
	ssl := "ssl = no"
	if s.opts.TLS {
		ssl = fmt.Sprintf("ssl = yes\nssl_cert = <%[1]s/cert.pem\nssl_key = <%[1]s/key.pem", d)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# ticketrouter test Dovecot (generated)
protocols = imap
listen = 127.0.0.1
base_dir = %[1]s/base
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
info_log_path = %[1]s/dovecot.log
%[4]s
disable_plaintext_auth = no
auth_mechanisms = plain login
# run everything as nobody: works as root without Debian's dovecot/dovenull users
default_login_user = nobody
default_internal_user = nobody
default_internal_group = %[2]s
mail_uid = nobody
mail_gid = %[2]s
first_valid_uid = 0
first_valid_gid = 0
# one mail store shared by the worker's account and the harness account;
# LAYOUT=fs allows dots in folder names
mail_location = maildir:%[1]s/mail/box:LAYOUT=fs
mailbox_idle_check_interval = 1 secs
# Tests need no durability: no fsync per message (as in the benchmarks of issue 6, the fair peer).
mail_fsync = never
namespace inbox {
  separator = /
  prefix =
  inbox = yes
}
passdb {
  driver = passwd-file
  args = %[1]s/passwd
}
userdb {
  driver = passwd-file
  args = %[1]s/passwd
}
protocol imap {
  mail_max_userip_connections = 1000
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[3]d
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = %[5]d
  }
  chroot =
}
service anvil {
  chroot =
}
`, d, s.groupName(), s.port, ssl, s.tlsPort)
	if imapCapability != "" {
		fmt.Fprintf(&b, "imap_capability = %s\n", imapCapability)
	}
	return os.WriteFile(s.cfg, []byte(b.String()), 0o644)
}

func (s *Dovecot) groupName() string {
	if _, err := user.LookupGroup("nogroup"); err == nil {
		return "nogroup"
	}
	return "nobody"
}

// Errors of NewDovecot that say the machine cannot run it, rather than
// that it failed: tests skip on them.
var (
	ErrNoDovecot = errors.New("Dovecot is not installed (no dovecot/doveadm binary; Debian: apt-get install dovecot-imapd)")
	ErrNotRoot   = errors.New("the Dovecot harness must run as root (it runs the daemon with mail_uid=nobody)")
)

// StartDovecot starts a real Dovecot daemon (NewDovecot) and stops it
// when the test ends. When Dovecot is not installed, or the test does not
// run as root, it calls t.Skip with a clear message.
func StartDovecot(t *testing.T, opts Options) Server {
	t.Helper()
	began := time.Now()
	s, err := NewDovecot(opts)
	if errors.Is(err, ErrNoDovecot) || errors.Is(err, ErrNotRoot) {
		t.Skipf("%v: skipping the Dovecot IMAP test", err)
	}
	if err != nil {
		t.Fatalf("imaptest: %v", err)
	}
	t.Cleanup(s.Close)
	t.Logf("imaptest: Dovecot ready on %s in %v (dir %s)", s.addr, time.Since(began).Round(time.Millisecond), s.dir)
	return s
}

// NewDovecot starts a real Dovecot daemon listening on 127.0.0.1 on a
// free port, with a throw-away directory, one passwd-file user and the
// options applied. Close stops it (by its PID) and removes the directory.
// Benchmarks use it outside tests.
func NewDovecot(opts Options) (_ *Dovecot, err error) {
	dovecot := imaptestFindBinary("dovecot", "/usr/sbin/dovecot")
	doveadm := imaptestFindBinary("doveadm", "/usr/bin/doveadm")
	if dovecot == "" || doveadm == "" {
		return nil, ErrNoDovecot
	}
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	// A short directory of our own: Dovecot's unix sockets live in base_dir and
	// their paths must stay under 108 bytes, which a test's TempDir does not promise.
	dir, err := os.MkdirTemp("", "imapt-")
	if err != nil {
		return nil, fmt.Errorf("dovecot: %w", err)
	}
	if len(dir) > 60 {
		os.RemoveAll(dir)
		if dir, err = os.MkdirTemp("/tmp", "imapt-"); err != nil {
			return nil, fmt.Errorf("dovecot: %w", err)
		}
	}
	s := &Dovecot{
		imapHarness: imapHarness{harnessPorts: map[int]bool{}},
		opts:        opts,
		dir:         dir,
		cfg:         filepath.Join(dir, "dovecot.conf"),
		doveadm:     doveadm,
	}
	defer func() {
		if err != nil {
			s.Close()
			err = fmt.Errorf("dovecot: %w", err)
		}
	}()
	uid, gid := imaptestNobodyIDs()
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	for _, sub := range []string{"base", "state", "mail", "home"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	for _, sub := range []string{"mail", "home"} {
		if err := os.Chown(filepath.Join(dir, sub), uid, gid); err != nil {
			return nil, err
		}
	}
	home := filepath.Join(dir, "home")
	userExtra := ""
	if len(opts.ReadOnly) > 0 {
		// Only the worker's account loads the ACL plugin; the harness account
		// (same mail store) keeps full rights so Append etc. work everywhere.
		var acl strings.Builder
		for _, name := range opts.ReadOnly {
			quoted, err := dovecotACLName(name)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(&acl, "%s user=%s lr\n", quoted, imapTestUser)
		}
		if err := os.WriteFile(filepath.Join(dir, "acl"), []byte(acl.String()), 0o644); err != nil {
			return nil, err
		}
		userExtra = fmt.Sprintf("userdb_mail_plugins=acl userdb_acl=vfile:%s/acl", dir)
	}
	passwd := fmt.Sprintf("%s:{PLAIN}%s:%d:%d::%s::%s\n%s:{PLAIN}%s:%d:%d::%s::\n",
		imapTestUser, imapTestPassword, uid, gid, home, userExtra,
		imapHarnessUser, imapHarnessPass, uid, gid, home)
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(passwd), 0o644); err != nil {
		return nil, err
	}

	imapCapability := ""
	if drop := opts.removedCaps(); len(drop) > 0 {
		// imap_capability without a leading '+' replaces Dovecot's whole list.
		if err := s.writeConfig(""); err != nil {
			return nil, err
		}
		defaults, err := dovecotDefaultCaps(doveadm, s.cfg, home)
		if err != nil {
			return nil, fmt.Errorf("reading the default capabilities: %w\n%s", err, testproc.Tail(filepath.Join(dir, "dovecot.log"), 20))
		}
		var kept []string
		for _, c := range defaults {
			if !slices.ContainsFunc(drop, func(d imap.Cap) bool { return strings.EqualFold(string(d), c) }) {
				kept = append(kept, c)
			}
		}
		imapCapability = strings.Join(kept, " ")
	}

	if opts.TLS {
		if err := s.writeCertificate(); err != nil {
			return nil, fmt.Errorf("certificate: %w", err)
		}
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		ports, err := testproc.FreePorts(2)
		if err != nil {
			return nil, err
		}
		s.port = ports[0]
		if opts.TLS {
			s.tlsPort = ports[1]
		}
		if err := s.writeConfig(imapCapability); err != nil {
			return nil, err
		}
		retry, err := s.startDaemon(dovecot)
		if err == nil {
			lastErr = nil
			break
		}
		lastErr = err
		if !retry {
			break
		}
	}
	if lastErr != nil {
		return nil, fmt.Errorf("%w\n--- tail of %s/dovecot.log:\n%s", lastErr, dir, testproc.Tail(filepath.Join(dir, "dovecot.log"), 30))
	}
	s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))

	// Read-only folders must exist before the worker looks.
	if len(opts.ReadOnly) > 0 {
		hc, err := s.dial(imapHarnessUser, imapHarnessPass)
		if err != nil {
			return nil, fmt.Errorf("harness connection to %s: %w", s.addr, err)
		}
		for _, name := range opts.ReadOnly {
			if err := imaptestEnsureMailbox(hc.Client, name); err != nil {
				hc.close()
				return nil, fmt.Errorf("create read-only folder %q: %w", name, err)
			}
		}
		hc.close()
	}
	if s.caps, err = s.loginCaps(); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, testproc.Tail(filepath.Join(dir, "dovecot.log"), 20))
	}
	return s, nil
}

// Deliver puts a mail into a mailbox (INBOX, or one that exists) the way
// a delivery agent does: a file written in the Maildir's tmp/ and renamed
// into new/, which Dovecot sees at its next look. It is much faster than
// APPEND: benchmarks fill mailboxes with it.
func (s *Dovecot) Deliver(mailbox string, raw []byte) error {
	dir := filepath.Join(s.dir, "mail", "box")
	if !strings.EqualFold(mailbox, "INBOX") {
		dir = filepath.Join(dir, filepath.FromSlash(mailbox))
	}
	uid, gid := imaptestNobodyIDs()
	for _, d := range []string{dir, filepath.Join(dir, "tmp"), filepath.Join(dir, "new"), filepath.Join(dir, "cur")} {
		if err := os.Mkdir(d, 0o700); err == nil {
			if err := os.Chown(d, uid, gid); err != nil {
				return fmt.Errorf("deliver to %s: %w", mailbox, err)
			}
		} else if !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("deliver to %s: %w", mailbox, err)
		}
	}
	name := fmt.Sprintf("%d.M%09dP%d.imaptest", time.Now().Unix(), s.delivered.Add(1), os.Getpid())
	tmp := filepath.Join(dir, "tmp", name)
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return fmt.Errorf("deliver to %s: %w", mailbox, err)
	}
	if err := os.Chown(tmp, uid, gid); err != nil {
		return fmt.Errorf("deliver to %s: %w", mailbox, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "new", name)); err != nil {
		return fmt.Errorf("deliver to %s: %w", mailbox, err)
	}
	return nil
}

// Close stops the daemon and all its processes and removes its directory.
func (s *Dovecot) Close() {
	if s.proc != nil {
		s.proc.Kill()
		s.proc = nil
	}
	os.RemoveAll(s.dir)
}

// startDaemon runs `dovecot -F` and waits until it greets on s.port. retry
// reports a failure that another port may cure (the port was taken).
//
// A graceful stop (SIGTERM) costs over a second: Dovecot's master sleeps
// one second for its log process. The directory is thrown away, so Close
// kills the master and its children (all in the master's process group) at
// once. Only when the test binary dies does the master get SIGTERM, and
// then it stops its children itself.
func (s *Dovecot) startDaemon(dovecot string) (retry bool, err error) {
	stderrPath := filepath.Join(s.dir, "dovecot.stderr")
	cmd := exec.Command(dovecot, "-F", "-c", s.cfg)
	cmd.Env = append(os.Environ(), "HOME="+filepath.Join(s.dir, "home"))
	p, err := testproc.Start(cmd, testproc.Options{Name: "dovecot", Log: stderrPath, DeathSignal: syscall.SIGTERM})
	if err != nil {
		return false, err
	}

	deadline := time.Now().Add(20 * time.Second)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	for {
		select {
		case <-p.Done():
			msg := strings.TrimSpace(testproc.Tail(stderrPath, 10))
			log := testproc.Tail(filepath.Join(s.dir, "dovecot.log"), 30)
			inUse := strings.Contains(msg+log, "in use")
			return inUse, fmt.Errorf("dovecot exited at start (%s): %s", p.ProcessState(), msg)
		default:
		}
		if ok := dovecotGreets(addr); ok {
			break
		}
		if time.Now().After(deadline) {
			p.Kill()
			return false, fmt.Errorf("dovecot did not greet on %s within 20 s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.pid = p.Pid()
	s.proc = p
	return false, nil
}

func dovecotGreets(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "* OK") && strings.Contains(line, "Dovecot")
}

// dovecotWaitGone waits up to timeout until none of pids is alive.
func dovecotWaitGone(pids []int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return testproc.WaitGone(ctx, pids...)
}

// KickConnections SIGKILLs every imap and imap-login process of this Dovecot:
// the kernel closes their sockets at once, with no BYE, like a crash.
func (s *Dovecot) KickConnections(t testing.TB) {
	t.Helper()
	pids := testproc.Children(s.pid, "imap", "imap-login")
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if err := dovecotWaitGone(pids, 5*time.Second); err != nil {
		t.Fatalf("imaptest: dovecot: kicked processes still alive after 5 s: %v", err)
	}
}

// FreezeConnections stops (SIGSTOP) the IMAP processes serving the
// current connections: their sockets stay open but nothing answers, as
// with a silently dead network path. New connections get new processes.
// The frozen ones are killed when the test ends.
func (s *Dovecot) FreezeConnections(t testing.TB) {
	t.Helper()
	pids := testproc.Children(s.pid, "imap")
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGSTOP)
	}
	t.Cleanup(func() {
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

func (s *Dovecot) doveadmRun(args ...string) (string, error) {
	cmd := exec.Command(s.doveadm, append([]string{"-c", s.cfg}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+filepath.Join(s.dir, "home"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		return out.String(), errors.New("timed out after 30 s")
	}
}

// ResetUIDValidity sets a new UIDVALIDITY with `doveadm mailbox update`.
// The messages keep their UID numbers (Dovecot cannot renumber them). Sessions
// with the mailbox selected are dropped (see below); one that slips through
// gets Dovecot's own BYE at its next command ("IMAP session state is
// inconsistent, please relogin").
func (s *Dovecot) ResetUIDValidity(t testing.TB, mailbox string) {
	t.Helper()
	status := func() uint32 {
		hc := s.admin(t)
		defer hc.close()
		st, err := hc.Client.Status(mailbox, &imap.StatusOptions{UIDValidity: true}).Wait()
		if err != nil {
			t.Fatalf("imaptest: dovecot: status of %q: %v", mailbox, err)
		}
		return st.UIDValidity
	}
	old := status()
	next := old + 1
	if next == 0 {
		next = 1
	}
	out, err := s.doveadmRun("mailbox", "update", "--uid-validity", strconv.FormatUint(uint64(next), 10), "-u", imapHarnessUser, mailbox)
	if err != nil {
		t.Fatalf("imaptest: dovecot: doveadm mailbox update %q: %v: %s", mailbox, err, out)
	}
	// Left alone, Dovecot drops such a session only at its next command (an
	// idling one never wakes up); drop them now, as the memserver does: kill
	// the imap processes that hold the mailbox's index open.
	dir := filepath.Join(s.dir, "mail", "box")
	if !strings.EqualFold(mailbox, "INBOX") {
		dir = filepath.Join(dir, filepath.FromSlash(mailbox))
	}
	var stale []int
	for _, pid := range testproc.Children(s.pid, "imap") {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if err == nil && filepath.Dir(target) == dir && strings.HasPrefix(filepath.Base(target), "dovecot.index") {
				stale = append(stale, pid)
				break
			}
		}
	}
	for _, pid := range stale {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	dovecotWaitGone(stale, 5*time.Second)
	if got := status(); got != next {
		t.Fatalf("imaptest: dovecot: UIDVALIDITY of %q is %d after update to %d (was %d)", mailbox, got, next, old)
	}
}

// Connections counts the established TCP connections to Dovecot's port
// (from /proc/net/tcp), leaving out the harness's own.
func (s *Dovecot) Connections() int {
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return -1
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != "01" { // 01 = ESTABLISHED
			continue
		}
		lport, ok1 := imaptestHexPort(f[1])
		rport, ok2 := imaptestHexPort(f[2])
		if ok1 && ok2 && lport == s.port && !s.isHarnessPort(rport) {
			n++
		}
	}
	return n
}

func imaptestHexPort(addr string) (int, bool) {
	_, p, ok := strings.Cut(addr, ":")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(p, 16, 16)
	return int(v), err == nil
}
