package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ticketrouter/ticketrouter/router/desk/agents"
)

// TestAgentCommands: agent add writes a private file whose agent then
// authenticates with the password given on standard input; passwd
// replaces it; disable stops the logins and enable brings them back. No
// password is ever printed.
func TestAgentCommands(t *testing.T) {
	file := filepath.Join(t.TempDir(), "agents.yaml")
	const pw, pw2 = "first long password", "second long password"
	steps := []struct {
		args        []string
		stdin, want string
	}{
		{[]string{"agent", "add", "alice", "--file", file, "--colours", "blue,red", "--display", "Alice Example"}, pw + "\n", "added alice (agent of blue, red) to " + file + "\n"},
		{[]string{"agent", "add", "sam", "--file", file, "--role", "supervisor"}, pw2, "added sam (supervisor) to " + file + "\n"},
	}
	for _, s := range steps {
		code, out, errOut := runCmd(t, s.stdin, s.args...)
		if code != exitOK || out != s.want || errOut != "" {
			t.Fatalf("%q: exit %d, stdout %q, stderr %q", s.args, code, out, errOut)
		}
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode: %v, %v; want 0600", fi.Mode(), err)
	}
	auth := func(name, password string) error {
		t.Helper()
		d, err := agents.LoadDirectory(file)
		if err != nil {
			t.Fatal(err)
		}
		a, err := d.Authenticate(context.Background(), name, password)
		if err == nil && (a.Name != name || (name == "alice" && (a.DisplayName() != "Alice Example" || !a.CanSee("red") || a.CanSee("green")))) {
			t.Errorf("agent %+v", a)
		}
		return err
	}
	if err := auth("alice", pw); err != nil {
		t.Fatalf("alice after add: %v", err)
	}
	if err := auth("sam", pw2); err != nil {
		t.Fatalf("sam after add: %v", err)
	}

	if code, out, errOut := runCmd(t, pw2+"\r\n", "agent", "passwd", "alice", "--file", file); code != exitOK || !strings.HasPrefix(out, "set the password of alice") || errOut != "" {
		t.Fatalf("passwd: exit %d, %q, %q", code, out, errOut)
	}
	if err := auth("alice", pw); !errors.Is(err, agents.ErrBadCredentials) {
		t.Errorf("old password after passwd: %v", err)
	}
	if err := auth("alice", pw2); err != nil {
		t.Errorf("new password after passwd: %v", err)
	}
	if code, out, _ := runCmd(t, "", "agent", "disable", "alice", "--file", file); code != exitOK || out != "disabled alice in "+file+"\n" {
		t.Fatalf("disable: exit %d, %q", code, out)
	}
	if err := auth("alice", pw2); !errors.Is(err, agents.ErrBadCredentials) {
		t.Errorf("after disable: %v", err)
	}
	if code, _, _ := runCmd(t, "", "agent", "enable", "alice", "--file", file); code != exitOK {
		t.Fatalf("enable: exit %d", code)
	}
	if err := auth("alice", pw2); err != nil {
		t.Errorf("after enable: %v", err)
	}
}

// TestAgentErrors: a wrong command line exits 2, a refused change 1,
// each saying why, none printing the password or changing the file.
func TestAgentErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "agents.yaml")
	const pw = "a long enough password"
	if code, _, errOut := runCmd(t, pw, "agent", "add", "bob", "--file", file, "--colours", "blue"); code != exitOK {
		t.Fatalf("add bob: exit %d, %s", code, errOut)
	}
	before, _ := os.ReadFile(file)
	for _, tt := range []struct {
		args  []string
		stdin string
		code  int
		want  string
	}{
		{[]string{"agent", "add", "carol", "--colours", "blue"}, pw, exitUsage, "--file FILE is required"},
		{[]string{"agent", "add", "--file", file}, pw, exitUsage, "accepts 1 arg(s)"},
		{[]string{"agent", "add", "carol", "--file", file, "--colours", "purple"}, pw, exitUsage, `unknown colour "purple"`},
		{[]string{"agent", "add", "carol", "--file", file}, pw, exitUsage, "an agent needs at least one"},
		{[]string{"agent", "add", "carol", "--file", file, "--colours", "blue", "--role", "boss"}, pw, exitUsage, `unknown role "boss"`},
		{[]string{"agent", "add", "Carol!", "--file", file, "--colours", "blue"}, pw, exitUsage, "agent name"},
		{[]string{"agent", "add", "bob", "--file", file, "--colours", "blue"}, pw, exitError, `already has agent "bob"`},
		{[]string{"agent", "add", "carol", "--file", file, "--colours", "blue"}, "short pw\n", exitError, "want at least 12"},
		{[]string{"agent", "add", "carol", "--file", file, "--colours", "blue"}, "", exitError, "standard input has none"},
		{[]string{"agent", "passwd", "carol", "--file", file}, pw, exitError, `has no agent "carol"`},
		{[]string{"agent", "disable", "carol", "--file", file}, "", exitError, `has no agent "carol"`},
		{[]string{"agent", "passwd", "bob", "--password", pw, "--file", file}, "", exitUsage, "unknown flag: --password"},
	} {
		code, out, errOut := runCmd(t, tt.stdin, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) || out != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d saying %q", tt.args, code, out, errOut, tt.code, tt.want)
		}
		if strings.Contains(errOut, "short pw") || (tt.args[len(tt.args)-2] != "--password" && strings.Contains(errOut, pw)) {
			t.Errorf("%q: stderr %q holds the password", tt.args, errOut)
		}
	}
	if after, _ := os.ReadFile(file); string(after) != string(before) {
		t.Errorf("the file changed:\n%s", after)
	}
}
