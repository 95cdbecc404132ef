// Package config is ticketrouter's configuration: the file that `run`,
// `route`, `queue` and `config check` read, the environment variables that
// override it, its defaults, and the checks that say, with file, line and
// field, everything that is wrong with it at once.
//
// Every setting can be overridden from the environment: the variable is
// TICKETROUTER_ followed by the setting's path upper-cased, with '_'
// between levels (imap.addr is TICKETROUTER_IMAP_ADDR,
// nats.embedded.store_dir TICKETROUTER_NATS_EMBEDDED_STORE_DIR). See
// EnvName for the whole rule.
package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ticketrouter/ticketrouter/ingest"
	"github.com/ticketrouter/ticketrouter/router/ticket"
	"github.com/ticketrouter/ticketrouter/rules/senderauth"
)

// Config is the service's configuration file. route reads the same file,
// so that a setting can be tried on a saved mail before it goes live.
// Relative paths in the file are relative to the file; those from the
// environment to the working directory.
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
	IMAP IMAP `yaml:"imap"`
	// NATS is where tickets go (run, queue).
	NATS NATS `yaml:"nats"`
	// HTTP serves /healthz, /readyz and /metrics (run only).
	HTTP HTTP `yaml:"http"`
	// Debug serves Go's profiles on a listener of its own (run only).
	Debug Debug `yaml:"debug"`
	// Log sets the log level and format.
	Log Log `yaml:"log"`
	// Replica identifies this process among several working one NATS.
	Replica Replica `yaml:"replica"`
	// Desk is the agents' web desk (desk, and run when desk.listen is set).
	Desk Desk `yaml:"desk"`
	// SMTP is where outgoing mail is submitted; nothing is sent without it.
	SMTP SMTP `yaml:"smtp"`

	// src says where each value came from, for the checks' errors; nil
	// for a Config built in code.
	src *source
}

// IMAP is the mailbox side of the service: ingest.WatcherConfig as a file
// spells it.
type IMAP struct {
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

// NATS says where tickets go: an embedded server (URL empty) or an
// existing server or cluster, and how the JetStream side is laid out.
type NATS struct {
	// URL lists the servers (nats://host:4222, comma-separated); empty
	// runs an embedded server.
	URL      string   `yaml:"url"`
	Embedded Embedded `yaml:"embedded"`

	// Authentication, one of: a credentials file (JWT and NKey seed), an
	// NKey seed, or a user and password.
	Credentials string         `yaml:"credentials"`
	NKeySeed    *ingest.Secret `yaml:"nkey_seed"`
	User        string         `yaml:"user"`
	Password    *ingest.Secret `yaml:"password"`
	// TLS: a CA to trust, and a client certificate when the server asks.
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`

	Stream   string `yaml:"stream"`   // TICKETS
	Replicas int    `yaml:"replicas"` // of the stream, the object store and the buckets; 1
	// DuplicateWindow must outlast the longest retry of one mail; tickets
	// published again after it are still caught by the mark kept with
	// the raw mail. 2h.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	// MaxAge is how long tickets (and raw mails) are kept; 90 days.
	MaxAge time.Duration `yaml:"max_age"`
	// AckWait is how long a claimed ticket stays an agent's before the
	// queue hands it out again, unless acknowledged or extended; 5m.
	AckWait time.Duration `yaml:"ack_wait"`
}

// Embedded runs the built-in nats-server.
type Embedded struct {
	StoreDir  string `yaml:"store_dir"`  // JetStream storage; "nats-data" beside the config
	Host      string `yaml:"host"`       // 127.0.0.1
	Port      int    `yaml:"port"`       // 4222; -1 picks a free one
	MaxStore  int64  `yaml:"max_store"`  // bytes of disk; 10 GiB
	MaxMemory int64  `yaml:"max_memory"` // bytes of memory; 256 MiB
}

// HTTP is the operator's HTTP listener.
type HTTP struct {
	Listen string `yaml:"listen"` // host:port; 127.0.0.1:8080 when empty; "off" turns it off
}

// Debug is the opt-in listener of Go's profiles (/debug/pprof/): off
// unless set, and never the probe port, which Kubernetes binds to every
// interface, since a profile shows the process's command line and costs
// CPU while it runs.
type Debug struct {
	Listen string `yaml:"listen"` // host:port, best on loopback; "" or "off": no listener
}

// Log sets logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // auto (default: console on a terminal, else JSON), json, console
}

// Replica identifies a replica and paces its mailbox leases.
type Replica struct {
	ID       string        `yaml:"id"`        // hostname-pid when empty
	LeaseTTL time.Duration `yaml:"lease_ttl"` // a dead replica's mailboxes are taken over within it; 10s
}

// Load reads the configuration file at path, applies the environment's
// overrides and the defaults, and checks the settings every command reads
// (Check). Every problem found is reported at once, as Errors.
func Load(path string) (*Config, error) {
	return load(path, os.LookupEnv, (*Config).Check)
}

// LoadService is Load for the service (run, config check): it checks
// everything the service needs as well (CheckService).
func LoadService(path string) (*Config, error) {
	return load(path, os.LookupEnv, (*Config).CheckService)
}

// load reads path, with lookup standing for the environment, and checks
// the result with check. Problems of the file, of the environment and of
// the values are reported together.
func load(path string, lookup func(string) (string, bool), check func(*Config) error) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	c := &Config{src: &source{file: path, lines: map[string]int{}, env: map[string]string{}, lookup: lookup}}
	syntaxOK := c.decode(data)
	// Paths in the file are relative to the file; those in the
	// environment (applied after) to the working directory.
	dir := filepath.Dir(path)
	for _, p := range c.paths() {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	c.applyEnv(lookup)
	c.applyDefaults(dir)
	if syntaxOK {
		if err := check(c); err != nil {
			c.src.add(err)
		}
	}
	if len(c.src.problems) > 0 {
		return nil, c.src.problems.sorted()
	}
	return c, nil
}

// applyDefaults fills in what the file and the environment left empty.
// dir is the file's folder, where the embedded NATS server's store goes.
func (c *Config) applyDefaults(dir string) {
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
		c.NATS.Embedded.StoreDir = filepath.Join(dir, "nats-data")
	}
}

// paths lists the file paths of the configuration, to resolve relative ones.
func (c *Config) paths() []*string {
	ps := []*string{&c.Accounts, &c.Policy, &c.IMAP.CAFile, &c.NATS.Credentials, &c.NATS.CAFile,
		&c.NATS.CertFile, &c.NATS.KeyFile, &c.NATS.Embedded.StoreDir, &c.Desk.TLSCert, &c.Desk.TLSKey, &c.Desk.Agents, &c.SMTP.CAFile}
	for _, s := range []*ingest.Secret{c.IMAP.Secret, c.NATS.Password, c.NATS.NKeySeed, c.SMTP.Secret} {
		if s != nil {
			ps = append(ps, &s.File)
		}
	}
	return ps
}

// WithDefaults fills in the defaults.
func (c NATS) WithDefaults() NATS {
	if c.Stream == "" {
		c.Stream = "TICKETS"
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = 2 * time.Hour
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 90 * 24 * time.Hour
	}
	if c.AckWait <= 0 {
		c.AckWait = 5 * time.Minute
	}
	e := &c.Embedded
	if e.StoreDir == "" {
		e.StoreDir = "nats-data"
	}
	if e.Host == "" {
		e.Host = "127.0.0.1"
	}
	if e.Port == 0 {
		e.Port = 4222
	}
	if e.MaxStore <= 0 {
		e.MaxStore = 10 << 30
	}
	if e.MaxMemory <= 0 {
		e.MaxMemory = 256 << 20
	}
	return c
}

// WatcherConfig returns the settings of the watcher of one mailbox, with
// the TLS roots of CAFile when it is set. The caller adds its Observer.
func (c *IMAP) WatcherConfig(mailbox string) (ingest.WatcherConfig, error) {
	w := ingest.WatcherConfig{
		Addr: c.Addr, Security: c.Security, AllowInsecure: c.AllowInsecure,
		Username: c.Username, Mechanism: c.Mechanism, Secret: c.Secret,
		Mailboxes: []string{mailbox}, Processed: c.Processed, Quarantine: c.Quarantine,
		MaxSize: c.MaxSize, MaxAttempts: c.MaxAttempts, Concurrency: c.Concurrency,
		PollInterval: c.PollInterval, NoIdle: c.Idle != nil && !*c.Idle, Liveness: c.Liveness,
	}
	if c.CAFile != "" {
		roots, err := certPool(c.CAFile)
		if err != nil {
			return w, fmt.Errorf("imap.ca_file: %w", err)
		}
		w.TLSConfig = &tls.Config{RootCAs: roots}
	}
	return w, nil
}

// Prefix returns the subject prefix of the tickets.
func (c *Config) Prefix() string {
	if c.SubjectPrefix == "" {
		return ticket.DefaultPrefix
	}
	return c.SubjectPrefix
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
