// Package config is ticketrouter's configuration file: its sections, their
// defaults, the environment variables that override them, and the checks
// that name the file, line and field of every problem.
package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ticketrouter/ticketrouter/ingest"
	"github.com/ticketrouter/ticketrouter/router/broker"
	"github.com/ticketrouter/ticketrouter/router/ticket"
	"github.com/ticketrouter/ticketrouter/rules"
	"github.com/ticketrouter/ticketrouter/rules/senderauth"
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
	SenderAuth senderauth.Config `yaml:"sender_auth"`

	// IMAP is the support mailbox (run only).
	IMAP IMAPConfig `yaml:"imap"`
	// NATS is where tickets go (run, queue).
	NATS broker.NATSConfig `yaml:"nats"`
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

// Check reports a level or format that is not one of the known ones.
func (l LogConfig) Check() error {
	var errs []error
	if !slices.Contains([]string{"", "debug", "info", "warn", "error"}, strings.ToLower(l.Level)) {
		errs = append(errs, fmt.Errorf("log.level: %q is not debug, info, warn or error", l.Level))
	}
	if !slices.Contains([]string{"", "auto", "json", "console"}, l.Format) {
		errs = append(errs, fmt.Errorf("log.format: %q is not auto, json or console", l.Format))
	}
	return errors.Join(errs...)
}

// ReplicaConfig identifies a replica and paces its mailbox leases.
type ReplicaConfig struct {
	ID       string        `yaml:"id"`        // hostname-pid when empty
	LeaseTTL time.Duration `yaml:"lease_ttl"` // a dead replica's mailboxes are taken over within it; 10s
}

// Load reads and checks a configuration file, enough for route: errors
// read "FILE:LINE: field: problem".
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	var c Config
	if err := rules.DecodeYAML(path, data, &c); err != nil {
		return nil, err
	}
	if err := c.Check(); err != nil {
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

// LoadRun is Load for a configuration that must also run the service:
// the mailbox, NATS, HTTP, logs and replicas are checked too.
func LoadRun(path string) (*Config, error) {
	cfg, err := Load(path)
	if err != nil {
		return nil, err
	}
	if err := cfg.checkRun(); err != nil {
		data, _ := os.ReadFile(path)
		return nil, fieldError(path, data, err)
	}
	return cfg, nil
}

// checkRun reports what the service needs that route does not: the
// accounts, the mailbox, NATS, HTTP, logs, replicas. It reports every
// problem it finds, joined, each beginning with its field.
func (c *Config) checkRun() error {
	var errs []error
	if c.Accounts == "" {
		errs = append(errs, errors.New("accounts: missing"))
	}
	w := c.IMAP.watcher()
	w.Mailboxes = c.IMAP.Mailboxes
	if err := w.Check(); err != nil {
		errs = append(errs, fmt.Errorf("imap.%w", err))
	}
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
	if err := c.Log.Check(); err != nil {
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

// Check reports what is wrong with the settings route needs; the error begins with the
// field ("sender_auth.mode: ...").
func (c *Config) Check() error {
	if err := c.SenderAuth.Check(); err != nil {
		return fmt.Errorf("sender_auth.%w", err)
	}
	if c.SubjectPrefix != "" && !ticket.ValidPrefix(c.SubjectPrefix) {
		return fmt.Errorf("subject_prefix: %q is no NATS subject prefix: want dot-separated tokens without spaces, '*' or '>'", c.SubjectPrefix)
	}
	return nil
}

// Prefix returns the subject prefix of the tickets.
func (c *Config) Prefix() string {
	if c.SubjectPrefix == "" {
		return ticket.DefaultPrefix
	}
	return c.SubjectPrefix
}

// Watcher returns the IMAP section as the settings of the watcher of one
// mailbox.
func (c *Config) Watcher(mailbox string) (ingest.WatcherConfig, error) {
	w := c.IMAP.watcher()
	w.Mailboxes = []string{mailbox}
	if c.IMAP.CAFile != "" {
		roots, err := certPool(c.IMAP.CAFile)
		if err != nil {
			return w, fmt.Errorf("imap.ca_file: %w", err)
		}
		w.TLSConfig = &tls.Config{RootCAs: roots}
	}
	return w, nil
}

// watcher maps the section onto the watcher's settings, but for the
// mailboxes and the TLS roots.
func (c IMAPConfig) watcher() ingest.WatcherConfig {
	return ingest.WatcherConfig{
		Addr: c.Addr, Security: c.Security, AllowInsecure: c.AllowInsecure,
		Username: c.Username, Mechanism: c.Mechanism, Secret: c.Secret,
		Processed: c.Processed, Quarantine: c.Quarantine,
		MaxSize: c.MaxSize, MaxAttempts: c.MaxAttempts, Concurrency: c.Concurrency,
		PollInterval: c.PollInterval, NoIdle: c.Idle != nil && !*c.Idle, Liveness: c.Liveness,
	}
}

// NATSTarget says where tickets go, for people: the URL (a password in
// it redacted), or the embedded server's address.
func (c *Config) NATSTarget() string {
	if c.NATS.URL != "" {
		return broker.RedactURL(c.NATS.URL)
	}
	e := c.NATS.WithDefaults().Embedded
	return fmt.Sprintf("embedded on %s:%d", e.Host, e.Port)
}
