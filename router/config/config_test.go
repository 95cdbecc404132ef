package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ticketrouter/ticketrouter/ingest"
	"github.com/ticketrouter/ticketrouter/rules/senderauth"
)

// loadText writes text as DIR/ticketrouter.yaml, beside an IMAP password
// file DIR/imap-password, and loads it with env as the whole environment,
// checked as the service would check it.
func loadText(t *testing.T, text string, env map[string]string) (*Config, error) {
	t.Helper()
	return loadIn(t, t.TempDir(), text, env)
}

// problems returns err's problems as "LINE field: msg" (or "ENV field:
// msg"), failing unless err is Errors.
func problems(t *testing.T, err error) []string {
	t.Helper()
	var list Errors
	if !errors.As(err, &list) {
		t.Fatalf("error %v (%T) is not Errors", err, err)
	}
	out := make([]string, len(list))
	for i, e := range list {
		where := e.Env
		if where == "" {
			where = strconv.Itoa(e.Line)
		}
		out[i] = where + " " + e.Field + ": " + e.Msg
	}
	return out
}

// good is a configuration the service accepts; tests add to it.
const good = `accounts: accounts.yaml
imap:
  addr: mail.ca.test:993
  username: support@ca.test
  secret: {file: imap-password}
`

// TestFieldErrorAs: every problem is a FieldError that errors.As finds,
// with the file, the line, the field and the message apart; and errors.Is
// sees what lies under one (a missing file).
func TestFieldErrorAs(t *testing.T) {
	_, err := loadText(t, good+"  ca_file: no-such-ca.pem\n  max_size: big\n", nil)
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("errors.As found no *FieldError in %v", err)
	}
	if filepath.Base(fe.File) != "ticketrouter.yaml" || fe.Line != 6 || fe.Field != "imap.ca_file" || fe.Env != "" {
		t.Errorf("first problem %+v: want ticketrouter.yaml line 6, imap.ca_file", fe)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
	}
	var list Errors
	if !errors.As(err, &list) || len(list) != 2 {
		t.Fatalf("want Errors of 2 problems (ca_file, max_size), got %v", err)
	}
	if list[1].Field != "imap.max_size" || list[1].Line != 7 || list[1].Msg != `want a whole number, got "big"` {
		t.Errorf("second problem %+v", list[1])
	}
	want := fe.File + `:7: imap.max_size: want a whole number, got "big"`
	if got := list[1].Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestEveryProblemAtOnce: problems of decoding (a value of the wrong kind,
// an unknown or repeated key) and of checking come in one list, in line
// order, one a setting.
func TestEveryProblemAtOnce(t *testing.T) {
	_, err := loadText(t, `accounts: accounts.yaml
subject_prefix: help desk
sender_auth:
  mode: sometimes
  dns_timeout: 5
  max_signatures: [1]
imap:
  addr: mail.ca.test
  adr: mail.ca.test:993
  security: plain
  username: support@ca.test
  secret: hunter2
  poll_interval: -1s
  idle: maybe
  mailboxes: [INBOX, Processed]
  mailboxes: [INBOX]
nats:
  replicas: 9
  user: ticketrouter
http: {listen: nonsense}
log:
  level: loud
  format: xml
replica: {lease_ttl: 1s}
poll_interval: 5s
`, nil)
	want := []string{
		`2 subject_prefix: "help desk" is no NATS subject prefix: want dot-separated tokens without spaces, '*' or '>'`,
		`4 sender_auth.mode: "sometimes" is not one of off, authentication-results, dkim, both`,
		`5 sender_auth.dns_timeout: want a duration such as 30s, 5m or 2h, got "5"`,
		`6 sender_auth.max_signatures: want a whole number, got a list`,
		`8 imap.addr: "mail.ca.test" is not host:port`,
		`9 imap.adr: unknown field (did you mean addr?)`,
		`12 imap.secret: want a mapping: {env: NAME}, {file: PATH} or {command: [ARGV...]}, got a single value`,
		`13 imap.poll_interval: -1s is negative`,
		`14 imap.idle: want true or false, got "maybe"`,
		`15 imap.mailboxes: the processed folder "Processed" is the watched mailbox "Processed": handled mail would be moved onto itself (INBOX is one mailbox in any letter case)`,
		`16 imap.mailboxes: written twice (first on line 15)`,
		`17 nats.password: missing for user ticketrouter: set TICKETROUTER_NATS_PASSWORD, or write {env: NAME}, {file: PATH} or {command: [ARGV...]}`,
		`18 nats.replicas: 9 is not between 1 and 5`,
		`20 http.listen: "nonsense" is not host:port or off`,
		`22 log.level: "loud" is not debug, info, warn or error`,
		`23 log.format: "xml" is not auto, json or console`,
		`24 replica.lease_ttl: 1s is too short (want at least 3s)`,
		`25 poll_interval: unknown field (did you mean imap.poll_interval?)`,
	}
	got := problems(t, err)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a secret written in the file shows in the error: %v", err)
	}
}

// TestSyntaxErrorLine: a file that is not YAML is reported on the line
// where the problem is. yaml.v3 counts the lines of its parser's errors
// from 0, and puts its scanner's at the start of the token.
func TestSyntaxErrorLine(t *testing.T) {
	for _, tt := range []struct {
		name, text string
		line       int
		msg        string
	}{
		{"list item in a mapping", "accounts: a\nimap:\n  addr: x\n  - INBOX\n", 4, "did not find expected key"},
		{"key outdented", "accounts: a\nimap:\n  addr: x\n username: y\n", 4, "did not find expected key"},
		{"mapping in a list", "accounts: a\nimap:\n  mailboxes:\n  - a\n  b: 2\n  - c\n", 6, "did not find expected key"},
		{"sequence then mapping at the top", "- a\nb: c\n", 2, "did not find expected '-' indicator"},
		{"list not closed", "accounts: a\nimap:\n  mailboxes: [INBOX, Support\n  username: x\n", 3, "did not find expected ',' or ']'"},
		{"mapping not closed on the last line", "accounts: a\nimap: {addr: x\n", 2, "did not find expected ',' or '}'"},
		{"tab", "accounts: a\nimap:\n  addr: a\n\tusername: x\n", 4, "found a tab character that violates indentation"},
		{"scanner error on line 1", "accounts: @a\n", 1, "found character that cannot start any token"},
		{"mapping value in a value", "accounts: a\nimap: addr: x\n", 2, "mapping values are not allowed in this context"},
		{"quote not closed", "accounts: a\npolicy: \"p.yaml\nimap: {}\n", 2, "found unexpected end of stream"},
		{"unknown anchor", "accounts: a\nimap:\n  addr: x\n  username: *who\n", 4, "unknown anchor 'who' referenced"},
		{"control character", "accounts: a\npolicy: p\x01\n", 2, "control characters are not allowed"},
		{"after 2000 lines", "imap:\n" + strings.Repeat("  # a comment\n  mailboxes: [a]\n", 1000) + "  - x\n", 2002, "did not find expected key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadText(t, tt.text, nil)
			var list Errors
			if !errors.As(err, &list) || len(list) != 1 {
				t.Fatalf("want one problem, got %v", err)
			}
			if e := list[0]; e.Line != tt.line || e.Msg != "not valid YAML: "+tt.msg || e.Field != "" {
				t.Errorf("got line %d %q (field %q), want line %d %q", e.Line, e.Msg, e.Field, tt.line, "not valid YAML: "+tt.msg)
			}
		})
	}
}

// TestSuggest: an unknown key gets the known key it is a slip for, or the
// place where it belongs.
func TestSuggest(t *testing.T) {
	for _, tt := range []struct {
		text, want string
	}{
		{"imap:\n  pol_interval: 5s\n", "imap.pol_interval: unknown field (did you mean poll_interval?)"},
		{"imap:\n  Addr: x:1\n", "imap.Addr: unknown field (did you mean addr?)"},
		{"imap:\n  max-size: 1\n", "imap.max-size: unknown field (did you mean max_size?)"},
		{"sender_auth:\n  trust: [x]\n", "sender_auth.trust: unknown field"},
		{"acounts: a.yaml\n", "acounts: unknown field (did you mean accounts?)"},
		{"lease_ttl: 5s\n", "lease_ttl: unknown field (did you mean replica.lease_ttl?)"},
		{"ca_file: x.pem\n", "ca_file: unknown field"}, // imap's or nats'?
		{"nats:\n  embedded:\n    stor_dir: x\n", "nats.embedded.stor_dir: unknown field (did you mean store_dir?)"},
		{"imap:\n  secret: {envv: X}\n", "imap.secret.envv: unknown field (did you mean env?)"},
		{"nats:\n  addr: x:1\n", "nats.addr: unknown field"}, // imap's or smtp's?
		{"nats:\n  mailboxes: [x]\n", "nats.mailboxes: unknown field (did you mean imap.mailboxes?)"},
	} {
		_, err := loadText(t, tt.text, nil)
		field, _, _ := strings.Cut(tt.want, ":")
		var list Errors
		errors.As(err, &list)
		i := slices.IndexFunc(list, func(e *FieldError) bool { return e.Field == field })
		if i < 0 || list[i].Field+": "+list[i].Msg != tt.want {
			t.Errorf("%q: got %v\nwant %s", tt.text, err, tt.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"addr", "addr", 0}, {"adr", "addr", 1}, {"pol_interval", "poll_interval", 1},
		{"max-size", "max_size", 1}, {"kitten", "sitting", 3}, {"", "abc", 3}, {"ñame", "name", 1},
	} {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestLoad: a good file loads with every value, the defaults filled in,
// relative paths resolved against the file's folder, anchors and merge
// keys followed.
func TestLoad(t *testing.T) {
	c, err := loadText(t, `accounts: accounts.yaml
policy: /etc/policy.yaml
sender_auth:
  mode: both
  trusted_authserv_ids: [mx1.ca.test]
  dns_timeout: 2s
imap: &imap
  addr: 127.0.0.1:143
  security: plain
  username: support@ca.test
  secret: {file: imap-password}
  idle: false
  mailboxes: [INBOX, Support]
  max_size: 1048576
nats:
  <<: {stream: SUPPORT, replicas: 3}
  replicas: 1
`, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(c.src.file)
	if c.Accounts != filepath.Join(dir, "accounts.yaml") || c.Policy != "/etc/policy.yaml" || c.IMAP.Secret.File != filepath.Join(dir, "imap-password") {
		t.Errorf("paths: accounts %q, policy %q, secret %q", c.Accounts, c.Policy, c.IMAP.Secret.File)
	}
	if c.SenderAuth.Mode != senderauth.ModeBoth || c.SenderAuth.DNSTimeout != 2*time.Second {
		t.Errorf("sender_auth %+v", c.SenderAuth)
	}
	if c.IMAP.Idle == nil || *c.IMAP.Idle || len(c.IMAP.Mailboxes) != 2 || c.IMAP.MaxSize != 1<<20 {
		t.Errorf("imap %+v", c.IMAP)
	}
	if c.NATS.Stream != "SUPPORT" || c.NATS.Replicas != 1 {
		t.Errorf("nats: stream %q, replicas %d: want SUPPORT from the merge and 1 written after it", c.NATS.Stream, c.NATS.Replicas)
	}
	if c.NATS.Embedded.StoreDir != filepath.Join(dir, "nats-data") || c.HTTP.Listen != "127.0.0.1:8080" || c.Replica.LeaseTTL != 10*time.Second || c.Replica.ID == "" {
		t.Errorf("defaults: store %q, listen %q, lease %s, id %q", c.NATS.Embedded.StoreDir, c.HTTP.Listen, c.Replica.LeaseTTL, c.Replica.ID)
	}
	w, err := c.IMAP.WatcherConfig("Support")
	if err != nil || w.Addr != "127.0.0.1:143" || !w.NoIdle || len(w.Mailboxes) != 1 || w.Mailboxes[0] != "Support" || w.Secret != c.IMAP.Secret {
		t.Errorf("WatcherConfig: %+v, %v", w, err)
	}
}

// TestCheckCodeBuilt: a Config built in code (route without a file) is
// checked the same, its problems without a file or line.
func TestCheckCodeBuilt(t *testing.T) {
	c := &Config{SenderAuth: senderauth.Config{Mode: senderauth.ModeBoth}}
	err := c.Check()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.File != "" || fe.Line != 0 || err.Error() != "sender_auth.trusted_authserv_ids: mode both needs at least one trusted authserv-id" {
		t.Errorf("Check: %v", err)
	}
	c.SenderAuth.TrustedAuthservIDs = []string{"mx.ca.test"}
	if err := c.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// TestNATSCheck: settings JetStream or the connection would refuse are
// reported before anything starts, naming the field.
func TestNATSCheck(t *testing.T) {
	tests := []struct {
		name string
		cfg  NATS
		want string // "" is fine
	}{
		{"defaults", NATS{}, ""},
		{"external with user", NATS{URL: "nats://n1:4222", User: "u", Password: &ingest.Secret{Command: []string{"pw"}}}, ""},
		{"two ways to log in", NATS{User: "u", Password: &ingest.Secret{Command: []string{"pw"}}, NKeySeed: &ingest.Secret{Command: []string{"seed"}}}, "nats: want at most one of credentials, nkey_seed and user"},
		{"user without password", NATS{User: "u"}, "nats.password: missing for user u"},
		{"certificate without key", NATS{CertFile: "/dev/null"}, "nats: cert_file and key_file go together"},
		{"six replicas", NATS{Replicas: 6}, "nats.replicas: 6 is not between 1 and 5"},
		{"url and embedded", NATS{URL: "nats://n1:4222", Embedded: Embedded{Port: 4223}}, "nats.embedded: set, but nats.url"},
		{"tiny duplicate window", NATS{DuplicateWindow: 10 * time.Millisecond}, "nats.duplicate_window: 10ms is shorter than JetStream's 100ms"},
		{"max age under the window", NATS{MaxAge: time.Hour}, "nats.max_age: 1h0m0s is shorter than the duplicate window 2h0m0s"},
		{"ack wait under a second", NATS{AckWait: 500 * time.Millisecond}, "nats.ack_wait: 500ms is under a second"},
		{"password source twice", NATS{User: "u", Password: &ingest.Secret{Env: "P", File: "f"}}, "nats.password: want exactly one of env, file and command"},
		{"credentials missing", NATS{Credentials: "/no/such.creds"}, "nats.credentials: stat /no/such.creds: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&Config{NATS: tt.cfg}).CheckNATS()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("CheckNATS: %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
				t.Errorf("CheckNATS: %v, want an error beginning %q", err, tt.want)
			}
		})
	}
}

// TestHostileYAML: anchors and merge keys that refer to themselves, or
// that would multiply a document many times over, neither loop nor blow
// up; every setting is decoded once.
func TestHostileYAML(t *testing.T) {
	laughs := "accounts: a\nx0: &x0 {stream: S}\n"
	for i := 1; i <= 40; i++ {
		laughs += fmt.Sprintf("x%d: &x%d {<<: [*x%d, *x%d]}\n", i, i, i-1, i-1)
	}
	laughs += "nats: {<<: *x40}\n"
	for _, tt := range []struct {
		name, text, want string
	}{
		{"merge of itself", "imap: &x {<<: *x, addr: a:1}\n", ""},
		{"alias of itself", "nats: &x {embedded: *x}\n", "nats.embedded.embedded: unknown field"},
		{"merge of a list", "imap: {<<: [a, b]}\n", "imap: << merges a mapping, got a single value"},
		{"merges doubling 40 times", laughs, "x0: unknown field"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(path, []byte(tt.text), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := load(path, func(string) (string, bool) { return "", false }, func(*Config) error { return nil })
			var list Errors
			errors.As(err, &list)
			if tt.want == "" && err != nil || tt.want != "" && (len(list) == 0 || list[0].Field+": "+list[0].Msg != tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}
