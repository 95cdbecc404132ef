package main

// Tests of the deployment files against the command line they run: the
// image's HEALTHCHECK and the systemd unit.

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// and gives up before Docker does.
func TestDockerfileHealthcheck(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var healthcheck, run []string
	var dockerTimeout time.Duration
	for _, line := range strings.Split(strings.ReplaceAll(string(raw), "\\\n", " "), "\n") {
		inst, rest, _ := strings.Cut(line, " ")
		switch inst {
		case "HEALTHCHECK":
			opts, cmd, ok := strings.Cut(rest, " CMD ")
			if err := json.Unmarshal([]byte(cmd), &healthcheck); !ok || err != nil {
				t.Fatalf("HEALTHCHECK %q: want the exec form, CMD [...]: %v", rest, err)
			}
			for _, o := range strings.Fields(opts) {
				if v, ok := strings.CutPrefix(o, "--timeout="); ok {
					dockerTimeout, _ = time.ParseDuration(v)
				}
			}
		case "CMD":
			if err := json.Unmarshal([]byte(rest), &run); err != nil {
				t.Fatalf("CMD %q: %v", rest, err)
			}
		}
	}
	if len(healthcheck) < 2 || healthcheck[0] != "/ticketrouter" {
		t.Fatalf("HEALTHCHECK runs %q, want /ticketrouter health ...", healthcheck)
	}
	configOf := func(args []string) (*cobra.Command, string, time.Duration) {
		cmd, rest, err := newRootCmd().Find(args)
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if err := cmd.ParseFlags(rest); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		path, _ := cmd.Flags().GetString("config")
		timeout, _ := cmd.Flags().GetDuration("timeout")
		return cmd, path, timeout
	}
	hcCmd, hcConfig, hcTimeout := configOf(healthcheck[1:])
	_, runConfig, _ := configOf(run)
	if hcCmd.Name() != "health" || hcConfig == "" || hcConfig != runConfig {
		t.Errorf("HEALTHCHECK %q: want health --config %s, the file of CMD %q", healthcheck, runConfig, run)
	}
	if dockerTimeout == 0 || hcTimeout >= dockerTimeout {
		t.Errorf("health --timeout %v, Docker's --timeout %v: want health to give up first", hcTimeout, dockerTimeout)
	}
}

// command with a configuration.
func TestSystemdUnit(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/ticketrouter.service")
	if err != nil {
		t.Fatal(err)
	}
	service := map[string][]string{}
	section := ""
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, _ := strings.Cut(line, "=")
			service[k] = append(service[k], v)
		}
	}
	for k, want := range map[string]string{"Type": "notify", "NotifyAccess": "main"} {
		if got := service[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%q, want %s", k, got, want)
		}
	}
	if fams := strings.Join(service["RestrictAddressFamilies"], " "); fams != "" && !strings.Contains(fams, "AF_UNIX") {
		t.Errorf("RestrictAddressFamilies=%s: the notification socket needs AF_UNIX", fams)
	}
	exec := strings.Fields(strings.Join(service["ExecStart"], " "))
	if len(exec) < 2 {
		t.Fatalf("ExecStart=%q", exec)
	}
	cmd, rest, err := newRootCmd().Find(exec[1:])
	if err == nil {
		err = cmd.ParseFlags(rest)
	}
	if config, _ := cmd.Flags().GetString("config"); err != nil || cmd.Name() != "run" || config == "" {
		t.Errorf("ExecStart=%q: want run --config FILE (%v)", exec, err)
	}
}
