package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ticketrouter/ticketrouter/ingest"
	"github.com/ticketrouter/ticketrouter/router"
	"github.com/ticketrouter/ticketrouter/rules"
)

// Config is the service's configuration file. route reads the same file,
// so that a setting can be tried on a saved mail before it goes live.
// Relative paths are relative to the file.
type Config struct {
	// Accounts is the account directory (YAML or JSON Lines).
	Accounts string `yaml:"accounts"`
	// Policy replaces the built-in routing policy when set.
	Policy string `yaml:"policy"`
	// SubjectPrefix heads every ticket's subject; helpdesk.tickets when empty.
	SubjectPrefix string `yaml:"subject_prefix"`
	// SenderAuth says how senders are authenticated.
	SenderAuth SenderAuthConfig `yaml:"sender_auth"`

	// IMAP is the support mailbox (run only).
	IMAP IMAPConfig `yaml:"imap"`
	// NATS is where tickets go (run, queue).
	NATS router.NATSConfig `yaml:"nats"`
	// HTTP serves /healthz, /readyz and /metrics (run only).
	HTTP HTTPConfig `yaml:"http"`
	// Log sets the log level and format.
	Log LogConfig `yaml:"log"`
	// Replica identifies this process among several working one NATS.
	Replica ReplicaConfig `yaml:"replica"`
}

// IMAPConfig is the mailbox side of the service: ingest.WatcherConfig as
// a file spells it.
type IMAPConfig struct {
	Addr          string         `yaml:"addr"`     // host:port
	Security      string         `yaml:"security"` // tls (default), starttls, plain
	AllowInsecure bool           `yaml:"allow_insecure"`
	CAFile        string         `yaml:"ca_file"` // trust this CA instead of the system roots
	Username      string         `yaml:"username"`
	Mechanism     string         `yaml:"mechanism"` // login (default), plain, xoauth2, oauthbearer
	Secret        *ingest.Secret `yaml:"secret"`    // the password or the OAuth2 access token
	Mailboxes     []string       `yaml:"mailboxes"`
	Processed     string         `yaml:"processed"`
	Quarantine    string         `yaml:"quarantine"`
	MaxSize       int64          `yaml:"max_size"` // bytes
	MaxAttempts   int            `yaml:"max_attempts"`
	Concurrency   int            `yaml:"concurrency"` // mails of one mailbox handled at once
	PollInterval  time.Duration  `yaml:"poll_interval"`
	Idle          *bool          `yaml:"idle"` // false: poll every poll_interval though the server has IDLE
	Liveness      time.Duration  `yaml:"liveness"`
}

// HTTPConfig is the operator's HTTP listener.
type HTTPConfig struct {
	Listen string `yaml:"listen"` // host:port; 127.0.0.1:8080 when empty; "off" turns it off
}

// LogConfig sets logging.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // auto (default: console on a terminal, else JSON), json, console
}

// ReplicaConfig identifies a replica and paces its mailbox leases.
type ReplicaConfig struct {
	ID       string        `yaml:"id"`        // hostname-pid when empty
	LeaseTTL time.Duration `yaml:"lease_ttl"` // a dead replica's mailboxes are taken over within it; 10s
}

// SenderAuthConfig is rules.SenderAuth with the settings of the DKIM
// verifier that gathers its inputs.
type SenderAuthConfig struct {
	rules.SenderAuth `yaml:",inline"`
	// DNSTimeout bounds each DKIM key lookup; 5s when zero.
	DNSTimeout time.Duration `yaml:"dns_timeout"`
	// MaxSignatures caps the DKIM signatures checked in one mail; 5 when zero.
	MaxSignatures int `yaml:"max_signatures"`
}

// loadConfig reads and checks a configuration file. Errors read
// "FILE:LINE: field: problem".
func loadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	var c Config
	if err := rules.DecodeYAML(path, data, &c); err != nil {
		return nil, err
	}
	if err := c.check(); err != nil {
		return nil, fieldError(path, data, err)
	}
	c.applyDefaults()
	// Paths in the file are relative to the file; those in the
	// environment (applied after) to the working directory.
	dir := filepath.Dir(path)
	for _, p := range c.paths() {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	c.applyEnv()
	return &c, nil
}

// Environment variables that override the file's secrets, so that a
// deployment can keep every secret out of the file.
const (
	envIMAPSecret      = "TICKETROUTER_IMAP_SECRET"      // the IMAP password or OAuth2 token
	envNATSPassword    = "TICKETROUTER_NATS_PASSWORD"    // with nats.user
	envNATSNKeySeed    = "TICKETROUTER_NATS_NKEY_SEED"   // an NKey seed
	envNATSCredentials = "TICKETROUTER_NATS_CREDENTIALS" // path of a credentials file
)

func (c *Config) applyEnv() {
	if os.Getenv(envIMAPSecret) != "" {
		c.IMAP.Secret = &ingest.Secret{Env: envIMAPSecret}
	}
	if os.Getenv(envNATSPassword) != "" {
		c.NATS.Password = &ingest.Secret{Env: envNATSPassword}
	}
	if os.Getenv(envNATSNKeySeed) != "" {
		c.NATS.NKeySeed = &ingest.Secret{Env: envNATSNKeySeed}
	}
	if v := os.Getenv(envNATSCredentials); v != "" {
		c.NATS.Credentials = v
	}
}

func (c *Config) applyDefaults() {
	if c.Replica.ID == "" {
		host, _ := os.Hostname()
		c.Replica.ID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if c.Replica.LeaseTTL <= 0 {
		c.Replica.LeaseTTL = 10 * time.Second
	}
	if len(c.IMAP.Mailboxes) == 0 {
		c.IMAP.Mailboxes = []string{"INBOX"}
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = "127.0.0.1:8080"
	}
	if c.NATS.URL == "" && c.NATS.Embedded.StoreDir == "" {
		c.NATS.Embedded.StoreDir = "nats-data" // beside the file
	}
}

// paths lists the file paths of the configuration, to resolve relative ones.
func (c *Config) paths() []*string {
	ps := []*string{&c.Accounts, &c.Policy, &c.IMAP.CAFile, &c.NATS.Credentials, &c.NATS.CAFile,
		&c.NATS.CertFile, &c.NATS.KeyFile, &c.NATS.Embedded.StoreDir}
	for _, s := range []*ingest.Secret{c.IMAP.Secret, c.NATS.Password, c.NATS.NKeySeed} {
		if s != nil {
			ps = append(ps, &s.File)
		}
	}
	return ps
}

// checkRun reports what the service needs that route does not: the
// accounts, the mailbox, NATS, HTTP, logs, replicas. It reports every
// problem it finds, joined, each beginning with its field.
func (c *Config) checkRun() error {
	var errs []error
	if c.Accounts == "" {
		errs = append(errs, errors.New("accounts: missing"))
	}
	w := ingest.WatcherConfig{
		Addr: c.IMAP.Addr, Security: c.IMAP.Security, AllowInsecure: c.IMAP.AllowInsecure,
		Username: c.IMAP.Username, Mechanism: c.IMAP.Mechanism, Secret: c.IMAP.Secret,
		Mailboxes: c.IMAP.Mailboxes, Processed: c.IMAP.Processed, Quarantine: c.IMAP.Quarantine,
	}
	errs = append(errs, w.Problems("imap.")...)
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"poll_interval", c.IMAP.PollInterval}, {"liveness", c.IMAP.Liveness}} {
		if f.d < 0 {
			errs = append(errs, fmt.Errorf("imap.%s: %s is negative", f.name, f.d))
		}
	}
	for _, f := range []struct {
		name string
		n    int64
	}{{"max_size", c.IMAP.MaxSize}, {"max_attempts", int64(c.IMAP.MaxAttempts)}, {"concurrency", int64(c.IMAP.Concurrency)}} {
		if f.n < 0 {
			errs = append(errs, fmt.Errorf("imap.%s: %d is negative", f.name, f.n))
		}
	}
	if err := c.NATS.Check(); err != nil {
		errs = append(errs, err)
	}
	for _, f := range []struct{ field, path string }{
		{"imap.ca_file", c.IMAP.CAFile}, {"nats.ca_file", c.NATS.CAFile}, {"nats.cert_file", c.NATS.CertFile},
		{"nats.key_file", c.NATS.KeyFile}, {"nats.credentials", c.NATS.Credentials},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.field, err))
		}
	}
	if c.IMAP.CAFile != "" {
		if _, err := certPool(c.IMAP.CAFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("imap.ca_file: %w", err))
		}
	}
	if l := c.HTTP.Listen; l != "off" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			errs = append(errs, fmt.Errorf("http.listen: %q is not host:port or off", l))
		}
	}
	if _, err := newLogger(c.Log, io.Discard); err != nil {
		errs = append(errs, err)
	}
	if c.Replica.LeaseTTL < 3*time.Second {
		errs = append(errs, fmt.Errorf("replica.lease_ttl: %s is too short (want at least 3s)", c.Replica.LeaseTTL))
	}
	return errors.Join(errs...)
}

// certPool reads a PEM file of CA certificates.
func certPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// fieldError prefixes each of err's problems, which begin with a field
// path ("imap.addr:"), with the file and the line where that field is
// written.
func fieldError(path string, data []byte, err error) error {
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	out := make([]error, len(list))
	for i, e := range list {
		head, _, _ := strings.Cut(e.Error(), ":")
		out[i] = fmt.Errorf("%s:%d: %w", path, rules.YAMLLine(data, strings.Split(strings.TrimSpace(head), ".")...), e)
	}
	return errors.Join(out...)
}

// check reports what is wrong with the settings; the error begins with the
// field ("sender_auth.mode: ...").
func (c *Config) check() error {
	if err := c.SenderAuth.Check(); err != nil {
		return fmt.Errorf("sender_auth.%w", err)
	}
	if c.SenderAuth.DNSTimeout < 0 {
		return fmt.Errorf("sender_auth.dns_timeout: %s is negative", c.SenderAuth.DNSTimeout)
	}
	if c.SenderAuth.MaxSignatures < 0 {
		return fmt.Errorf("sender_auth.max_signatures: %d is negative", c.SenderAuth.MaxSignatures)
	}
	if c.SubjectPrefix != "" && !router.ValidPrefix(c.SubjectPrefix) {
		return fmt.Errorf("subject_prefix: %q is no NATS subject prefix: want dot-separated tokens without spaces, '*' or '>'", c.SubjectPrefix)
	}
	return nil
}

// prefix returns the subject prefix to use.
func (c *Config) prefix() string {
	if c.SubjectPrefix == "" {
		return router.DefaultPrefix
	}
	return c.SubjectPrefix
}

// dkimVerifier returns the verifier the settings call for, or nil when
// DKIM is not checked.
func (c *Config) dkimVerifier() *ingest.DKIMVerifier {
	if m := c.SenderAuth.Mode; m != rules.AuthDKIM && m != rules.AuthBoth {
		return nil
	}
	return &ingest.DKIMVerifier{Timeout: c.SenderAuth.DNSTimeout, MaxSignatures: c.SenderAuth.MaxSignatures}
}
