package config

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// TestSecretUnset: a secret the service could not read when it logs in
// is a problem of the service's check, not a failure found at the first
// login: an environment variable unset or empty, a file missing. A command
// is not run to find out.
func TestSecretUnset(t *testing.T) {
	const imap = "accounts: a.yaml\nimap:\n  addr: mail.ca.test:993\n  username: support@ca.test\n"
	for _, tt := range []struct {
		name, text string
		env        map[string]string
		want       string // "" is fine
		is         error
	}{
		{"env set", imap + "  secret: {env: IMAP_PW}\n", map[string]string{"IMAP_PW": "s3cret"}, "", nil},
		{"env unset", imap + "  secret: {env: IMAP_PW}\n", nil,
			"5 imap.secret.env: environment variable IMAP_PW is unset or empty", ErrSecretUnset},
		{"env empty", imap + "  secret: {env: IMAP_PW}\n", map[string]string{"IMAP_PW": ""},
			"5 imap.secret.env: environment variable IMAP_PW is unset or empty", ErrSecretUnset},
		{"the override set", imap + "  secret: {env: IMAP_PW}\n", map[string]string{"TICKETROUTER_IMAP_SECRET": "s3cret"}, "", nil},
		{"no secret but the override", imap, map[string]string{"TICKETROUTER_IMAP_SECRET": "s3cret"}, "", nil},
		{"no secret", imap, nil,
			"2 imap.secret: missing: set TICKETROUTER_IMAP_SECRET, or write {env: NAME}, {file: PATH} or {command: [ARGV...]}", nil},
		{"file there", imap + "  secret: {file: imap-password}\n", nil, "", nil},
		{"file missing", imap + "  secret: {file: no-such-file}\n", nil, "5 imap.secret.file: stat ", fs.ErrNotExist},
		{"command", imap + "  secret: {command: [/no/such/helper]}\n", nil, "", nil},
		{"NATS password unset", imap + "  secret: {file: imap-password}\nnats:\n  url: nats://n1.ca.test:4222\n  user: tr\n  password: {env: NATS_PW}\n", nil,
			"9 nats.password.env: environment variable NATS_PW is unset or empty", ErrSecretUnset},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadText(t, tt.text, tt.env)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected problems: %v", err)
				}
				return
			}
			got := problems(t, err)
			if len(got) != 1 || !strings.HasPrefix(got[0], tt.want) {
				t.Errorf("problems %q, want one beginning %q", got, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
		})
	}
}

// TestPlaceholders: the example's authserv-ids, or any other name reserved
// for documentation, make every sender unauthenticated by
// Authentication-Results: the service's check refuses them where the mode
// reads those headers. route's check does not (a dry run may try the
// example as it is), nor do names reserved for tests.
func TestPlaceholders(t *testing.T) {
	const base = "accounts: a.yaml\nimap:\n  addr: mail.ca.test:993\n  username: support@ca.test\n  secret: {file: imap-password}\nsender_auth:\n"
	for _, tt := range []struct {
		name, auth string
		want       []string
	}{
		{"example", "  mode: both\n  trusted_authserv_ids: [mx1.ca.example, mx2.ca.example]\n", []string{
			`8 sender_auth.trusted_authserv_ids[0]: "mx1.ca.example" is a placeholder`,
			`8 sender_auth.trusted_authserv_ids[1]: "mx2.ca.example" is a placeholder`}},
		{"one of a list", "  mode: authentication-results\n  trusted_authserv_ids:\n    - mx.ca.test\n    - MX.Example.COM.\n", []string{
			`10 sender_auth.trusted_authserv_ids[1]: "MX.Example.COM." is a placeholder`}},
		{"invalid", "  mode: both\n  trusted_authserv_ids: [mx.invalid]\n", []string{
			`8 sender_auth.trusted_authserv_ids[0]: "mx.invalid" is a placeholder`}},
		{"dkim only", "  mode: dkim\n  trusted_authserv_ids: [mx1.ca.example]\n", nil},
		{"test names", "  mode: both\n  trusted_authserv_ids: [mx.ca.test, mx.localhost, myexample.com, example.community]\n", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadText(t, base+tt.auth, nil)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected problems: %v", err)
				}
				if err := c.Check(); err != nil {
					t.Errorf("Check: %v", err)
				}
				return
			}
			got := problems(t, err)
			if len(got) != len(tt.want) {
				t.Fatalf("problems %q, want %q", got, tt.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("problem %q, want it to begin %q", got[i], tt.want[i])
				}
			}
			if !errors.Is(err, ErrPlaceholder) {
				t.Errorf("errors.Is(%v, ErrPlaceholder) = false", err)
			}
		})
	}
	// route's check takes the example as it is.
	c := &Config{}
	c.SenderAuth.Mode = "both"
	c.SenderAuth.TrustedAuthservIDs = []string{"mx1.ca.example"}
	if err := c.Check(); err != nil {
		t.Errorf("Check (route): %v", err)
	}
}
