package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/ticketrouter/ticketrouter/ingest/imaptest"
)

// imapConn is a go-imap client whose every operation is bounded by a
// deadline on its socket.
type imapConn struct {
	c    *imapclient.Client
	conn net.Conn
}

// dialIMAP connects to addr in plaintext and logs in, within timeout.
func dialIMAP(addr, user, pass string, timeout time.Duration) (*imapConn, error) {
	conn, err := net.DialTimeout("tcp", addr, min(timeout, 10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("imap connect %s: %w", addr, err)
	}
	conn.SetDeadline(time.Now().Add(timeout))
	ic := &imapConn{c: imapclient.New(conn, nil), conn: conn}
	if err := ic.c.WaitGreeting(); err != nil {
		ic.c.Close()
		return nil, fmt.Errorf("imap greeting of %s: %w", addr, err)
	}
	if err := ic.c.Login(user, pass).Wait(); err != nil {
		ic.c.Close()
		return nil, fmt.Errorf("imap login as %s on %s: %w", user, addr, err)
	}
	return ic, nil
}

// within sets the deadline of the next operations.
func (ic *imapConn) within(d time.Duration) { ic.conn.SetDeadline(time.Now().Add(d)) }

// close logs out (bounded) and closes.
func (ic *imapConn) close() {
	ic.within(2 * time.Second)
	ic.c.Logout().Wait()
	ic.c.Close()
}

// messages returns how many messages a mailbox holds (0 when it does not
// exist yet), by STATUS.
func (ic *imapConn) messages(mailbox string) (int, error) {
	ic.within(30 * time.Second)
	st, err := ic.c.Status(mailbox, &imap.StatusOptions{NumMessages: true}).Wait()
	var imapErr *imap.Error
	if errors.As(err, &imapErr) && imapErr.Type == imap.StatusResponseTypeNo &&
		(imapErr.Code == imap.ResponseCodeNonExistent || strings.Contains(imapErr.Text, "doesn't exist")) {
		return 0, nil // Dovecot 2.3 says "NO Mailbox doesn't exist", without [NONEXISTENT]
	}
	if err != nil {
		return 0, fmt.Errorf("imap status %s: %w", mailbox, err)
	}
	if st.NumMessages == nil {
		return 0, fmt.Errorf("imap status %s: no MESSAGES in the answer", mailbox)
	}
	return int(*st.NumMessages), nil
}

// seedDovecot starts a fresh Dovecot and, when mb is not nil, delivers
// every mail of the mailbox into its INBOX. Then it warms Dovecot's index
// the way a first client would (SELECT, and UID, RFC822.SIZE, FLAGS and
// INTERNALDATE of every message: what ticketrouter, mbsync and the raw
// fetch ask before reading bodies), so that no tool pays for indexing,
// and checks that INBOX holds exactly the mailbox. The caller closes the
// Dovecot.
func (b *bench) seedDovecot(ctx context.Context, mb *mailbox) (_ *imaptest.Dovecot, err error) {
	began := time.Now()
	d, err := imaptest.NewDovecot(imaptest.Options{})
	if err != nil {
		return nil, fmt.Errorf("start dovecot: %w", err)
	}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	want, wantBytes := 0, int64(0)
	if mb != nil {
		for i, path := range mb.files {
			if i%1000 == 0 && ctx.Err() != nil {
				return nil, fmt.Errorf("seed dovecot: %w", ctx.Err())
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("seed dovecot: %w", err)
			}
			if err := d.Deliver("INBOX", raw); err != nil {
				return nil, fmt.Errorf("seed dovecot: %w", err)
			}
		}
		want, wantBytes = len(mb.files), mb.bytes
	}
	delivered := time.Since(began)
	timeout := max(2*time.Minute, time.Duration(want)*5*time.Millisecond)
	ic, err := dialIMAP(d.Addr(), d.Username(), d.Password(), timeout)
	if err != nil {
		return nil, fmt.Errorf("warm dovecot: %w", err)
	}
	defer ic.close()
	ic.within(timeout)
	sel, err := ic.c.Select("INBOX", nil).Wait()
	if err != nil {
		return nil, fmt.Errorf("warm dovecot: select INBOX: %w", err)
	}
	if int(sel.NumMessages) != want {
		return nil, fmt.Errorf("warm dovecot: INBOX holds %d messages after delivering %d", sel.NumMessages, want)
	}
	count, size := 0, int64(0)
	if want > 0 {
		cmd := ic.c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}},
			&imap.FetchOptions{UID: true, RFC822Size: true, Flags: true, InternalDate: true})
		for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
			buf, err := msg.Collect()
			if err != nil {
				cmd.Close()
				return nil, fmt.Errorf("warm dovecot: fetch: %w", err)
			}
			count++
			size += buf.RFC822Size
		}
		if err := cmd.Close(); err != nil {
			return nil, fmt.Errorf("warm dovecot: fetch: %w", err)
		}
	}
	if count != want || size != wantBytes {
		return nil, fmt.Errorf("warm dovecot: INBOX has %d messages of %d bytes, want %d of %d", count, size, want, wantBytes)
	}
	if err := ic.c.Unselect().Wait(); err != nil {
		return nil, fmt.Errorf("warm dovecot: unselect: %w", err)
	}
	b.logf("dovecot on %s: %d mails delivered in %v, index warmed in %v", d.Addr(), want,
		delivered.Round(time.Millisecond), (time.Since(began) - delivered).Round(time.Millisecond))
	return d, nil
}
