package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDebugListen: the debug listener is off unless debug.listen is set,
// and a value that is not host:port, or is the probe port's, is named
// with its line.
func TestDebugListen(t *testing.T) {
	t.Setenv("TICKETROUTER_TEST_SECRET", "s3cret")
	const base = `accounts: accounts.yaml
imap:
  addr: 127.0.0.1:993
  username: support@ca.example
  secret: {env: TICKETROUTER_TEST_SECRET}
http:
  listen: 0.0.0.0:8080
`
	for _, c := range []struct {
		name, extra, want, err string
	}{
		{"default off", "", "", ""},
		{"loopback", "debug:\n  listen: 127.0.0.1:6060\n", "127.0.0.1:6060", ""},
		{"off", "debug:\n  listen: off\n", "off", ""},
		{"not host:port", "debug:\n  listen: 6060\n", "", `:9: debug.listen: "6060" is not host:port or off`},
		{"the probe port", "debug:\n  listen: 0.0.0.0:8080\n", "", `:9: debug.listen: "0.0.0.0:8080" is http.listen: profiles must not be served on the probe port`},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ticketrouter.yaml")
			if err := os.WriteFile(path, []byte(base+c.extra), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := LoadService(path)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one with %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Debug.Listen != c.want {
				t.Errorf("debug.listen %q, want %q", cfg.Debug.Listen, c.want)
			}
		})
	}
}
