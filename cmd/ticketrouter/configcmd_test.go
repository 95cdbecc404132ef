package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ticketrouter/ticketrouter/deploy/examples"
)

// TestConfigCheck: 'config check' accepts a good file and names every
// problem of a bad one with its file and line, including problems in the
// files it names.
func TestConfigCheck(t *testing.T) {
	t.Setenv("TICKETROUTER_TEST_IMAP_SECRET", "s3cret") // as in production: set
	t.Setenv("TICKETROUTER_IMAP_SECRET", "")            // and not overridden
	accounts, err := os.ReadFile("../../deploy/examples/accounts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const good = `accounts: accounts.yaml
imap:
  addr: mail.example.com:993
  username: support@example.com
  secret: {env: TICKETROUTER_TEST_IMAP_SECRET}
`
	tests := []struct {
		name     string
		config   string
		accounts string // replaces the example accounts
		policy   string // written as policy.yaml
		code     int
		want     []string // lines of output, in order
	}{
		{
			name:   "good",
			config: good,
			code:   exitOK,
			want:   []string{"ticketrouter.yaml: OK (9 accounts, mailboxes [INBOX], NATS embedded on 127.0.0.1:4222)"},
		},
		{
			name:   "unknown field",
			config: good + "  pol_interval: 5s\n",
			code:   exitError,
			want:   []string{"ticketrouter: ticketrouter.yaml:6: imap.pol_interval: unknown field"},
		},
		{
			name: "every problem, each on its line",
			config: `accounts: accounts.yaml
imap:
  username: support@example.com
  secret: {env: A, file: b}
http:
  listen: nonsense
log:
  level: loud
replica:
  lease_ttl: 1s
`,
			code: exitError,
			want: []string{
				`ticketrouter: ticketrouter.yaml:2: imap.addr: missing: want host:port`,
				`ticketrouter: ticketrouter.yaml:4: imap.secret: want exactly one of env, file and command`,
				`ticketrouter: ticketrouter.yaml:6: http.listen: "nonsense" is not host:port or off`,
				`ticketrouter: ticketrouter.yaml:8: log.level: "loud" is not debug, info, warn or error`,
				`ticketrouter: ticketrouter.yaml:10: replica.lease_ttl: 1s is too short (want at least 3s)`,
			},
		},
		{
			name:   "plaintext IMAP off loopback",
			config: strings.Replace(good, "  username:", "  security: plain\n  username:", 1),
			code:   exitError,
			want:   []string{"ticketrouter: ticketrouter.yaml:4: imap.security: plaintext IMAP to mail.example.com, which is not loopback, sends the password in clear; use tls or starttls, or set allow_insecure"},
		},
		{
			name:   "processed folder is INBOX in another case",
			config: good + "  processed: inbox\n",
			code:   exitError,
			want:   []string{`ticketrouter: ticketrouter.yaml:6: imap.processed: the processed folder "inbox" is the watched mailbox "INBOX"`},
		},
		{
			name:   "NATS url and embedded both",
			config: good + "nats:\n  url: nats://n1:4222\n  embedded: {port: 4223}\n",
			code:   exitError,
			want:   []string{"ticketrouter: ticketrouter.yaml:8: nats.embedded: set, but nats.url points at another server"},
		},
		{
			name:     "a bad accounts file",
			config:   good,
			accounts: "accounts:\n  - id: X-1\n    colour: purple\n    admin_email: a@x.example\n",
			code:     exitError,
			want:     []string{`ticketrouter: accounts.yaml:2: colour: unknown colour "purple"`},
		},
		{
			name:   "a bad policy file",
			config: good + "policy: policy.yaml\n",
			policy: "rows:\n  - id: 1\n    when: {colour: [purpel]}\n    disposition: verified\n",
			code:   exitError,
			want: []string{
				"ticketrouter: policy.yaml:1: version: want 1, got 0",
				"ticketrouter: policy.yaml:1: default_intent: ",
				"ticketrouter: policy.yaml:1: extraction.order_number_length: ",
				`ticketrouter: policy.yaml:3: rows[0].when.colour[0]: unknown colour "purpel"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write := func(name, data string) {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write("ticketrouter.yaml", tt.config)
			write("accounts.yaml", string(accounts))
			if tt.accounts != "" {
				write("accounts.yaml", tt.accounts)
			}
			if tt.policy != "" {
				write("policy.yaml", tt.policy)
			}
			t.Chdir(dir)
			var out bytes.Buffer
			code := run(t.Context(), []string{"config", "check", "ticketrouter.yaml"}, nil, &out, &out)
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if code != tt.code || len(lines) != len(tt.want) {
				t.Fatalf("exit %d, want %d; output:\n%s\nwant %d lines:\n%s", code, tt.code, out.String(), len(tt.want), strings.Join(tt.want, "\n"))
			}
			for i, want := range tt.want {
				if !strings.Contains(lines[i], want) {
					t.Errorf("line %d: %q\nwant it to hold %q", i+1, lines[i], want)
				}
			}
		})
	}
}

// configCheck writes config (and the example accounts) into a temporary
// folder and runs 'config check' there; it returns the exit code and the
// output's lines.
func configCheck(t *testing.T, config string) (int, []string) {
	t.Helper()
	dir := t.TempDir()
	accounts, err := examples.FS.ReadFile("accounts.yaml") // the working directory changes
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"ticketrouter.yaml": []byte(config), "accounts.yaml": accounts} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	var out bytes.Buffer
	code := run(t.Context(), []string{"config", "check", "ticketrouter.yaml"}, nil, &out, &out)
	return code, strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
}

// checkLines fails unless the output is exactly want, line by line.
func checkLines(t *testing.T, code int, lines []string, wantCode int, want []string) {
	t.Helper()
	if code != wantCode || strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("exit %d, want %d; output:\n%s\nwant:\n%s", code, wantCode, strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// TestConfigCheckEveryProblemAtOnce: a file with seven mistakes of
// different kinds (a value of the wrong type, a key misspelt, a key written
// twice, a list written as one value, a bad subject prefix, a bad
// listener, a lease too short) has all seven reported in one run, by line.
func TestConfigCheckEveryProblemAtOnce(t *testing.T) {
	t.Setenv("TICKETROUTER_IMAP_SECRET", "s3cret")
	code, lines := configCheck(t, `accounts: accounts.yaml
subject_prefix: help desk
sender_auth:
  mode: dkim
  max_signatures: many
imap:
  addr: mail.example.com:993
  username: support@example.com
  secret: {env: TICKETROUTER_IMAP_SECRET}
  pol_interval: 5s
  addr: mail.example.com:143
  mailboxes: INBOX
http:
  listen: nonsense
replica:
  lease_ttl: 1s
`)
	checkLines(t, code, lines, exitError, []string{
		`ticketrouter: ticketrouter.yaml:2: subject_prefix: "help desk" is no NATS subject prefix: want dot-separated tokens without spaces, '*' or '>'`,
		`ticketrouter: ticketrouter.yaml:5: sender_auth.max_signatures: want a whole number, got "many"`,
		`ticketrouter: ticketrouter.yaml:10: imap.pol_interval: unknown field (did you mean poll_interval?)`,
		`ticketrouter: ticketrouter.yaml:11: imap.addr: written twice (first on line 7)`,
		`ticketrouter: ticketrouter.yaml:12: imap.mailboxes: want a list, got a single value`,
		`ticketrouter: ticketrouter.yaml:14: http.listen: "nonsense" is not host:port or off`,
		`ticketrouter: ticketrouter.yaml:16: replica.lease_ttl: 1s is too short (want at least 3s)`,
	})
}

// TestConfigCheckYAMLSyntaxLine: a YAML syntax error is reported on the
// line where it is, not the line before.
func TestConfigCheckYAMLSyntaxLine(t *testing.T) {
	for _, tt := range []struct {
		name, config, want string
	}{
		{"a list item in a mapping", "accounts: accounts.yaml\nimap:\n  addr: mail.example.com:993\n  - INBOX\n",
			"ticketrouter: ticketrouter.yaml:4: not valid YAML: did not find expected key"},
		{"a key outdented", "accounts: accounts.yaml\nimap:\n  addr: mail.example.com:993\n username: x\n",
			"ticketrouter: ticketrouter.yaml:4: not valid YAML: did not find expected key"},
		{"a tab", "accounts: accounts.yaml\nimap:\n  addr: a\n\tusername: x\n",
			"ticketrouter: ticketrouter.yaml:4: not valid YAML: found a tab character that violates indentation"},
		{"a list not closed", "accounts: accounts.yaml\nimap:\n  mailboxes: [INBOX, Support\n  username: x\n",
			"ticketrouter: ticketrouter.yaml:3: not valid YAML: did not find expected ',' or ']'"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, lines := configCheck(t, tt.config)
			checkLines(t, code, lines, exitError, []string{tt.want})
		})
	}
}

// TestConfigCheckEnvironment: every setting can come from the environment,
// and a bad value there is named by its variable, not by a line.
func TestConfigCheckEnvironment(t *testing.T) {
	const config = `accounts: accounts.yaml
imap:
  addr: mail.example.com:993
  username: support@example.com
`
	t.Setenv("TICKETROUTER_IMAP_SECRET", "s3cret")
	t.Setenv("TICKETROUTER_NATS_URL", "nats://n1.example.com:4222")
	t.Setenv("TICKETROUTER_IMAP_MAILBOXES", "INBOX, Support")
	code, lines := configCheck(t, config)
	checkLines(t, code, lines, exitOK, []string{"ticketrouter.yaml: OK (9 accounts, mailboxes [INBOX Support], NATS nats://n1.example.com:4222)"})

	t.Setenv("TICKETROUTER_IMAP_MAX_SIZE", "25MB")
	t.Setenv("TICKETROUTER_HTTP_LISTEN", "everywhere")
	code, lines = configCheck(t, config)
	checkLines(t, code, lines, exitError, []string{
		`ticketrouter: environment TICKETROUTER_HTTP_LISTEN: http.listen: "everywhere" is not host:port or off`,
		`ticketrouter: environment TICKETROUTER_IMAP_MAX_SIZE: imap.max_size: want a whole number, got "25MB"`,
	})
}

// TestConfigCheckNotReady: a secret whose variable is unset, or the
// example's placeholder authserv-ids, would let the service start and
// fail (no login) or misroute every mail (needs-verification): config
// check says so and exits non-zero.
func TestConfigCheckNotReady(t *testing.T) {
	const config = `accounts: accounts.yaml
sender_auth:
  mode: both
  trusted_authserv_ids: [mx1.ca.example, mx.ca.test]
imap:
  addr: 127.0.0.1:993
  username: support@example.com
  secret: {env: TICKETROUTER_TEST_NO_SUCH_SECRET}
nats: {embedded: {port: -1}}
http: {listen: 127.0.0.1:0}
`
	t.Setenv("TICKETROUTER_TEST_NO_SUCH_SECRET", "")
	want := []string{
		`ticketrouter: ticketrouter.yaml:4: sender_auth.trusted_authserv_ids[0]: "mx1.ca.example" is a placeholder (a name reserved for documentation): write the authserv-id your inbound mail servers put in Authentication-Results, or no sender is authenticated by them and mail from admins ends needs-verification`,
		`ticketrouter: ticketrouter.yaml:8: imap.secret.env: environment variable TICKETROUTER_TEST_NO_SUCH_SECRET is unset or empty`,
	}
	code, lines := configCheck(t, config)
	checkLines(t, code, lines, exitError, want)

	// run refuses to start, for the same reasons. (Were it to start, the
	// context, done already, would stop it at once.)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out bytes.Buffer
	code = run(ctx, []string{"run", "--config", "ticketrouter.yaml"}, nil, &out, &out)
	checkLines(t, code, strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n"), exitError, want)

	// Fixed, it is OK.
	t.Setenv("TICKETROUTER_TEST_NO_SUCH_SECRET", "s3cret")
	code, lines = configCheck(t, strings.Replace(config, "mx1.ca.example", "mx1.ca.test", 1))
	checkLines(t, code, lines, exitOK, []string{"ticketrouter.yaml: OK (9 accounts, mailboxes [INBOX], NATS embedded on 127.0.0.1:-1)"})
}
