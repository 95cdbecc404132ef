package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ticketrouter/ticketrouter/internal/natstest"
)

// TestDeskCommand: desk needs --config; a configuration without a desk
// section, or with a wrong one, is reported by field; a right one is
// refused with a clear message while the desk's state and agents are not
// built in.
func TestDeskCommand(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "agents.yaml"), []byte("agents: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no config", []string{"desk"}, exitUsage, "ticketrouter desk: --config FILE is required"},
		{"no desk section", []string{"desk", "--config", write("none.yaml", "accounts: a.yaml\n")}, exitError, "desk.listen: missing"},
		{"no agents", []string{"desk", "--config", write("noagents.yaml", "desk:\n  listen: 127.0.0.1:0\n")}, exitError, "desk.agents: missing"},
	} {
		code, out, errOut := runCmd(t, "", c.args...)
		if code != c.code || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d and %q", c.name, code, out, errOut, c.code, c.want)
		}
	}
}

// TestDeskServes: with a NATS to reach and an agents file, desk serves
// the login page on desk.listen until its context ends.
func TestDeskServes(t *testing.T) {
	srv := natstest.Start(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "agents.yaml"), []byte("agents: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "ticketrouter.yaml")
	text := "nats:\n  url: " + srv.ClientURL() + "\ndesk:\n  listen: 127.0.0.1:0\n  agents: agents.yaml\n"
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- runDesk(ctx, cfgPath, pw, io.Discard); pw.Close() }()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "desk: serving http://127.0.0.1:") {
		t.Fatalf("first line %q %v (%v)", line, err, func() error { cancel(); return <-done }())
	}
	go io.Copy(io.Discard, pr)
	url := strings.TrimSpace(strings.TrimPrefix(line, "desk: serving ")) + "login"
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("GET %s: %d %v", url, resp.StatusCode, resp.Header)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("runDesk: %v", err)
	}
}
