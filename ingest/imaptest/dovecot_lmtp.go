package imaptest

// Dovecot as a mail host (Options.LMTP): the mail accounts in the passwd
// file, the LMTP and SASL listeners an MTA delivers to and authenticates
// against, and reading an account's mailboxes.

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Address returns the worker's mailbox's mail address (Options.Address,
// or DefaultAddress): mail delivered to it over LMTP lands in the INBOX
// that Username reads.
func (s *Dovecot) Address() string {
	if s.opts.Address == "" {
		return DefaultAddress
	}
	return strings.ToLower(s.opts.Address)
}

// LMTPAddr is the LMTP listener (with Options.LMTP), "127.0.0.1:PORT",
// where an MTA delivers mail for Address and the Accounts.
func (s *Dovecot) LMTPAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.lmtpPort))
}

// AuthAddr is Dovecot's SASL service (with Options.LMTP), "127.0.0.1:PORT",
// for an MTA's AUTH (Postfix: smtpd_sasl_type = dovecot, smtpd_sasl_path =
// inet:AuthAddr). Username or Address with Password, and each account
// with AccountPassword, log in.
func (s *Dovecot) AuthAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.authPort))
}

// mailAccounts returns the passwd-file lines of the mail accounts: the
// worker's address shares the worker's mail store; every other account
// has its own under dir/users.
func (s *Dovecot) mailAccounts(uid, gid int) (string, error) {
	users := filepath.Join(s.dir, "users")
	if err := os.Mkdir(users, 0o755); err != nil {
		return "", err
	}
	if err := os.Chown(users, uid, gid); err != nil {
		return "", err
	}
	seen := map[string]bool{}
	var b strings.Builder
	for i, addr := range append([]string{s.Address()}, s.opts.Accounts...) {
		addr = strings.ToLower(addr)
		if err := checkAccountAddress(addr); err != nil {
			return "", err
		}
		if seen[addr] {
			return "", fmt.Errorf("mail account %q given twice", addr)
		}
		seen[addr] = true
		if i == 0 {
			fmt.Fprintf(&b, "%s:{PLAIN}%s:%d:%d::%s::\n", addr, imapTestPassword, uid, gid, filepath.Join(s.dir, "home"))
			continue
		}
		home := filepath.Join(users, addr)
		// The INBOX made now, not by whichever of LMTP and IMAP comes
		// first: Dovecot answers the other "Mailbox already exists" when
		// both create it at once.
		for _, d := range []string{home, filepath.Join(home, "mail"), filepath.Join(home, "mail", "cur"), filepath.Join(home, "mail", "new"), filepath.Join(home, "mail", "tmp")} {
			if err := os.Mkdir(d, 0o700); err != nil {
				return "", err
			}
			if err := os.Chown(d, uid, gid); err != nil {
				return "", err
			}
		}
		fmt.Fprintf(&b, "%s:{PLAIN}%s:%d:%d::%s::userdb_mail=maildir:%s/mail:LAYOUT=fs\n", addr, AccountPassword, uid, gid, home, home)
	}
	return b.String(), nil
}

// checkAccountAddress refuses what the passwd file or a directory name
// cannot hold.
func checkAccountAddress(addr string) error {
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || local == "" || domain == "" || strings.ContainsAny(addr, ":/\\ \t\r\n\"%") || strings.HasPrefix(addr, ".") {
		return fmt.Errorf("mail account %q: want a plain address (local@domain, no ':', '/', '%%', quotes or spaces)", addr)
	}
	return nil
}

// writeLMTPConfig adds the LMTP and SASL listeners to dovecot.conf.
func (s *Dovecot) writeLMTPConfig(b *strings.Builder) {
	_, domain, _ := strings.Cut(s.Address(), "@")
	fmt.Fprintf(b, `service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = %d
  }
}
service auth {
  inet_listener auth-client {
    address = 127.0.0.1
    port = %d
  }
}
protocol lmtp {
  postmaster_address = postmaster@%s
}
`, s.lmtpPort, s.authPort, domain)
}

// AccountBodies returns the raw bytes of every message in mailbox of the
// mail account address (Address or one of Options.Accounts), in UID
// order, skipping those flagged \Deleted.
func (s *Dovecot) AccountBodies(t testing.TB, address, mailbox string) [][]byte {
	t.Helper()
	bodies, err := s.accountBodies(address, mailbox)
	if err != nil {
		t.Fatalf("imaptest: %v", err)
	}
	return bodies
}

func (s *Dovecot) accountBodies(address, mailbox string) ([][]byte, error) {
	address = strings.ToLower(address)
	user, pass := address, AccountPassword
	if address == s.Address() {
		user, pass = imapHarnessUser, imapHarnessPass
	}
	hc, err := s.dial(user, pass)
	if err != nil {
		return nil, fmt.Errorf("bodies of %s %q: %w", address, mailbox, err)
	}
	defer hc.close()
	msgs, _, err := imaptestFetchAll(hc.Client, mailbox, nil, true)
	if err != nil {
		return nil, fmt.Errorf("bodies of %s %q: %w", address, mailbox, err)
	}
	bodies := [][]byte{}
	for _, m := range msgs {
		if !imaptestIsDeleted(m.flags) {
			bodies = append(bodies, m.body)
		}
	}
	return bodies, nil
}

// WaitBodies polls mailbox of the mail account address (as AccountBodies
// reads it) every 50 ms until it holds at least n messages, and returns
// them; the test fails when timeout passes first. Mail through an MTA
// arrives a moment after the MTA accepted it.
func (s *Dovecot) WaitBodies(t testing.TB, address, mailbox string, n int, timeout time.Duration) [][]byte {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		// An error may be passing (a mailbox being created as it is
		// read): only the last one, at the deadline, fails the test.
		bodies, err := s.accountBodies(address, mailbox)
		if err == nil && len(bodies) >= n {
			return bodies
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("imaptest: %v", err)
			}
			t.Fatalf("imaptest: %s %q holds %d messages after %v, want %d", address, mailbox, len(bodies), timeout, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
