package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/ticketrouter/ticketrouter/router/broker"
	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// startAuthQueueServer is startQueueServer for a server that wants a user
// and password.
func startAuthQueueServer(t *testing.T, user, password string) *queueServer {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		Username: user, Password: password, NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready within 10 s")
	}
	t.Cleanup(s.Shutdown)
	return provisionQueueServer(t, s.ClientURL(), broker.NATSConfig{}, ticket.DefaultPrefix, nats.UserInfo(user, password))
}

// writeNATSContext writes a nats CLI context into the configuration
// directory base, and selects it when selected.
func writeNATSContext(t *testing.T, base, name string, fields map[string]string, selected bool) {
	t.Helper()
	dir := filepath.Join(base, "nats", "context")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(fields)
	if err := os.WriteFile(filepath.Join(dir, name+".json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if selected {
		if err := os.WriteFile(filepath.Join(base, "nats", "context.txt"), []byte(name+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestQueueConnectSources: the queue commands connect where --nats, a nats
// CLI context, NATS_URL and --config say, in the documented order, with
// the credentials of the source chosen. Three servers hold 1, 2 and 3
// green tickets, so the count shows which one answered.
func TestQueueConnectSources(t *testing.T) {
	p := ticket.DefaultPrefix
	a := startQueueServer(t, broker.NATSConfig{}, p) // also empties the environment
	const password = "b-Secret-pw"
	b := startAuthQueueServer(t, "agent", password)
	c := startQueueServer(t, broker.NATSConfig{}, p)
	for i, qs := range []*queueServer{a, b, c} {
		for n := range i + 1 {
			qs.publish(t, testTicket(10*i+n, p, "green", "verified"))
		}
	}
	cfg := filepath.Join(t.TempDir(), "ticketrouter.yaml")
	if err := os.WriteFile(cfg, []byte("nats:\n  url: "+a.url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	xdg := t.TempDir()
	writeNATSContext(t, xdg, "bee", map[string]string{"description": "B", "url": b.url, "user": "agent", "password": password}, true)
	writeNATSContext(t, xdg, "sea", map[string]string{"url": c.url}, false)

	for _, tt := range []struct {
		name     string
		env      map[string]string
		args     []string
		tickets  uint64 // green tickets of the server that answered
		from     string
		errorHas string // instead: the command fails with this
		setup    func(t *testing.T)
	}{
		{name: "NATS_URL", env: map[string]string{"NATS_URL": c.url}, tickets: 3, from: "NATS_URL"},
		{name: "NATS_URL before --config", env: map[string]string{"NATS_URL": c.url}, args: []string{"--config", cfg}, tickets: 3, from: "NATS_URL"},
		{name: "--config", args: []string{"--config", cfg}, tickets: 1, from: cfg},
		{name: "--nats before NATS_URL", env: map[string]string{"NATS_URL": c.url}, args: []string{"--nats", a.url}, tickets: 1, from: "--nats"},
		{name: "NATS_URL with NATS_USER and NATS_PASSWORD", env: map[string]string{"NATS_URL": b.url, "NATS_USER": "agent", "NATS_PASSWORD": password}, tickets: 2, from: "NATS_URL"},
		{name: "NATS_URL without the password", env: map[string]string{"NATS_URL": b.url}, errorHas: "Authorization Violation"},
		{name: "selected context before --config", env: map[string]string{"XDG_CONFIG_HOME": xdg}, args: []string{"--config", cfg}, tickets: 2, from: `nats context "bee"`},
		{name: "NATS_URL before the selected context", env: map[string]string{"XDG_CONFIG_HOME": xdg, "NATS_URL": c.url}, tickets: 3, from: "NATS_URL"},
		{name: "--context before NATS_URL", env: map[string]string{"XDG_CONFIG_HOME": xdg, "NATS_URL": a.url}, args: []string{"--context", "sea"}, tickets: 3, from: `nats context "sea"`},
		{name: "NATS_CONTEXT", env: map[string]string{"XDG_CONFIG_HOME": xdg, "NATS_CONTEXT": "sea"}, tickets: 3, from: `nats context "sea"`},
		{name: "--nats with the selected context's credentials", env: map[string]string{"XDG_CONFIG_HOME": xdg}, args: []string{"--nats", b.url}, tickets: 2, from: "--nats"},
		{name: "~/.config without XDG_CONFIG_HOME", tickets: 3, from: `nats context "sea"`, setup: func(t *testing.T) {
			home := t.TempDir()
			t.Setenv("HOME", home)
			t.Setenv("XDG_CONFIG_HOME", "")
			writeNATSContext(t, filepath.Join(home, ".config"), "sea", map[string]string{"url": c.url}, true)
		}},
		{name: "unknown context", env: map[string]string{"XDG_CONFIG_HOME": xdg}, args: []string{"--context", "nope"}, errorHas: `nats context "nope" (--context): open ` + filepath.Join(xdg, "nats", "context", "nope.json")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			if tt.setup != nil {
				tt.setup(t)
			}
			code, out, errOut := runCmd(t, "", append([]string{"queue", "list", "--json"}, tt.args...)...)
			if strings.Contains(out+errOut, password) {
				t.Errorf("the password is shown:\n%s%s", out, errOut)
			}
			if tt.errorHas != "" {
				if code != exitError || !strings.Contains(errOut, tt.errorHas) {
					t.Errorf("exit %d, stderr %q; want exit 1 and %q", code, errOut, tt.errorHas)
				}
				return
			}
			if code != exitOK {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			var l queueListing
			if err := json.Unmarshal([]byte(out), &l); err != nil {
				t.Fatal(err)
			}
			var green broker.QueueStatus
			for _, q := range l.Queues {
				if q.Queue == "green" {
					green = q
				}
			}
			if green.Waiting != tt.tickets || l.From != tt.from {
				t.Errorf("green waiting %d from %q, want %d (that server) from %q", green.Waiting, l.From, tt.tickets, tt.from)
			}
		})
	}
}

// TestQueueNATSURLClaim: with only NATS_URL set, next claims from that
// server and the claim is finished there.
func TestQueueNATSURLClaim(t *testing.T) {
	p := ticket.DefaultPrefix
	qs := startQueueServer(t, broker.NATSConfig{}, p)
	qs.publish(t, testTicket(1, p, "blue", "verified"))
	t.Setenv("NATS_URL", qs.url)
	code, out, errOut := runCmd(t, "", "queue", "next", "blue", "--ack")
	if code != exitOK || !strings.Contains(out, fmt.Sprintf("TICKET %064x", 1)) || !strings.Contains(out, "acknowledged") {
		t.Errorf("exit %d, stderr %q\n%s", code, errOut, out)
	}
}
