package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
		{"not built", []string{"desk", "--config", write("ok.yaml", "desk:\n  listen: 127.0.0.1:0\n  agents: agents.yaml\n")}, exitError, "not built into this binary yet"},
	} {
		code, out, errOut := runCmd(t, "", c.args...)
		if code != c.code || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d and %q", c.name, code, out, errOut, c.code, c.want)
		}
	}
}
