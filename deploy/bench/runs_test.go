package main

import (
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

// TestSpreadOf checks the median and range of a figure over runs.
func TestSpreadOf(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []float64
		want   spread
	}{
		{"none", nil, spread{}},
		{"one", []float64{3.5}, spread{Median: 3.5, Min: 3.5, Max: 3.5, N: 1}},
		{"odd, unsorted", []float64{3, 1, 2}, spread{Median: 2, Min: 1, Max: 3, N: 3}},
		{"even: the mean of the middle two", []float64{4, 1, 3, 2}, spread{Median: 2.5, Min: 1, Max: 4, N: 4}},
		{"five with an outlier", []float64{1.1, 1.0, 9.0, 1.2, 0.9}, spread{Median: 1.1, Min: 0.9, Max: 9.0, N: 5}},
		{"equal values", []float64{2, 2}, spread{Median: 2, Min: 2, Max: 2, N: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.values)
			if got := spreadOf(in); got != tc.want {
				t.Errorf("spreadOf(%v) = %+v, want %+v", tc.values, got, tc.want)
			}
			if !slices.Equal(in, tc.values) {
				t.Errorf("spreadOf reordered its argument: %v, was %v", in, tc.values)
			}
		})
	}
}

// TestRunOrder checks that the order of the drains alternates between
// runs: as given in the even runs (counting from 0), reversed in the odd.
func TestRunOrder(t *testing.T) {
	tools := []string{toolTicketrouter, toolMbsync, toolMbsyncNoFsync, toolRaw}
	for _, tc := range []struct {
		run  int
		want []string
	}{
		{0, tools},
		{1, []string{toolRaw, toolMbsyncNoFsync, toolMbsync, toolTicketrouter}},
		{2, tools},
		{3, []string{toolRaw, toolMbsyncNoFsync, toolMbsync, toolTicketrouter}},
	} {
		if got := runOrder(tools, tc.run); !slices.Equal(got, tc.want) {
			t.Errorf("runOrder(run %d) = %v, want %v", tc.run, got, tc.want)
		}
	}
	if !slices.Equal(tools, []string{toolTicketrouter, toolMbsync, toolMbsyncNoFsync, toolRaw}) {
		t.Errorf("runOrder changed its argument: %v", tools)
	}
}

func row(tool string, seconds, cpu, rss float64) result {
	r := result{Tool: tool, Mails: 100, Bytes: 4e6, Seconds: seconds, CPUSeconds: cpu, PeakRSSMiB: rss}
	r.finish()
	return r
}

func failed(tool string) result { return result{Tool: tool, Mails: 100, Error: "it broke"} }

// TestFillRatios checks ticketrouter's wall and CPU ratios: its figure
// divided by the other tool's, 0 where either is unknown.
func TestFillRatios(t *testing.T) {
	type ratios struct{ wall, cpu float64 }
	for _, tc := range []struct {
		name    string
		results []result
		want    []ratios
	}{
		{"ticketrouter and mbsync FSync no",
			[]result{row(toolTicketrouter, 20, 18, 100), row(toolMbsyncNoFsync, 10, 4.5, 10)},
			[]ratios{{1, 1}, {2, 4}}},
		{"ticketrouter the faster",
			[]result{row(toolTicketrouter, 5, 2, 100), row(toolRaw, 10, 1, 10)},
			[]ratios{{1, 1}, {0.5, 2}}},
		{"a tool failed",
			[]result{row(toolTicketrouter, 20, 18, 100), failed(toolMbsync), row(toolRaw, 4, 2, 10)},
			[]ratios{{1, 1}, {0, 0}, {5, 9}}},
		{"ticketrouter failed",
			[]result{failed(toolTicketrouter), row(toolMbsync, 10, 4, 10)},
			[]ratios{{0, 0}, {0, 0}}},
		{"no ticketrouter",
			[]result{row(toolMbsync, 10, 4, 10)},
			[]ratios{{0, 0}}},
		{"no CPU time measured",
			[]result{row(toolTicketrouter, 20, 18, 100), row(toolRaw, 4, 0, 10)},
			[]ratios{{1, 1}, {5, 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fillRatios(tc.results)
			for i, res := range tc.results {
				if res.Ratio != tc.want[i].wall || res.CPURatio != tc.want[i].cpu {
					t.Errorf("%s: wall ratio %v, CPU ratio %v; want %v, %v", res.Tool, res.Ratio, res.CPURatio, tc.want[i].wall, tc.want[i].cpu)
				}
			}
		})
	}
}

// TestSummarizeRuns checks the summary of paired runs: each tool's figures
// over the runs it succeeded in, and the ratios over the runs in which
// both it and ticketrouter did.
func TestSummarizeRuns(t *testing.T) {
	runs := [][]result{
		{row(toolTicketrouter, 20, 18, 100), row(toolMbsyncNoFsync, 10, 4.5, 10)},
		{row(toolTicketrouter, 24, 20, 110), row(toolMbsyncNoFsync, 12, 5, 11)},
		{row(toolTicketrouter, 18, 19, 105), failed(toolMbsyncNoFsync)},
		{failed(toolTicketrouter), row(toolMbsyncNoFsync, 30, 6, 12)},
	}
	for _, rs := range runs {
		fillRatios(rs)
	}
	got := summarizeRuns([]string{toolTicketrouter, toolMbsyncNoFsync}, runs)
	if len(got) != 2 {
		t.Fatalf("%d rows, want 2: %+v", len(got), got)
	}
	tr, nf := got[0], got[1]
	if tr.Tool != toolTicketrouter || tr.Runs != 3 || tr.Seconds != (spread{20, 18, 24, 3}) ||
		tr.CPUSeconds != (spread{19, 18, 20, 3}) || tr.PeakRSSMiB != (spread{105, 100, 110, 3}) {
		t.Errorf("ticketrouter: %+v", tr)
	}
	if tr.Ratio != nil || tr.CPURatio != nil {
		t.Errorf("ticketrouter has ratios to itself: %v %v", tr.Ratio, tr.CPURatio)
	}
	if nf.Tool != toolMbsyncNoFsync || nf.Runs != 3 || nf.Seconds != (spread{12, 10, 30, 3}) ||
		nf.CPUSeconds != (spread{5, 4.5, 6, 3}) {
		t.Errorf("mbsync-nofsync: %+v", nf)
	}
	// Only runs 1 and 2 are pairs: wall 2.0 and 2.0, CPU 4.0 and 4.0.
	if nf.Ratio == nil || *nf.Ratio != (spread{2, 2, 2, 2}) {
		t.Errorf("wall ratio %+v, want median 2 over 2 pairs", nf.Ratio)
	}
	if nf.CPURatio == nil || *nf.CPURatio != (spread{4, 4, 4, 2}) {
		t.Errorf("CPU ratio %+v, want median 4 over 2 pairs", nf.CPURatio)
	}

	// A tool that never ran with ticketrouter has no ratios.
	alone := summarizeRuns([]string{toolMbsync}, [][]result{{row(toolMbsync, 10, 4, 10)}})
	if len(alone) != 1 || alone[0].Ratio != nil || alone[0].CPURatio != nil || alone[0].Runs != 1 {
		t.Errorf("mbsync alone: %+v", alone)
	}
}

// TestDrainTargets checks the drain targets as PASS or MISS, judged on
// the one run or on the median of the paired runs, and what they say.
func TestDrainTargets(t *testing.T) {
	mb := mailboxInfo{Mails: 100, BigBytes: 50 << 20}
	find := func(ts []target, prefix string) target {
		for _, tg := range ts {
			if strings.HasPrefix(tg.Name, prefix) {
				return tg
			}
		}
		t.Fatalf("no target %q in %+v", prefix, ts)
		return target{}
	}
	for _, tc := range []struct {
		name string
		runs [][]result
		// prefix of the target's name -> verdict ("PASS", "MISS", "----") and
		// a fragment of its value.
		want map[string][2]string
		// wallGot is the wall target's Got, the ratio judged (0: not checked).
		wallGot float64
	}{
		{"one run, both missed",
			[][]result{{row(toolTicketrouter, 20, 18, 100), row(toolMbsyncNoFsync, 10, 4.5, 10), row(toolRaw, 4, 2, 5)}},
			map[string][2]string{
				"ticketrouter drain time": {"MISS", "2.00× (20.0 s vs 10.0 s)"},
				"ticketrouter CPU s":      {"MISS", "4.00× (18.0 CPU s vs 4.5 CPU s)"},
				"ticketrouter throughput": {"MISS", "0.200× (5 vs 25 mails/s)"},
				"ticketrouter peak RSS":   {"PASS", "100.0 MiB draining the backlog with its 50 MiB mail"},
			}, 2},
		{"one run, both met",
			[][]result{{row(toolTicketrouter, 10, 9, 160), row(toolMbsyncNoFsync, 10, 4.5, 10)}},
			map[string][2]string{
				"ticketrouter drain time": {"PASS", "1.00× (10.0 s vs 10.0 s)"},
				"ticketrouter CPU s":      {"PASS", "2.00× (9.0 CPU s vs 4.5 CPU s)"},
				"ticketrouter throughput": {"----", "not measured"},
				"ticketrouter peak RSS":   {"MISS", "160.0 MiB"},
			}, 0},
		{"no mbsync FSync no",
			[][]result{{row(toolTicketrouter, 10, 9, 100), row(toolMbsync, 10, 4.5, 10)}},
			map[string][2]string{
				"ticketrouter drain time": {"----", "not measured (needs ticketrouter and mbsync-nofsync)"},
				"ticketrouter CPU s":      {"----", "not measured (needs ticketrouter and mbsync-nofsync)"},
			}, 0},
		{"no CPU time of mbsync FSync no",
			[][]result{{row(toolTicketrouter, 10, 9, 100), row(toolMbsyncNoFsync, 10, 0, 10)}},
			map[string][2]string{
				"ticketrouter drain time": {"PASS", "1.00× (10.0 s vs 10.0 s)"},
				"ticketrouter CPU s":      {"----", "not measured"},
			}, 0},
		{"three runs: the median decides",
			[][]result{
				{row(toolTicketrouter, 9, 10, 100), row(toolMbsyncNoFsync, 10, 5, 10), row(toolRaw, 4, 2, 5)},
				{row(toolTicketrouter, 30, 8, 140), row(toolMbsyncNoFsync, 10, 5, 10), row(toolRaw, 4, 2, 5)},
				{row(toolTicketrouter, 8, 9, 120), row(toolMbsyncNoFsync, 10, 5, 10), row(toolRaw, 4, 2, 5)},
			},
			map[string][2]string{
				"ticketrouter drain time": {"PASS", "median 0.90× of 3 paired runs (range 0.80–3.00×; median 9.0 s vs 10.0 s)"},
				"ticketrouter CPU s":      {"PASS", "median 1.80× of 3 paired runs (range 1.60–2.00×; median 9.0 CPU s vs 5.0 CPU s)"},
				"ticketrouter throughput": {"MISS", "median 0.444× of 3 paired runs (range 0.133–0.500×; median 11 vs 25 mails/s)"},
				"ticketrouter peak RSS":   {"PASS", "highest 140.0 MiB of 3 runs (median 120.0 MiB) draining the backlog"},
			}, 0.9},
		{"two runs, one without a pair",
			[][]result{
				{row(toolTicketrouter, 30, 20, 100), row(toolMbsyncNoFsync, 10, 5, 10)},
				{row(toolTicketrouter, 30, 20, 100), failed(toolMbsyncNoFsync)},
			},
			map[string][2]string{
				"ticketrouter drain time": {"MISS", "median 3.00× of 1 paired runs (range 3.00–3.00×"},
			}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, rs := range tc.runs {
				fillRatios(rs)
			}
			ts := append(drainTargets(tc.runs), rssTarget(tc.runs, mb))
			if wall := find(ts, "ticketrouter drain time"); tc.wallGot != 0 && (wall.Got != tc.wallGot || wall.Limit != 1) {
				t.Errorf("wall target: got %v, limit %v; want %v, 1", wall.Got, wall.Limit, tc.wallGot)
			}
			for prefix, want := range tc.want {
				tg := find(ts, prefix)
				if got := verdict(tg); got != want[0] {
					t.Errorf("%s: %s, want %s (%s)", tg.Name, got, want[0], tg.Value)
				}
				if tg.Measured && (tg.Limit == 0 || tg.Got == 0) {
					t.Errorf("%s: got %v, limit %v: want both", tg.Name, tg.Got, tg.Limit)
				}
				if !strings.Contains(tg.Value, want[1]) {
					t.Errorf("%s: %q, want it to contain %q", tg.Name, tg.Value, want[1])
				}
			}
		})
	}
}

// TestPrintSummary checks the summary table of -runs: median (min–max)
// of each figure in columns as wide as their widest cell, ticketrouter's
// ratios as "—", and how many runs each tool succeeded in.
func TestPrintSummary(t *testing.T) {
	runs := [][]result{
		{row(toolTicketrouter, 20, 18, 100), failed(toolMbsync), row(toolMbsyncNoFsync, 10, 4.5, 10), row(toolRaw, 4, 2, 5)},
		{row(toolTicketrouter, 24, 20, 110), failed(toolMbsync), row(toolMbsyncNoFsync, 12, 5, 11), failed(toolRaw)},
		{row(toolTicketrouter, 22, 19, 105), failed(toolMbsync), row(toolMbsyncNoFsync, 11, 4.75, 10.5), row(toolRaw, 5, 2.5, 6)},
	}
	for _, rs := range runs {
		fillRatios(rs)
	}
	var out strings.Builder
	printSummary(&out, summarizeRuns([]string{toolTicketrouter, toolMbsync, toolMbsyncNoFsync, toolRaw}, runs), len(runs))
	want := `
summary of 3 paired runs: median (min–max) over the runs each tool succeeded in; the ratios over the runs in which
ticketrouter and the tool both did. wall and CPU tr÷tool: ticketrouter's figure divided by the tool's (the reference).
tool            runs  wall s               CPU s                peak RSS MiB         wall tr÷tool      CPU tr÷tool
-----------------------------------------------------------------------------------------------------------------------
ticketrouter    3/3   22.00 (20.00–24.00)  19.00 (18.00–20.00)  105.0 (100.0–110.0)  —                 —
mbsync          0/3   FAILED in every run
mbsync-nofsync  3/3   11.00 (10.00–12.00)  4.75 (4.50–5.00)     10.5 (10.0–11.0)     2.00 (2.00–2.00)  4.00 (4.00–4.00)
raw             2/3   4.50 (4.00–5.00)     2.25 (2.00–2.50)     5.5 (5.0–6.0)        4.70 (4.40–5.00)  8.30 (7.60–9.00)
-----------------------------------------------------------------------------------------------------------------------
`
	if got := out.String(); got != want {
		t.Errorf("summary:\n%s\nwant:\n%s", got, want)
	}
}

// TestPrintTableRatios checks the single run's table: the wall ratio and
// the CPU ratio side by side, "—" where there is none.
func TestPrintTableRatios(t *testing.T) {
	results := []result{row(toolTicketrouter, 20, 18, 100), row(toolMbsyncNoFsync, 10, 4.5, 10), failed(toolRaw)}
	fillRatios(results)
	var out strings.Builder
	printTable(&out, results)
	lines := strings.Split(out.String(), "\n")
	if len(lines) < 5 {
		t.Fatalf("table:\n%s", out.String())
	}
	for _, tc := range []struct {
		line   int
		fields []string
	}{
		{0, []string{"tool", "mails", "MB", "seconds", "mails/s", "MB/s", "wall", "tr÷tool", "CPU", "tr÷tool", "peak", "RSS", "MiB", "CPU", "s"}},
		{2, []string{"ticketrouter", "100", "4.0", "20.00", "5.0", "0.20", "1.00", "1.00", "100.0", "18.00"}},
		{3, []string{"mbsync-nofsync", "100", "4.0", "10.00", "10.0", "0.40", "2.00", "4.00", "10.0", "4.50"}},
		{4, []string{"raw", "FAILED:", "it", "broke"}},
	} {
		if got := strings.Fields(lines[tc.line]); !slices.Equal(got, tc.fields) {
			t.Errorf("line %d: %q, want the fields %q", tc.line, lines[tc.line], tc.fields)
		}
	}
}

// TestParseFlagsRuns checks -runs: 1 by default, at least 1, and not with
// -pprof or without a drain.
func TestParseFlagsRuns(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		runs    int
		wantErr string
	}{
		{nil, 1, ""},
		{[]string{"-runs", "5"}, 5, ""},
		{[]string{"-runs", "3", "-tools", "ticketrouter,mbsync-nofsync"}, 3, ""},
		{[]string{"-runs", "0"}, 0, "-runs 0: want at least 1"},
		{[]string{"-runs", "2", "-pprof", "/tmp/p"}, 0, "-pprof profiles one drain"},
		{[]string{"-runs", "2", "-tools", "latency"}, 0, "-runs repeats the drains"},
		{[]string{"-runs", "1", "-pprof", "/tmp/p", "-tools", "ticketrouter"}, 1, ""},
	} {
		o, err := parseFlags(tc.args, io.Discard)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%q: error %v, want one saying %q", tc.args, err, tc.wantErr)
		case tc.wantErr == "" && o.runs != tc.runs:
			t.Errorf("%q: runs %d, want %d", tc.args, o.runs, tc.runs)
		}
		if errors.Is(err, flag.ErrHelp) {
			t.Errorf("%q: help", tc.args)
		}
	}
}
