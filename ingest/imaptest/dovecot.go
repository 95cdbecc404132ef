package imaptest

// The Dovecot daemon: starting it (a throw-away directory, the two users in
// a passwd file, the capabilities the options leave, free ports), mail
// delivery straight into its Maildir, and stopping it.

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/ticketrouter/ticketrouter/internal/testproc"
)

// Dovecot is a real Dovecot daemon on 127.0.0.1, started by NewDovecot or
// StartDovecot, with its own throw-away directory.
type Dovecot struct {
	imapHarness
	opts    Options
	dir     string
	cfg     string
	doveadm string
	port    int
	pid     int // the master's

	tlsPort   int
	lmtpPort  int               // with Options.LMTP
	authPort  int               // with Options.LMTP
	clientTLS *tls.Config       // trusts the server's certificate
	proc      *testproc.Process // the master, in a process group with its children
	delivered atomic.Int64      // names files Deliver writes
}

// Errors of NewDovecot that say the machine cannot run it, rather than
// that it failed: tests skip on them.
var (
	ErrNoDovecot = errors.New("Dovecot is not installed (no dovecot/doveadm binary; Debian: apt-get install dovecot-imapd)")
	ErrNotRoot   = errors.New("the Dovecot harness must run as root (it runs the daemon with mail_uid=nobody)")
	ErrNoLMTP    = errors.New("the LMTP server of Dovecot is not installed (no /usr/lib/dovecot/lmtp; Debian: apt-get install dovecot-lmtpd)")
)

// StartDovecot starts a real Dovecot daemon (NewDovecot) and stops it
// when the test ends. When Dovecot is not installed, or the test does not
// run as root, it calls t.Skip with a clear message.
func StartDovecot(t *testing.T, opts Options) Server {
	t.Helper()
	began := time.Now()
	s, err := NewDovecot(opts)
	if errors.Is(err, ErrNoDovecot) || errors.Is(err, ErrNotRoot) || errors.Is(err, ErrNoLMTP) {
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
	if opts.LMTP && imaptestFindBinary("", "/usr/lib/dovecot/lmtp", "/usr/libexec/dovecot/lmtp") == "" {
		return nil, ErrNoLMTP
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
	if opts.LMTP {
		accounts, err := s.mailAccounts(uid, gid)
		if err != nil {
			return nil, err
		}
		passwd += accounts
	}
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
		ports, err := testproc.FreePorts(4)
		if err != nil {
			return nil, err
		}
		s.port = ports[0]
		if opts.TLS {
			s.tlsPort = ports[1]
		}
		if opts.LMTP {
			s.lmtpPort, s.authPort = ports[2], ports[3]
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
