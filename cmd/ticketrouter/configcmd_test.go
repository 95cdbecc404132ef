package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCheck: 'config check' accepts a good file and names every
// problem of a bad one with its file and line, including problems in the
// files it names.
func TestConfigCheck(t *testing.T) {
	accounts, err := os.ReadFile("examples/accounts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const good = `accounts: accounts.yaml
imap:
  addr: mail.example.com:993
  username: support@example.com
  secret: {env: TICKETROUTER_IMAP_SECRET}
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
				`ticketrouter: ticketrouter.yaml:3: imap.addr: "" is not host:port`,
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
