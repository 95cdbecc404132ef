package config

import (
	"github.com/ticketrouter/ticketrouter/ingest"
)

// Environment variables that override the file's secrets, so that a
// deployment can keep every secret out of the file.
const (
	envIMAPSecret      = "TICKETROUTER_IMAP_SECRET"      // the IMAP password or OAuth2 token
	envNATSPassword    = "TICKETROUTER_NATS_PASSWORD"    // with nats.user
	envNATSNKeySeed    = "TICKETROUTER_NATS_NKEY_SEED"   // an NKey seed
	envNATSCredentials = "TICKETROUTER_NATS_CREDENTIALS" // path of a credentials file
)

// applyEnv overrides the file's secrets with the environment's.
func (c *Config) applyEnv(lookup func(string) (string, bool)) {
	set := func(name string) bool { v, _ := lookup(name); return v != "" }
	if set(envIMAPSecret) {
		c.IMAP.Secret = &ingest.Secret{Env: envIMAPSecret}
		c.src.env["imap.secret"] = envIMAPSecret
	}
	if set(envNATSPassword) {
		c.NATS.Password = &ingest.Secret{Env: envNATSPassword}
		c.src.env["nats.password"] = envNATSPassword
	}
	if set(envNATSNKeySeed) {
		c.NATS.NKeySeed = &ingest.Secret{Env: envNATSNKeySeed}
		c.src.env["nats.nkey_seed"] = envNATSNKeySeed
	}
	if v, _ := lookup(envNATSCredentials); v != "" {
		c.NATS.Credentials = v
		c.src.env["nats.credentials"] = envNATSCredentials
	}
}
