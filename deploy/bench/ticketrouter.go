package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ticketrouter/ticketrouter/ingest/imaptest"
	"github.com/ticketrouter/ticketrouter/internal/testproc"
)

const (
	subjectPrefix = "helpdesk.tickets"
	streamName    = "TICKETS"
	// secretEnv carries the IMAP password to ticketrouter (the variable
	// that overrides the file's secret, so a stray one cannot interfere).
	secretEnv = "TICKETROUTER_IMAP_SECRET"
)

// trInstance is one running `ticketrouter run` against a Dovecot.
type trInstance struct {
	dir      string
	config   string
	natsURL  string
	httpAddr string
	// debugAddr serves Go's profiles (debug.listen), for -pprof.
	debugAddr string
	proc      *child
}

// trSettings are configuration keys a run sets beyond the benchmark's
// configuration; the zero value leaves them at their defaults.
type trSettings struct {
	// noIdle sets imap.idle: false and imap.poll_interval: pollInterval:
	// the worker polls instead of using IDLE.
	noIdle       bool
	pollInterval time.Duration
}

// startTicketrouter writes a configuration (deploy/ticketrouter.single.yaml
// with the benchmark's settings) into dir and starts `ticketrouter run`.
func (b *bench) startTicketrouter(ctx context.Context, dir string, d *imaptest.Dovecot, set trSettings) (*trInstance, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("ticketrouter: %w", err)
	}
	ports, err := testproc.FreePorts(3)
	if err != nil {
		return nil, fmt.Errorf("ticketrouter: %w", err)
	}
	maxSize := max(int64(64<<20), b.opts.big+1<<20)
	var total int64
	if b.mb != nil {
		total = b.mb.bytes
	}
	maxStore := max(int64(10<<30), 2*total+1<<30)
	tr := &trInstance{
		dir:       dir,
		config:    filepath.Join(dir, "ticketrouter.yaml"),
		natsURL:   fmt.Sprintf("nats://127.0.0.1:%d", ports[0]),
		httpAddr:  fmt.Sprintf("127.0.0.1:%d", ports[1]),
		debugAddr: fmt.Sprintf("127.0.0.1:%d", ports[2]),
	}
	var imapExtra string
	if set.noIdle {
		imapExtra = fmt.Sprintf("  # Poll instead of IDLE (Dovecot 2.3 holds IDLE notifications back 500 ms).\n  idle: false\n  poll_interval: %s\n", set.pollInterval)
	}
	conf := fmt.Sprintf(`# ticketrouter benchmark (deploy/bench), from deploy/ticketrouter.single.yaml
accounts: %q
subject_prefix: %s
# No DNS in a benchmark: sender authentication is off.
sender_auth:
  mode: "off"
imap:
  addr: %q
  security: plain
  username: %q
  mechanism: login
  secret:
    env: %s
  mailboxes: [INBOX]
  processed: Processed
  quarantine: Quarantine
  max_size: %d
  max_attempts: 5
%snats:
  embedded:
    store_dir: %q
    host: 127.0.0.1
    port: %d
    max_store: %d
    max_memory: 268435456
  stream: %s
  replicas: 1
  duplicate_window: 2h
  max_age: 2160h
http:
  listen: %q
debug:
  listen: %q
log:
  level: warn
  format: json
replica:
  lease_ttl: 10s
`, b.accounts, subjectPrefix, d.Addr(), d.Username(), secretEnv, maxSize, imapExtra,
		filepath.Join(dir, "nats"), ports[0], maxStore, streamName, tr.httpAddr, tr.debugAddr)
	if err := os.WriteFile(tr.config, []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("ticketrouter: %w", err)
	}
	env := []string{secretEnv + "=" + d.Password()}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	check := exec.CommandContext(cctx, b.trBin, "config", "check", tr.config)
	check.Env = childEnv(env...)
	if out, err := check.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ticketrouter config check %s: %v\n%s", tr.config, err, out)
	}
	tr.proc, err = b.startChild("ticketrouter", filepath.Join(dir, "ticketrouter.log"), nil, env, b.trBin, "run", "--config", tr.config)
	if err != nil {
		return nil, err
	}
	return tr, nil
}

// waitReady waits until /readyz answers 200.
func (tr *trInstance) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	for {
		resp, err := client.Get("http://" + tr.httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if tr.proc.Exited() {
			return fmt.Errorf("ticketrouter exited while starting (%v):\n%s", tr.proc.Err(), tr.proc.Tail(20))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ticketrouter not ready within %v (/readyz: %s):\n%s", timeout, last, tr.proc.Tail(20))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop stops the process (SIGTERM, then SIGKILL after a minute) and
// returns its exit problem, if any.
func (tr *trInstance) stop() error {
	if err := tr.proc.Stop(time.Minute); err != nil {
		return err
	}
	if code := tr.proc.ProcessState().ExitCode(); code != 0 {
		return fmt.Errorf("ticketrouter exited with status %d:\n%s", code, tr.proc.Tail(20))
	}
	return nil
}

// movedCounters reads the service's counters of mails moved to the
// processed and the quarantine folder from its /metrics.
func movedCounters(ctx context.Context, httpAddr string) (processed, quarantined int, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	// Uncompressed: read ten times a second, gzip would be the bench's
	// load on the process it measures, not the service's.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		for name, into := range map[string]*int{
			`ticketrouter_mails_moved_total{mailbox="INBOX"} `:       &processed,
			`ticketrouter_mails_quarantined_total{mailbox="INBOX"} `: &quarantined,
		} {
			if v, ok := strings.CutPrefix(line, name); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return 0, 0, fmt.Errorf("metrics: %q: %w", line, err)
				}
				*into = int(f)
			}
		}
	}
	return processed, quarantined, sc.Err()
}

// progress is one look at the mailboxes during a drain.
type progress struct {
	at                            time.Duration
	inbox, processed, quarantined int
}

// runTicketrouter drains the mailbox with `ticketrouter run`.
func (b *bench) runTicketrouter(ctx context.Context, dir string) (res result) {
	res = result{Tool: toolTicketrouter, Mails: len(b.mb.files), Bytes: b.mb.bytes}
	d, err := b.seedDovecot(ctx, b.mb)
	if err != nil {
		return res.fail(err)
	}
	defer d.Close()
	n := len(b.mb.files)
	mon, err := dialIMAP(d.Addr(), d.Username(), d.Password(), time.Minute)
	if err != nil {
		return res.fail(fmt.Errorf("status connection: %w", err))
	}
	defer mon.close()

	b.logf("ticketrouter: draining %d mails (sender_auth off: no DNS)", n)
	cpu := readCPU()
	tr, err := b.startTicketrouter(ctx, dir, d, trSettings{})
	if err != nil {
		return res.fail(err)
	}
	defer tr.proc.Stop(time.Minute) // on every path; a no-op once stopped
	finishProfiles := func() {}
	if b.opts.pprofDir != "" {
		prof := b.startProfiler(ctx, tr)
		defer func() { // on a failure, before the process is stopped
			if res.Profiles == nil {
				res.Profiles = prof.abort()
			}
		}()
		finishProfiles = func() {
			b.logf("ticketrouter: drained; finishing the CPU profile and fetching the heap and allocs profiles")
			res.Profiles = prof.finish()
		}
		res.Notes = append(res.Notes, fmt.Sprintf("profiled (-pprof): %d s CPU profiles back to back and heap profiles "+
			"during the drain; its time and CPU include their overhead", cpuProfileSeconds))
	}
	start := tr.proc.Started()
	timeout := b.drainTimeout()
	var track []progress
	lastReport := time.Now()
	answered := false // /metrics listens once the service has loaded its accounts
	for {
		select {
		case <-ctx.Done():
			return res.fail(ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		if tr.proc.Exited() {
			return res.fail(fmt.Errorf("ticketrouter exited during the drain (%v):\n%s", tr.proc.Err(), tr.proc.Tail(20)))
		}
		// The service's own counters, not IMAP STATUS: three STATUS
		// commands every 100 ms made Dovecot sync a 20,000-mail mailbox
		// ten times a second, work no other row had to share the machine
		// with. STATUS confirms the end once the counters reach it.
		var p progress
		var err error
		p.processed, p.quarantined, err = movedCounters(ctx, tr.httpAddr)
		p.at = time.Since(start)
		if err != nil && !answered && p.at < time.Minute {
			continue // not listening yet: a small drain may poll before it is
		}
		if err != nil {
			return res.fail(fmt.Errorf("watching the drain: %w", err))
		}
		answered = true
		p.inbox = n - p.processed - p.quarantined
		if p.inbox == 0 {
			var errs [3]error
			p.inbox, errs[0] = mon.messages("INBOX")
			p.processed, errs[1] = mon.messages("Processed")
			p.quarantined, errs[2] = mon.messages("Quarantine")
			for _, err := range errs {
				if err != nil {
					return res.fail(fmt.Errorf("watching the drain: %w", err))
				}
			}
		}
		track = append(track, p)
		if p.inbox == 0 && p.processed+p.quarantined == n {
			res.MachineBusy = cpu.busySince()
			res.Seconds = p.at.Seconds()
			res.Quarantined = p.quarantined
			break
		}
		if p.at > timeout {
			return res.fail(fmt.Errorf("ticketrouter did not drain %d mails within %v: INBOX %d, Processed %d, Quarantine %d; last log lines:\n%s",
				n, timeout, p.inbox, p.processed, p.quarantined, tr.proc.Tail(10)))
		}
		if time.Since(lastReport) >= 10*time.Second {
			lastReport = time.Now()
			b.logf("ticketrouter: %d/%d moved after %v (%.0f mails/s)", p.processed+p.quarantined, n,
				p.at.Round(time.Second), float64(p.processed+p.quarantined)/p.at.Seconds())
		}
	}
	finishProfiles() // the clock has stopped; the process still runs
	res.Notes = append(res.Notes, stallNote(track, n)...)
	res.Notes = append(res.Notes, windowNote(track, 5*time.Second)...)
	for _, p := range track {
		res.Progress = append(res.Progress, [2]float64{p.at.Seconds(), float64(p.processed + p.quarantined)})
	}

	// The clock has stopped: check what reached JetStream.
	subjects, msgs, err := streamContents(ctx, tr.natsURL)
	if err != nil {
		return res.fail(err)
	}
	res.Subjects = subjects
	tickets := int(msgs) - res.Quarantined // a quarantined mail leaves a dead-letter record instead
	res.Tickets = tickets
	if tickets != n-res.Quarantined {
		return res.fail(fmt.Errorf("stream %s holds %d messages on %s.>, want %d (%d mails, %d quarantined)",
			streamName, msgs, subjectPrefix, n, n, res.Quarantined))
	}
	if err := tr.stop(); err != nil {
		res.Notes = append(res.Notes, "stop: "+err.Error())
	}
	res.PeakRSSMiB, res.CPUSeconds, res.RSSSource = tr.proc.usage()
	res.finish()
	b.logf("ticketrouter: drained %d mails in %.1f s (%.0f mails/s), %d quarantined, peak RSS %.0f MiB",
		n, res.Seconds, res.MailsPerSec, res.Quarantined, res.PeakRSSMiB)
	return res
}

// stallNote says when the first mail moved and finds the longest
// stretch of the drain without a mail moved (to the resolution of the
// polling).
func stallNote(track []progress, n int) []string {
	moved := func(i int) int { return track[i].processed + track[i].quarantined }
	first := slices.IndexFunc(track, func(p progress) bool { return p.processed+p.quarantined > 0 })
	if first < 0 {
		return nil
	}
	notes := []string{fmt.Sprintf("first mail moved %.2f s after the process started", track[first].at.Seconds())}
	longest, at, done, prev := time.Duration(0), time.Duration(0), 0, first
	for i := first + 1; i < len(track); i++ {
		if moved(i) == moved(i-1) {
			continue
		}
		if gap := track[i].at - track[prev].at; gap > longest {
			longest, at, done = gap, track[prev].at, moved(prev)
		}
		prev = i
	}
	if longest > 0 {
		notes = append(notes, fmt.Sprintf("longest stretch without a mail moved: %.2f s (from %.1f s, after %d/%d mails)",
			longest.Seconds(), at.Seconds(), done, n))
	}
	return notes
}

// windowNote gives the slowest and fastest rate over windows of the given
// length, after the first mail moved and before the last.
func windowNote(track []progress, window time.Duration) []string {
	moved := func(i int) int { return track[i].processed + track[i].quarantined }
	first := slices.IndexFunc(track, func(p progress) bool { return p.processed+p.quarantined > 0 })
	if first < 0 || track[len(track)-1].at-track[first].at < 2*window {
		return nil
	}
	slowest, fastest := -1.0, -1.0
	var slowAt, fastAt time.Duration
	j := first
	for i := first; i < len(track); i++ {
		for j < len(track) && track[j].at-track[i].at < window {
			j++
		}
		if j == len(track) {
			break
		}
		rate := float64(moved(j)-moved(i)) / (track[j].at - track[i].at).Seconds()
		if slowest < 0 || rate < slowest {
			slowest, slowAt = rate, track[i].at
		}
		if rate > fastest {
			fastest, fastAt = rate, track[i].at
		}
	}
	if slowest < 0 {
		return nil
	}
	return []string{fmt.Sprintf("over %v windows: slowest %.0f mails/s (from %.1f s), fastest %.0f mails/s (from %.1f s)",
		window, slowest, slowAt.Seconds(), fastest, fastAt.Seconds())}
}

// streamContents counts the messages of the ticket stream, by subject.
func streamContents(ctx context.Context, url string) (map[string]uint64, uint64, error) {
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second), nats.Name("ticketrouter bench"))
	if err != nil {
		return nil, 0, fmt.Errorf("connect to the embedded NATS %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, 0, fmt.Errorf("jetstream: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := js.Stream(cctx, streamName)
	if err != nil {
		return nil, 0, fmt.Errorf("stream %s: %w", streamName, err)
	}
	info, err := s.Info(cctx, jetstream.WithSubjectFilter(subjectPrefix+".>"))
	if err != nil {
		return nil, 0, fmt.Errorf("stream %s info: %w", streamName, err)
	}
	var total uint64
	for _, c := range info.State.Subjects {
		total += c
	}
	if total != info.State.Msgs {
		return nil, 0, fmt.Errorf("stream %s: %d messages in all, %d on %s.>", streamName, info.State.Msgs, total, subjectPrefix)
	}
	return info.State.Subjects, total, nil
}
