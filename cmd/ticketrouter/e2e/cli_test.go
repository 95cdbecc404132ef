package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCommandLine runs the built binary as an operator would: the
// version, help for every command (without doing its work), completion,
// and usage errors that say what is missing.
func TestCommandLine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	version := regexp.MustCompile(`^ticketrouter \S+ \(commit [^,)]+(, modified)?, go[0-9.]+\S*\)\n$`)
	for _, tt := range []struct {
		args   []string
		code   int
		stdout string // a regular expression; "" must be empty
		stderr string
	}{
		{[]string{"--version"}, exitOK, version.String(), ""},
		{[]string{"version"}, exitOK, version.String(), ""},
		{[]string{"--help"}, exitOK, `(?s)Usage:.*queue.*route.*run`, ""},
		{[]string{"config", "check", "--help"}, exitOK, `(?s)Usage:\n  ticketrouter config check FILE`, ""},
		{[]string{"run", "--help"}, exitOK, `(?s)Usage:\n  ticketrouter run --config FILE`, ""},
		{[]string{"queue", "next", "-h"}, exitOK, `(?s)Usage:\n  ticketrouter queue next QUEUE`, ""},
		{[]string{"completion", "bash"}, exitOK, `(?s)bash completion.*ticketrouter`, ""},
		{nil, exitUsage, "", `^ticketrouter: missing command: want one of .*\nRun 'ticketrouter --help' for usage\.\n$`},
		{[]string{"route", "mail.eml"}, exitUsage, "", `no account directory: give --accounts FILE, or --config FILE with accounts set`},
		{[]string{"config", "check"}, exitUsage, "", `ticketrouter config check: accepts 1 arg\(s\), received 0`},
		{[]string{"run"}, exitUsage, "", `ticketrouter run: --config FILE is required`},
	} {
		code, out, errOut := runBinary(t, nil, tt.args...)
		if code != tt.code || !matches(tt.stdout, out) || !matches(tt.stderr, errOut) {
			t.Errorf("ticketrouter %q: exit %d, stdout %.200q, stderr %.200q; want exit %d, stdout ~ %q, stderr ~ %q",
				tt.args, code, out, errOut, tt.code, tt.stdout, tt.stderr)
		}
	}
}

// TestConfigCheckBinary: config check reports every problem of a file in
// one run, from the environment too, named as such.
func TestConfigCheckBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	accounts, err := os.ReadFile("../../../deploy/examples/accounts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	config := `accounts: accounts.yaml
imap:
  addr: mail.ca.test:993
  username: support@ca.test
  secret: {env: TICKETROUTER_IMAP_SECRET}
  processed: inbox
  pol_interval: 5s
http:
  listen: nonsense
`
	for name, data := range map[string][]byte{"ticketrouter.yaml": []byte(config), "accounts.yaml": accounts} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "ticketrouter.yaml")
	code, out, errOut := runBinary(t, []string{"TICKETROUTER_IMAP_MAX_SIZE=25MB"}, "config", "check", path)
	want := []string{
		"ticketrouter.yaml:5: imap.secret.env: environment variable TICKETROUTER_IMAP_SECRET is unset or empty",
		`ticketrouter.yaml:6: imap.processed: the processed folder "inbox" is the watched mailbox "INBOX"`,
		"ticketrouter.yaml:7: imap.pol_interval: unknown field (did you mean poll_interval?)",
		`ticketrouter.yaml:9: http.listen: "nonsense" is not host:port or off`,
		`environment TICKETROUTER_IMAP_MAX_SIZE: imap.max_size: want a whole number, got "25MB"`,
	}
	if code != exitError || out != "" {
		t.Errorf("exit %d, stdout %q; want 1 and nothing", code, out)
	}
	for _, w := range want {
		if !strings.Contains(errOut, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errOut)
		}
	}
	if n := strings.Count(errOut, "\n"); n != len(want) {
		t.Errorf("%d lines on stderr, want %d:\n%s", n, len(want), errOut)
	}
}

// matches reports whether s matches the regular expression re; an empty
// re wants s empty.
func matches(re, s string) bool {
	if re == "" {
		return s == ""
	}
	return regexp.MustCompile(re).MatchString(s)
}
