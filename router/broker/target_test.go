package broker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ticketrouter/ticketrouter/ingest"
)

// TestResolveTarget: where an agent tool connects, and with which
// credentials, for each combination of its sources (Sources documents the
// order).
func TestResolveTarget(t *testing.T) {
	xdg := t.TempDir()
	ctxDir := filepath.Join(xdg, "nats", "context")
	if err := os.MkdirAll(ctxDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"full": `{"description":"all of it","url":"nats://n1:4222,nats://n2:4222","user":"agent","password":"pw",
			"creds":"~/keys/agent.creds","cert":"file:///etc/pki/agent.pem","key":"/etc/pki/agent.key","ca":"ca.pem",
			"jetstream_domain":"hub","inbox_prefix":"_INBOX_agents","tls_first":true,"color_scheme":"","jetstream_event_prefix":""}`,
		"token":    `{"url":"","token":"t0ken","nkey":"/keys/agent.nk"}`,
		"nsc":      `{"nsc":"nsc://op/acc/user"}`,
		"op":       `{"creds":"op://vault/item/creds"}`,
		"jwt":      `{"user_jwt":"eyJ..."}`,
		"garbage":  `{"url":`,
		"selected": `{"url":"nats://selected:4222"}`,
	} {
		if err := os.WriteFile(filepath.Join(ctxDir, name+".json"), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	noSelection := t.TempDir()
	selectedXDG := t.TempDir()
	if err := os.MkdirAll(filepath.Join(selectedXDG, "nats", "context"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(selectedXDG, "nats", "context", "sel.json"), []byte(`{"url":"nats://sel:4222","user":"u","password":"p"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(selectedXDG, "nats", "context.txt"), []byte("sel\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptySelection := t.TempDir()
	if err := os.MkdirAll(filepath.Join(emptySelection, "nats"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(emptySelection, "nats", "context.txt"), []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	homeWithSelection := t.TempDir()
	if err := os.Symlink(selectedXDG, filepath.Join(homeWithSelection, ".config")); err != nil {
		t.Fatal(err)
	}
	withURL := &NATSConfig{URL: "nats://cfg:4222", User: "svc", Password: &ingest.Secret{Env: "P"}, CAFile: "cfg-ca.pem"}
	embedded := &NATSConfig{Embedded: EmbeddedConfig{Host: "0.0.0.0", Port: 4333}}
	anyPort := &NATSConfig{Embedded: EmbeddedConfig{Port: -1}}

	tests := []struct {
		name    string
		env     map[string]string
		src     Sources
		check   func(t *testing.T, got Target)
		url     string
		from    string
		wantErr string
	}{
		{name: "nothing", env: map[string]string{"XDG_CONFIG_HOME": noSelection}, url: DefaultURL, from: "default"},
		{name: "no home at all", url: DefaultURL, from: "default"},
		{name: "config URL", env: map[string]string{"XDG_CONFIG_HOME": noSelection}, src: Sources{Config: withURL, ConfigFile: "tr.yaml"},
			url: "nats://cfg:4222", from: "tr.yaml", check: func(t *testing.T, got Target) {
				if got.Auth.User != "svc" || got.Auth.Password == nil || got.Auth.CAFile != "cfg-ca.pem" {
					t.Errorf("config credentials not kept: %+v", got.Auth)
				}
			}},
		{name: "config embedded listener", src: Sources{Config: embedded, ConfigFile: "tr.yaml"}, url: "nats://127.0.0.1:4333", from: "tr.yaml"},
		{name: "config embedded on any port", src: Sources{Config: anyPort, ConfigFile: "tr.yaml"}, wantErr: "tr.yaml: nats.embedded.port is -1 (any free port): pass --nats URL"},
		{name: "--nats with that config", src: Sources{URL: "nats://x:1", Config: anyPort, ConfigFile: "tr.yaml"}, url: "nats://x:1", from: "--nats"},
		{name: "--nats keeps the config's credentials", src: Sources{URL: "nats://x:1", Config: withURL, ConfigFile: "tr.yaml"}, url: "nats://x:1", from: "--nats",
			check: func(t *testing.T, got Target) {
				if got.Auth.User != "svc" {
					t.Errorf("credentials %+v", got.Auth)
				}
			}},
		{name: "NATS_URL and companions", src: Sources{Config: withURL, ConfigFile: "tr.yaml"}, env: map[string]string{
			"NATS_URL": "nats://env:4222", "NATS_USER": "eu", "NATS_PASSWORD": "ep", "NATS_CREDS": "e.creds", "NATS_NKEY": "e.nk",
			"NATS_CERT": "e.pem", "NATS_KEY": "e.key", "NATS_CA": "e-ca.pem",
		}, url: "nats://env:4222", from: "NATS_URL", check: func(t *testing.T, got Target) {
			a := got.Auth
			if a.User != "eu" || got.Password != "ep" || a.Password != nil || a.Credentials != "e.creds" || a.NKeySeed == nil || a.NKeySeed.File != "e.nk" ||
				a.CertFile != "e.pem" || a.KeyFile != "e.key" || a.CAFile != "e-ca.pem" {
				t.Errorf("auth %+v password %q", a, got.Password)
			}
		}},
		{name: "selected context", env: map[string]string{"XDG_CONFIG_HOME": selectedXDG}, src: Sources{Config: withURL, ConfigFile: "tr.yaml"}, url: "nats://sel:4222", from: `nats context "sel"`,
			check: func(t *testing.T, got Target) {
				if got.Auth.User != "u" || got.Password != "p" || got.Auth.Password != nil || got.Auth.CAFile != "" {
					t.Errorf("the config's credentials leaked into the context's: %+v", got.Auth)
				}
			}},
		{name: "NATS_URL before the selected context", env: map[string]string{"XDG_CONFIG_HOME": selectedXDG, "NATS_URL": "nats://env:4222"}, url: "nats://env:4222", from: "NATS_URL"},
		{name: "an empty selection", env: map[string]string{"XDG_CONFIG_HOME": emptySelection}, src: Sources{Config: withURL, ConfigFile: "tr.yaml"}, url: "nats://cfg:4222", from: "tr.yaml"},
		{name: "HOME without a nats configuration", env: map[string]string{"HOME": noSelection}, url: DefaultURL, from: "default"},
		{name: "selected context under HOME", env: map[string]string{"HOME": homeWithSelection}, url: "nats://sel:4222", from: `nats context "sel"`},
		{name: "--context before NATS_URL", env: map[string]string{"XDG_CONFIG_HOME": xdg, "NATS_URL": "nats://env:4222", "HOME": "/home/agent"}, src: Sources{Context: "full"},
			url: "nats://n1:4222,nats://n2:4222", from: `nats context "full"`, check: func(t *testing.T, got Target) {
				a := got.Auth
				if a.User != "agent" || got.Password != "pw" || a.Credentials != "/home/agent/keys/agent.creds" || a.CertFile != "/etc/pki/agent.pem" ||
					a.KeyFile != "/etc/pki/agent.key" || a.CAFile != "ca.pem" || got.JSDomain != "hub" || got.InboxPrefix != "_INBOX_agents" || !got.TLSFirst {
					t.Errorf("target %+v", got)
				}
			}},
		{name: "NATS_CONTEXT before NATS_URL", env: map[string]string{"XDG_CONFIG_HOME": xdg, "NATS_CONTEXT": "token", "NATS_URL": "nats://env:4222"}, url: DefaultURL, from: `nats context "token"`,
			check: func(t *testing.T, got Target) {
				if got.Token != "t0ken" || got.Auth.NKeySeed == nil || got.Auth.NKeySeed.File != "/keys/agent.nk" {
					t.Errorf("target %+v", got)
				}
			}},
		{name: "--context before NATS_CONTEXT", env: map[string]string{"XDG_CONFIG_HOME": xdg, "NATS_CONTEXT": "token"}, src: Sources{Context: "selected"}, url: "nats://selected:4222", from: `nats context "selected"`},
		{name: "--nats before --context", env: map[string]string{"XDG_CONFIG_HOME": xdg, "HOME": "/home/agent"}, src: Sources{URL: "nats://flag:4222", Context: "full"}, url: "nats://flag:4222", from: "--nats",
			check: func(t *testing.T, got Target) {
				if got.Auth.User != "agent" || got.Password != "pw" {
					t.Errorf("the context's credentials are not kept with --nats: %+v", got)
				}
			}},
		{name: "missing context", env: map[string]string{"XDG_CONFIG_HOME": xdg}, src: Sources{Context: "nope"}, wantErr: `nats context "nope" (--context): open ` + filepath.Join(ctxDir, "nope.json")},
		{name: "missing NATS_CONTEXT", env: map[string]string{"XDG_CONFIG_HOME": xdg, "NATS_CONTEXT": "nope"}, wantErr: `nats context "nope" (NATS_CONTEXT): open`},
		{name: "a path for a name", env: map[string]string{"XDG_CONFIG_HOME": xdg}, src: Sources{Context: "../x"}, wantErr: `nats context "../x" (--context): not a context name`},
		{name: "nsc", env: map[string]string{"XDG_CONFIG_HOME": xdg}, src: Sources{Context: "nsc"}, wantErr: "nsc is not supported by ticketrouter"},
		{name: "user_jwt", env: map[string]string{"XDG_CONFIG_HOME": xdg}, src: Sources{Context: "jwt"}, wantErr: "user_jwt is not supported by ticketrouter"},
		{name: "credential URI", env: map[string]string{"XDG_CONFIG_HOME": xdg}, src: Sources{Context: "op"}, wantErr: "creds: op:// URIs are not supported by ticketrouter"},
		{name: "not JSON", env: map[string]string{"XDG_CONFIG_HOME": xdg}, src: Sources{Context: "garbage"}, wantErr: `nats context "garbage": ` + filepath.Join(ctxDir, "garbage.json") + ": unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.src.Getenv = func(k string) string { return tt.env[k] }
			got, err := ResolveTarget(tt.src)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ResolveTarget: %+v, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ResolveTarget: %v", err)
			}
			if got.URL != tt.url || got.From != tt.from {
				t.Errorf("URL %q from %q, want %q from %q", got.URL, got.From, tt.url, tt.from)
			}
			if tt.check != nil {
				tt.check(t, got)
			}
		})
	}
}
