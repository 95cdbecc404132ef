package main

import (
	"fmt"
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
		// Errors start with the field they are about: find its line.
		section, field, _ := strings.Cut(err.Error(), ":")
		section, field, _ = strings.Cut(section, ".")
		return nil, fmt.Errorf("%s:%d: %w", path, rules.YAMLLine(data, section, strings.TrimSpace(field)), err)
	}
	dir := filepath.Dir(path)
	for _, p := range []*string{&c.Accounts, &c.Policy} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	return &c, nil
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
