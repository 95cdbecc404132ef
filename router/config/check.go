package config

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ticketrouter/ticketrouter/ingest"
	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// Check reports what is wrong with the settings every command reads:
// sender authentication and the subject prefix. route calls it again after
// its flags changed them. The error is Errors, each problem placed where
// its value came from.
func (c *Config) Check() error {
	k := c.checker()
	k.routing()
	return k.result()
}

// CheckNATS reports what is wrong with the nats section: what the commands
// that only talk to NATS (queue) need.
func (c *Config) CheckNATS() error {
	k := c.checker()
	k.nats()
	return k.result()
}

// CheckService reports everything that would keep the service from
// running as the operator means it to: Check and CheckNATS, the
// accounts, the mailbox and its secret, the files named, the HTTP
// listener, logging and the replica, the desk when desk.listen is set,
// the smtp section when it is written, and the example's placeholders
// that were not replaced.
func (c *Config) CheckService() error {
	k := c.checker()
	k.routing()
	k.nats()
	k.service()
	return k.result()
}

// checker collects the problems of one check.
type checker struct {
	c      *Config
	lookup func(string) (string, bool) // the environment
	errs   Errors
}

func (c *Config) checker() *checker {
	k := &checker{c: c, lookup: os.LookupEnv}
	if c.src != nil && c.src.lookup != nil {
		k.lookup = c.src.lookup
	}
	return k
}

// fail records a problem of field, unless decoding already found one.
func (k *checker) fail(field string, err error, format string, args ...any) {
	if k.c.src.isBad(field) {
		return
	}
	k.errs = append(k.errs, k.c.src.fieldError(field, err, format, args...))
}

func (k *checker) result() error {
	if len(k.errs) == 0 {
		return nil
	}
	return k.errs.sorted()
}

// routing checks what deciding a mail reads.
func (k *checker) routing() {
	for _, p := range k.c.SenderAuth.Problems() {
		k.fail("sender_auth."+p.Field, nil, "%s", p.Msg)
	}
	if p := k.c.SubjectPrefix; p != "" && !ticket.ValidPrefix(p) {
		k.fail("subject_prefix", nil, "%q is no NATS subject prefix: want dot-separated tokens without spaces, '*' or '>'", p)
	}
}

// nats checks the nats section.
func (k *checker) nats() {
	c := k.c.NATS
	auth := 0
	for _, set := range []bool{c.Credentials != "", c.NKeySeed != nil, c.User != ""} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		k.fail("nats", nil, "want at most one of credentials, nkey_seed and user")
	}
	if c.User != "" && c.Password == nil {
		k.fail("nats.password", nil, "missing for user %s: set %s, or write {env: NAME}, {file: PATH} or {command: [ARGV...]}", c.User, EnvName("nats.password"))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		k.fail("nats", nil, "cert_file and key_file go together")
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		k.fail("nats.replicas", nil, "%d is not between 1 and 5", c.Replicas)
	}
	d := c.WithDefaults()
	switch {
	case c.DuplicateWindow < 0 || c.DuplicateWindow > 0 && c.DuplicateWindow < 100*time.Millisecond:
		k.fail("nats.duplicate_window", nil, "%s is shorter than JetStream's 100ms", c.DuplicateWindow)
	case d.MaxAge < d.DuplicateWindow:
		k.fail("nats.max_age", nil, "%s is shorter than the duplicate window %s", d.MaxAge, d.DuplicateWindow)
	}
	if c.AckWait < 0 || c.AckWait > 0 && c.AckWait < time.Second {
		k.fail("nats.ack_wait", nil, "%s is under a second", c.AckWait)
	}
	if c.URL != "" && c.Embedded != (Embedded{}) {
		k.fail("nats.embedded", nil, "set, but nats.url points at another server")
	}
	if c.NKeySeed != nil {
		k.secret("nats.nkey_seed", c.NKeySeed)
	}
	if c.Password != nil {
		k.secret("nats.password", c.Password)
	}
	k.files("nats.ca_file", c.CAFile, "nats.cert_file", c.CertFile, "nats.key_file", c.KeyFile, "nats.credentials", c.Credentials)
}

// service checks what only the service reads.
func (k *checker) service() {
	c := k.c
	if c.Accounts == "" {
		k.fail("accounts", nil, "missing: the account directory's file")
	}
	k.imap()
	if c.SenderAuth.ReadsResults() {
		for i, id := range c.SenderAuth.TrustedAuthservIDs {
			if documentationName(id) {
				k.fail(fmt.Sprintf("sender_auth.trusted_authserv_ids[%d]", i), ErrPlaceholder,
					"%q is a placeholder (a name reserved for documentation): write the authserv-id your inbound mail servers put in Authentication-Results, or no sender is authenticated by them and mail from admins ends needs-verification", id)
			}
		}
	}
	if l := c.HTTP.Listen; l != "off" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			k.fail("http.listen", nil, "%q is not host:port or off", l)
		}
	}
	if l := c.Debug.Listen; l != "" && l != "off" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			k.fail("debug.listen", nil, "%q is not host:port or off", l)
		} else if l == c.HTTP.Listen {
			k.fail("debug.listen", nil, "%q is http.listen: profiles must not be served on the probe port", l)
		}
	}
	if l := strings.ToLower(c.Log.Level); !slices.Contains([]string{"", "debug", "info", "warn", "error"}, l) {
		k.fail("log.level", nil, "%q is not debug, info, warn or error", c.Log.Level)
	}
	if f := c.Log.Format; !slices.Contains([]string{"", "auto", "json", "console"}, f) {
		k.fail("log.format", nil, "%q is not auto, json or console", f)
	}
	if c.Replica.LeaseTTL < 3*time.Second {
		k.fail("replica.lease_ttl", nil, "%s is too short (want at least 3s)", c.Replica.LeaseTTL)
	}
	k.desk()
	k.smtp()
}

// imap checks the mailbox's settings as the watcher will, and the secret
// and the CA file beyond that.
func (k *checker) imap() {
	c := &k.c.IMAP
	if _, _, err := net.SplitHostPort(c.Addr); c.Addr == "" {
		k.fail("imap.addr", nil, "missing: want host:port")
	} else if err != nil {
		k.fail("imap.addr", nil, "%q is not host:port", c.Addr)
	}
	if c.Secret == nil {
		k.fail("imap.secret", nil, "missing: set %s, or write {env: NAME}, {file: PATH} or {command: [ARGV...]}", EnvName("imap.secret"))
	} else {
		k.secret("imap.secret", c.Secret)
	}
	// The watcher's own checks, but for the two above, which say more here.
	w, _ := c.WatcherConfig("")
	w.Mailboxes = c.Mailboxes
	for _, p := range w.Problems() {
		if p.Field != "addr" && p.Field != "secret" {
			k.fail("imap."+p.Field, p.Err, "%s", p.Msg)
		}
	}
	notNegative(k, "imap.poll_interval", c.PollInterval)
	notNegative(k, "imap.liveness", c.Liveness)
	notNegative(k, "imap.max_size", c.MaxSize)
	notNegative(k, "imap.max_attempts", c.MaxAttempts)
	notNegative(k, "imap.concurrency", c.Concurrency)
	if c.CAFile != "" {
		if _, err := certPool(c.CAFile); err != nil { // names a missing file too
			k.fail("imap.ca_file", err, "%v", err)
		}
	}
}

// secret checks a secret's source: one of env, file and command, and for
// the first two, that the variable is set or the file is there (a command
// is not run).
func (k *checker) secret(field string, s *ingest.Secret) {
	if err := s.Check(); err != nil {
		k.fail(field, nil, "%v", err)
		return
	}
	switch {
	case s.Env != "":
		if v, ok := k.lookup(s.Env); !ok || v == "" {
			k.fail(field+".env", ErrSecretUnset, "environment variable %s is unset or empty", s.Env)
		}
	case s.File != "":
		k.files(field+".file", s.File)
	}
}

// files checks that the files named exist; its arguments are pairs of a
// field and a path, an empty path being unset.
func (k *checker) files(fieldPaths ...string) {
	for i := 0; i+1 < len(fieldPaths); i += 2 {
		if p := fieldPaths[i+1]; p != "" {
			if _, err := os.Stat(p); err != nil {
				k.fail(fieldPaths[i], err, "%v", err)
			}
		}
	}
}

// notNegative reports a negative number or duration.
func notNegative[N ~int | ~int64](k *checker, field string, n N) {
	if n < 0 {
		k.fail(field, nil, "%v is negative", n)
	}
}

// documentationName reports whether a host name is one of those reserved
// for documentation (RFC 2606): under .example or .invalid, or
// example.com, .net or .org. Such a name is an example's placeholder: no
// real server has it. (.test and .localhost, reserved for testing, are
// fine.)
func documentationName(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(host)), ".")
	for _, d := range []string{"example", "invalid", "example.com", "example.net", "example.org"} {
		if h == d || strings.HasSuffix(h, "."+d) {
			return true
		}
	}
	return false
}
