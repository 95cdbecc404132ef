package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSMTPCheck: the smtp section is optional, and when written it is
// checked as the imap section is (address, security, mechanism, secret
// sources, CA file), plus the sender address and the retry settings; each
// problem is named with its line.
func TestSMTPCheck(t *testing.T) {
	const sec = "smtp:\n  addr: smtp.ca.test:465\n  from: Support <support@ca.test>\n"
	const auth = "  username: support@ca.test\n  secret: {file: imap-password}\n"
	for _, c := range []struct {
		name, extra, err string
	}{
		{"off by default", "", ""},
		{"implicit tls", sec + auth, ""},
		{"starttls, login", sec + auth + "  security: starttls\n  mechanism: login\n", ""},
		{"xoauth2", sec + auth + "  mechanism: xoauth2\n", ""},
		{"no auth", sec, ""},
		{"helo", sec + "  helo: router1.ca.test\n", ""},
		{"address literal", sec + "  helo: \"[127.0.0.1]\"\n", ""},
		{"no addr", "smtp:\n  from: support@ca.test\n", "6 smtp.addr: missing: want host:port"},
		{"addr not host:port", "smtp:\n  addr: smtp.ca.test\n  from: support@ca.test\n", `7 smtp.addr: "smtp.ca.test" is not host:port`},
		{"plain beyond loopback", sec + "  security: plain\n", "9 smtp.security: plaintext SMTP to smtp.ca.test, which is not loopback"},
		{"plain on loopback", "smtp:\n  addr: 127.0.0.1:25\n  security: plain\n  from: support@ca.test\n", ""},
		{"plain allowed", sec + "  security: plain\n  allow_insecure: true\n", ""},
		{"bad security", sec + "  security: ssl\n", `9 smtp.security: "ssl" is not tls, starttls or plain`},
		{"bad mechanism", sec + auth + "  mechanism: cram-md5\n", `11 smtp.mechanism: "cram-md5" is not plain, login or xoauth2`},
		{"user without secret", sec + "  username: support@ca.test\n", "6 smtp.secret: missing for username support@ca.test: set TICKETROUTER_SMTP_SECRET"},
		{"secret without user", sec + "  secret: {file: imap-password}\n", "6 smtp.username: missing"},
		{"secret file missing", sec + "  username: u\n  secret: {file: nope}\n", "10 smtp.secret.file: stat "},
		{"secret unset", sec + "  username: u\n  secret: {env: TR_TEST_UNSET}\n", "10 smtp.secret.env: environment variable TR_TEST_UNSET is unset or empty"},
		{"secret inline", sec + "  username: u\n  secret: hunter2\n", "10 smtp.secret: want a mapping"},
		{"no from", "smtp:\n  addr: smtp.ca.test:465\n", "6 smtp.from: missing"},
		{"from not an address", "smtp:\n  addr: smtp.ca.test:465\n  from: Support\n", `8 smtp.from: "Support" is not a mail address`},
		{"from not ascii", "smtp:\n  addr: smtp.ca.test:465\n  from: support@bücher.test\n", "8 smtp.from: \"support@bücher.test\" is not ASCII"},
		{"from a placeholder", "smtp:\n  addr: smtp.ca.test:465\n  from: support@ca.example\n", `8 smtp.from: "support@ca.example" is a placeholder`},
		{"bad helo", sec + "  helo: \"a host\"\n", `9 smtp.helo: "a host" is not a host name`},
		{"ca file missing", sec + "  ca_file: nope.pem\n", "9 smtp.ca_file: open "},
		{"negative retry", sec + "  retry_max_age: -1h\n", "9 smtp.retry_max_age: -1h0m0s is negative"},
		{"retry shorter than backoff", sec + "  retry_max_age: 1m\n", "9 smtp.retry_max_age: 1m0s is shorter than retry_backoff_max 5m0s"},
		{"short timeout", sec + "  timeout: 10ms\n", "9 smtp.timeout: 10ms is under a second"},
		{"unknown key", sec + "  fromm: x@ca.test\n", "9 smtp.fromm: unknown field (did you mean from?)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadText(t, good+c.extra, nil)
			if c.err == "" {
				if err != nil {
					t.Fatalf("error %v, want none", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", c.err)
			}
			if got := strings.Join(problems(t, err), "\n"); !strings.Contains(got, c.err) {
				t.Fatalf("problems:\n%s\nwant one containing %q", got, c.err)
			}
		})
	}
}

// TestSMTPDefaultsAndEnv: the defaults; TICKETROUTER_SMTP_SECRET is the
// secret itself, read when used, never copied; the CA file and the
// secret's file are relative to the configuration file; the settings
// derived from the section (TLS, may authenticate, the sender).
func TestSMTPDefaultsAndEnv(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	writeTestCA(t, ca)
	cfg, err := loadIn(t, dir, good+"smtp:\n  addr: smtp.ca.test:587\n  username: support@ca.test\n  secret: {file: imap-password}\n  from: '\"Support Desk\" <support@ca.test>'\n  ca_file: ca.pem\n",
		map[string]string{"TICKETROUTER_SMTP_SECRET": "from-env", "TICKETROUTER_SMTP_SECURITY": "starttls"})
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.SMTP.WithDefaults()
	if s.Security != "starttls" || s.Mechanism != "plain" || s.Timeout != time.Minute || s.RetryMaxAge != 48*time.Hour || s.RetryBackoffMax != 5*time.Minute {
		t.Errorf("defaults: %+v", s)
	}
	if s.Secret == nil || s.Secret.Env != "TICKETROUTER_SMTP_SECRET" || s.Secret.File != "" {
		t.Errorf("secret %+v: want the environment variable itself", s.Secret)
	}
	if s.CAFile != ca {
		t.Errorf("ca_file %q, want %q (relative to the file)", s.CAFile, ca)
	}
	tc, err := s.TLSConfig()
	if err != nil || tc.ServerName != "smtp.ca.test" || tc.RootCAs == nil {
		t.Errorf("TLSConfig: %+v, %v", tc, err)
	}
	from, err := s.FromAddress()
	if err != nil || from.Name != "Support Desk" || from.Address != "support@ca.test" {
		t.Errorf("FromAddress: %+v, %v", from, err)
	}
	if !s.On() || (SMTP{}).On() {
		t.Error("On: want true for a written section, false for none")
	}
}

// TestSMTPMayAuthenticate: a secret goes only over TLS, to loopback, or
// where the operator allowed it.
func TestSMTPMayAuthenticate(t *testing.T) {
	for _, c := range []struct {
		s    SMTP
		want bool
	}{
		{SMTP{Addr: "smtp.ca.test:465"}, true},
		{SMTP{Addr: "smtp.ca.test:587", Security: "starttls"}, true},
		{SMTP{Addr: "smtp.ca.test:25", Security: "plain"}, false},
		{SMTP{Addr: "smtp.ca.test:25", Security: "plain", AllowInsecure: true}, true},
		{SMTP{Addr: "127.0.0.1:25", Security: "plain"}, true},
		{SMTP{Addr: "[::1]:25", Security: "plain"}, true},
	} {
		if got := c.s.MayAuthenticate(); got != c.want {
			t.Errorf("%+v: MayAuthenticate %v, want %v", c.s, got, c.want)
		}
	}
}

// TestSMTPFromAddress: the sender must be one ASCII address with a
// domain, with no line break in it.
func TestSMTPFromAddress(t *testing.T) {
	for _, c := range []struct{ from, err string }{
		{"support@ca.test", ""},
		{"Support <support@ca.test>", ""},
		{"=?utf-8?q?S=C3=BCpport?= <support@ca.test>", ""},
		{"support", "is not a mail address"},
		{"support@ca.test\r\nBcc: x@evil.test", "holds a line break"},
		{"a@b.test, c@d.test", "is not a mail address"},
	} {
		_, err := SMTP{From: c.from}.FromAddress()
		if (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: error %v, want %q", c.from, err, c.err)
		}
	}
	if _, err := (SMTP{Addr: "nohost"}).TLSConfig(); err == nil || errors.Is(err, os.ErrNotExist) {
		t.Errorf("TLSConfig of a bad addr: %v", err)
	}
}

// writeTestCA writes a self-signed CA certificate to path.
func writeTestCA(t *testing.T, path string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtp test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
