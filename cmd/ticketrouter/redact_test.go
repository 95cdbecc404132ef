package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCredentialsNeverEchoed: a password or token inside a NATS URL is in
// no output of any command, whether the server is down or the URL does not
// parse.
func TestCredentialsNeverEchoed(t *testing.T) {
	isolateNATSEnv(t)
	const secret = "Pa55-w0rd-sekret"
	dir := t.TempDir()
	accounts, err := os.ReadFile("../../deploy/examples/accounts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts.yaml"), accounts, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "ticketrouter.yaml")
	data := "accounts: accounts.yaml\nimap:\n  addr: mail.example.com:993\n  username: support@example.com\n  secret: {env: HOME}\n" +
		"nats:\n  url: nats://agent:" + secret + "@127.0.0.1:1\n"
	if err := os.WriteFile(cfg, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string // in the output, with the password redacted
	}{
		{[]string{"queue", "list", "--nats", "nats://user:" + secret + "@127.0.0.1:1"}, "nats://user:xxxxx@127.0.0.1:1"},
		{[]string{"queue", "next", "green", "--nats", "nats://user:" + secret + "@127.0.0.1:1"}, "nats://user:xxxxx@127.0.0.1:1"},
		{[]string{"queue", "list", "--nats", "nats://" + secret + "@127.0.0.1:1"}, "nats://xxxxx@127.0.0.1:1"},
		{[]string{"queue", "list", "--nats", "nats://user:" + secret + "@127.0.0.1:bad"}, "nats://user:xxxxx@127.0.0.1:bad"},
		{[]string{"queue", "list", "--config", cfg}, "nats://agent:xxxxx@127.0.0.1:1"},
		{[]string{"config", "check", cfg}, "NATS nats://agent:xxxxx@127.0.0.1:1"},
	} {
		code, out, errOut := runCmd(t, "", tt.args...)
		if strings.Contains(out+errOut, secret) {
			t.Errorf("%q: the password is shown: exit %d\n%s%s", tt.args, code, out, errOut)
		}
		if !strings.Contains(out+errOut, tt.want) {
			t.Errorf("%q: exit %d, output lacks %q:\n%s%s", tt.args, code, tt.want, out, errOut)
		}
	}
}

// isolateNATSEnv keeps the machine's NATS settings out of a test: no
// NATS_URL or NATS_CONTEXT, and an empty nats CLI configuration.
func isolateNATSEnv(t *testing.T) {
	t.Helper()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	for _, v := range []string{"NATS_URL", "NATS_CONTEXT", "NATS_USER", "NATS_PASSWORD", "NATS_CREDS", "NATS_NKEY", "NATS_CERT", "NATS_KEY", "NATS_CA"} {
		t.Setenv(v, "")
	}
}
