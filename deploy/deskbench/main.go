// Command deskbench is the agents' desk's load benchmark (issue 12): it
// starts a NATS with JetStream on 127.0.0.1 (embedded in this process),
// publishes -tickets waiting tickets, starts the built `ticketrouter desk`
// as a process of its own, and lets -agents simulated agents work it for
// -duration over loopback: board, take next, ticket page, resolve (or
// return). It prints the latency of each operation, the desk's peak RSS
// and whether the targets were met. See README.md.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/ticketrouter/ticketrouter/internal/testproc"
	"github.com/ticketrouter/ticketrouter/router/broker"
	"github.com/ticketrouter/ticketrouter/router/desk/agents"
	"github.com/ticketrouter/ticketrouter/router/desk/state"
	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// options are the command's flags.
type options struct {
	tickets  int
	spread   int // senders and accounts the tickets come from
	agents   int
	duration time.Duration
	think    time.Duration // each agent's pause after a round
	binary   string        // ticketrouter; built from the module when empty
	index    bool          // index the stream before the desk starts
	jsonPath string
	log      io.Writer // progress lines
}

// The targets.
const (
	targetBoardP99 = 100.0 // ms
	targetTakeP99  = 150.0 // ms
	targetRSS      = 150.0 // MiB
)

// Target is one of the targets and what the run measured.
type Target struct {
	Name  string  `json:"name"`
	Limit float64 `json:"limit"`
	Got   float64 `json:"got"`
	Pass  bool    `json:"pass"`
}

// Result is everything a run measured; -json saves it.
type Result struct {
	Tickets  int     `json:"tickets"`
	Spread   int     `json:"spread"`
	Agents   int     `json:"agents"`
	Seconds  float64 `json:"seconds"`
	Think    float64 `json:"think_seconds"`
	Indexed  bool    `json:"indexed_before"`
	Publish  float64 `json:"publish_seconds"`
	IndexSec float64 `json:"index_seconds"`
	// Ops are the figures of each operation; Rounds/s counts take-nexts
	// that gave a ticket.
	Ops       map[string]OpStats `json:"ops"`
	OpsPerSec float64            `json:"ops_per_second"`
	Empty     int                `json:"take_next_empty"`
	FirstErr  string             `json:"first_error,omitempty"`
	// PeakRSS is the desk's VmHWM (MiB) over its whole life: start,
	// 50 logins (argon2id) and the load. LoadRSS is the highest VmRSS
	// sampled every 100 ms during the load alone.
	PeakRSS float64  `json:"desk_peak_rss_mib"`
	LoadRSS float64  `json:"desk_load_rss_mib"`
	Targets []Target `json:"targets"`
}

func main() {
	var o options
	flag.IntVar(&o.tickets, "tickets", 100_000, "waiting tickets published before the load")
	flag.IntVar(&o.spread, "spread", 10_000, "senders and accounts the tickets come from (0: the example mails' own few, every ticket page then listing 100 related tickets)")
	flag.IntVar(&o.agents, "agents", 50, "simulated agents")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "how long the agents work")
	flag.DurationVar(&o.think, "think", 0, "each agent's pause after a round (0: none, the agents work flat out)")
	flag.StringVar(&o.binary, "binary", "", "the ticketrouter `binary` (default: go build ./cmd/ticketrouter into the temp dir)")
	flag.BoolVar(&o.index, "index", true, "index the stream for search before the desk starts, as a desk that has been running would have")
	flag.StringVar(&o.jsonPath, "json", "", "also save the figures as JSON in `FILE`")
	flag.Parse()
	o.log = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "deskbench:", err)
		os.Exit(1)
	}
	report(os.Stdout, res)
	if o.jsonPath != "" {
		if err := saveJSON(o.jsonPath, res); err != nil {
			fmt.Fprintln(os.Stderr, "deskbench:", err)
			os.Exit(1)
		}
	}
}

// run does one benchmark run; everything it starts is stopped and its
// temp dir removed before it returns.
func run(ctx context.Context, o options) (*Result, error) {
	if o.tickets < 0 || o.agents < 1 || o.duration <= 0 {
		return nil, fmt.Errorf("want -tickets >= 0, -agents >= 1 and -duration > 0")
	}
	if o.log == nil {
		o.log = io.Discard
	}
	dir, err := os.MkdirTemp("", "deskbench-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	bin := o.binary
	if bin == "" {
		bin = filepath.Join(dir, "ticketrouter")
		fmt.Fprintln(o.log, "building ticketrouter")
		out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/ticketrouter/ticketrouter/cmd/ticketrouter").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("go build ./cmd/ticketrouter: %w\n%s", err, out)
		}
	}
	srv, err := broker.StartEmbedded(broker.EmbeddedConfig{StoreDir: filepath.Join(dir, "nats"), Host: "127.0.0.1", Port: -1,
		MaxStore: 8 << 30, MaxMemory: 256 << 20}, zerolog.Nop())
	if err != nil {
		return nil, err
	}
	defer srv.Shutdown()
	nc, err := broker.Connect(ctx, broker.NATSConfig{}, srv, "deskbench", zerolog.Nop())
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	bjs, err := broker.Provision(ctx, js, broker.NATSConfig{}, ticket.DefaultPrefix, 10*time.Second)
	if err != nil {
		return nil, err
	}
	res := &Result{Tickets: o.tickets, Spread: o.spread, Think: o.think.Seconds(), Agents: o.agents, Indexed: o.index}
	tpl, err := templates(ctx, dir)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.log, "publishing %d tickets (%d kinds, from the example mails)\n", o.tickets, len(tpl))
	start := time.Now()
	if err := publish(ctx, bjs, tpl, o.tickets, o.spread); err != nil {
		return nil, err
	}
	res.Publish = time.Since(start).Seconds()
	if o.index {
		fmt.Fprintln(o.log, "indexing the stream for search")
		start = time.Now()
		st, err := state.Open(ctx, bjs, ticket.DefaultPrefix, state.Options{})
		if err != nil {
			return nil, err
		}
		_, err = st.Index(ctx)
		st.Close()
		if err != nil {
			return nil, err
		}
		res.IndexSec = time.Since(start).Seconds()
	}
	names, password, err := writeAgents(filepath.Join(dir, "agents.yaml"), o.agents)
	if err != nil {
		return nil, err
	}
	d, base, err := startDesk(ctx, dir, bin, srv.ClientURL())
	if err != nil {
		return nil, err
	}
	defer d.Stop(30 * time.Second)
	fmt.Fprintf(o.log, "%d agents working the desk at %s for %v\n", o.agents, base, o.duration)
	sampler := startRSS(d.Pid())
	agentsRun, elapsed, err := runAgents(ctx, base, names, password, o.duration, o.think)
	res.LoadRSS = sampler.stop()
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, d.Tail(20))
	}
	res.PeakRSS = kib(status(d.Pid(), "VmHWM:"))
	if d.Exited() {
		return nil, fmt.Errorf("the desk exited during the load (%v):\n%s", d.Err(), d.Tail(20))
	}
	res.Seconds = elapsed.Seconds()
	res.Ops = map[string]OpStats{}
	var total int
	for _, op := range ops {
		s := stats(agentsRun, op, elapsed)
		res.Ops[op] = s
		total += s.Count
	}
	res.OpsPerSec = float64(total) / elapsed.Seconds()
	for _, a := range agentsRun {
		res.Empty += a.empty
		if res.FirstErr == "" {
			res.FirstErr = a.firstErr
		}
	}
	res.Targets = []Target{
		{Name: "board p99 (ms)", Limit: targetBoardP99, Got: res.Ops[opBoard].P99},
		{Name: "take-next p99 (ms)", Limit: targetTakeP99, Got: res.Ops[opTake].P99},
		{Name: "desk peak RSS (MiB)", Limit: targetRSS, Got: res.PeakRSS},
	}
	for i := range res.Targets {
		res.Targets[i].Pass = res.Targets[i].Got < res.Targets[i].Limit
	}
	return res, nil
}

// writeAgents writes an agents file of n agents (agent01…), each of every
// colour queue, all with one password, hashed with the package's default
// argon2id parameters (the only ones File.Add uses).
func writeAgents(path string, n int) ([]string, string, error) {
	const password = "deskbench correct horse"
	f, err := agents.OpenFile(path)
	if err != nil {
		return nil, "", err
	}
	var names []string
	for i := range n {
		name := fmt.Sprintf("agent%02d", i+1)
		if err := f.Add(agents.Agent{Name: name, Roles: []string{"agent"}, Colours: colourQueues}, password); err != nil {
			return nil, "", err
		}
		names = append(names, name)
	}
	if err := f.Save(); err != nil {
		return nil, "", err
	}
	return names, password, nil
}

// startDesk writes the desk's configuration and starts `ticketrouter
// desk`, returning once it serves /login.
func startDesk(ctx context.Context, dir, bin, natsURL string) (*testproc.Process, string, error) {
	ports, err := testproc.FreePorts(1)
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	cfg := filepath.Join(dir, "ticketrouter.yaml")
	text := fmt.Sprintf("# deskbench: the desk over the benchmark's NATS\nnats:\n  url: %s\ndesk:\n  listen: %s\n  agents: agents.yaml\nlog:\n  level: warn\n", natsURL, addr)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		return nil, "", fmt.Errorf("desk config: %w", err)
	}
	cmd := exec.Command(bin, "desk", "--config", cfg)
	cmd.Env = childEnv()
	p, err := testproc.Start(cmd, testproc.Options{Name: "ticketrouter desk", Log: filepath.Join(dir, "desk.log")})
	if err != nil {
		return nil, "", err
	}
	base := "http://" + addr
	client := http.Client{Timeout: 2 * time.Second}
	for deadline := time.Now().Add(60 * time.Second); ; {
		resp, err := client.Get(base + "/login")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, base, nil
			}
		}
		if p.Exited() || time.Now().After(deadline) || ctx.Err() != nil {
			p.Stop(10 * time.Second)
			return nil, "", fmt.Errorf("ticketrouter desk did not serve %s/login (%v):\n%s", base, err, p.Tail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// childEnv is this process's environment without TICKETROUTER_ variables,
// which would override the desk's configuration.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TICKETROUTER_") {
			env = append(env, kv)
		}
	}
	return env
}

// status reads a field (e.g. "VmHWM:") of /proc/PID/status, in KiB; 0
// when it cannot.
func status(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func kib(n int64) float64 { return float64(n) / 1024 }

// rssSampler records the highest VmRSS of a process, read every 100 ms.
type rssSampler struct {
	done chan struct{}
	max  chan int64
}

func startRSS(pid int) *rssSampler {
	s := &rssSampler{done: make(chan struct{}), max: make(chan int64, 1)}
	go func() {
		var peak int64
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, status(pid, "VmRSS:"))
			select {
			case <-s.done:
				s.max <- peak
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the highest VmRSS in MiB.
func (s *rssSampler) stop() float64 {
	close(s.done)
	return kib(<-s.max)
}

// report prints the figures as a table, then the targets.
func report(w io.Writer, r *Result) {
	fmt.Fprintf(w, "deskbench: %d agents, %d waiting tickets from %d senders and accounts, %.0f s (published in %.1f s", r.Agents, r.Tickets, r.Spread, r.Seconds, r.Publish)
	if r.Indexed {
		fmt.Fprintf(w, ", indexed in %.1f s", r.IndexSec)
	}
	fmt.Fprintf(w, "), pause after each round %gs\n", r.Think)
	fmt.Fprintf(w, "\n| %-9s | %7s | %6s | %7s | %8s | %8s | %8s | %8s |\n", "operation", "count", "errors", "per s", "p50 ms", "p90 ms", "p99 ms", "max ms")
	fmt.Fprintln(w, "|-----------|--------:|-------:|--------:|---------:|---------:|---------:|---------:|")
	for _, op := range ops {
		s := r.Ops[op]
		fmt.Fprintf(w, "| %-9s | %7d | %6d | %7.1f | %8.1f | %8.1f | %8.1f | %8.1f |\n", op, s.Count, s.Errors, s.PerSec, s.P50, s.P90, s.P99, s.Max)
	}
	fmt.Fprintf(w, "\nrequests/s: %.1f; take-next with nothing waiting: %d\n", r.OpsPerSec, r.Empty)
	fmt.Fprintf(w, "desk RSS: peak %.1f MiB (VmHWM, whole life), %.1f MiB (highest VmRSS during the load)\n", r.PeakRSS, r.LoadRSS)
	if r.FirstErr != "" {
		fmt.Fprintf(w, "first error: %s\n", r.FirstErr)
	}
	fmt.Fprintln(w)
	for _, t := range r.Targets {
		verdict := "PASS"
		if !t.Pass {
			verdict = "MISS"
		}
		fmt.Fprintf(w, "%s  %-20s %8.1f  (target < %g)\n", verdict, t.Name, t.Got, t.Limit)
	}
}

// saveJSON writes the result to path.
func saveJSON(path string, r *Result) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}
