package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDeskCheck: the desk section is checked when it is on, each problem
// named with its line; the defaults fill what is left out, and the
// environment overrides it like any other section.
func TestDeskCheck(t *testing.T) {
	const agents = "desk:\n  agents: agents.yaml\n"
	for _, c := range []struct {
		name, extra, err string
	}{
		{"off by default", "", ""},
		{"loopback", agents + "  listen: 127.0.0.1:8443\n", ""},
		{"not host:port", agents + "  listen: 8443\n", `desk.listen: "8443" is not host:port or off`},
		{"the probe port", agents + "  listen: 127.0.0.1:8080\n", `desk.listen: "127.0.0.1:8080" is http.listen`},
		{"both on any free port", agents + "  listen: 127.0.0.1:0\nhttp:\n  listen: 127.0.0.1:0\n", ""},
		{"no agents file", "desk:\n  listen: 127.0.0.1:8443\n", "desk.agents: missing"},
		{"agents file missing", "desk:\n  listen: 127.0.0.1:8443\n  agents: nope.yaml\n", "desk.agents: stat "},
		{"plain http beyond loopback", agents + "  listen: 0.0.0.0:8443\n", `desk.listen: "0.0.0.0:8443" is plain HTTP beyond loopback`},
		{"behind a proxy", agents + "  listen: 0.0.0.0:8443\n  trusted_proxies: [10.0.0.0/8, 192.0.2.7]\n  user_header: X-Forwarded-User\n", ""},
		{"a bad proxy", agents + "  listen: 0.0.0.0:8443\n  trusted_proxies: [10.0.0.0/33]\n  user_header: X-Forwarded-User\n", `desk.trusted_proxies[0]: "10.0.0.0/33" is not a CIDR`},
		{"header without proxies", agents + "  listen: 127.0.0.1:8443\n  user_header: X-Forwarded-User\n", "desk.user_header: set, but no trusted_proxies"},
		{"proxies without header", agents + "  listen: 127.0.0.1:8443\n  trusted_proxies: [10.0.0.1]\n", "desk.user_header: missing"},
		{"a bad header", agents + "  listen: 127.0.0.1:8443\n  trusted_proxies: [10.0.0.1]\n  user_header: \"X User\"\n", `desk.user_header: "X User" is not a header field name`},
		{"cert without key", agents + "  listen: 127.0.0.1:8443\n  tls_cert: agents.yaml\n", "desk: tls_cert and tls_key go together"},
		{"red before amber", agents + "  listen: 127.0.0.1:8443\n  sla_amber: 2h\n  sla_red: 1h\n", "desk.sla_red: 1h0m0s is not after sla_amber 2h0m0s"},
		{"negative idle", agents + "  listen: 127.0.0.1:8443\n  session_idle: -1m\n", "desk.session_idle: -1m0s is negative"},
		{"bad queue", agents + "  listen: 127.0.0.1:8443\n  escalation_queue: Escalated.x\n", `desk.escalation_queue: "Escalated.x" is not a queue name`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "agents.yaml"), []byte("agents: []\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := loadIn(t, dir, good+c.extra, nil)
			if ok := c.err == "" && err == nil || c.err != "" && err != nil && strings.Contains(err.Error(), c.err); !ok {
				t.Fatalf("error %v, want %q (\"\": none)", err, c.err)
			}
			if err == nil && cfg.Desk.Agents != "" && cfg.Desk.Agents != filepath.Join(dir, "agents.yaml") {
				t.Errorf("desk.agents %q not relative to the file", cfg.Desk.Agents)
			}
		})
	}
}

// TestDeskDefaultsAndEnv: the defaults, and an override from the
// environment named by the usual rule.
func TestDeskDefaultsAndEnv(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "agents.yaml"), []byte("agents: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadIn(t, dir, good+"desk:\n  listen: 127.0.0.1:8443\n  agents: agents.yaml\n",
		map[string]string{"TICKETROUTER_DESK_SLA_RED": "8h", "TICKETROUTER_DESK_TRUSTED_PROXIES": "10.1.2.3, 10.2.0.0/16",
			"TICKETROUTER_DESK_USER_HEADER": "X-Forwarded-User"})
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Desk.WithDefaults()
	if d.SLAAmber != time.Hour || d.SLARed != 8*time.Hour || d.SessionIdle != 30*time.Minute || d.EscalationQueue != "escalated" {
		t.Errorf("defaults: %+v", d)
	}
	ps, err := d.Proxies()
	if err != nil || len(ps) != 2 || ps[0].String() != "10.1.2.3/32" || ps[1].String() != "10.2.0.0/16" {
		t.Errorf("proxies %v %v", ps, err)
	}
	if err := cfg.CheckDesk(); err != nil {
		t.Errorf("CheckDesk: %v", err)
	}
	cfg.Desk.Listen = ""
	if err := cfg.CheckDesk(); err == nil || !strings.Contains(err.Error(), "desk.listen: missing") {
		t.Errorf("CheckDesk without listen: %v", err)
	}
}

// loadIn writes text as DIR/ticketrouter.yaml, beside an IMAP password
// file DIR/imap-password, and loads it with env as the whole environment,
// checked as the service would check it.
func loadIn(t *testing.T, dir, text string, env map[string]string) (*Config, error) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "imap-password"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ticketrouter.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	lookup := func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
	return load(path, lookup, (*Config).CheckService)
}
