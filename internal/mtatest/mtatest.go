// Package mtatest runs a real MTA for tests: Postfix from Debian's
// packages, an instance of its own (configuration, queue and log in a
// throw-away directory) listening on free 127.0.0.1 ports and relaying
// every accepted recipient by LMTP into a test Dovecot (ingest/imaptest
// with Options.LMTP), so that end-to-end tests send and receive mail as
// a deployment does.
//
// It listens on three ports:
//
//   - SubmissionAddr: submission with STARTTLS required and AUTH PLAIN or
//     LOGIN after it (port 587 style), the way ticketrouter sends;
//   - SubmissionsAddr: the same with implicit TLS (port 465 style);
//   - SMTPAddr: plain SMTP without AUTH, open to loopback clients, the way
//     a customer's mail comes in from outside.
//
// AUTH is checked by the Dovecot's SASL service (imaptest's AuthAddr), so
// the mail accounts' own passwords log in. A recipient the Dovecot does
// not know is refused by LMTP after the MTA accepted the mail, and the MTA
// bounces it: a DSN from MAILER-DAEMON to the envelope sender, which,
// when the sender is one of the Dovecot's accounts, lands in its INBOX.
//
// Stop and Start stop and restart the same instance on the same ports
// with its queue kept, as an outage of the submission server does;
// PauseDelivery and ResumeDelivery hold mail in the queue (Postfix reaches
// the Dovecot through a small TCP relay in the test process, the gate,
// that can refuse deliveries).
package mtatest

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ticketrouter/ticketrouter/internal/testproc"
)

// Options are the settings of Start.
type Options struct {
	// LMTP is where every accepted recipient is delivered,
	// "127.0.0.1:PORT": the Dovecot's LMTPAddr. Required.
	LMTP string
	// SASL is the Dovecot's SASL service that checks AUTH on the
	// submission ports, "127.0.0.1:PORT": its AuthAddr. Required.
	SASL string
	// Hostname is the MTA's name in its greeting, Received headers and
	// bounces (MAILER-DAEMON@Hostname); "mta.test" when empty.
	Hostname string
}

// Errors of New that say the machine cannot run Postfix, rather than that
// it failed: Start skips the test on them.
var (
	ErrNoPostfix = errors.New("the Postfix MTA is not installed (no postfix or /usr/lib/postfix/sbin/master; Debian: apt-get install postfix)")
	ErrNotRoot   = errors.New("the MTA harness must run as root (Postfix's master runs as root and its daemons as the postfix user)")
)

// How long Start waits for the MTA to greet, and Stop for it to be gone.
const (
	startTimeout = 30 * time.Second
	stopGrace    = 10 * time.Second
)

// MTA is a Postfix instance started by Start (or New). Its methods are
// safe for concurrent use; the ones taking a testing.TB fail the test
// with t.Fatal, so call them from the test's goroutine.
type MTA struct {
	opts    Options
	dir     string // the instance's directory: etc/, queue/, data/, maillog
	master  string // the master binary
	ports   [3]int // smtp, submission, submissions; the same across restarts
	cert    testproc.Certificate
	tlsConf *tls.Config

	gate *gate // between Postfix and the Dovecot's LMTP: PauseDelivery closes it

	mu   sync.Mutex
	proc *testproc.Process // nil while stopped
}

// Start starts a Postfix instance (New) and removes it when the test ends.
// When Postfix is not installed, or the test does not run as root, it
// calls t.Skip saying so.
func Start(t testing.TB, opts Options) *MTA {
	t.Helper()
	began := time.Now()
	m, err := New(opts)
	if errors.Is(err, ErrNoPostfix) || errors.Is(err, ErrNotRoot) {
		t.Skipf("%v: skipping the MTA test", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mtatest: tail of %s:\n%s", m.LogPath(), m.Log(40))
		}
		m.Close()
	})
	t.Logf("mtatest: Postfix ready in %v: smtp %s, submission %s, submissions %s (dir %s)",
		time.Since(began).Round(time.Millisecond), m.SMTPAddr(), m.SubmissionAddr(), m.SubmissionsAddr(), m.dir)
	return m
}

// New starts a Postfix instance on free 127.0.0.1 ports with a throw-away
// directory, and returns once it greets. Close stops it and removes the
// directory.
func New(opts Options) (_ *MTA, err error) {
	master := findBinary("/usr/lib/postfix/sbin/master", "/usr/libexec/postfix/master")
	if master == "" {
		return nil, ErrNoPostfix
	}
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	if opts.LMTP == "" || opts.SASL == "" {
		return nil, errors.New("mtatest: Options.LMTP and Options.SASL are required (imaptest.Dovecot's LMTPAddr and AuthAddr)")
	}
	if opts.Hostname == "" {
		opts.Hostname = "mta.test"
	}
	// A directory of our own rather than the test's TempDir: the postfix
	// user must reach the queue through every directory above it.
	dir, err := os.MkdirTemp("", "mtat-")
	if err != nil {
		return nil, fmt.Errorf("mtatest: %w", err)
	}
	m := &MTA{opts: opts, dir: dir, master: master}
	defer func() {
		if err != nil {
			m.Close()
			err = fmt.Errorf("mtatest: %w", err)
		}
	}()
	if err := m.makeDirs(); err != nil {
		return nil, err
	}
	if m.gate, err = newGate(opts.LMTP); err != nil {
		return nil, err
	}
	if m.cert, err = testproc.WriteCertificate(filepath.Join(dir, "etc"), opts.Hostname); err != nil {
		return nil, err
	}
	if m.tlsConf, err = m.cert.ClientTLS(); err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		ports, err := testproc.FreePorts(3)
		if err != nil {
			return nil, err
		}
		copy(m.ports[:], ports)
		lastErr = m.start()
		if lastErr == nil || !strings.Contains(lastErr.Error(), "in use") {
			break
		}
	}
	if lastErr != nil {
		return nil, lastErr
	}
	return m, nil
}

// SMTPAddr is the SMTP port without AUTH, "127.0.0.1:PORT": it relays mail
// from loopback clients to any recipient, as mail from outside comes in.
func (m *MTA) SMTPAddr() string { return addr(m.ports[0]) }

// SubmissionAddr is the submission port, "127.0.0.1:PORT": STARTTLS is
// required, then AUTH PLAIN or LOGIN (a Dovecot account and its password),
// before any MAIL FROM.
func (m *MTA) SubmissionAddr() string { return addr(m.ports[1]) }

// SubmissionsAddr is the submission port with implicit TLS,
// "127.0.0.1:PORT": AUTH PLAIN or LOGIN required.
func (m *MTA) SubmissionsAddr() string { return addr(m.ports[2]) }

// CAFile is the PEM file of the MTA's self-signed certificate (for
// 127.0.0.1 and localhost), for a client's CA setting.
func (m *MTA) CAFile() string { return m.cert.CertFile }

// ClientTLS returns a client configuration that trusts the MTA's
// certificate for 127.0.0.1.
func (m *MTA) ClientTLS() *tls.Config { return m.tlsConf.Clone() }

// Hostname is the MTA's name (Options.Hostname): bounces come from
// MAILER-DAEMON@Hostname.
func (m *MTA) Hostname() string { return m.opts.Hostname }

// LogPath is Postfix's log file (maillog_file).
func (m *MTA) LogPath() string { return filepath.Join(m.dir, "maillog") }

// Log returns the last n lines of Postfix's log, for a failing test's message.
func (m *MTA) Log(n int) string { return testproc.Tail(m.LogPath(), n) }

// Running reports whether the MTA runs (it was started and not stopped).
func (m *MTA) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.proc != nil && !m.proc.Exited()
}

// Stop stops the MTA as an outage would: its ports refuse connections
// until Start. Mail it accepted stays in its queue. Stopping a stopped MTA
// does nothing.
func (m *MTA) Stop(t testing.TB) {
	t.Helper()
	if err := m.stop(); err != nil {
		t.Fatalf("mtatest: stop: %v\n%s", err, m.Log(20))
	}
}

// Start starts the stopped MTA again on the same ports with the same
// queue, and returns once it greets. Starting a running MTA does nothing.
func (m *MTA) Start(t testing.TB) {
	t.Helper()
	if err := m.start(); err != nil {
		t.Fatalf("mtatest: start: %v", err)
	}
}

// PauseDelivery makes the MTA keep the mail it accepts in its queue
// (deferred, not bounced) instead of delivering it, until ResumeDelivery;
// it holds across Stop and Start. It lets a test put mail in the queue.
// The MTA reaches the Dovecot through a relay in the test process, which
// while paused answers each new LMTP connection "421 4.3.2" (a delivery
// already under way finishes).
func (m *MTA) PauseDelivery(t testing.TB) {
	t.Helper()
	if err := m.setPaused(true); err != nil {
		t.Fatalf("mtatest: pause delivery: %v", err)
	}
}

// ResumeDelivery delivers the queued mail and what comes after, at once.
func (m *MTA) ResumeDelivery(t testing.TB) {
	t.Helper()
	if err := m.setPaused(false); err != nil {
		t.Fatalf("mtatest: resume delivery: %v", err)
	}
}

// Queued returns how many mails are in the MTA's queue, not yet delivered
// or bounced. It counts the queue files by their queue IDs; a file moves
// between queue directories as Postfix works on it, so it reads them until
// two readings in a row agree (at most ten).
func (m *MTA) Queued() int {
	prev := m.queueIDs()
	for range 10 {
		cur := m.queueIDs()
		if maps.Equal(cur, prev) {
			break
		}
		prev = cur
	}
	return len(prev)
}

// queueIDs reads the names of the queue files once.
func (m *MTA) queueIDs() map[string]bool {
	ids := map[string]bool{}
	for _, q := range []string{"maildrop", "incoming", "active", "deferred", "hold"} {
		filepath.WalkDir(filepath.Join(m.dir, "queue", q), func(_ string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				ids[d.Name()] = true
			}
			return nil
		})
	}
	return ids
}

// WaitQueueEmpty waits until Queued is 0, polling every 50 ms; the test
// fails when timeout passes first.
func (m *MTA) WaitQueueEmpty(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for m.Queued() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("mtatest: %d mails still queued after %v\n%s", m.Queued(), timeout, m.Log(20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Close stops the MTA at once (SIGKILL to its processes) and removes its
// directory.
func (m *MTA) Close() {
	m.mu.Lock()
	if m.proc != nil {
		m.proc.Kill()
		m.proc = nil
	}
	m.mu.Unlock()
	if m.gate != nil {
		m.gate.close()
	}
	os.RemoveAll(m.dir)
}

func (m *MTA) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil && !m.proc.Exited() {
		return nil
	}
	if err := m.writeConfig(); err != nil {
		return err
	}
	stderr := filepath.Join(m.dir, "master.stderr")
	// -d keeps the master in the foreground and in the process group
	// testproc gave it (without it the master calls setsid, which a group
	// leader may not), so that Stop and Close reach all its daemons.
	cmd := exec.Command(m.master, "-c", filepath.Join(m.dir, "etc"), "-d")
	cmd.Env = append(os.Environ(), "MAIL_CONFIG="+filepath.Join(m.dir, "etc"))
	p, err := testproc.Start(cmd, testproc.Options{Name: "postfix master", Log: stderr, DeathSignal: syscall.SIGTERM})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(startTimeout)
	for !greets(m.SMTPAddr()) {
		select {
		case <-p.Done():
			return fmt.Errorf("postfix master exited at start (%s): %s\n--- maillog:\n%s", p.ProcessState(),
				strings.TrimSpace(testproc.Tail(stderr, 10)), m.Log(20))
		default:
		}
		if time.Now().After(deadline) {
			p.Kill()
			return fmt.Errorf("postfix did not greet on %s within %v\n--- maillog:\n%s", m.SMTPAddr(), startTimeout, m.Log(20))
		}
		time.Sleep(20 * time.Millisecond)
	}
	m.proc = p
	return nil
}

func (m *MTA) stop() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc == nil {
		return nil
	}
	// SIGTERM to the master and its daemons, as "postfix abort": a mail
	// in delivery stays queued and is delivered again after Start.
	err := m.proc.Stop(stopGrace)
	m.proc = nil
	return err
}

// setPaused opens or closes the LMTP gate; opening it also has the
// queue manager retry the deferred mail now.
func (m *MTA) setPaused(paused bool) error {
	m.gate.paused.Store(paused)
	m.mu.Lock()
	defer m.mu.Unlock()
	if paused || m.proc == nil || m.proc.Exited() {
		return nil
	}
	return m.flush()
}

// flush asks the queue manager to deliver the deferred mail now rather
// than at its next retry (a second or two later anyway).
func (m *MTA) flush() error {
	postqueue := findBinary("/usr/sbin/postqueue")
	if postqueue == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, postqueue, "-c", filepath.Join(m.dir, "etc"), "-f").CombinedOutput()
	if err != nil {
		return fmt.Errorf("postqueue -f: %w: %s", err, out)
	}
	return nil
}

// makeDirs makes the instance's directories, owned as Postfix's
// postfix-files wants them.
func (m *MTA) makeDirs() error {
	owner, err := user.Lookup("postfix")
	if err != nil {
		return fmt.Errorf("the postfix user: %w", err)
	}
	uid, _ := strconv.Atoi(owner.Uid)
	setgid := 0
	if g, err := user.LookupGroup("postdrop"); err == nil {
		setgid, _ = strconv.Atoi(g.Gid)
	}
	if err := os.Chmod(m.dir, 0o755); err != nil {
		return err
	}
	for _, d := range []struct {
		path      string
		uid, gid  int
		mode      os.FileMode
		byPostfix bool
	}{
		{"etc", 0, 0, 0o755, false},
		{"data", uid, 0, 0o700, true},
		{"queue", 0, 0, 0o755, false},
		{"queue/pid", 0, 0, 0o755, false},
		{"queue/maildrop", uid, setgid, 0o730, true},
		{"queue/public", uid, setgid, 0o710, true},
		{"queue/private", uid, 0, 0o700, true},
		{"queue/active", uid, 0, 0o700, true},
		{"queue/bounce", uid, 0, 0o700, true},
		{"queue/corrupt", uid, 0, 0o700, true},
		{"queue/defer", uid, 0, 0o700, true},
		{"queue/deferred", uid, 0, 0o700, true},
		{"queue/flush", uid, 0, 0o700, true},
		{"queue/hold", uid, 0, 0o700, true},
		{"queue/incoming", uid, 0, 0o700, true},
		{"queue/saved", uid, 0, 0o700, true},
		{"queue/trace", uid, 0, 0o700, true},
	} {
		p := filepath.Join(m.dir, d.path)
		if err := os.Mkdir(p, d.mode); err != nil {
			return err
		}
		if err := os.Chmod(p, d.mode); err != nil { // past the umask
			return err
		}
		if d.byPostfix {
			if err := os.Chown(p, d.uid, d.gid); err != nil {
				return err
			}
		}
	}
	return nil
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// greets reports whether an SMTP server answers 220 on addr.
func greets(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "220 ")
}

func findBinary(paths ...string) string {
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}
