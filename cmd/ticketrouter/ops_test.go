package main

// Tests of the operator's surfaces that run the built binary: start-up
// failures on stderr, the health command, systemd's readiness protocol.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// opsBuild is the ticketrouter binary of these tests and the end-to-end
// ones, built once per test binary (with -race when the test binary has
// it); TestMain removes dir.
var opsBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// ticketrouterBinary returns the path of the built ticketrouter binary.
func ticketrouterBinary(t *testing.T) string {
	t.Helper()
	opsBuild.once.Do(func() {
		opsBuild.dir, opsBuild.bin, opsBuild.err = goBuild("ticketrouter-bin-", "ticketrouter", raceEnabled(), ".")
	})
	if opsBuild.err != nil {
		t.Fatalf("building ticketrouter: %v", opsBuild.err)
	}
	return opsBuild.bin
}

// goBuild builds pkg into a new temporary directory (named with prefix)
// as name, with -race when race is set: the directory and the binary.
func goBuild(prefix, name string, race bool, pkg string) (dir, bin string, err error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		if root := os.Getenv("GOROOT"); root != "" {
			goTool, err = filepath.Join(root, "bin", "go"), nil
		}
	}
	if err != nil {
		return "", "", fmt.Errorf("no go command in PATH: %w", err)
	}
	if dir, err = os.MkdirTemp("", prefix); err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, name)
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, goTool, append(args, pkg)...).CombinedOutput(); err != nil {
		return dir, "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return dir, bin, nil
}

// binaryEnv is the test's environment without TICKETROUTER_* variables
// (which would override the configuration), plus env.
func binaryEnv(env ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "TICKETROUTER_") && k != "NOTIFY_SOCKET" {
			out = append(out, kv)
		}
	}
	return append(out, env...)
}

// runBinary runs the built ticketrouter with args to its end (a minute
// at most): its exit code, stdout and stderr.
func runBinary(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ticketrouterBinary(t), args...)
	cmd.Env = binaryEnv(env...)
	cmd.Dir = t.TempDir()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("ticketrouter %q: %v", args, err)
	}
	if bytes.Contains(errOut.Bytes(), []byte("WARNING: DATA RACE")) {
		t.Errorf("ticketrouter %q reported a data race:\n%s", args, errOut.Bytes())
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// serviceConfig writes a configuration for 'ticketrouter run' into dir:
// the example accounts (unless accounts is set), an IMAP server that is
// not there (the service starts, and becomes ready, without it), an
// embedded NATS on natsPort (-1: any), JSON logs. extra is appended.
func serviceConfig(t *testing.T, dir, accounts string, natsPort int, httpListen, extra string) string {
	t.Helper()
	if accounts == "" {
		var err error
		if accounts, err = filepath.Abs("../../deploy/examples/accounts.yaml"); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf(`accounts: %q
imap:
  addr: 127.0.0.1:1
  security: plain
  username: support@ca.example
  secret: {env: OPS_TEST_IMAP_SECRET}
nats:
  embedded: {store_dir: %q, port: %d}
http:
  listen: %s
log:
  format: json
replica:
  lease_ttl: 3s
%s`, accounts, filepath.Join(dir, "nats"), natsPort, httpListen, extra)
	path := filepath.Join(dir, "ticketrouter.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// listening returns the address of a TCP port this test holds open on
// 127.0.0.1, for a service that must fail to listen on it.
func listening(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// TestRunStartFailureOnStderr: when the service cannot start, the reason
// is on stderr as "ticketrouter: ...", not only in the log on stdout, and
// the exit status is 1.
func TestRunStartFailureOnStderr(t *testing.T) {
	t.Parallel()
	broken := filepath.Join(t.TempDir(), "accounts.yaml")
	if err := os.WriteFile(broken, []byte("accounts:\n  - id: A-1\n    colour: mauve\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	taken := listening(t)
	_, takenPort, _ := net.SplitHostPort(taken)
	var port int
	fmt.Sscan(takenPort, &port)
	for _, c := range []struct {
		name       string
		accounts   string
		natsPort   int
		httpListen string
		want       string
	}{
		{"broken accounts file", broken, -1, "off", "ticketrouter: " + broken + ":2: colour: unknown colour \"mauve\""},
		{"HTTP port taken", "", -1, taken, "ticketrouter: http.listen: listen tcp " + taken + ": bind: address already in use"},
		{"NATS port taken", "", port, "off", "ticketrouter: embedded NATS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfg := serviceConfig(t, dir, c.accounts, c.natsPort, c.httpListen, "")
			code, stdout, stderr := runBinary(t, []string{"OPS_TEST_IMAP_SECRET=x"}, "run", "--config", cfg)
			if code != exitError || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want exit 1 and %q\nstdout:\n%s", code, stderr, c.want, stdout)
			}
			for _, line := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
				if !strings.HasPrefix(line, "ticketrouter: ") {
					t.Errorf("stderr line %q does not begin with \"ticketrouter: \"", line)
				}
			}
		})
	}
}

// TestHealth: 'ticketrouter health' exits 0 when /readyz answers 200, and
// 1 with the reason on stderr otherwise; with --config it asks the
// service's http.listen, on loopback when that is every interface.
func TestHealth(t *testing.T) {
	t.Parallel()
	serve := func(code int, body string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/readyz" {
				http.NotFound(w, r)
				return
			}
			w.WriteHeader(code)
			fmt.Fprint(w, body)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	ready, notReady := serve(200, "ready\n"), serve(503, "JetStream not provisioned\nNATS not connected\n")
	_, readyPort, _ := net.SplitHostPort(ready.Listener.Addr().String())
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	config := func(listen string) string {
		path := filepath.Join(t.TempDir(), "ticketrouter.yaml")
		if err := os.WriteFile(path, []byte("http:\n  listen: "+listen+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"ready", []string{"--url", ready.URL + "/readyz"}, exitOK, ready.URL + "/readyz: ready\n", ""},
		{"not ready", []string{"--url", notReady.URL + "/readyz"}, exitError, "",
			"ticketrouter: probe " + notReady.URL + "/readyz: 503 Service Unavailable: JetStream not provisioned; NATS not connected\n"},
		{"nobody listening", []string{"--url", gone.URL + "/readyz"}, exitError, "", "connect: connection refused\n"},
		{"config, every interface", []string{"--config", config("0.0.0.0:" + readyPort)}, exitOK, "http://127.0.0.1:" + readyPort + "/readyz: ready\n", ""},
		{"config, off", []string{"--config", config("off")}, exitError, "", "ticketrouter: http.listen is off: the service serves no /readyz\n"},
		{"config missing", []string{"--config", filepath.Join(t.TempDir(), "none.yaml")}, exitError, "", "no such file or directory\n"},
		{"both", []string{"--config", "x.yaml", "--url", ready.URL}, exitUsage, "", "ticketrouter health: --url and --config: give one\n"},
		{"argument", []string{ready.URL}, exitUsage, "", `ticketrouter health: unknown command "` + ready.URL + `"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runBinary(t, nil, append([]string{"health"}, c.args...)...)
			if code != c.code || stdout != c.stdout || !strings.Contains(stderr, c.stderr) || c.stderr == "" && stderr != "" {
				t.Errorf("health %q: exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr with %q",
					c.args, code, stdout, stderr, c.code, c.stdout, c.stderr)
			}
		})
	}
}

// TestDockerfileHealthcheck: the image's HEALTHCHECK runs the health
// command with flags it has, on the configuration the image's CMD runs,
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
