package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// commandPaths lists the argument paths of cmd and every command under it.
func commandPaths(cmd *cobra.Command, prefix []string) [][]string {
	out := [][]string{prefix}
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			out = append(out, commandPaths(c, append(append([]string{}, prefix...), c.Name()))...)
		}
	}
	return out
}

// TestHelpEverywhere: every command answers --help and -h with its usage
// on stdout and exit 0, without doing its work ("config check --help"
// opened a file named "--help").
func TestHelpEverywhere(t *testing.T) {
	paths := commandPaths(newRootCmd(), nil)
	if len(paths) < 10 {
		t.Fatalf("only %d commands found: %v", len(paths), paths)
	}
	for _, p := range paths {
		for _, flag := range []string{"--help", "-h"} {
			args := append(append([]string{}, p...), flag)
			code, out, errOut := runCmd(t, "", args...)
			if code != exitOK || !strings.Contains(out, "Usage:") || errOut != "" {
				t.Errorf("%q: exit %d, stdout %.80q, stderr %q; want the usage on stdout, exit 0", args, code, out, errOut)
			}
		}
	}
}

// TestVersion: --version and version name the build.
func TestVersion(t *testing.T) {
	re := regexp.MustCompile(`^ticketrouter \S+ \(commit [^,)]+(, modified)?, go[0-9.]+\S*\)\n$`)
	for _, args := range [][]string{{"--version"}, {"version"}} {
		code, out, errOut := runCmd(t, "", args...)
		if code != exitOK || !re.MatchString(out) || errOut != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}

// TestCompletion: each shell gets a completion script, and the queues
// complete as next's argument.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		code, out, _ := runCmd(t, "", "completion", shell)
		if code != exitOK || !strings.Contains(out, "ticketrouter") {
			t.Errorf("completion %s: exit %d, %d bytes", shell, code, len(out))
		}
	}
	code, out, _ := runCmd(t, "", "__complete", "queue", "next", "dark")
	if code != exitOK || !strings.Contains(out, "dark-green\n") {
		t.Errorf("completing 'queue next dark': exit %d, %q", code, out)
	}
}

// TestUsageErrors: a wrong command line exits 2 and says what is wrong
// and where the help is.
func TestUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "ticketrouter: missing command: want one of "},
		{[]string{"nope"}, `ticketrouter: unknown command "nope"`},
		{[]string{"config"}, "ticketrouter config: missing command: want one of check"},
		{[]string{"config", "check"}, "ticketrouter config check: accepts 1 arg(s), received 0\nRun 'ticketrouter config check --help' for usage."},
		{[]string{"run"}, "ticketrouter run: --config FILE is required"},
		{[]string{"demo", "extra"}, `ticketrouter demo: unknown command "extra"`},
	} {
		code, out, errOut := runCmd(t, "", tt.args...)
		if code != exitUsage || out != "" || !strings.Contains(errOut, tt.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and %q", tt.args, code, out, errOut, tt.want)
		}
	}
}
