package config

import (
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestEnvNames: each setting has its own variable, which names no other
// setting (so that TICKETROUTER_NATS_NKEY_SEED means nats.nkey_seed and
// nothing else), and every setting can be set from it.
func TestEnvNames(t *testing.T) {
	seen := map[string]string{}
	for _, s := range settings() {
		name := EnvName(s.path)
		if other, dup := seen[name]; dup {
			t.Errorf("%s and %s are both %s", other, s.path, name)
		}
		seen[name] = s.path
		v := reflect.New(s.typ).Elem()
		kind := s.typ.Kind()
		if kind == reflect.Pointer {
			kind = s.typ.Elem().Kind()
		}
		sample := map[reflect.Kind]string{reflect.Bool: "true", reflect.Int: "1", reflect.Int64: "1", reflect.Slice: "a,b"}[kind]
		if s.typ == durationType {
			sample = "1s"
		}
		if err := setFromEnv(v, name, sample); err != nil {
			t.Errorf("%s (%s): %v", name, s.typ, err)
		}
	}
	for path, want := range map[string]string{
		"imap.secret":             "TICKETROUTER_IMAP_SECRET",
		"nats.url":                "TICKETROUTER_NATS_URL",
		"nats.password":           "TICKETROUTER_NATS_PASSWORD",
		"nats.nkey_seed":          "TICKETROUTER_NATS_NKEY_SEED",
		"nats.credentials":        "TICKETROUTER_NATS_CREDENTIALS",
		"nats.embedded.store_dir": "TICKETROUTER_NATS_EMBEDDED_STORE_DIR",
		"sender_auth.mode":        "TICKETROUTER_SENDER_AUTH_MODE",
		"sender_auth.dns_timeout": "TICKETROUTER_SENDER_AUTH_DNS_TIMEOUT",
		"accounts":                "TICKETROUTER_ACCOUNTS",
		"imap.idle":               "TICKETROUTER_IMAP_IDLE",
		"http.listen":             "TICKETROUTER_HTTP_LISTEN",
		"log.format":              "TICKETROUTER_LOG_FORMAT",
		"replica.lease_ttl":       "TICKETROUTER_REPLICA_LEASE_TTL",
	} {
		if seen[want] != path {
			t.Errorf("%s: want variable %s, which names %q", path, want, seen[want])
		}
	}
}

// TestEnvOverride: a variable overrides the file's value, whatever its
// type or depth; an empty one is unset; a path from the environment is
// relative to the working directory, not the file.
func TestEnvOverride(t *testing.T) {
	c, err := loadText(t, good+"  max_size: 5\n  idle: true\nsender_auth: {mode: off}\n", map[string]string{
		"TICKETROUTER_IMAP_ADDR":               "127.0.0.1:143",
		"TICKETROUTER_IMAP_SECURITY":           "plain",
		"TICKETROUTER_IMAP_USERNAME":           "", // unset: the file's stays
		"TICKETROUTER_IMAP_SECRET":             "s3cret",
		"TICKETROUTER_IMAP_MAX_SIZE":           "1048576",
		"TICKETROUTER_IMAP_IDLE":               "false",
		"TICKETROUTER_IMAP_ALLOW_INSECURE":     "1",
		"TICKETROUTER_IMAP_POLL_INTERVAL":      "50ms",
		"TICKETROUTER_IMAP_MAILBOXES":          "INBOX, Support,",
		"TICKETROUTER_SENDER_AUTH_MODE":        "dkim",
		"TICKETROUTER_NATS_EMBEDDED_PORT":      "-1",
		"TICKETROUTER_NATS_EMBEDDED_STORE_DIR": "state/nats",
		"TICKETROUTER_ACCOUNTS":                "/srv/accounts.jsonl",
	})
	if err != nil {
		t.Fatal(err)
	}
	i := c.IMAP
	if i.Addr != "127.0.0.1:143" || i.Security != "plain" || i.Username != "support@ca.test" || !i.AllowInsecure ||
		i.MaxSize != 1<<20 || i.Idle == nil || *i.Idle || i.PollInterval != 50*time.Millisecond ||
		!slices.Equal(i.Mailboxes, []string{"INBOX", "Support"}) {
		t.Errorf("imap %+v", i)
	}
	if i.Secret == nil || i.Secret.Env != "TICKETROUTER_IMAP_SECRET" || i.Secret.File != "" {
		t.Errorf("imap.secret %+v: want {env: TICKETROUTER_IMAP_SECRET}", i.Secret)
	}
	if c.SenderAuth.Mode != "dkim" || c.NATS.Embedded.Port != -1 || c.Accounts != "/srv/accounts.jsonl" {
		t.Errorf("mode %q, port %d, accounts %q", c.SenderAuth.Mode, c.NATS.Embedded.Port, c.Accounts)
	}
	if c.NATS.Embedded.StoreDir != filepath.Join("state", "nats") {
		t.Errorf("store_dir %q: a path from the environment is relative to the working directory", c.NATS.Embedded.StoreDir)
	}
}

// TestEnvProblems: a value from the environment that does not parse, or
// that a check refuses, is named by its variable; the file's problems come
// first, by line.
func TestEnvProblems(t *testing.T) {
	_, err := loadText(t, good+"  concurrency: -1\n", map[string]string{
		"TICKETROUTER_IMAP_MAX_SIZE":      "25MB",
		"TICKETROUTER_IMAP_IDLE":          "sometimes",
		"TICKETROUTER_REPLICA_LEASE_TTL":  "10",
		"TICKETROUTER_HTTP_LISTEN":        "everywhere",
		"TICKETROUTER_NATS_URL":           "nats://n1.ca.test:4222",
		"TICKETROUTER_NATS_EMBEDDED_PORT": "4223",
	})
	want := []string{
		`6 imap.concurrency: -1 is negative`,
		`TICKETROUTER_HTTP_LISTEN http.listen: "everywhere" is not host:port or off`,
		`TICKETROUTER_IMAP_IDLE imap.idle: want true or false, got "sometimes"`,
		`TICKETROUTER_IMAP_MAX_SIZE imap.max_size: want a whole number, got "25MB"`,
		`TICKETROUTER_NATS_EMBEDDED_PORT nats.embedded: set, but nats.url points at another server`,
		`TICKETROUTER_REPLICA_LEASE_TTL replica.lease_ttl: want a duration such as 30s, 5m or 2h, got "10"`,
	}
	if got := problems(t, err); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatal("no FieldError")
	}
	var list Errors
	errors.As(err, &list)
	if got := list[1].Error(); got != `environment TICKETROUTER_HTTP_LISTEN: http.listen: "everywhere" is not host:port or off` {
		t.Errorf("Error() = %q", got)
	}
}
