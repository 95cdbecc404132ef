package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// The operations an agent does, in the order of one round.
const (
	opBoard   = "board"     // GET /: the board and my tickets
	opTake    = "take-next" // POST /take/QUEUE: claim the oldest ticket
	opTicket  = "ticket"    // GET /t/NUMBER: the ticket page
	opResolve = "resolve"   // POST /t/NUMBER/resolve
	opReturn  = "return"    // POST /t/NUMBER/return (every fifth round)
)

var ops = []string{opBoard, opTake, opTicket, opResolve, opReturn}

// csrfRE finds the session's CSRF token in a page's forms.
var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// agentClient is one simulated agent's browser: a cookie jar and no
// redirects followed, so that each request is timed alone.
type agentClient struct {
	base string
	name string
	hc   *http.Client
	csrf string
	lat  map[string][]time.Duration
	errs map[string]int
	// firstErr is the first unexpected answer, for the report.
	firstErr string
	empty    int // take-next answered "nothing waiting"
}

func newAgentClient(base, name string) *agentClient {
	jar, _ := cookiejar.New(nil) // never fails without options
	return &agentClient{base: base, name: name, lat: map[string][]time.Duration{}, errs: map[string]int{},
		hc: &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}}
}

// do sends one request and returns its status, Location and body (read
// whole, as a browser would); the time is that of the whole answer.
func (a *agentClient) do(ctx context.Context, method, path string, form url.Values) (int, string, string, time.Duration, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return 0, "", "", 0, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	start := time.Now()
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0, "", "", time.Since(start), err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location"), string(b), time.Since(start), err
}

// login signs the agent in and reads its CSRF token from the board.
func (a *agentClient) login(ctx context.Context, password string) error {
	code, loc, _, _, err := a.do(ctx, http.MethodPost, "/login", url.Values{"name": {a.name}, "password": {password}})
	if err != nil {
		return fmt.Errorf("login %s: %w", a.name, err)
	}
	if code != http.StatusSeeOther || loc != "/" {
		return fmt.Errorf("login %s: status %d, location %q", a.name, code, loc)
	}
	code, _, page, _, err := a.do(ctx, http.MethodGet, "/", nil)
	if err != nil {
		return fmt.Errorf("board of %s: %w", a.name, err)
	}
	m := csrfRE.FindStringSubmatch(page)
	if code != http.StatusOK || m == nil {
		return fmt.Errorf("board of %s: status %d, no CSRF token", a.name, code)
	}
	a.csrf = m[1]
	return nil
}

// record keeps the latency of a successful op, or counts a failure.
func (a *agentClient) record(op string, ok bool, d time.Duration, what string) {
	if ok {
		a.lat[op] = append(a.lat[op], d)
		return
	}
	a.errs[op]++
	if a.firstErr == "" {
		a.firstErr = op + ": " + what
	}
}

// work runs rounds until ctx ends: board, take next (queues in turn,
// starting at the agent's own), ticket page, then resolve, or return
// every fifth round, then a pause of think. It stops early only when ctx
// ends.
func (a *agentClient) work(ctx context.Context, first int, think time.Duration) {
	for round := 0; ctx.Err() == nil; round++ {
		if round > 0 && think > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(think):
			}
		}
		queue := colourQueues[(first+round)%len(colourQueues)]
		code, _, _, d, err := a.do(ctx, http.MethodGet, "/", nil)
		if ctx.Err() != nil {
			return
		}
		a.record(opBoard, err == nil && code == http.StatusOK, d, fmt.Sprint(code, " ", err))

		code, loc, _, d, err := a.do(ctx, http.MethodPost, "/take/"+queue, url.Values{"csrf_token": {a.csrf}})
		if ctx.Err() != nil {
			return
		}
		number, took := strings.CutPrefix(loc, "/t/")
		ok := err == nil && code == http.StatusSeeOther && (took || strings.HasPrefix(loc, "/?empty="))
		a.record(opTake, ok, d, fmt.Sprint(code, " ", loc, " ", err))
		if !ok || !took {
			if ok {
				a.empty++
			}
			continue
		}

		code, _, _, d, err = a.do(ctx, http.MethodGet, "/t/"+number, nil)
		if ctx.Err() != nil {
			return
		}
		a.record(opTicket, err == nil && code == http.StatusOK, d, fmt.Sprint(code, " ", err))

		op, form := opResolve, url.Values{"csrf_token": {a.csrf}, "outcome": {"reset-done"}, "note": {"deskbench"}}
		if round%5 == 4 {
			op, form = opReturn, url.Values{"csrf_token": {a.csrf}}
		}
		code, _, _, d, err = a.do(ctx, http.MethodPost, "/t/"+number+"/"+op, form)
		if ctx.Err() != nil {
			return
		}
		a.record(op, err == nil && code == http.StatusSeeOther, d, fmt.Sprint(code, " ", err))
	}
}

// OpStats are the figures of one operation.
type OpStats struct {
	Count  int     `json:"count"`
	Errors int     `json:"errors"`
	PerSec float64 `json:"per_second"`
	P50    float64 `json:"p50_ms"`
	P90    float64 `json:"p90_ms"`
	P99    float64 `json:"p99_ms"`
	Max    float64 `json:"max_ms"`
}

// stats merges the agents' latencies of op.
func stats(agents []*agentClient, op string, elapsed time.Duration) OpStats {
	var all []time.Duration
	var s OpStats
	for _, a := range agents {
		all = append(all, a.lat[op]...)
		s.Errors += a.errs[op]
	}
	slices.Sort(all)
	s.Count = len(all)
	s.PerSec = float64(len(all)) / elapsed.Seconds()
	if len(all) == 0 {
		return s
	}
	q := func(p float64) float64 {
		i := min(len(all)-1, int(p*float64(len(all))))
		return ms(all[i])
	}
	s.P50, s.P90, s.P99, s.Max = q(0.50), q(0.90), q(0.99), ms(all[len(all)-1])
	return s
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// runAgents signs n agents in (each once, at the password hash's cost)
// and lets them work for d, pausing think after each round; it returns them with their figures and the
// time they worked.
func runAgents(ctx context.Context, base string, names []string, password string, d, think time.Duration) ([]*agentClient, time.Duration, error) {
	agents := make([]*agentClient, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		agents[i] = newAgentClient(base, name)
		wg.Go(func() { errs[i] = agents[i].login(ctx, password) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, 0, err
	}
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	for i, a := range agents {
		wg.Go(func() { a.work(wctx, i, think) })
	}
	wg.Wait()
	return agents, time.Since(start), ctx.Err()
}
