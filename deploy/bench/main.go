// Command bench is ticketrouter's end-to-end benchmark: how fast
// `ticketrouter run` drains a real mailbox, compared with tools that only
// copy mail, how soon a new mail becomes a ticket, and how much memory
// the service needs with a very large mail in the backlog.
//
// Run it as root (it starts real Dovecot daemons, as the tests do), from
// the repository root, with one command:
//
//	sudo deploy/bench/run            # installs Dovecot and isync if missing
//	go run ./deploy/bench -n 500 -latency 50 -big 5MiB   # a quick look
//
// What it does: it generates a mailbox of -n realistic support mails
// (deterministic from -seed: plain text in many charsets, text and HTML,
// attachments, one -big mail), then for each tool starts a fresh Dovecot on
// 127.0.0.1, delivers the same mailbox into its INBOX, warms Dovecot's
// index (so no tool pays for indexing), and starts the clock:
//
//   - ticketrouter: `ticketrouter run` with an embedded NATS, built from
//     this working tree. It parses and decides every mail, stores the raw
//     mail in the object store, publishes the ticket and waits for the
//     acks, and moves the mail to Processed. The clock runs from process
//     start until its /metrics count every mail moved to Processed (or
//     Quarantine), which STATUS confirms; then the stream is checked to
//     hold one ticket per mail.
//   - mbsync: isync's mbsync pulls INBOX into a local Maildir, with its
//     default fsync of every mail; mbsync-nofsync the same with FSync no.
//     They copy mail; they do not parse it nor change the server.
//   - raw: one `UID FETCH 1:* BODY.PEEK[]` read by a minimal client that
//     only counts bytes: the ceiling of what any IMAP client can drain
//     from this Dovecot on this machine.
//
// Then the latency runs (-tools latency): a fresh, empty Dovecot and
// ticketrouter each, mails APPENDed one at a time while the worker idles;
// each is timed from the APPEND's tagged OK to its ticket reaching a NATS
// subscriber. The first run uses IDLE (the default), the second polls
// every 50 ms (imap.idle: false), as Dovecot 2.3 delays IDLE notifications
// by 500 ms; the latency target judges the second.
//
// With -pprof DIR, the ticketrouter drain is profiled from the service's
// /debug/pprof/: CPU profiles of 5 s back to back, heap profiles at the
// RSS peak and after the drain, and allocs, with the binary, into DIR.
//
// With -runs N, the mailbox is drained N times with every selected tool,
// paired (one drain per tool per run) and in alternating order (reversed
// in every second run), and a summary gives the median and range of each
// tool's figures and of ticketrouter's ratios to it.
//
// Reading the table (stdout; progress goes to stderr): MB are 10^6 bytes
// of mail as the server hands it out; "wall tr÷tool" is ticketrouter's
// drain time divided by that tool's, "CPU tr÷tool" its CPU seconds
// divided by that tool's (2.0: ticketrouter takes twice as long, or burns
// twice the CPU);
// peak RSS is the process's own maximum resident set (ticketrouter's
// includes its embedded NATS server), in MiB; CPU s is the process's user
// plus system time (Dovecot's is in no row). The PASS/MISS lines under it
// are the performance targets (README, "The whole service").
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
)

// The tools, in the order they run and are shown.
const (
	toolTicketrouter  = "ticketrouter"
	toolMbsync        = "mbsync"
	toolMbsyncNoFsync = "mbsync-nofsync"
	toolRaw           = "raw"
	// toolLatency is the latency run: not a drain, but selectable with
	// -tools like one.
	toolLatency = "latency"
)

// allTools are the drains.
func allTools() []string {
	return []string{toolTicketrouter, toolMbsync, toolMbsyncNoFsync, toolRaw}
}

// allItems is what -tools may name: the drains, then the latency run.
func allItems() []string {
	return append(allTools(), toolLatency)
}

// options are the command line's.
type options struct {
	n       int
	latency int // mails of each latency run; 0 when the latency run is not selected
	big     int64
	tools   []string // the drains to run, in order (no toolLatency)
	// items is -tools as given, sorted: tools plus toolLatency when the
	// latency run is selected (for the header).
	items    []string
	seed     uint64
	jsonPath string
	keep     bool
	binary   string
	pprofDir string
	// runs is -runs: how many times each drain runs, paired and in
	// alternating order, for the median and range of the ratios.
	runs int
}

// bench is one run of the benchmark.
type bench struct {
	opts     options
	root     string // the repository
	work     string // the temporary directory
	accounts string // the account directory the mails refer to
	trBin    string
	gen      *generator
	mb       *mailbox
	began    time.Time
	stderr   io.Writer
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.stderr, "bench %6s  %s\n", time.Since(b.began).Round(time.Second), fmt.Sprintf(format, args...))
}

// drainTimeout bounds each drain: generous, from the mailbox's size.
func (b *bench) drainTimeout() time.Duration {
	return max(5*time.Minute, time.Duration(b.opts.n)*20*time.Millisecond)
}

func main() {
	if len(os.Args) >= 3 && os.Args[1] == rawFetchFlag {
		os.Exit(rawFetchMain(os.Args[2]))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.n, "n", 20000, "mails in the drain mailbox (the -big one included)")
	fs.IntVar(&o.latency, "latency", 500, "mails of each latency run (IDLE, then polling); 0 skips them")
	bigFlag := fs.String("big", "50MiB", "size of the one big mail of the drain mailbox (50MiB, 50MB, bytes); 0: none")
	toolsFlag := fs.String("tools", strings.Join(allItems(), ","), "what to run, comma-separated: drains and `latency`; "+
		"a -latency given explicitly also selects the latency run")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the generated mails")
	fs.StringVar(&o.jsonPath, "json", "", "also write the results as JSON to `FILE`")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (mails, configurations, logs, Maildirs) and print its path")
	fs.StringVar(&o.binary, "binary", "", "use this ticketrouter binary instead of building ./cmd/ticketrouter")
	fs.StringVar(&o.pprofDir, "pprof", "", "write CPU and heap profiles of the ticketrouter drain, and the binary, into `DIR`")
	fs.IntVar(&o.runs, "runs", 1, "run the drains `N` times, paired, in alternating order, and summarize: median and range of each figure and ratio")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sudo deploy/bench/run [flags]   (or, as root from the repository: go run ./deploy/bench [flags])")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.n < 1 {
		return o, fmt.Errorf("-n %d: want at least 1", o.n)
	}
	if o.runs < 1 {
		return o, fmt.Errorf("-runs %d: want at least 1", o.runs)
	}
	if o.latency < 0 {
		return o, fmt.Errorf("-latency %d: must not be negative", o.latency)
	}
	big, err := parseSize(*bigFlag)
	if err != nil {
		return o, fmt.Errorf("-big: %w", err)
	}
	o.big = big
	var named []string
	for _, t := range strings.Split(*toolsFlag, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if !slices.Contains(allItems(), t) {
			return o, fmt.Errorf("-tools: unknown tool %q (want some of %s)", t, strings.Join(allItems(), ","))
		}
		named = append(named, t)
	}
	// The latency run is selected by -tools latency (the default names
	// it), or by a -latency given explicitly: -tools ticketrouter
	// -latency 30 runs both, -tools ticketrouter only the drain.
	latencySet := false
	fs.Visit(func(f *flag.Flag) { latencySet = latencySet || f.Name == "latency" })
	if o.latency > 0 && latencySet && !slices.Contains(named, toolLatency) {
		named = append(named, toolLatency)
	}
	if !slices.Contains(named, toolLatency) {
		o.latency = 0
	}
	if o.latency == 0 {
		named = slices.DeleteFunc(named, func(t string) bool { return t == toolLatency })
	}
	// Run in the fixed order, whatever the flag's.
	o.items = slices.DeleteFunc(allItems(), func(t string) bool { return !slices.Contains(named, t) })
	o.tools = slices.DeleteFunc(slices.Clone(o.items), func(t string) bool { return t == toolLatency })
	if len(o.items) == 0 {
		return o, errors.New("nothing to run: -tools names no drain, and the latency run is not selected (or -latency is 0)")
	}
	if o.pprofDir != "" && !slices.Contains(o.tools, toolTicketrouter) {
		return o, errors.New("-pprof profiles the ticketrouter drain: -tools must include ticketrouter")
	}
	if o.runs > 1 && len(o.tools) == 0 {
		return o, errors.New("-runs repeats the drains: -tools must name at least one")
	}
	if o.runs > 1 && o.pprofDir != "" {
		// Profiling costs CPU, which the runs compare, and each run's
		// profiles would replace the last one's.
		return o, errors.New("-pprof profiles one drain: use it with -runs 1")
	}
	return o, nil
}

// parseSize reads a size: 50MiB, 512KiB, 2GiB (powers of 1024), 50MB,
// 512KB (powers of 1000), 52428800 or 52428800B (bytes), 0.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	num := strings.TrimRightFunc(t, unicode.IsLetter)
	mult, ok := map[string]int64{"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "kb": 1e3, "m": 1 << 20, "mib": 1 << 20,
		"mb": 1e6, "g": 1 << 30, "gib": 1 << 30, "gb": 1e9}[strings.ToLower(strings.TrimSpace(t[len(num):]))]
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if !ok || err != nil || v < 0 {
		return 0, fmt.Errorf("%q is not a size (like 50MiB, 50MB or a number of bytes)", s)
	}
	return int64(v * float64(mult)), nil
}

// run is the whole benchmark; it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &bench{opts: opts, began: time.Now(), stderr: stderr}
	rep, err := b.run(ctx)
	if rep != nil {
		if rep.Info.LoadEnd == "" { // stopped early
			rep.Info.LoadEnd = loadavg()
		}
		rep.print(stdout)
		if opts.jsonPath != "" {
			if err := rep.writeJSON(opts.jsonPath); err != nil {
				fmt.Fprintln(stderr, "bench:", err)
				return 1
			}
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	if rep.failed() {
		return 1
	}
	return 0
}

// run prepares everything, runs each tool and the latency run, and
// returns the report. A tool that fails is reported in its row; the
// others still run.
func (b *bench) run(ctx context.Context) (*report, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("must run as root: the Dovecot harness (ingest/imaptest) runs the daemon with mail_uid=nobody; try: sudo deploy/bench/run")
	}
	for _, bin := range []struct{ name, fallback, pkg string }{
		{"dovecot", "/usr/sbin/dovecot", "dovecot-imapd"}, {"doveadm", "/usr/bin/doveadm", "dovecot-core"},
	} {
		if _, err := lookPath(bin.name, bin.fallback); err != nil {
			return nil, fmt.Errorf("%w (Debian: apt-get install %s; deploy/bench/run does it)", err, bin.pkg)
		}
	}
	if slices.Contains(b.opts.tools, toolMbsync) || slices.Contains(b.opts.tools, toolMbsyncNoFsync) {
		if _, err := lookPath("mbsync", "/usr/bin/mbsync"); err != nil {
			return nil, fmt.Errorf("%w (Debian: apt-get install isync; deploy/bench/run does it; or leave it out with -tools)", err)
		}
	}
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	b.root = root
	b.accounts = filepath.Join(root, "deploy", "examples", "accounts.yaml")
	// The accounts and texts of the mails first: a mistake in them shows at once.
	accounts, err := loadAccounts(b.accounts)
	if err != nil {
		return nil, err
	}
	if b.gen, err = newGenerator(b.opts.seed, accounts); err != nil {
		return nil, err
	}
	if b.work, err = os.MkdirTemp("", "ticketrouter-bench-"); err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	if err := os.Chmod(b.work, 0o755); err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	if b.opts.keep {
		defer b.logf("kept the temporary directory %s (the Dovecot directories are removed)", b.work)
	} else {
		defer os.RemoveAll(b.work)
	}
	needTR := slices.Contains(b.opts.tools, toolTicketrouter) || b.opts.latency > 0
	if needTR {
		if err := b.buildTicketrouter(ctx); err != nil {
			return nil, err
		}
	}
	if b.opts.pprofDir != "" {
		if err := b.preparePprofDir(); err != nil {
			return nil, err
		}
	}
	info := gatherSysInfo(ctx, b)

	if len(b.opts.tools) > 0 { // the latency run makes its own mails
		b.logf("generating %d mails (seed %d, big mail %d bytes) into %s", b.opts.n, b.opts.seed, b.opts.big, filepath.Join(b.work, "mails"))
		if b.mb, err = b.gen.generateMailbox(filepath.Join(b.work, "mails"), b.opts.n, b.opts.big); err != nil {
			return nil, err
		}
		b.logf("mailbox: %d mails, %.1f MB, mean %.1f KB", len(b.mb.files), float64(b.mb.bytes)/1e6, float64(b.mb.bytes)/float64(len(b.mb.files))/1e3)
	}

	rep := &report{Info: info, Mailbox: b.mailboxSummary()}
	for i := 0; i < b.opts.runs && len(b.opts.tools) > 0 && ctx.Err() == nil; i++ {
		order := runOrder(b.opts.tools, i)
		if b.opts.runs == 1 {
			rep.Results = b.drainEach(ctx, order, b.work)
			break
		}
		b.logf("run %d of %d: %s", i+1, b.opts.runs, strings.Join(order, ", "))
		run := pairedRun{Run: i + 1, Order: order, LoadStart: loadavg()}
		run.Results = b.drainEach(ctx, order, filepath.Join(b.work, fmt.Sprintf("run-%d", i+1)))
		rep.Runs = append(rep.Runs, run)
	}
	if ctx.Err() != nil {
		rep.compute()
		return rep, ctx.Err()
	}
	// The latency runs: the default (IDLE), then polling every 50 ms.
	for _, mode := range latencyModes() {
		if b.opts.latency == 0 || ctx.Err() != nil {
			break
		}
		rep.Latency = append(rep.Latency, b.runLatency(ctx, mode))
	}
	rep.Info.LoadEnd = loadavg()
	rep.compute()
	return rep, ctx.Err()
}

// drainEach drains the mailbox with each tool, in order, each on a fresh
// Dovecot with its own directory under dir, and returns the results in the
// fixed order of the tools (not the order they ran in). A tool that fails
// is reported in its result; the others still run. It stops early when
// ctx ends.
func (b *bench) drainEach(ctx context.Context, order []string, dir string) []result {
	var results []result
	for _, tool := range order {
		if ctx.Err() != nil {
			break
		}
		toolDir := filepath.Join(dir, tool)
		var res result
		switch tool {
		case toolTicketrouter:
			res = b.runTicketrouter(ctx, toolDir)
		case toolMbsync:
			res = b.runMbsync(ctx, true, toolDir)
		case toolMbsyncNoFsync:
			res = b.runMbsync(ctx, false, toolDir)
		case toolRaw:
			res = b.runRaw(ctx, toolDir)
		}
		if res.Error != "" {
			b.logf("%s: FAILED: %s", tool, res.Error)
		}
		results = append(results, res)
		if !b.opts.keep { // its NATS store or Maildir: as large as the mailbox
			os.RemoveAll(toolDir)
		}
	}
	slices.SortStableFunc(results, func(x, y result) int {
		return slices.Index(b.opts.tools, x.Tool) - slices.Index(b.opts.tools, y.Tool)
	})
	return results
}

// buildTicketrouter builds ./cmd/ticketrouter from the working tree,
// unless -binary names one.
func (b *bench) buildTicketrouter(ctx context.Context) error {
	if b.opts.binary != "" {
		p, err := filepath.Abs(b.opts.binary)
		if err != nil {
			return fmt.Errorf("-binary: %w", err)
		}
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("-binary: %w", err)
		}
		b.trBin = p
		b.logf("using the ticketrouter binary %s", p)
		return nil
	}
	goTool, err := lookPath("go", filepath.Join(os.Getenv("GOROOT"), "bin", "go"), "/usr/local/go/bin/go")
	if err != nil {
		return fmt.Errorf("%w: install Go, or pass a built binary with -binary", err)
	}
	b.trBin = filepath.Join(b.work, "bin", "ticketrouter")
	b.logf("building ./cmd/ticketrouter from %s", b.root)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, goTool, "build", "-o", b.trBin, "./cmd/ticketrouter")
	cmd.Dir = b.root
	// GODEBUG is for the service (gctrace=1, say): the compiler would
	// print its own trace too, and the build cache replay it to every
	// later build and vet of these packages.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GODEBUG=") })
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/ticketrouter: %v\n%s", err, out)
	}
	return nil
}

// repoRoot finds the repository: the directory of go.mod of module
// github.com/ticketrouter/ticketrouter, from the working directory up.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the repository: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/ticketrouter/ticketrouter\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find the repository: run from within github.com/ticketrouter/ticketrouter (deploy/bench/run does)")
		}
		dir = parent
	}
}

// lookPath finds a program in PATH or at one of the fallbacks.
func lookPath(name string, fallbacks ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, p := range fallbacks {
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not installed (not in PATH)", name)
}

// splitAddr splits host:port.
func splitAddr(addr string) (host, port string) {
	i := strings.LastIndexByte(addr, ':')
	return addr[:i], addr[i+1:]
}

// writeJSON writes the report as JSON.
func (r *report) writeJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
