package imaptest

// The in-memory server: go-imap's imapmemserver with the two accounts,
// read-only folders, tracked connections (Connections, KickConnections)
// and a UIDVALIDITY reset that rebuilds the mailbox.

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

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
