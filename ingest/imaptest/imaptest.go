// Package imaptest runs IMAP servers for tests, the way net/http/httptest
// runs HTTP servers: a real Dovecot daemon and go-imap's in-memory
// imapmemserver behind one interface (Server).
//
// Both servers have two accounts on the same mailboxes: the worker's
// (Username/Password, subject to Options) and a private "harness" account
// that the helpers (Append, UIDs, Bodies, Flags, ResetUIDValidity) use over
// their own short-lived connections. The harness account is never read-only,
// is never counted by Connections, and its connections are not the worker's.
//
// The files: this one, the interface and its options; harness.go, the
// helpers over the harness account that both servers share; memserver.go,
// the in-memory server; capfilter.go, the connection filter that hides
// capabilities from the memserver's clients; dovecot.go, starting a Dovecot
// daemon (its directory, users and capabilities) and delivering to it;
// dovecot_config.go, its configuration and certificate; dovecot_proc.go,
// its processes (started with internal/testproc) and what tests do to them;
// dovecot_lmtp.go, Dovecot as the mail host behind an MTA (Options.LMTP:
// mail accounts, LMTP and SASL listeners; internal/mtatest starts the MTA).
package imaptest

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
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

// Options take features away from a server (capabilities, rights on
// folders) or add TLS, so that the worker is tested against servers that
// lack or have them.
type Options struct {
	NoMove    bool     // do not advertise MOVE
	NoUIDPlus bool     // do not advertise UIDPLUS
	NoIdle    bool     // do not advertise IDLE
	ReadOnly  []string // folders that exist and are listed, but where COPY, MOVE and APPEND into them fail with NO
	// TLS (Dovecot only) adds STARTTLS on Addr and an implicit-TLS listener
	// on TLSAddr, with a self-signed certificate for 127.0.0.1.
	TLS bool
	// LMTP (Dovecot only) makes the server a mail host for an MTA: an LMTP
	// listener (LMTPAddr) delivering into the INBOX of the mail accounts,
	// and Dovecot's SASL service on AuthAddr for the MTA's AUTH. The
	// accounts are the worker's own address (Address: its INBOX is the
	// one Username reads) and each of Accounts; LMTP refuses any other
	// recipient (550 5.1.1), so that the MTA bounces mail to it.
	LMTP bool
	// Address is the worker's mailbox's mail address (with LMTP);
	// DefaultAddress when empty.
	Address string
	// Accounts are the other mail addresses (with LMTP), each an account
	// of its own with its own mailboxes, logging in with the address and
	// AccountPassword. Lower case: Dovecot looks users up in lower case.
	Accounts []string
}

// DefaultAddress is the worker's mailbox's address when Options.Address is empty.
const DefaultAddress = "support@ca.example"

// AccountPassword is the password of every one of Options.Accounts (IMAP
// and SASL): the accounts stand for mail users outside the worker, whose
// passwords tests need not tell apart.
const AccountPassword = "account-pw-1"

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
