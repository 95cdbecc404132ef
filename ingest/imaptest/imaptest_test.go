package imaptest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// The self-test: every helper of Server, against both servers.

func TestIMAPTestServers(t *testing.T) {
	servers := []struct {
		name  string
		start func(*testing.T, Options) Server
	}{
		{"memserver", StartMemServer},
		{"dovecot", StartDovecot},
	}
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			t.Parallel()
			testIMAPTestServer(t, srv.start)
		})
	}
}

func imaptestMail(subject string) []byte {
	return []byte("From: Alice <alice@example.com>\r\nTo: support@example.com\r\nSubject: " + subject +
		"\r\nMessage-Id: <" + strings.ReplaceAll(subject, " ", ".") + "@example.com>\r\n\r\nHello,\r\nthis is " + subject + ".\r\n")
}

// imaptestClient logs in as the worker would.
func imaptestClient(t *testing.T, s Server, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(s.Addr(), opts)
	if err != nil {
		t.Fatalf("dial %s: %v", s.Addr(), err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(s.Username(), s.Password()).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	return c
}

func imaptestHasFlag(flags []imap.Flag, want imap.Flag) bool {
	return slices.ContainsFunc(flags, func(f imap.Flag) bool { return strings.EqualFold(string(f), string(want)) })
}

func imaptestWaitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// imaptestStream is a deterministic mail of n bytes produced on the fly.
type imaptestStream struct {
	n, off int64
	header []byte
}

func newImaptestStream(n int64) *imaptestStream {
	return &imaptestStream{n: n, header: []byte("From: big@example.com\r\nSubject: big\r\n\r\n")}
}

func (m *imaptestStream) Read(p []byte) (int, error) {
	if m.off >= m.n {
		return 0, io.EOF
	}
	i := 0
	for ; i < len(p) && m.off < m.n; i++ {
		switch {
		case m.off < int64(len(m.header)):
			p[i] = m.header[m.off]
		case m.off == m.n-2 || (m.off-int64(len(m.header)))%78 == 76:
			p[i] = '\r'
		case m.off == m.n-1 || (m.off-int64(len(m.header)))%78 == 77:
			p[i] = '\n'
		default:
			p[i] = 'a' + byte(m.off%26)
		}
		m.off++
	}
	return i, nil
}

func testIMAPTestServer(t *testing.T, start func(*testing.T, Options) Server) {
	t.Run("basics", func(t *testing.T) {
		t.Parallel()
		s := start(t, Options{})
		for _, c := range []imap.Cap{imap.CapMove, imap.CapUIDPlus, imap.CapIdle} {
			if !s.Caps().Has(c) {
				t.Errorf("default caps lack %s: %v", c, s.Caps())
			}
		}
		if !strings.HasPrefix(s.Addr(), "127.0.0.1:") {
			t.Errorf("Addr = %q", s.Addr())
		}
		if got := s.UIDs(t, "Nope"); len(got) != 0 {
			t.Errorf("UIDs of a missing mailbox = %v", got)
		}
		if got := s.Bodies(t, "INBOX"); len(got) != 0 {
			t.Errorf("Bodies of empty INBOX = %d", len(got))
		}
		m1, m2, m3 := imaptestMail("first mail"), imaptestMail("second mail"), imaptestMail("nested mail")
		u1 := s.Append(t, "INBOX", m1)
		u2 := s.Append(t, "INBOX", m2)
		u3 := s.Append(t, "Support/Done", m3)
		if u1 == 0 || u2 <= u1 || u3 == 0 {
			t.Fatalf("Append UIDs: %d %d %d", u1, u2, u3)
		}
		if got := s.UIDs(t, "INBOX"); !slices.Equal(got, []imap.UID{u1, u2}) {
			t.Fatalf("UIDs(INBOX) = %v, want [%d %d]", got, u1, u2)
		}
		if got := s.UIDs(t, "Support/Done"); !slices.Equal(got, []imap.UID{u3}) {
			t.Fatalf("UIDs(Support/Done) = %v", got)
		}
		if got := s.Bodies(t, "INBOX"); len(got) != 2 || !bytes.Equal(got[0], m1) || !bytes.Equal(got[1], m2) {
			t.Fatalf("Bodies(INBOX) = %q", got)
		}
		if f := s.Flags(t, "INBOX", u1); imaptestHasFlag(f, imap.FlagSeen) || imaptestHasFlag(f, imap.FlagDeleted) {
			t.Fatalf("fresh mail has flags %v", f)
		}

		// Flags set by the worker's own connection show up; \Deleted hides a message.
		c := imaptestClient(t, s, nil)
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		err := c.Store(imap.UIDSetNum(u1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen, "$Ticketed"}}, nil).Close()
		if err != nil {
			t.Fatal(err)
		}
		if f := s.Flags(t, "INBOX", u1); !imaptestHasFlag(f, imap.FlagSeen) || !imaptestHasFlag(f, "$Ticketed") {
			t.Fatalf("Flags after STORE = %v", f)
		}
		if err := c.Store(imap.UIDSetNum(u2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
			t.Fatal(err)
		}
		if got := s.UIDs(t, "INBOX"); !slices.Equal(got, []imap.UID{u1}) {
			t.Fatalf("UIDs after \\Deleted = %v", got)
		}
		if got := s.Bodies(t, "INBOX"); len(got) != 1 || !bytes.Equal(got[0], m1) {
			t.Fatalf("Bodies after \\Deleted = %d", len(got))
		}
		if f := s.Flags(t, "INBOX", u2); !imaptestHasFlag(f, imap.FlagDeleted) {
			t.Fatalf("Flags of deleted = %v", f)
		}
		// The helpers left the worker's view alone: Bodies did not set \Seen.
		if f := s.Flags(t, "Support/Done", u3); imaptestHasFlag(f, imap.FlagSeen) {
			t.Fatalf("Bodies set \\Seen: %v", f)
		}

		// A streamed mail (8 MiB, never in memory on the way in).
		const big = 8 << 20
		ub := s.AppendStream(t, "Big", big, newImaptestStream(big))
		want := sha256.New()
		io.Copy(want, newImaptestStream(big))
		bodies := s.Bodies(t, "Big")
		if got := s.UIDs(t, "Big"); !slices.Equal(got, []imap.UID{ub}) || len(bodies) != 1 ||
			sha256.Sum256(bodies[0]) != [32]byte(want.Sum(nil)) {
			t.Fatalf("streamed mail: UIDs %v, %d bodies", got, len(bodies))
		}

		// IDLE wakes up on Append.
		newMail := make(chan uint32, 16)
		ic := imaptestClient(t, s, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					select {
					case newMail <- *d.NumMessages:
					default:
					}
				}
			},
		}})
		if _, err := ic.Select("Support/Done", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		idle, err := ic.Idle()
		if err != nil {
			t.Fatal(err)
		}
		s.Append(t, "Support/Done", imaptestMail("wake up"))
		select {
		case n := <-newMail:
			if n != 2 {
				t.Errorf("IDLE reported %d messages, want 2", n)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("IDLE did not report the appended mail within 5 s")
		}
		if err := idle.Close(); err != nil {
			t.Fatal(err)
		}
		idle.Wait()

		// Connections: the two worker clients, not the harness's own.
		if n := s.Connections(); n != 2 {
			t.Errorf("Connections = %d, want 2", n)
		}
		c.Logout().Wait()
		c.Close()
		ic.Close()
		imaptestWaitFor(t, "Connections() == 0", 5*time.Second, func() bool { return s.Connections() == 0 })
	})

	t.Run("kick", func(t *testing.T) {
		t.Parallel()
		s := start(t, Options{})
		s.Append(t, "INBOX", imaptestMail("kick"))
		selected := imaptestClient(t, s, nil)
		if _, err := selected.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		idling := imaptestClient(t, s, nil)
		if _, err := idling.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		idle, err := idling.Idle()
		if err != nil {
			t.Fatal(err)
		}
		preLogin, err := imapclient.DialInsecure(s.Addr(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer preLogin.Close()
		if err := preLogin.WaitGreeting(); err != nil {
			t.Fatal(err)
		}
		imaptestWaitFor(t, "3 connections", 5*time.Second, func() bool { return s.Connections() == 3 })
		began := time.Now()
		s.KickConnections(t)
		for name, c := range map[string]*imapclient.Client{"selected": selected, "idling": idling, "pre-login": preLogin} {
			select {
			case <-c.Closed():
			case <-time.After(5 * time.Second):
				t.Errorf("%s client not closed 5 s after KickConnections", name)
			}
		}
		t.Logf("clients saw the kick within %v", time.Since(began))
		if err := idle.Wait(); err == nil {
			t.Errorf("IDLE ended without error after a kick")
		}
		imaptestWaitFor(t, "Connections() == 0", 5*time.Second, func() bool { return s.Connections() == 0 })
		// The server still serves.
		c := imaptestClient(t, s, nil)
		if sel, err := c.Select("INBOX", nil).Wait(); err != nil || sel.NumMessages != 1 {
			t.Fatalf("after kick: select %v, %v", sel, err)
		}
	})

	t.Run("uidvalidity", func(t *testing.T) {
		t.Parallel()
		s := start(t, Options{})
		for _, mbox := range []string{"INBOX", "Queue/Billing"} {
			raw1, raw2 := imaptestMail(mbox+" one"), imaptestMail(mbox+" two")
			u1 := s.Append(t, mbox, raw1)
			s.Append(t, mbox, raw2)
			c := imaptestClient(t, s, nil)
			before, err := c.Select(mbox, nil).Wait()
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Store(imap.UIDSetNum(u1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close(); err != nil {
				t.Fatal(err)
			}
			ic := imaptestClient(t, s, nil)
			if _, err := ic.Select(mbox, nil).Wait(); err != nil {
				t.Fatal(err)
			}
			idle, err := ic.Idle()
			if err != nil {
				t.Fatal(err)
			}
			began := time.Now()
			s.ResetUIDValidity(t, mbox)
			// Stale sessions are dropped: an idling one by itself, a quiet one at its next command.
			select {
			case <-ic.Closed():
				t.Logf("%s: idling session dropped %v after the reset began", mbox, time.Since(began))
			case <-time.After(5 * time.Second):
				t.Errorf("%s: idling session survived the UIDVALIDITY change", mbox)
				ic.Close()
			}
			idle.Wait()
			noopErr := c.Noop().Wait()
			select {
			case <-c.Closed():
			case <-time.After(5 * time.Second):
				t.Errorf("%s: session with the mailbox selected survived the UIDVALIDITY change (NOOP: %v)", mbox, noopErr)
			}
			c2 := imaptestClient(t, s, nil)
			after, err := c2.Select(mbox, nil).Wait()
			if err != nil {
				t.Fatal(err)
			}
			if after.UIDValidity == before.UIDValidity || after.NumMessages != 2 {
				t.Fatalf("%s: UIDVALIDITY %d -> %d, messages %d -> %d", mbox, before.UIDValidity, after.UIDValidity, before.NumMessages, after.NumMessages)
			}
			uids := s.UIDs(t, mbox)
			if bodies := s.Bodies(t, mbox); len(uids) != 2 || len(bodies) != 2 || !bytes.Equal(bodies[0], raw1) || !bytes.Equal(bodies[1], raw2) {
				t.Fatalf("%s after reset: UIDs %v, %d bodies", mbox, uids, len(bodies))
			}
			if f := s.Flags(t, mbox, uids[0]); !imaptestHasFlag(f, imap.FlagSeen) {
				t.Errorf("%s: flags lost in the reset: %v", mbox, f)
			}
			t.Logf("%s: UIDVALIDITY %d -> %d, UIDs now %v", mbox, before.UIDValidity, after.UIDValidity, uids)
			c2.Close()
		}
	})

	capCases := []struct {
		name   string
		opts   Options
		absent []imap.Cap
	}{
		{"NoMove", Options{NoMove: true}, []imap.Cap{imap.CapMove}},
		{"NoUIDPlus", Options{NoUIDPlus: true}, []imap.Cap{imap.CapUIDPlus}},
		{"NoIdle", Options{NoIdle: true}, []imap.Cap{imap.CapIdle}},
		{"NoAll", Options{NoMove: true, NoUIDPlus: true, NoIdle: true}, []imap.Cap{imap.CapMove, imap.CapUIDPlus, imap.CapIdle}},
	}
	for _, tc := range capCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := start(t, tc.opts)
			c := imaptestClient(t, s, nil)
			seen := c.Caps() // as a fresh client sees it after login
			for _, cs := range []imap.CapSet{s.Caps(), seen} {
				for _, cp := range []imap.Cap{imap.CapMove, imap.CapUIDPlus, imap.CapIdle} {
					if want := !slices.Contains(tc.absent, cp); cs.Has(cp) != want {
						t.Errorf("caps %v: has %s = %v, want %v", cs, cp, cs.Has(cp), want)
					}
				}
			}
			// Mail still flows.
			u := s.Append(t, "INBOX", imaptestMail(tc.name))
			if got := s.UIDs(t, "INBOX"); !slices.Equal(got, []imap.UID{u}) {
				t.Fatalf("UIDs = %v", got)
			}
		})
	}

	t.Run("ReadOnly", func(t *testing.T) {
		t.Parallel()
		ro := []string{"Archive/Locked", "Frozen Folder"}
		s := start(t, Options{ReadOnly: ro})
		c := imaptestClient(t, s, nil)
		list, err := c.List("", "*", nil).Collect()
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range ro {
			if !slices.ContainsFunc(list, func(l *imap.ListData) bool { return l.Mailbox == name }) {
				t.Errorf("read-only folder %q not listed", name)
			}
		}
		raw := imaptestMail("keep me")
		u := s.Append(t, "INBOX", raw)
		s.Append(t, "Open", imaptestMail("make Open exist"))
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		isNo := func(err error) bool {
			var ie *imap.Error
			return errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo
		}
		for _, name := range ro {
			if _, err := c.Copy(imap.UIDSetNum(u), name).Wait(); !isNo(err) {
				t.Errorf("COPY into %q: %v, want NO", name, err)
			}
			if _, err := c.Move(imap.UIDSetNum(u), name).Wait(); !isNo(err) {
				t.Errorf("MOVE into %q: %v, want NO", name, err)
			}
			cmd := c.Append(name, int64(len(raw)), nil)
			cmd.Write(raw)
			cmd.Close()
			if _, err := cmd.Wait(); !isNo(err) {
				t.Errorf("APPEND into %q: %v, want NO", name, err)
			}
			if got := s.UIDs(t, name); len(got) != 0 {
				t.Errorf("read-only %q got messages %v", name, got)
			}
		}
		// The source message is untouched.
		if got := s.UIDs(t, "INBOX"); !slices.Equal(got, []imap.UID{u}) {
			t.Fatalf("INBOX UIDs after refused COPY/MOVE = %v", got)
		}
		if f := s.Flags(t, "INBOX", u); imaptestHasFlag(f, imap.FlagDeleted) {
			t.Fatalf("source flagged %v", f)
		}
		if b := s.Bodies(t, "INBOX"); len(b) != 1 || !bytes.Equal(b[0], raw) {
			t.Fatal("source body changed")
		}
		// Other folders stay writable, and the harness can still deliver into read-only ones.
		if _, err := c.Copy(imap.UIDSetNum(u), "Open").Wait(); err != nil {
			t.Fatalf("COPY into a normal folder: %v", err)
		}
		if got := s.UIDs(t, "Open"); len(got) != 2 {
			t.Fatalf("Open UIDs = %v", got)
		}
		ru := s.Append(t, ro[0], imaptestMail("harness delivery"))
		if got := s.UIDs(t, ro[0]); !slices.Equal(got, []imap.UID{ru}) {
			t.Fatalf("harness Append into read-only folder: UIDs %v", got)
		}
	})
}
