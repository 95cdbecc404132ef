package e2e

// Helpers of the end-to-end tests in e2e_test.go: they run the real
// `ticketrouter run` binary and real nats-server binaries as child
// processes (so that SIGKILL is a real crash) against a real Dovecot.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ticketrouter/ticketrouter/ingest/imaptest"
	"github.com/ticketrouter/ticketrouter/internal/testproc"
	"github.com/ticketrouter/ticketrouter/router/broker"
	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// TestMain removes the binaries the end-to-end tests built, once every
// test has run.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range []string{e2eBuild.dir, opsBuild.dir} {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}

// e2eBuild holds the nats-server binary, built once per test binary:
// linking it takes seconds, and every end-to-end test runs the same one.
var e2eBuild struct {
	once       sync.Once
	dir        string
	natsServer string
	err        error
}

// e2eBinaries returns the paths of the ticketrouter and nats-server
// binaries, building them on first use: nats-server from the version
// go.mod pins, ticketrouter with -race when the test binary has it (see
// ticketrouterBinary), so that a data race in the service fails the test
// that provoked it.
func e2eBinaries(t *testing.T) (ticketrouter, natsServer string) {
	t.Helper()
	ticketrouter = ticketrouterBinary(t)
	e2eBuild.once.Do(func() {
		e2eBuild.dir, e2eBuild.natsServer, e2eBuild.err = goBuild("ticketrouter-e2e-bin-", "nats-server", false, "github.com/nats-io/nats-server/v2")
	})
	if e2eBuild.err != nil {
		t.Fatalf("building nats-server: %v", e2eBuild.err)
	}
	return ticketrouter, e2eBuild.natsServer
}

// raceEnabled reports whether the test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}

// e2eSeed returns the seed of a test's random choices: $TICKETROUTER_E2E_SEED
// when set, else a new one. It is logged so that a failure can be replayed.
func e2eSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TICKETROUTER_E2E_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("TICKETROUTER_E2E_SEED=%q: want an unsigned integer", s)
		}
		seed = v
	}
	t.Logf("seed %d (replay with TICKETROUTER_E2E_SEED=%d)", seed, seed)
	return seed
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports, err := testproc.FreePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// Child processes.

// proc is a child process (see testproc: it dies with the test binary, a
// test killed by -timeout leaves nothing behind) whose output goes to a
// file.
type proc struct {
	*testproc.Process
	name    string
	log     string // stdout and stderr
	started time.Time
}

// startProc starts bin with args, its output in DIR/name.log. It is
// killed when the test ends, and on failure the tail of its output is
// logged.
func startProc(t *testing.T, dir, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	log := filepath.Join(dir, name+".log")
	tp, err := testproc.Start(cmd, testproc.Options{Name: name, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{Process: tp, name: name, log: log, started: tp.Started()}
	t.Cleanup(func() {
		p.kill(t)
		if t.Failed() {
			t.Logf("--- last lines of %s (pid %d, %v):\n%s", p.log, p.Pid(), p.Err(), p.Tail(25))
		}
		if out, _ := os.ReadFile(p.log); bytes.Contains(out, []byte("WARNING: DATA RACE")) {
			t.Errorf("%s reported a data race; see %s:\n%s", name, p.log, p.Tail(60))
		}
	})
	return p
}

// alive reports whether the process has not exited.
func (p *proc) alive() bool { return !p.Exited() }

// kill sends SIGKILL, a crash, and returns once the process is reaped.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.Kill(); err != nil {
		t.Error(err)
	}
}

// stop sends SIGTERM and waits up to timeout for the process to exit,
// then kills it. It returns the exit code (-1: killed).
func (p *proc) stop(t *testing.T, timeout time.Duration) int {
	t.Helper()
	if err := p.Stop(timeout); err != nil {
		t.Error(err)
	}
	if st := p.ProcessState(); st != nil {
		return st.ExitCode()
	}
	return -1
}

// logEntry is one line of the service's JSON log.
type logEntry map[string]any

func (e logEntry) str(key string) string { s, _ := e[key].(string); return s }

// logEntries reads a JSON log; other lines (a panic, a race report) are
// skipped.
func logEntries(path string) []logEntry {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []logEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var e logEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// countLog counts the log lines whose message is msg and, when match is
// not nil, for which match holds.
func countLog(path, msg string, match func(logEntry) bool) int {
	n := 0
	for _, e := range logEntries(path) {
		if e.str("message") == msg && (match == nil || match(e)) {
			n++
		}
	}
	return n
}

// lastLog returns the message of the last log line, to say how far a
// process got.
func lastLog(path string) string {
	es := logEntries(path)
	if len(es) == 0 {
		return "(no log line)"
	}
	return es[len(es)-1].str("message")
}

// NATS servers.

// natsNode is one nats-server process with JetStream on loopback. It
// keeps its ports and store across restarts.
type natsNode struct {
	name      string // server_name
	port      int    // clients
	monitor   int    // HTTP monitoring: /healthz, /connz
	routePort int    // cluster routes
	dir       string // its store and configuration file
	conf      string
	bin       string
	logDir    string // where each start's output goes, nats-NAME-N.log
	starts    int
	proc      *proc // the current (or last) process
}

// url is the node's client URL.
func (n *natsNode) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// newNATS writes the configuration of size nodes (a cluster of them when
// size > 1) and starts them, waiting until JetStream is ready on each.
func newNATS(t *testing.T, bin, dir string, size int) []*natsNode {
	t.Helper()
	ports := freePorts(t, 3*size)
	nodes := make([]*natsNode, size)
	var routes []string
	for i := range nodes {
		n := &natsNode{
			name: fmt.Sprintf("n%d", i+1), port: ports[3*i], monitor: ports[3*i+1], routePort: ports[3*i+2],
			bin: bin, logDir: dir,
		}
		n.dir = filepath.Join(dir, n.name)
		if err := os.MkdirAll(n.dir, 0o700); err != nil {
			t.Fatal(err)
		}
		n.conf = filepath.Join(n.dir, "nats.conf")
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", n.routePort))
		nodes[i] = n
	}
	for _, n := range nodes {
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream {
  store_dir: %q
  max_memory_store: 64MB
  max_file_store: 2GB
}
`, n.name, n.port, n.monitor, filepath.Join(n.dir, "jetstream"))
		if size > 1 {
			conf += fmt.Sprintf(`cluster {
  name: e2e
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, n.routePort, strings.Join(routes, ", "))
		}
		if err := os.WriteFile(n.conf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		n.start(t)
	}
	for _, n := range nodes {
		n.waitReady(t, 60*time.Second)
	}
	return nodes
}

// start starts (or restarts, on the same ports and store) the node.
func (n *natsNode) start(t *testing.T) {
	t.Helper()
	n.starts++
	n.proc = startProc(t, n.logDir, fmt.Sprintf("nats-%s-%d", n.name, n.starts), nil, n.bin, "-c", n.conf)
}

// waitReady waits until the node's /healthz says JetStream is ready (in
// a cluster: a meta leader is known and its streams are current).
func (n *natsNode) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", n.monitor)
	for {
		code, body, err := httpGet(url)
		if code == http.StatusOK {
			return
		}
		if !n.proc.alive() {
			t.Fatalf("nats-server %s exited while starting (%v):\n%s", n.name, n.proc.Err(), n.proc.Tail(20))
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server %s not ready within %v: /healthz %d %q %v", n.name, timeout, code, body, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// natsURL lists the nodes' client URLs, comma-separated, as nats.url takes them.
func natsURL(nodes ...*natsNode) string {
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.url())
	}
	return strings.Join(urls, ",")
}

// httpGet fetches url with a short timeout: the status, the body.
func httpGet(url string) (int, string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(body)), nil
}

// The backlog.

// e2eMail is one mail of a backlog.
type e2eMail struct {
	raw       []byte
	id        string // hex SHA-256 of raw: the ticket id it must get
	messageID string // without angle brackets; "" for the headerless dead letter
	marker    string // e2e-NNNN, in the subject (or the text) and X-E2E-Marker
}

var (
	messageIDLine = regexp.MustCompile(`(?m)^Message-ID: <[^>]*>\r\n`)
	subjectLine   = regexp.MustCompile(`(?m)^Subject: ([^\r\n]*)\r\n`)
)

// makeBacklog makes n distinct mails from the example mails, one per
// policy row in turn: each gets a Message-ID of its own and its marker in
// the subject and in an X-E2E-Marker header; the example dead letter (a
// mail without header) gets the marker appended to its text.
func makeBacklog(t *testing.T, n int) []e2eMail {
	t.Helper()
	files, err := filepath.Glob("../../../deploy/examples/mail/*.eml")
	if err != nil || len(files) == 0 {
		t.Fatalf("example mails: %v (found %d)", err, len(files))
	}
	slices.Sort(files)
	var templates [][]byte
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		templates = append(templates, raw)
	}
	mails := make([]e2eMail, n)
	for i := range mails {
		m := &mails[i]
		tmpl := templates[i%len(templates)]
		m.marker = fmt.Sprintf("e2e-%04d", i)
		if !messageIDLine.Match(tmpl) {
			// The dead letter: no header at all. Without its NUL byte,
			// which Dovecot stores as 0x80: the ticket id is of the mail
			// as the server hands it out.
			m.raw = fmt.Appendf(bytes.ReplaceAll(tmpl, []byte{0}, nil), " (%s)\r\n", m.marker)
		} else {
			m.messageID = fmt.Sprintf("%s.%s@e2e.example", m.marker, strings.TrimSuffix(filepath.Base(files[i%len(files)]), ".eml"))
			raw := messageIDLine.ReplaceAllLiteral(tmpl, fmt.Appendf(nil, "Message-ID: <%s>\r\n", m.messageID))
			raw = subjectLine.ReplaceAll(raw, fmt.Appendf(nil, "Subject: $1 [%s]\r\n", m.marker))
			m.raw = append(fmt.Appendf(nil, "X-E2E-Marker: %s\r\n", m.marker), raw...)
		}
		m.id = idOf(m.raw)
	}
	return mails
}

// idOf returns the ticket id of a raw mail: its hex SHA-256.
func idOf(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// e2eEnv is one test's world: Dovecot with the backlog, NATS, and the
// test's own NATS client for reading what the workers published.
type e2eEnv struct {
	t            *testing.T
	dir          string
	trBin        string
	natsBin      string
	srv          imaptest.Server
	mails        []e2eMail
	byID         map[string]*e2eMail
	nodes        []*natsNode
	nc           *nats.Conn
	js           jetstream.JetStream
	maxProcessed int           // the most mails seen in Processed so far
	grew         time.Time     // when that number last grew
	stall        time.Duration // the longest it went without growing, while mail waited
}

// newEnv starts Dovecot, delivers a backlog of n mails to INBOX, and
// starts natsSize nats-server processes (a cluster when more than one).
func newEnv(t *testing.T, n, natsSize int) *e2eEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test with child processes: skipped in -short mode")
	}
	e := &e2eEnv{t: t, dir: t.TempDir(), byID: map[string]*e2eMail{}}
	e.srv = imaptest.StartDovecot(t, imaptest.Options{}) // skips without Dovecot or root
	e.trBin, e.natsBin = e2eBinaries(t)
	e.mails = makeBacklog(t, n)
	raws := make([][]byte, n)
	for i := range e.mails {
		raws[i] = e.mails[i].raw
		e.byID[e.mails[i].id] = &e.mails[i]
	}
	began := time.Now()
	for _, raw := range raws { // as a delivery agent does: much faster than APPEND
		if err := e.srv.(*imaptest.Dovecot).Deliver("INBOX", raw); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(e.srv.UIDs(t, "INBOX")); got != n {
		t.Fatalf("INBOX holds %d mails after delivering %d", got, n)
	}
	t.Logf("%d mails delivered to INBOX in %v", n, time.Since(began).Round(time.Millisecond))
	e.nodes = newNATS(t, e.natsBin, e.dir, natsSize)
	var err error
	e.nc, err = nats.Connect(natsURL(e.nodes...), nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond),
		nats.Timeout(2*time.Second), nats.Name("e2e test"))
	if err != nil {
		t.Fatalf("connect to NATS: %v", err)
	}
	t.Cleanup(e.nc.Close)
	if e.js, err = jetstream.New(e.nc); err != nil {
		t.Fatal(err)
	}
	return e
}

// workerOpts are the settings of one worker process.
type workerOpts struct {
	replica  string        // replica.id
	leaseTTL time.Duration // replica.lease_ttl; 3s when zero
	replicas int           // nats.replicas; 1 when zero
	httpPort int           // http.listen on 127.0.0.1; off when zero
}

// workerConfig writes the configuration file of a worker: the example
// accounts, the Dovecot mailbox, every NATS node, JSON logs.
func (e *e2eEnv) workerConfig(o workerOpts) string {
	e.t.Helper()
	accounts, err := filepath.Abs("../../../deploy/examples/accounts.yaml")
	if err != nil {
		e.t.Fatal(err)
	}
	if o.leaseTTL == 0 {
		o.leaseTTL = 3 * time.Second
	}
	if o.replicas == 0 {
		o.replicas = 1
	}
	listen := "off"
	if o.httpPort != 0 {
		listen = fmt.Sprintf("127.0.0.1:%d", o.httpPort)
	}
	cfg := fmt.Sprintf(`accounts: %q
imap:
  addr: %s
  security: plain
  username: %s
  secret: {env: E2E_IMAP_PASSWORD}
  liveness: 2s
nats:
  url: %q
  replicas: %d
http:
  listen: %s
log:
  level: info
  format: json
replica:
  id: %s
  lease_ttl: %s
`, accounts, e.srv.Addr(), e.srv.Username(), natsURL(e.nodes...), o.replicas, listen, o.replica, o.leaseTTL)
	path := filepath.Join(e.dir, o.replica+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// startWorker starts `ticketrouter run` with the configuration at path;
// its log is DIR/name.log. TICKETROUTER_* variables of the test's
// environment, which would override the configuration, are left out.
func (e *e2eEnv) startWorker(name, config string) *proc {
	e.t.Helper()
	env := []string{"E2E_IMAP_PASSWORD=" + e.srv.Password()}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "TICKETROUTER_") {
			env = append(env, k+"=") // empty: not set, as far as the service is concerned
		}
	}
	return startProc(e.t, e.dir, name, env, e.trBin, "run", "--config", config)
}

// count returns how many mails a mailbox holds.
func (e *e2eEnv) count(mailbox string) int {
	e.t.Helper()
	return len(e.srv.UIDs(e.t, mailbox))
}

// streamMsgs returns how many messages the TICKETS stream holds, or false
// when NATS does not answer within a second (or the stream is not there
// yet).
func (e *e2eEnv) streamMsgs() (uint64, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, "TICKETS")
	if err != nil {
		return 0, false
	}
	return s.CachedInfo().State.Msgs, true
}

// progress reads how many mails are in Processed and then, when NATS
// answers, how many tickets are in the stream, and checks that the
// stream holds at least as many tickets as Processed held at any earlier
// reading: a mail leaves INBOX only after its ticket was acknowledged,
// and an acknowledged ticket is never lost. It returns the Processed count.
func (e *e2eEnv) progress() int {
	e.t.Helper()
	p := e.count("Processed")
	if now := time.Now(); p > e.maxProcessed || e.grew.IsZero() {
		if !e.grew.IsZero() {
			e.stall = max(e.stall, now.Sub(e.grew))
		}
		e.maxProcessed, e.grew = p, now
	}
	if s, ok := e.streamMsgs(); ok && int(s) < e.maxProcessed {
		e.t.Errorf("the stream holds %d messages, but Processed already held %d mails: a mail left INBOX without its ticket (or was moved twice)", s, e.maxProcessed)
	}
	return p
}

// waitProcessed polls until Processed holds at least n mails, checking
// the progress invariant and that the workers given are alive; it fails
// the test after timeout.
func (e *e2eEnv) waitProcessed(n int, timeout time.Duration, workers ...*proc) int {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p := e.progress()
		if p >= n {
			return p
		}
		for _, w := range workers {
			if !w.alive() {
				e.t.Fatalf("worker %s exited (%v) with %d of %d mails processed; last log line %q", w.name, w.Err(), p, n, lastLog(w.log))
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d mails in Processed after %v, want %d (INBOX %d)", p, timeout, n, e.count("INBOX"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// clientServer returns the node a client connection with the given name
// is connected to, from the nodes' /connz.
func (e *e2eEnv) clientServer(name string) *natsNode {
	e.t.Helper()
	for _, n := range e.nodes {
		if !n.proc.alive() {
			continue
		}
		_, body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/connz?limit=1024", n.monitor))
		if err != nil {
			e.t.Fatalf("connz of %s: %v", n.name, err)
		}
		var connz struct {
			Connections []struct {
				Name string `json:"name"`
			} `json:"connections"`
		}
		if err := json.Unmarshal([]byte(body), &connz); err != nil {
			e.t.Fatalf("connz of %s: %v", n.name, err)
		}
		for _, c := range connz.Connections {
			if c.Name == name {
				return n
			}
		}
	}
	e.t.Fatalf("no node has a connection named %q", name)
	return nil
}

// moveStreamLeader makes node the leader of stream (a leader stepdown
// naming it as the preferred one) and returns the former leader.
func (e *e2eEnv) moveStreamLeader(ctx context.Context, stream, node string) (was string) {
	e.t.Helper()
	for {
		s, err := e.js.Stream(ctx, stream)
		if err == nil {
			leader := s.CachedInfo().Cluster.Leader
			if was == "" {
				was = leader
			}
			if leader == node {
				return was
			}
			req := fmt.Sprintf(`{"placement":{"preferred":%q}}`, node)
			_, err = e.nc.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+stream, []byte(req))
		}
		if ctx.Err() != nil {
			e.t.Fatalf("could not make %s the leader of %s: %v", node, stream, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// streamRecord is one message of the TICKETS stream.
type streamRecord struct {
	subject string
	msgID   string // Nats-Msg-Id
	ticket  *ticket.Ticket
	dead    *broker.DeadLetter // a quarantined mail's record instead of a ticket
}

// readStream returns every message of the TICKETS stream, fetched one by
// one by sequence, first to last: a gap (a message deleted) fails the test.
// A request that fails is tried again for up to 20 s, as a cluster that
// just lost a node may not answer at once.
func (e *e2eEnv) readStream() []streamRecord {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var s jetstream.Stream
	retry(e.t, "stream TICKETS", func() (err error) { s, err = e.js.Stream(ctx, "TICKETS"); return err })
	st := s.CachedInfo().State
	if st.Msgs > 0 && (st.FirstSeq != 1 || st.LastSeq != st.Msgs) {
		e.t.Errorf("stream TICKETS holds %d messages, sequences %d to %d: tickets were deleted", st.Msgs, st.FirstSeq, st.LastSeq)
	}
	out := make([]streamRecord, 0, st.Msgs)
	for seq := st.FirstSeq; seq <= st.LastSeq && st.Msgs > 0; seq++ {
		var msg *jetstream.RawStreamMsg
		retry(e.t, fmt.Sprintf("stream message %d", seq), func() (err error) { msg, err = s.GetMsg(ctx, seq); return err })
		r := streamRecord{subject: msg.Subject, msgID: msg.Header.Get(jetstream.MsgIDHeader)}
		var probe struct {
			Kind string `json:"kind"`
		}
		json.Unmarshal(msg.Data, &probe)
		var err error
		if probe.Kind == "quarantined" {
			r.dead = new(broker.DeadLetter)
			err = json.Unmarshal(msg.Data, r.dead)
		} else {
			r.ticket = new(ticket.Ticket)
			err = json.Unmarshal(msg.Data, r.ticket)
		}
		if err != nil {
			e.t.Fatalf("stream message %d on %s: %v: %.200s", seq, r.subject, err, msg.Data)
		}
		out = append(out, r)
	}
	return out
}

// retry calls f until it succeeds, for up to 20 s, then fails the test.
func retry(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v (tried for 20 s)", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkExactlyOnce asserts the end state: INBOX and Quarantine empty,
// Processed holding exactly the backlog, and the stream exactly one
// ticket per mail (by ticket id and by Message-ID), on its queue's
// subject, with the ticket id as its message id, and its raw mail in the
// object store, byte for byte (size and SHA-256 digest).
func (e *e2eEnv) checkExactlyOnce() {
	t := e.t
	t.Helper()
	if n := e.count("INBOX"); n != 0 {
		t.Errorf("INBOX holds %d mails at the end, want 0", n)
	}
	if n := e.count("Quarantine"); n != 0 {
		t.Errorf("Quarantine holds %d mails at the end, want 0 (no mail of the backlog is poison)", n)
	}
	processed := map[string]int{}
	bodies := e.srv.Bodies(t, "Processed")
	for _, b := range bodies {
		processed[idOf(b)]++
	}
	var wrong []string
	for _, m := range e.mails {
		if processed[m.id] != 1 {
			wrong = append(wrong, fmt.Sprintf("mail %s is %d times in Processed, want once", m.marker, processed[m.id]))
		}
	}
	if len(bodies) != len(e.mails) {
		wrong = append(wrong, fmt.Sprintf("Processed holds %d mails, want the %d delivered", len(bodies), len(e.mails)))
	}
	reportProblems(t, "Processed is not the backlog, once", wrong)

	records := e.readStream()
	subjects := map[string]int{}
	for _, r := range records {
		subjects[r.subject]++
	}
	t.Logf("tickets by subject: %v", subjects)
	byID := map[string]int{}
	byMessageID := map[string]int{}
	var problems []string
	problem := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for _, r := range records {
		if r.dead != nil {
			problem("dead-letter record on %s: UID %d quarantined: %s", r.subject, r.dead.UID, r.dead.Reason)
			continue
		}
		tk := r.ticket
		byID[tk.ID]++
		if tk.MessageID != "" {
			byMessageID[tk.MessageID]++
		}
		if e.byID[tk.ID] == nil {
			problem("ticket %.12s (message id %q) is of no mail delivered", tk.ID, tk.MessageID)
		}
		if r.msgID != tk.ID {
			problem("ticket %.12s was published with Nats-Msg-Id %q, want its id", tk.ID, r.msgID)
		}
		if r.subject != tk.Queue {
			problem("ticket %.12s is on %s, but its queue is %s", tk.ID, r.subject, tk.Queue)
		}
	}
	for _, m := range e.mails {
		if byID[m.id] != 1 {
			problem("mail %s (%.12s): %d tickets with its id, want 1", m.marker, m.id, byID[m.id])
		}
		if m.messageID != "" && byMessageID[m.messageID] != 1 {
			problem("mail %s: %d tickets with Message-ID %s, want 1", m.marker, byMessageID[m.messageID], m.messageID)
		}
	}
	if len(records) != len(e.mails) {
		problem("the stream holds %d messages, want exactly %d (one ticket per mail)", len(records), len(e.mails))
	}

	// Raw mails, by the object store's own listing: size and SHA-256.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	obs, err := e.js.ObjectStore(ctx, "TICKETS-raw")
	if err != nil {
		t.Fatalf("object store TICKETS-raw: %v", err)
	}
	infos, err := obs.List(ctx)
	if err != nil {
		t.Fatalf("listing TICKETS-raw: %v", err)
	}
	objects := map[string]*jetstream.ObjectInfo{}
	for _, info := range infos {
		objects[info.Name] = info
	}
	for _, r := range records {
		if r.ticket == nil {
			continue
		}
		tk, m := r.ticket, e.byID[r.ticket.ID]
		if tk.Raw == nil {
			problem("ticket %.12s names no raw mail", tk.ID)
			continue
		}
		info := objects[tk.Raw.Name]
		if tk.Raw.Bucket != "TICKETS-raw" || info == nil {
			problem("ticket %.12s: raw mail %s/%s is not in the object store", tk.ID, tk.Raw.Bucket, tk.Raw.Name)
			continue
		}
		if m == nil {
			continue
		}
		sum := sha256.Sum256(m.raw)
		if want := "SHA-256=" + base64.URLEncoding.EncodeToString(sum[:]); info.Size != uint64(len(m.raw)) || info.Digest != want || tk.Size != int64(len(m.raw)) {
			problem("ticket %.12s: raw mail of %d bytes, digest %s, ticket size %d; want %d bytes, %s", tk.ID, info.Size, info.Digest, tk.Size, len(m.raw), want)
		}
	}
	reportProblems(t, "the stream is not exactly one ticket per mail", problems)
	if !t.Failed() {
		t.Logf("exactly once: %d mails, %d tickets, %d raw mails", len(e.mails), len(records), len(objects))
	}
}

// reportProblems fails the test with the first 15 problems, if any.
func reportProblems(t *testing.T, headline string, problems []string) {
	t.Helper()
	if len(problems) > 0 {
		shown := problems[:min(len(problems), 15)]
		t.Errorf("%s (%d problems; first %d):\n%s", headline, len(problems), len(shown), strings.Join(shown, "\n"))
	}
}

// jitter returns a duration in [lo, hi).
func jitter(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

// movedUIDs returns the UIDs a "moved" log line names: "uid" for one mail,
// "uids" (an IMAP set, "3:5,9") for a batch.
func movedUIDs(t *testing.T, l logEntry) []uint32 {
	t.Helper()
	if uid, ok := l["uid"].(float64); ok {
		return []uint32{uint32(uid)}
	}
	var uids []uint32
	for r := range strings.SplitSeq(l.str("uids"), ",") {
		lo, hi, isRange := strings.Cut(r, ":")
		first, err1 := strconv.ParseUint(lo, 10, 32)
		last, err2 := first, error(nil)
		if isRange {
			last, err2 = strconv.ParseUint(hi, 10, 32)
		}
		if err1 != nil || err2 != nil || last < first {
			t.Fatalf("moved log line with uids %q: not a UID set", l.str("uids"))
		}
		for u := first; u <= last; u++ {
			uids = append(uids, uint32(u))
		}
	}
	return uids
}
