package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTiny runs the benchmark at a tiny scale (200 tickets, 3 agents, 3 s,
// 100 ms pauses)
// against the built binary, so that it cannot rot: every operation is
// done, none fails, the desk's RSS is read, and the report and the JSON
// carry the figures. It asserts no latency: that is the full run's job.
func TestTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs ticketrouter desk")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := run(ctx, options{tickets: 200, spread: 50, agents: 3, duration: 3 * time.Second, think: 100 * time.Millisecond, index: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{opBoard, opTake, opTicket, opResolve} {
		s := res.Ops[op]
		// Two agents may race for one queue's oldest ticket: the loser
		// gets 409 (the desk's answer to a lost compare-and-set), which
		// the benchmark counts as an error. Nothing else may fail.
		allowed := 0
		if op == opTake {
			allowed = s.Count / 10
		}
		if s.Count == 0 || s.Errors > allowed || s.P99 <= 0 || s.Max < s.P99 {
			t.Errorf("%s: %+v (first error %q)", op, s, res.FirstErr)
		}
	}
	if res.PeakRSS <= 0 || res.LoadRSS <= 0 || res.LoadRSS > res.PeakRSS {
		t.Errorf("desk RSS: peak %.1f MiB, load %.1f MiB", res.PeakRSS, res.LoadRSS)
	}
	if len(res.Targets) != 3 {
		t.Errorf("targets: %+v", res.Targets)
	}
	var out bytes.Buffer
	report(&out, res)
	for _, want := range []string{"| take-next |", "desk RSS: peak", "board p99 (ms)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	path := filepath.Join(t.TempDir(), "res.json")
	if err := saveJSON(path, res); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(data, &back); err != nil || back.Ops[opTake].Count != res.Ops[opTake].Count {
		t.Errorf("JSON %v: %s", err, data)
	}
}

// TestRunRefusesBadFlags: nonsense flags are refused before anything starts.
func TestRunRefusesBadFlags(t *testing.T) {
	for _, o := range []options{{tickets: -1, agents: 1, duration: time.Second}, {agents: 0, duration: time.Second}, {agents: 1}} {
		if _, err := run(context.Background(), o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

// TestVariant: the benchmark's tickets have ids of their own, valid as
// ticket ids, keep their template's queue, and have their account varied
// on a copy (not the template's).
func TestVariant(t *testing.T) {
	tpl, err := templates(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	queues := map[string]bool{}
	for i := range 3 * len(tpl) {
		v := variant(tpl, i, 7)
		if len(v.ID) != 64 || seen[v.ID] || v.Queue != tpl[i%len(tpl)].Queue {
			t.Fatalf("ticket %d: id %q, queue %q", i, v.ID, v.Queue)
		}
		if v.Account != nil && v.Account.ID == tpl[i%len(tpl)].Account.ID {
			t.Fatalf("ticket %d: account %q not varied (or the template's changed)", i, v.Account.ID)
		}
		seen[v.ID] = true
		queues[queueOf(&v)] = true
	}
	if len(queues) < 4 {
		t.Errorf("tickets in %d colour queues: %v", len(queues), queues)
	}
}
