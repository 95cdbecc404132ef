package e2e

// Tests of the operator's surfaces that run the built binary: start-up
// failures on stderr, the health command, systemd's readiness protocol.

import (
	"bytes"
	"context"
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

	"github.com/ticketrouter/ticketrouter/ingest/imaptest"
)

// Exit codes of the binary.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
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
		opsBuild.dir, opsBuild.bin, opsBuild.err = goBuild("ticketrouter-bin-", "ticketrouter", raceEnabled(), "..")
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

// serviceOpts are the settings of serviceConfig; the zero value is an
// IMAP server that is not there (the service starts, and becomes ready,
// without it), an embedded NATS on any port, no HTTP listener.
type serviceOpts struct {
	accounts   string // the example accounts when ""
	natsPort   int    // 0: any
	httpListen string // off when ""
	imapAddr   string // 127.0.0.1:1 when ""
	imapUser   string
}

// serviceConfig writes a configuration for 'ticketrouter run' into dir,
// with JSON logs; the IMAP secret is $OPS_TEST_IMAP_SECRET.
func serviceConfig(t *testing.T, dir string, o serviceOpts) string {
	t.Helper()
	if o.accounts == "" {
		var err error
		if o.accounts, err = filepath.Abs("../../../deploy/examples/accounts.yaml"); err != nil {
			t.Fatal(err)
		}
	}
	if o.natsPort == 0 {
		o.natsPort = -1
	}
	if o.httpListen == "" {
		o.httpListen = "off"
	}
	if o.imapAddr == "" {
		o.imapAddr, o.imapUser = "127.0.0.1:1", "support@ca.example"
	}
	cfg := fmt.Sprintf(`accounts: %q
imap:
  addr: %s
  security: plain
  username: %s
  secret: {env: OPS_TEST_IMAP_SECRET}
nats:
  embedded: {store_dir: %q, port: %d}
http:
  listen: %s
log:
  format: json
replica:
  lease_ttl: 3s
`, o.accounts, o.imapAddr, o.imapUser, filepath.Join(dir, "nats"), o.natsPort, o.httpListen)
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
		name string
		opts serviceOpts
		want string
	}{
		{"broken accounts file", serviceOpts{accounts: broken}, "ticketrouter: " + broken + ":2: colour: unknown colour \"mauve\""},
		{"HTTP port taken", serviceOpts{httpListen: taken}, "ticketrouter: http.listen: listen tcp " + taken + ": bind: address already in use"},
		{"NATS port taken", serviceOpts{natsPort: port}, "ticketrouter: embedded NATS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := serviceConfig(t, t.TempDir(), c.opts)
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
// TestRunSystemdNotify: under systemd's Type=notify (NOTIFY_SOCKET set),
// run says what it is doing in STATUS= lines, READY=1 once it serves
// (JetStream provisioned), and STOPPING=1 on SIGTERM, from its own
// process (NotifyAccess=main).
func TestRunSystemdNotify(t *testing.T) {
	t.Parallel()
	srv := imaptest.StartMemServer(t, imaptest.Options{})
	// Not t.TempDir(): a socket path must stay under 108 bytes.
	sockDir, err := os.MkdirTemp("", "notify")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	socket := filepath.Join(sockDir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// read returns the next notification, or "" after timeout.
	read := func(timeout time.Duration) string {
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(timeout))
		n, err := conn.Read(buf)
		if err != nil {
			return ""
		}
		return string(buf[:n])
	}

	dir := t.TempDir()
	cfg := serviceConfig(t, dir, serviceOpts{imapAddr: srv.Addr(), imapUser: srv.Username(),
		httpListen: fmt.Sprintf("127.0.0.1:%d", freePorts(t, 1)[0])})
	env := []string{"OPS_TEST_IMAP_SECRET=" + srv.Password(), "NOTIFY_SOCKET=" + socket}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "TICKETROUTER_") {
			env = append(env, k+"=") // empty: not set, as far as the service is concerned
		}
	}
	p := startProc(t, dir, "run", env, ticketrouterBinary(t), "run", "--config", cfg)

	var before []string
	for ready := false; !ready; {
		msg := read(time.Minute)
		if msg == "" {
			t.Fatalf("no READY=1 within a minute; notifications so far %q", before)
		}
		if ready = strings.HasPrefix(msg, "READY=1\n"); !ready {
			before = append(before, msg)
			continue
		}
		if !strings.Contains(msg, "\nSTATUS=running as replica ") {
			t.Errorf("READY notification %q: want the running status with it", msg)
		}
	}
	if len(before) == 0 || !strings.HasPrefix(before[0], "STATUS=loading the account directory ") {
		t.Errorf("notifications before READY=1: %q; want STATUS= lines from the start", before)
	}
	// Ready means JetStream is provisioned; the IMAP connection follows.
	code, _, stderr := runBinary(t, nil, "health", "--config", cfg)
	if strings.Contains(stderr, "JetStream not provisioned") {
		t.Errorf("after READY=1, health says %q", stderr)
	}
	for deadline := time.Now().Add(30 * time.Second); code != exitOK && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		code, _, stderr = runBinary(t, nil, "health", "--config", cfg)
	}
	if code != exitOK {
		t.Errorf("health: exit %d, %q; want ready within 30 s of READY=1", code, stderr)
	}

	if code := p.stop(t, 30*time.Second); code != exitOK {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
	var after []string
	for msg := read(time.Second); msg != ""; msg = read(time.Second) {
		after = append(after, msg)
	}
	if len(after) == 0 || !strings.HasPrefix(after[0], "STOPPING=1\nSTATUS=stopping") {
		t.Errorf("notifications after SIGTERM: %q; want STOPPING=1 first", after)
	}
}

// TestSystemdUnit: the unit waits for the service's READY=1 from its main
// process, lets it reach the notification socket, and runs the run
