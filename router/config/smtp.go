package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/mail"
	"reflect"
	"strings"
	"time"

	"github.com/ticketrouter/ticketrouter/ingest"
)

// SMTP is the outgoing side: the submission server that acknowledgements,
// self-service answers and agents' replies go through, and the address
// they come from. The section is optional: without it nothing is sent.
// Its connection settings mirror the imap section's.
type SMTP struct {
	// Addr is the submission server, host:port (465 for implicit TLS, 587
	// for STARTTLS).
	Addr string `yaml:"addr"`
	// Security is tls (implicit TLS, the default), starttls, or plain,
	// which is allowed only to a loopback address or with AllowInsecure.
	Security      string `yaml:"security"`
	AllowInsecure bool   `yaml:"allow_insecure"`
	// CAFile is a PEM file of CAs trusted instead of the system roots.
	CAFile string `yaml:"ca_file"`
	// Username authenticates to the server; empty: no AUTH (a relay that
	// trusts this host).
	Username string `yaml:"username"`
	// Mechanism is the SASL mechanism: plain (the default), login or
	// xoauth2.
	Mechanism string `yaml:"mechanism"`
	// Secret is the password or the OAuth2 access token, from the same
	// sources as imap.secret (TICKETROUTER_SMTP_SECRET overrides it).
	Secret *ingest.Secret `yaml:"secret"`
	// From is the sender of every mail, e.g. "Support <support@ca.test>";
	// its domain names the outgoing Message-IDs, and bounces come back to
	// its address (the envelope sender).
	From string `yaml:"from"`
	// Helo is the name given in EHLO; "localhost" when empty. With
	// starttls, the EHLO before TLS says "localhost" whatever this is
	// (go-smtp's client fixes it); the one after TLS says Helo.
	Helo string `yaml:"helo"`
	// Timeout bounds each exchange with the server (connecting, a command,
	// the answer to the mail's data); 1m.
	Timeout time.Duration `yaml:"timeout"`
	// RetryMaxAge is how long a mail that fails transiently is tried again
	// (from when it was enqueued) before it is recorded as failed; 48h.
	RetryMaxAge time.Duration `yaml:"retry_max_age"`
	// RetryBackoffMax caps the delay between tries, which doubles from a
	// second; 5m.
	RetryBackoffMax time.Duration `yaml:"retry_backoff_max"`
}

// SMTP mechanisms, as the imap section spells them.
const (
	SMTPAuthPlain   = ingest.AuthPlain
	SMTPAuthLogin   = ingest.AuthLogin
	SMTPAuthXOAuth2 = ingest.AuthXOAuth2
)

// On reports whether mail is to be sent: the section is written at all.
func (s SMTP) On() bool { return !reflect.ValueOf(s).IsZero() }

// WithDefaults fills in the defaults.
func (s SMTP) WithDefaults() SMTP {
	if s.Security == "" {
		s.Security = ingest.SecurityTLS
	}
	if s.Mechanism == "" {
		s.Mechanism = SMTPAuthPlain
	}
	if s.Timeout <= 0 {
		s.Timeout = time.Minute
	}
	if s.RetryMaxAge <= 0 {
		s.RetryMaxAge = 48 * time.Hour
	}
	if s.RetryBackoffMax <= 0 {
		s.RetryBackoffMax = 5 * time.Minute
	}
	return s
}

// TLSConfig returns the TLS settings of the connection: the server's name
// to verify, and the roots of CAFile when it is set.
func (s SMTP) TLSConfig() (*tls.Config, error) {
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return nil, fmt.Errorf("smtp.addr: %q is not host:port", s.Addr)
	}
	c := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if s.CAFile != "" {
		roots, err := certPool(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("smtp.ca_file: %w", err)
		}
		c.RootCAs = roots
	}
	return c, nil
}

// MayAuthenticate reports whether the connection's settings let a secret
// be sent: over TLS, or in plain text to a loopback address, or with
// AllowInsecure.
func (s SMTP) MayAuthenticate() bool {
	if sec := s.WithDefaults().Security; sec == ingest.SecurityTLS || sec == ingest.SecurityStartTLS {
		return true
	}
	host, _, err := net.SplitHostPort(s.Addr)
	return s.AllowInsecure || err == nil && loopback(host)
}

// FromAddress parses From: the sender's mailbox, with its display name.
// The address must be ASCII (no SMTPUTF8) and have a domain, which names
// the outgoing Message-IDs.
func (s SMTP) FromAddress() (*mail.Address, error) {
	if strings.ContainsAny(s.From, "\r\n") {
		return nil, fmt.Errorf("holds a line break")
	}
	a, err := mail.ParseAddress(s.From)
	if err != nil {
		return nil, fmt.Errorf("%q is not a mail address: %w", s.From, err)
	}
	at := strings.LastIndexByte(a.Address, '@')
	if at <= 0 || at == len(a.Address)-1 {
		return nil, fmt.Errorf("%q has no domain", s.From)
	}
	for _, r := range a.Address {
		if r > 0x7e {
			return nil, fmt.Errorf("%q is not ASCII: write its domain as punycode (xn--…)", a.Address)
		}
	}
	return a, nil
}

// smtp checks the smtp section, when it is written.
func (k *checker) smtp() {
	c := k.c.SMTP
	if !c.On() {
		return
	}
	host, _, err := net.SplitHostPort(c.Addr)
	switch {
	case c.Addr == "":
		k.fail("smtp.addr", nil, "missing: want host:port of the submission server")
	case err != nil:
		k.fail("smtp.addr", nil, "%q is not host:port", c.Addr)
	}
	switch c.Security {
	case "", ingest.SecurityTLS, ingest.SecurityStartTLS:
	case ingest.SecurityPlain:
		if err == nil && !loopback(host) && !c.AllowInsecure {
			k.fail("smtp.security", nil, "plaintext SMTP to %s, which is not loopback, sends the password and the mail in clear; use tls or starttls, or set allow_insecure", host)
		}
	default:
		k.fail("smtp.security", nil, "%q is not tls, starttls or plain", c.Security)
	}
	switch c.Mechanism {
	case "", SMTPAuthPlain, SMTPAuthLogin, SMTPAuthXOAuth2:
	default:
		k.fail("smtp.mechanism", nil, "%q is not plain, login or xoauth2", c.Mechanism)
	}
	switch {
	case c.Username != "" && c.Secret == nil:
		k.fail("smtp.secret", nil, "missing for username %s: set %s, or write {env: NAME}, {file: PATH} or {command: [ARGV...]}", c.Username, EnvName("smtp.secret"))
	case c.Username == "" && c.Secret != nil:
		k.fail("smtp.username", nil, "missing: a secret is set, so name the user it authenticates")
	case c.Secret != nil:
		k.secret("smtp.secret", c.Secret)
	}
	if strings.ContainsAny(c.Username, "\r\n") {
		k.fail("smtp.username", nil, "holds a line break")
	}
	if c.From == "" {
		k.fail("smtp.from", nil, "missing: the sender address, e.g. Support <support@your-domain>")
	} else if a, err := c.FromAddress(); err != nil {
		k.fail("smtp.from", nil, "%v", err)
	} else if _, domain, _ := strings.Cut(a.Address, "@"); documentationName(domain) {
		k.fail("smtp.from", ErrPlaceholder, "%q is a placeholder (a domain reserved for documentation): write the address customers are to see and answer", a.Address)
	}
	if c.Helo != "" && !heloName(c.Helo) {
		k.fail("smtp.helo", nil, "%q is not a host name or address literal", c.Helo)
	}
	notNegative(k, "smtp.timeout", c.Timeout)
	notNegative(k, "smtp.retry_max_age", c.RetryMaxAge)
	notNegative(k, "smtp.retry_backoff_max", c.RetryBackoffMax)
	if c.Timeout > 0 && c.Timeout < time.Second {
		k.fail("smtp.timeout", nil, "%s is under a second", c.Timeout)
	}
	if d := c.WithDefaults(); c.RetryMaxAge > 0 && d.RetryMaxAge < d.RetryBackoffMax {
		k.fail("smtp.retry_max_age", nil, "%s is shorter than retry_backoff_max %s", d.RetryMaxAge, d.RetryBackoffMax)
	}
	if c.CAFile != "" {
		if _, err := certPool(c.CAFile); err != nil { // names a missing file too
			k.fail("smtp.ca_file", err, "%v", err)
		}
	}
}

// heloName reports whether s can follow EHLO: a host name of letters,
// digits, hyphens and dots, or an address literal in brackets.
func heloName(s string) bool {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		return net.ParseIP(strings.TrimPrefix(s[1:len(s)-1], "IPv6:")) != nil
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return len(s) <= 253
}
