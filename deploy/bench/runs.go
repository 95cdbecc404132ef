package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// The drain targets of issue 14, against mbsync with FSync no: ticketrouter
// may burn at most twice its CPU, and take no longer.
const (
	targetCPURatio  = 2.0
	targetWallRatio = 1.0
	// targetRSSMiB bounds ticketrouter's peak RSS while it drains the
	// backlog with its big mail.
	targetRSSMiB = 150.0
)

// spread is the median and range of one figure over the runs of -runs.
type spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"` // how many runs gave a value
}

// spreadOf returns the median (the mean of the middle two for an even
// count) and the range of values, without reordering them; the zero
// spread when there are none.
func spreadOf(values []float64) spread {
	if len(values) == 0 {
		return spread{}
	}
	v := slices.Clone(values)
	slices.Sort(v)
	n := len(v)
	med := v[n/2]
	if n%2 == 0 {
		med = (v[n/2-1] + v[n/2]) / 2
	}
	return spread{Median: med, Min: v[0], Max: v[n-1], N: n}
}

// runOrder is the order in which run (counted from 0) of -runs drains with
// the tools: as given in the even runs, reversed in the odd ones, so that
// a machine that slows down or speeds up during the runs favours no tool.
func runOrder(tools []string, run int) []string {
	order := slices.Clone(tools)
	if run%2 == 1 {
		slices.Reverse(order)
	}
	return order
}

// pairedRun is one run of -runs: each selected drain once, each on a fresh
// Dovecot with the same mailbox.
type pairedRun struct {
	Run   int      `json:"run"`   // from 1
	Order []string `json:"order"` // the order the drains ran in
	// LoadStart is /proc/loadavg when the run began.
	LoadStart string `json:"loadavg_start"`
	// Results are the drains, in the fixed order of the tools (not Order).
	Results []result `json:"results"`
}

// toolSummary is one row of the summary of -runs: one tool's figures over
// the runs in which its drain succeeded.
type toolSummary struct {
	Tool        string `json:"tool"`
	Runs        int    `json:"runs"` // the runs in which its drain succeeded
	Seconds     spread `json:"seconds"`
	CPUSeconds  spread `json:"cpu_seconds"`
	PeakRSSMiB  spread `json:"peak_rss_mib"`
	MailsPerSec spread `json:"mails_per_second"`
	// Ratio and CPURatio are ticketrouter's drain time and CPU seconds
	// divided by this tool's, run by run, over the runs in which both
	// drains succeeded; nil for ticketrouter itself, or with no such run.
	Ratio    *spread `json:"ticketrouter_time_ratio,omitempty"`
	CPURatio *spread `json:"ticketrouter_cpu_ratio,omitempty"`
}

// findResult returns the tool's result if its drain succeeded, or nil.
func findResult(results []result, tool string) *result {
	for i := range results {
		if r := &results[i]; r.Tool == tool && r.Error == "" && r.Seconds > 0 {
			return r
		}
	}
	return nil
}

// fillRatios sets, in one run's results, each drain's Ratio and CPURatio:
// ticketrouter's wall time and CPU seconds divided by the drain's (so the
// other tool is the reference, and ticketrouter's own row is 1). They stay
// 0 where either drain failed or a figure is missing.
func fillRatios(results []result) {
	tr := findResult(results, toolTicketrouter)
	for i := range results {
		res := &results[i]
		res.Ratio, res.CPURatio = 0, 0
		if tr == nil || res.Error != "" || res.Seconds <= 0 {
			continue
		}
		res.Ratio = tr.Seconds / res.Seconds
		if res.CPUSeconds > 0 && tr.CPUSeconds > 0 {
			res.CPURatio = tr.CPUSeconds / res.CPUSeconds
		}
	}
}

// pair is ticketrouter's and another tool's successful drains in one run.
type pair struct{ tr, other *result }

// pairs returns, run by run, the runs in which both ticketrouter and the
// tool drained the mailbox.
func pairs(runs [][]result, tool string) []pair {
	var ps []pair
	for _, rs := range runs {
		tr, other := findResult(rs, toolTicketrouter), findResult(rs, tool)
		if tr != nil && other != nil {
			ps = append(ps, pair{tr, other})
		}
	}
	return ps
}

// over returns f of each pair's ticketrouter and other drain.
func over(ps []pair, f func(tr, other *result) float64) []float64 {
	v := make([]float64, 0, len(ps))
	for _, p := range ps {
		v = append(v, f(p.tr, p.other))
	}
	return v
}

// summarizeRuns computes the summary of -runs: a row per tool, in the order
// of tools, of the runs (each the results of one run, with fillRatios
// done).
func summarizeRuns(tools []string, runs [][]result) []toolSummary {
	var out []toolSummary
	for _, tool := range tools {
		s := toolSummary{Tool: tool}
		var secs, cpu, rss, rate []float64
		for _, rs := range runs {
			if r := findResult(rs, tool); r != nil {
				secs, cpu, rss, rate = append(secs, r.Seconds), append(cpu, r.CPUSeconds), append(rss, r.PeakRSSMiB), append(rate, r.MailsPerSec)
			}
		}
		s.Runs = len(secs)
		s.Seconds, s.CPUSeconds, s.PeakRSSMiB, s.MailsPerSec = spreadOf(secs), spreadOf(cpu), spreadOf(rss), spreadOf(rate)
		if ps := pairs(runs, tool); tool != toolTicketrouter && len(ps) > 0 {
			wall := spreadOf(over(ps, func(_, o *result) float64 { return o.Ratio }))
			s.Ratio = &wall
			var cr []float64
			for _, p := range ps {
				if p.other.CPURatio > 0 {
					cr = append(cr, p.other.CPURatio)
				}
			}
			if len(cr) > 0 {
				c := spreadOf(cr)
				s.CPURatio = &c
			}
		}
		out = append(out, s)
	}
	return out
}

// ratioTarget is a target on ticketrouter ÷ tool of a figure: at most
// limit (or at least, with atLeast) of the one run, or of the median over
// the paired runs, judged on the pairs that give a ratio.
type ratioTarget struct {
	name    string
	tool    string
	needs   string // what "not measured" names
	limit   float64
	atLeast bool
	prec    int // decimals of the ratio
	ratio   func(tr, other *result) float64
	figure  func(r *result) float64
	unit    string // the figures' format, such as "%.1f s"
	after   string // written after the figures, such as " mails/s"
}

func (t ratioTarget) judge(runs [][]result) target {
	ps := slices.DeleteFunc(pairs(runs, t.tool), func(p pair) bool {
		r := t.ratio(p.tr, p.other)
		return !(r > 0) || math.IsInf(r, 0) // a figure missing (0): no ratio
	})
	if len(ps) == 0 {
		return target{Name: t.name, Value: "not measured (needs " + t.needs + ")"}
	}
	ratios := spreadOf(over(ps, t.ratio))
	pass := ratios.Median <= t.limit
	if t.atLeast {
		pass = ratios.Median >= t.limit
	}
	trFig := spreadOf(over(ps, func(tr, _ *result) float64 { return t.figure(tr) }))
	otherFig := spreadOf(over(ps, func(_, o *result) float64 { return t.figure(o) }))
	figs := fmt.Sprintf(t.unit+" vs "+t.unit+t.after, trFig.Median, otherFig.Median)
	var value string
	if len(runs) == 1 {
		value = fmt.Sprintf("%.*f× (%s)", t.prec, ratios.Median, figs)
	} else {
		value = fmt.Sprintf("median %.*f× of %d paired runs (range %.*f–%.*f×; median %s)",
			t.prec, ratios.Median, ratios.N, t.prec, ratios.Min, t.prec, ratios.Max, figs)
	}
	return target{Name: t.name, Measured: true, Pass: pass, Value: value, Got: ratios.Median, Limit: t.limit}
}

// drainTargets judges the targets on the drains: of the one run, or, with
// -runs, of the median over the paired runs (the peak RSS: the highest of
// all runs). runs are the results of each run, with fillRatios done.
func drainTargets(runs [][]result) []target {
	const nofsync = "ticketrouter and mbsync-nofsync"
	secs := func(r *result) float64 { return r.Seconds }
	cpu := func(r *result) float64 { return r.CPUSeconds }
	rate := func(r *result) float64 { return r.MailsPerSec }
	var out []target
	for _, t := range []ratioTarget{
		{name: fmt.Sprintf("ticketrouter drain time ≤ %.1f× mbsync FSync no", targetWallRatio), tool: toolMbsyncNoFsync, needs: nofsync,
			limit: targetWallRatio, prec: 2, ratio: func(tr, o *result) float64 { return tr.Seconds / o.Seconds }, figure: secs, unit: "%.1f s"},
		{name: fmt.Sprintf("ticketrouter CPU s ≤ %.1f× mbsync FSync no", targetCPURatio), tool: toolMbsyncNoFsync, needs: nofsync,
			limit: targetCPURatio, prec: 2, ratio: func(tr, o *result) float64 { return tr.CPUSeconds / o.CPUSeconds }, figure: cpu, unit: "%.1f CPU s"},
		{name: "ticketrouter throughput ≥ 0.5× raw fetch", tool: toolRaw, needs: "ticketrouter and raw", limit: 0.5, atLeast: true,
			prec: 3, ratio: func(tr, o *result) float64 { return tr.MailsPerSec / o.MailsPerSec }, figure: rate, unit: "%.0f", after: " mails/s"},
	} {
		out = append(out, t.judge(runs))
	}
	return out
}

// rssTarget judges ticketrouter's peak RSS: of the one run, or the highest
// of all runs.
func rssTarget(runs [][]result, mb mailboxInfo) target {
	name := fmt.Sprintf("ticketrouter peak RSS < %.0f MiB", targetRSSMiB)
	var rss []float64
	for _, rs := range runs {
		if tr := findResult(rs, toolTicketrouter); tr != nil {
			rss = append(rss, tr.PeakRSSMiB)
		}
	}
	if len(rss) == 0 {
		return target{Name: name, Value: "not measured (needs ticketrouter)"}
	}
	what := "draining the backlog"
	if mb.BigBytes > 0 {
		what = fmt.Sprintf("draining the backlog with its %.0f MiB mail", float64(mb.BigBytes)/(1<<20))
	}
	s := spreadOf(rss)
	value := fmt.Sprintf("%.1f MiB %s", s.Max, what)
	if len(runs) > 1 {
		value = fmt.Sprintf("highest %.1f MiB of %d runs (median %.1f MiB) %s", s.Max, s.N, s.Median, what)
	}
	return target{Name: name, Measured: true, Pass: s.Max < targetRSSMiB, Value: value, Got: s.Max, Limit: targetRSSMiB}
}

// verdict is a target's word: PASS, MISS, INFO, or ---- when not measured.
func verdict(t target) string {
	switch {
	case t.Informational:
		return "INFO"
	case !t.Measured:
		return "----"
	case t.Pass:
		return "PASS"
	}
	return "MISS"
}

// printSummary writes the summary table of -runs: each figure's median
// and range, "median (min–max)", in columns as wide as their widest cell.
func printSummary(w io.Writer, rows []toolSummary, runs int) {
	table := [][]string{{"tool", "runs", "wall s", "CPU s", "peak RSS MiB", "wall tr÷tool", "CPU tr÷tool"}}
	for _, s := range rows {
		n := fmt.Sprintf("%d/%d", s.Runs, runs)
		if s.Runs == 0 {
			table = append(table, []string{s.Tool, n, "FAILED in every run"})
			continue
		}
		table = append(table, []string{s.Tool, n, fmtSpread(&s.Seconds, 2), fmtSpread(&s.CPUSeconds, 2),
			fmtSpread(&s.PeakRSSMiB, 1), fmtSpread(s.Ratio, 2), fmtSpread(s.CPURatio, 2)})
	}
	widths := make([]int, len(table[0]))
	for _, r := range table {
		for i, c := range r {
			if i < len(r)-1 || len(r) == len(widths) { // a FAILED row's last cell spans the rest
				widths[i] = max(widths[i], utf8.RuneCountInString(c))
			}
		}
	}
	total := 0
	for _, wd := range widths {
		total += wd + 2
	}
	line := func(cells []string) {
		var b strings.Builder
		for i, c := range cells {
			b.WriteString(c)
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2))
			}
		}
		fmt.Fprintln(w, b.String())
	}
	fmt.Fprintf(w, "\nsummary of %d paired runs: median (min–max) over the runs each tool succeeded in; the ratios over the runs in which\n", runs)
	fmt.Fprintln(w, "ticketrouter and the tool both did. wall and CPU tr÷tool: ticketrouter's figure divided by the tool's (the reference).")
	line(table[0])
	fmt.Fprintln(w, strings.Repeat("-", total-2))
	for _, r := range table[1:] {
		line(r)
	}
	fmt.Fprintln(w, strings.Repeat("-", total-2))
}

// fmtSpread writes "median (min–max)" with prec decimals, "—" for none.
func fmtSpread(s *spread, prec int) string {
	if s == nil || s.N == 0 {
		return "—"
	}
	return fmt.Sprintf("%.*f (%.*f–%.*f)", prec, s.Median, prec, s.Min, prec, s.Max)
}
