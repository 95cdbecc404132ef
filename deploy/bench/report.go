package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// result is one row of the table: one tool's drain of the mailbox.
type result struct {
	Tool        string  `json:"tool"`
	Mails       int     `json:"mails"`
	Bytes       int64   `json:"bytes"`
	Seconds     float64 `json:"seconds"`
	MailsPerSec float64 `json:"mails_per_second"`
	MBPerSec    float64 `json:"mb_per_second"`
	// Ratio is ticketrouter's drain time divided by this tool's, and
	// CPURatio its CPU seconds divided by this tool's, in the same run: the
	// tool is the reference (0: not known).
	Ratio      float64 `json:"ticketrouter_time_ratio"`
	CPURatio   float64 `json:"ticketrouter_cpu_ratio"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	RSSSource  string  `json:"peak_rss_source"` // ru_maxrss, or VmHWM sampled (see child.usage)
	CPUSeconds float64 `json:"cpu_seconds"`
	// MachineBusy is the share of all cores busy (anything: Dovecot, the
	// tool, the rest) while the clock ran.
	MachineBusy float64 `json:"machine_busy"`
	// ticketrouter only.
	Tickets     int               `json:"tickets,omitempty"`
	Quarantined int               `json:"quarantined,omitempty"`
	Subjects    map[string]uint64 `json:"subjects,omitempty"`
	Progress    [][2]float64      `json:"progress,omitempty"` // [seconds, mails moved], every 100 ms
	Profiles    *profileSet       `json:"pprof,omitempty"`    // -pprof
	Notes       []string          `json:"notes,omitempty"`
	Error       string            `json:"error,omitempty"`
}

func (r result) fail(err error) result {
	r.Error = err.Error()
	return r
}

// finish computes the rates.
func (r *result) finish() {
	if r.Seconds > 0 {
		r.MailsPerSec = float64(r.Mails) / r.Seconds
		r.MBPerSec = float64(r.Bytes) / 1e6 / r.Seconds
	}
}

// sysInfo is the header: when, where, what.
type sysInfo struct {
	Date         string `json:"date"`
	CPUs         int    `json:"cpus"`
	CPUModel     string `json:"cpu_model"`
	Kernel       string `json:"kernel"`
	Go           string `json:"go"`
	Dovecot      string `json:"dovecot"`
	Mbsync       string `json:"mbsync"`
	Ticketrouter string `json:"ticketrouter"`
	Flags        string `json:"flags"`
	// LoadStart and LoadEnd are /proc/loadavg's 1, 5 and 15 minute load
	// averages when the run began and ended: other work on the machine
	// skews every row.
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end"`
}

// mailboxInfo describes the generated mailbox.
type mailboxInfo struct {
	Mails       int            `json:"mails"`
	Bytes       int64          `json:"bytes"`
	MeanBytes   float64        `json:"mean_bytes"`
	BigBytes    int64          `json:"big_mail_bytes"`
	Seed        uint64         `json:"seed"`
	Kinds       map[string]int `json:"kinds"`
	Languages   map[string]int `json:"languages"`
	Charsets    map[string]int `json:"charsets"`
	AutoReplies int            `json:"auto_replies"`
}

// target is one PASS/MISS line, or an informational INFO line.
type target struct {
	Name          string `json:"name"`
	Measured      bool   `json:"measured"`
	Pass          bool   `json:"pass"`
	Informational bool   `json:"informational,omitempty"` // not a target: no PASS or MISS
	Value         string `json:"value"`
	// Got and Limit are the figure judged (a ratio: the median with
	// -runs; MiB: the highest) and the target's bound, where the target
	// is a number and was measured.
	Got   float64 `json:"got,omitempty"`
	Limit float64 `json:"limit,omitempty"`
}

// report is everything the run found.
type report struct {
	Info    sysInfo     `json:"system"`
	Mailbox mailboxInfo `json:"mailbox"`
	// Results are the drains of the one run (-runs 1); with -runs N,
	// Runs holds each run's, and Summary their medians and ranges.
	Results []result      `json:"results,omitempty"`
	Runs    []pairedRun   `json:"runs,omitempty"`
	Summary []toolSummary `json:"summary,omitempty"`
	// Latency are the latency runs: mode "idle" (the default), then
	// "poll" (imap.idle: false).
	Latency []latencyResult `json:"latency,omitempty"`
	Targets []target        `json:"targets"`
}

func (b *bench) mailboxSummary() mailboxInfo {
	if b.mb == nil { // no drain: no mailbox
		return mailboxInfo{BigBytes: b.opts.big, Seed: b.opts.seed}
	}
	return mailboxInfo{
		Mails: len(b.mb.files), Bytes: b.mb.bytes, MeanBytes: float64(b.mb.bytes) / float64(len(b.mb.files)),
		BigBytes: b.mb.bigSize, Seed: b.opts.seed, Kinds: b.mb.kinds, Languages: b.mb.langs, Charsets: b.mb.charset,
		AutoReplies: b.mb.auto,
	}
}

// resultSets returns the results of each run: the one run's, or those of
// each run of -runs.
func (r *report) resultSets() [][]result {
	if len(r.Runs) == 0 {
		if len(r.Results) == 0 {
			return nil
		}
		return [][]result{r.Results}
	}
	sets := make([][]result, 0, len(r.Runs))
	for _, run := range r.Runs {
		sets = append(sets, run.Results)
	}
	return sets
}

func (r *report) failed() bool {
	for _, rs := range r.resultSets() {
		for _, res := range rs {
			if res.Error != "" {
				return true
			}
		}
	}
	for _, l := range r.Latency {
		if l.Error != "" {
			return true
		}
	}
	return false
}

// latency returns the latency run of a mode that succeeded, or nil.
func (r *report) latency(mode string) *latencyResult {
	for i := range r.Latency {
		if l := &r.Latency[i]; l.Mode == mode && l.Error == "" && l.Count > 0 {
			return l
		}
	}
	return nil
}

// compute fills in the ratios, the summary of -runs and the targets.
func (r *report) compute() {
	sets := r.resultSets()
	for _, rs := range sets {
		fillRatios(rs)
	}
	r.Summary = nil
	if len(r.Runs) > 0 {
		var tools []string // in the fixed order; only the last run may lack some (stopped early)
		for _, rs := range sets {
			for _, res := range rs {
				if !slices.Contains(tools, res.Tool) {
					tools = append(tools, res.Tool)
				}
			}
		}
		r.Summary = summarizeRuns(tools, sets)
	}
	r.Targets = drainTargets(sets)
	add := func(name string, measured, pass bool, value string) {
		r.Targets = append(r.Targets, target{Name: name, Measured: measured, Pass: pass, Value: value})
	}
	// The target judges the polling run: with IDLE, Dovecot 2.3 alone
	// takes 500 ms to notify.
	pollSetting := fmt.Sprintf("with imap.idle: false, poll_interval %s", pollLatencyInterval)
	if l := r.latency("poll"); l != nil {
		add("new-mail latency p99 < 100 ms", true, l.P99MS < 100,
			fmt.Sprintf("%s: p99 %.1f ms over %d mails (p50 %.1f ms)", pollSetting, l.P99MS, l.Count, l.P50MS))
	} else {
		add("new-mail latency p99 < 100 ms", false, false, pollSetting+": not measured (latency run not selected, or it failed)")
	}
	if l := r.latency("idle"); l != nil {
		value := fmt.Sprintf("p99 %.1f ms over %d mails: bound by Dovecot 2.3's 500 ms IDLE notification delay", l.P99MS, l.Count)
		if l.Notify != nil {
			value += fmt.Sprintf(" (Dovecot's notification p99 %.1f ms, ticketrouter after it p99 %.1f ms)", l.Notify.P99MS, l.AfterNotify.P99MS)
		}
		r.Targets = append(r.Targets, target{Name: "new-mail latency with IDLE (default)", Measured: true,
			Informational: true, Value: value})
	}
	r.Targets = append(r.Targets, rssTarget(sets, r.Mailbox))
}

// print writes the header, the table, the latency and the targets.
func (r *report) print(w io.Writer) {
	i, m := r.Info, r.Mailbox
	fmt.Fprintf(w, "\nticketrouter benchmark, %s\n", i.Date)
	fmt.Fprintf(w, "machine:  %d CPUs, %s, Linux %s, %s\n", i.CPUs, i.CPUModel, i.Kernel, i.Go)
	fmt.Fprintf(w, "software: %s, %s, ticketrouter %s\n", i.Dovecot, i.Mbsync, i.Ticketrouter)
	fmt.Fprintf(w, "flags:    %s\n", i.Flags)
	fmt.Fprintf(w, "load:     %s at the start, %s at the end (1, 5, 15 min; other work on the machine skews every row)\n", i.LoadStart, i.LoadEnd)
	big := "none"
	if m.BigBytes > 0 {
		big = fmt.Sprintf("%d bytes (%.1f MiB)", m.BigBytes, float64(m.BigBytes)/(1<<20))
	}
	if m.Mails > 0 {
		fmt.Fprintf(w, "mailbox:  %d mails, %.1f MB, mean %.1f KB, big mail %s, seed %d\n",
			m.Mails, float64(m.Bytes)/1e6, m.MeanBytes/1e3, big, m.Seed)
		fmt.Fprintf(w, "          %s; auto-replies %d\n", shares(m.Kinds, m.Mails), m.AutoReplies)
		fmt.Fprintf(w, "          languages: %s\n", shares(m.Languages, m.Mails))
		fmt.Fprintf(w, "          text charsets: %s\n", shares(m.Charsets, m.Mails))
	} else {
		fmt.Fprintf(w, "mailbox:  none (no drain selected), seed %d\n", m.Seed)
	}
	fmt.Fprintln(w, "setup:    a fresh Dovecot on 127.0.0.1 per tool (imaptest: mail_fsync=never), the same mailbox delivered and its index")
	fmt.Fprintln(w, "          warmed before each clock starts; page cache warm for all tools. ticketrouter: embedded NATS, sender_auth off")
	fmt.Fprintln(w, "          (no DNS in a benchmark), log level warn; its clock runs from process start to the last mail moved.")
	if len(r.Runs) == 0 {
		if len(r.Results) > 0 {
			fmt.Fprintln(w)
			printTable(w, r.Results)
			printLegend(w)
		}
		printDetails(w, r.Results, r.Info.CPUs)
	} else {
		for _, run := range r.Runs {
			fmt.Fprintf(w, "\nrun %d, drained in the order %s (load %s at its start):\n", run.Run, strings.Join(run.Order, ", "), run.LoadStart)
			printTable(w, run.Results)
			printDetails(w, run.Results, r.Info.CPUs)
		}
		fmt.Fprintln(w)
		printLegend(w)
		printSummary(w, r.Summary, len(r.Runs))
	}
	if len(r.Latency) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "latency: mails APPENDed one at a time to an idle worker, a fresh Dovecot and ticketrouter per run; from the APPEND's")
		fmt.Fprintln(w, "         tagged OK to the ticket reaching a core NATS subscriber of helpdesk.tickets.> (delivered as the stream stores")
		fmt.Fprintln(w, "         it: ≈ the publish ack)")
	}
	for _, l := range r.Latency {
		if l.Error != "" {
			fmt.Fprintf(w, "latency, %s: FAILED: %s\n", l.Label, l.Error)
		} else {
			fmt.Fprintf(w, "latency, %s: %d mails\n", l.Label, l.Count)
			fmt.Fprintf(w, "         p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms, mean %.1f ms; ticketrouter peak RSS %.1f MiB\n",
				l.P50MS, l.P90MS, l.P99MS, l.MaxMS, l.MeanMS, l.PeakRSSMiB)
			if l.Notify != nil {
				fmt.Fprintf(w, "         of which Dovecot's IDLE notification (APPEND OK -> EXISTS on an independent IDLE connection):\n")
				fmt.Fprintf(w, "           p50 %.1f ms, p99 %.1f ms, max %.1f ms (Dovecot 2.3 holds IDLE notifications back %d ms after the\n",
					l.Notify.P50MS, l.Notify.P99MS, l.Notify.MaxMS, 500)
				fmt.Fprintln(w, "           inotify event: NOTIFY_DELAY_MSECS in src/lib-storage/mailbox-watch.c, a constant, not a setting)")
				fmt.Fprintf(w, "         ticketrouter after the notification (ticket seen - EXISTS seen): p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms\n",
					l.AfterNotify.P50MS, l.AfterNotify.P90MS, l.AfterNotify.P99MS, l.AfterNotify.MaxMS)
			}
			if l.Negative > 0 {
				fmt.Fprintf(w, "         %d tickets arrived before the APPEND's OK was read (counted as 0 ms)\n", l.Negative)
			}
			for _, n := range l.Notes {
				fmt.Fprintf(w, "         %s\n", n)
			}
		}
	}
	fmt.Fprintln(w)
	for _, t := range r.Targets {
		fmt.Fprintf(w, "%s  %-50s %s\n", verdict(t), t.Name, t.Value)
	}
}

// tableWidth is the width of the drains' table.
const tableWidth = 111

// printTable writes the drains' table of one run: a row per tool, with
// ticketrouter's wall and CPU ratios to the tool side by side.
func printTable(w io.Writer, results []result) {
	fmt.Fprintf(w, "%-15s %7s %9s %9s %9s %8s %12s %12s %13s %8s\n", "tool", "mails", "MB", "seconds", "mails/s", "MB/s",
		"wall tr÷tool", "CPU tr÷tool", "peak RSS MiB", "CPU s")
	fmt.Fprintln(w, strings.Repeat("-", tableWidth))
	for _, res := range results {
		if res.Error != "" {
			fmt.Fprintf(w, "%-15s FAILED: %s\n", res.Tool, firstLine(res.Error))
			continue
		}
		ratio := func(v float64) string {
			if v > 0 {
				return fmt.Sprintf("%.2f", v)
			}
			return "—"
		}
		fmt.Fprintf(w, "%-15s %7d %9.1f %9.2f %9.1f %8.2f %12s %12s %13.1f %8.2f\n", res.Tool, res.Mails, float64(res.Bytes)/1e6,
			res.Seconds, res.MailsPerSec, res.MBPerSec, ratio(res.Ratio), ratio(res.CPURatio), res.PeakRSSMiB, res.CPUSeconds)
	}
	fmt.Fprintln(w, strings.Repeat("-", tableWidth))
}

// printLegend explains the table's columns and rows.
func printLegend(w io.Writer) {
	fmt.Fprintln(w, "wall tr÷tool, CPU tr÷tool: ticketrouter's drain time, and its CPU s, divided by the tool's in the same run (the tool")
	fmt.Fprintln(w, "is the reference: 2.00 is twice as long, or twice the CPU). MB: 10^6 bytes. raw: one UID FETCH 1:* BODY.PEEK[],")
	fmt.Fprintln(w, "bytes counted (the ceiling). mbsync copies into a Maildir (default: fsync per mail) and leaves the server alone;")
	fmt.Fprintln(w, "ticketrouter parses, decides, stores the raw mail, publishes with acks and moves every mail. RSS and CPU are the")
	fmt.Fprintln(w, "process's own (ticketrouter's include its embedded NATS); Dovecot's are in no row.")
}

// printDetails writes, under a run's table, how busy the machine was and
// each drain's failure or details.
func printDetails(w io.Writer, results []result, cpus int) {
	var busy []string
	for _, res := range results {
		if res.Error == "" && res.MachineBusy > 0 {
			busy = append(busy, fmt.Sprintf("%s %.0f%%", res.Tool, 100*res.MachineBusy))
		}
	}
	if len(busy) > 0 {
		fmt.Fprintf(w, "machine CPU busy while the clock ran (all %d cores, Dovecot included): %s\n", cpus, strings.Join(busy, ", "))
	}
	for _, res := range results {
		if res.Error != "" {
			fmt.Fprintf(w, "\n%s failed:\n%s\n", res.Tool, res.Error)
			continue
		}
		if res.Tool == toolTicketrouter {
			fmt.Fprintf(w, "\nticketrouter: %d tickets in the stream, %d mails quarantined (a dead-letter record each)\n", res.Tickets, res.Quarantined)
			fmt.Fprintf(w, "  by subject: %s\n", bySubject(res.Subjects))
		}
		for _, n := range res.Notes {
			fmt.Fprintf(w, "%s: %s\n", res.Tool, n)
		}
		if res.Profiles != nil {
			res.Profiles.print(w, res.Seconds)
		}
	}
}

// shares writes "a 70.0%, b 20.0%", largest first.
func shares(counts map[string]int, total int) string {
	type kv struct {
		k string
		v int
	}
	var list []kv
	for k, v := range counts {
		list = append(list, kv{k, v})
	}
	slices.SortFunc(list, func(a, b kv) int { return cmp.Or(b.v-a.v, strings.Compare(a.k, b.k)) })
	var parts []string
	for _, e := range list {
		parts = append(parts, fmt.Sprintf("%s %.1f%%", e.k, 100*float64(e.v)/float64(max(total, 1))))
	}
	return strings.Join(parts, ", ")
}

// bySubject writes the ticket counts by subject, largest first.
func bySubject(subjects map[string]uint64) string {
	type kv struct {
		k string
		v uint64
	}
	var list []kv
	for k, v := range subjects {
		list = append(list, kv{strings.TrimPrefix(k, subjectPrefix+"."), v})
	}
	slices.SortFunc(list, func(a, b kv) int { return cmp.Or(cmp.Compare(b.v, a.v), strings.Compare(a.k, b.k)) })
	var parts []string
	for _, e := range list {
		parts = append(parts, fmt.Sprintf("%s %d", e.k, e.v))
	}
	var out strings.Builder
	line := 0
	for i, p := range parts {
		if i > 0 {
			out.WriteString(", ")
			line += 2
		}
		if line > 90 {
			out.WriteString("\n              ")
			line = 0
		}
		out.WriteString(p)
		line += len(p)
	}
	return out.String()
}

// loadavg returns the 1, 5 and 15 minute load averages.
func loadavg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// gatherSysInfo reads what the header shows.
func gatherSysInfo(ctx context.Context, b *bench) sysInfo {
	info := sysInfo{
		Date: time.Now().UTC().Format("2006-01-02 15:04:05 UTC"), CPUs: runtime.NumCPU(), Go: runtime.Version(),
		CPUModel: "unknown CPU", Kernel: "unknown",
		Flags: fmt.Sprintf("-n %d -latency %d -big %d -tools %s -seed %d", b.opts.n, b.opts.latency, b.opts.big,
			strings.Join(b.opts.items, ","), b.opts.seed),
	}
	if b.opts.pprofDir != "" {
		info.Flags += " -pprof " + b.opts.pprofDir
	}
	if b.opts.runs > 1 {
		info.Flags += fmt.Sprintf(" -runs %d", b.opts.runs)
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				info.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	info.LoadStart = loadavg()
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		info.Kernel = strings.TrimSpace(string(data))
	}
	version := func(name string, args ...string) string {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		bin, err := lookPath(name, "/usr/sbin/"+name, "/usr/bin/"+name)
		if err != nil {
			return name + " not installed"
		}
		out, err := exec.CommandContext(cctx, bin, args...).CombinedOutput()
		if err != nil {
			return name + " (version unknown)"
		}
		return firstLine(strings.TrimSpace(string(out)))
	}
	info.Dovecot = "Dovecot " + version("dovecot", "--version")
	info.Mbsync = version("mbsync", "--version")
	info.Ticketrouter = b.commit(ctx)
	if b.opts.binary != "" {
		info.Ticketrouter = "binary " + b.trBin + " (working tree " + info.Ticketrouter + ")"
	}
	return info
}

// commit describes the working tree as `git describe --always --dirty`
// would, without writing anything (no optional index refresh).
func (b *bench) commit(ctx context.Context) string {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(cctx, "git", append([]string{"--no-optional-locks"}, args...)...)
		cmd.Dir = b.root
		var out bytes.Buffer
		cmd.Stdout = &out
		err := cmd.Run()
		return strings.TrimSpace(out.String()), err
	}
	rev, err := git("rev-parse", "--short", "HEAD")
	if err != nil || rev == "" {
		return "(commit unknown)"
	}
	if st, err := git("status", "--porcelain", "--untracked-files=no"); err == nil && st != "" {
		rev += "-dirty"
	}
	return rev
}
