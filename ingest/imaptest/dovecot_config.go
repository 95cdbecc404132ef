package imaptest

// Dovecot's configuration: the dovecot.conf written for each daemon, the
// ACL file of read-only folders, the users it runs as, the default
// capabilities, and the self-signed certificate of Options.TLS.

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ticketrouter/ticketrouter/internal/testproc"
)

// TLSAddr is the implicit-TLS listener (with Options.TLS).
func (s *Dovecot) TLSAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.tlsPort))
}

// ClientTLS returns a client configuration that trusts the server's certificate.
func (s *Dovecot) ClientTLS() *tls.Config { return s.clientTLS.Clone() }

// writeCertificate writes a self-signed certificate for 127.0.0.1 and
// localhost for Dovecot, and keeps a client configuration that trusts it.
func (s *Dovecot) writeCertificate() error {
	cert, err := testproc.WriteCertificate(s.dir, "imaptest")
	if err != nil {
		return err
	}
	s.clientTLS, err = cert.ClientTLS()
	return err
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
	protocols := "imap"
	if s.opts.LMTP {
		protocols = "imap lmtp"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# ticketrouter test Dovecot (generated)
protocols = %[6]s
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
# Tests need no durability: no fsync per message (as in deploy/bench, the fair peer).
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
`, d, s.groupName(), s.port, ssl, s.tlsPort, protocols)
	if s.opts.LMTP {
		s.writeLMTPConfig(&b)
	}
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
