package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// -pprof: profiles of the ticketrouter drain, from the service's own
// /debug/pprof/ (the standard net/http/pprof handlers on its debug
// listener, debug.listen).

// cpuProfileSeconds is the length of each CPU profile; they run back to
// back until the drain ends, so that together they cover it.
const cpuProfileSeconds = 5

// Files the profiler writes into the -pprof directory (and removes there
// first, so that no profile of an earlier run mixes in).
const (
	pprofBinary   = "ticketrouter"
	pprofHeap     = "heap.pprof"
	pprofHeapPeak = "heap-peak.pprof"
	pprofAllocs   = "allocs.pprof"
)

func cpuProfileName(i int) string { return fmt.Sprintf("cpu-%d.pprof", i) }

// profileSet is what -pprof wrote: absolute paths.
type profileSet struct {
	Dir    string       `json:"dir"`
	Binary string       `json:"binary"`
	CPU    []cpuProfile `json:"cpu"`
	// Heap and Allocs are fetched once the drain is done, before the
	// process stops.
	Heap   string `json:"heap,omitempty"`
	Allocs string `json:"allocs,omitempty"`
	// HeapPeak is the heap profile fetched when the process's VmRSS was
	// the highest seen (looked at every 100 ms), at HeapPeakAtS seconds
	// after the process started.
	HeapPeak       string   `json:"heap_peak,omitempty"`
	HeapPeakRSSMiB float64  `json:"heap_peak_rss_mib,omitempty"`
	HeapPeakAtS    float64  `json:"heap_peak_at_seconds,omitempty"`
	Errors         []string `json:"errors,omitempty"`
}

// cpuProfile is one CPU profile, and when it ran (seconds after the
// process started).
type cpuProfile struct {
	File  string  `json:"file"`
	FromS float64 `json:"from_seconds"`
	ToS   float64 `json:"to_seconds"`
}

// preparePprofDir creates the -pprof directory, removes the files of an
// earlier run from it, and copies the ticketrouter binary into it (pprof
// wants it for source lines and disassembly).
func (b *bench) preparePprofDir() error {
	dir, err := filepath.Abs(b.opts.pprofDir)
	if err != nil {
		return fmt.Errorf("-pprof: %w", err)
	}
	b.opts.pprofDir = dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("-pprof: %w", err)
	}
	old, _ := filepath.Glob(filepath.Join(dir, "cpu-*.pprof"))
	old = append(old, filepath.Join(dir, pprofHeap), filepath.Join(dir, pprofHeapPeak), filepath.Join(dir, pprofAllocs))
	removed := 0
	for _, p := range old {
		if err := os.Remove(p); err == nil {
			removed++
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("-pprof: %w", err)
		}
	}
	if removed > 0 {
		b.logf("pprof: removed %d profiles of an earlier run from %s", removed, dir)
	}
	dst := filepath.Join(dir, pprofBinary)
	if same, _ := sameFile(b.trBin, dst); same {
		return nil
	}
	if err := copyFile(b.trBin, dst, 0o755); err != nil {
		return fmt.Errorf("-pprof: copy the ticketrouter binary: %w", err)
	}
	return nil
}

func sameFile(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}

// profiler fetches the profiles of one running ticketrouter.
type profiler struct {
	b       *bench
	addr    string // the debug listener
	pid     string
	started time.Time // the process's start
	client  http.Client
	ctx     context.Context
	cancel  context.CancelFunc
	stopped chan struct{} // closed when the drain is done
	stop    sync.Once
	wg      sync.WaitGroup
	mu      sync.Mutex // guards set
	set     profileSet
}

// startProfiler starts fetching CPU profiles back to back, and a heap
// profile whenever the process's RSS is the highest seen, as soon as the
// service's debug listener answers (once its embedded NATS is up, before
// /readyz says ready).
func (b *bench) startProfiler(ctx context.Context, tr *trInstance) *profiler {
	p := &profiler{
		b: b, addr: tr.debugAddr, pid: strconv.Itoa(tr.proc.Pid()), started: tr.proc.Started(),
		stopped: make(chan struct{}),
		set:     profileSet{Dir: b.opts.pprofDir, Binary: filepath.Join(b.opts.pprofDir, pprofBinary)},
	}
	p.ctx, p.cancel = context.WithCancel(ctx)
	p.wg.Add(2)
	go p.cpuLoop()
	go p.peakLoop()
	return p
}

func (p *profiler) since() float64 { return time.Since(p.started).Seconds() }

func (p *profiler) errorf(format string, args ...any) {
	err := fmt.Sprintf(format, args...)
	p.b.logf("pprof: %s", err)
	p.mu.Lock()
	p.set.Errors = append(p.set.Errors, err)
	p.mu.Unlock()
}

// done reports whether the drain is done (or the run cancelled).
func (p *profiler) done() bool {
	select {
	case <-p.stopped:
		return true
	case <-p.ctx.Done():
		return true
	default:
		return false
	}
}

// waitListening waits until the debug listener accepts connections.
func (p *profiler) waitListening() bool {
	for !p.done() {
		if c, err := net.DialTimeout("tcp", p.addr, time.Second); err == nil {
			c.Close()
			return true
		}
		select {
		case <-p.stopped:
		case <-p.ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	return false
}

// fetch GETs /debug/pprof/<what> and writes the answer to path (whole,
// or not at all).
func (p *profiler) fetch(what, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+"/debug/pprof/"+what, nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("GET /debug/pprof/%s: %w", what, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET /debug/pprof/%s: %w", what, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /debug/pprof/%s: %s: %s", what, resp.Status, firstLine(string(data)))
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// cpuLoop fetches CPU profiles of cpuProfileSeconds back to back until
// the drain is done; the one running then is finished.
func (p *profiler) cpuLoop() {
	defer p.wg.Done()
	if !p.waitListening() {
		return
	}
	for i, failures := 1, 0; !p.done(); {
		path := filepath.Join(p.set.Dir, cpuProfileName(i))
		from := p.since()
		err := p.fetch(fmt.Sprintf("profile?seconds=%d", cpuProfileSeconds), path, cpuProfileSeconds*time.Second+time.Minute)
		if err == nil {
			p.mu.Lock()
			p.set.CPU = append(p.set.CPU, cpuProfile{File: path, FromS: from, ToS: p.since()})
			p.mu.Unlock()
			i, failures = i+1, 0
			continue
		}
		if p.ctx.Err() != nil {
			return
		}
		if failures++; failures == 3 {
			p.errorf("CPU profile %d: %v; giving up", i, err)
			return
		}
		p.errorf("CPU profile %d: %v; again", i, err)
		time.Sleep(200 * time.Millisecond)
	}
}

// peakLoop reads the process's VmRSS every 100 ms, and whenever it is 2%
// above the RSS of the heap profile kept so far (and 200 ms have passed
// since the last fetch), fetches a heap profile as heap-peak.pprof; once
// more when the drain is done, if the RSS is higher then.
func (p *profiler) peakLoop() {
	defer p.wg.Done()
	if !p.waitListening() {
		return
	}
	path := filepath.Join(p.set.Dir, pprofHeapPeak)
	var best int64 // KiB
	var last time.Time
	var lastErr error
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for final := false; !final && p.ctx.Err() == nil; {
		select {
		case <-p.stopped:
			final = true
		case <-p.ctx.Done():
			continue
		case <-t.C:
		}
		rss := procStatusKiB(p.pid, "VmRSS")
		if rss <= best+best/50 || !final && time.Since(last) < 200*time.Millisecond {
			continue
		}
		last = time.Now()
		at := p.since()
		if lastErr = p.fetch("heap", path, 30*time.Second); lastErr != nil {
			continue
		}
		best = rss
		p.mu.Lock()
		p.set.HeapPeak, p.set.HeapPeakRSSMiB, p.set.HeapPeakAtS = path, float64(rss)/1024, at
		p.mu.Unlock()
	}
	if best == 0 && lastErr != nil {
		p.errorf("heap profile at the RSS peak: %v", lastErr)
	}
}

// finish is called when the drain is done, before the process stops: it
// lets the running CPU profile end, then fetches the heap and allocs
// profiles. It returns what was written.
func (p *profiler) finish() *profileSet {
	p.stop.Do(func() { close(p.stopped) })
	p.wg.Wait()
	for _, f := range []struct{ what, file string }{{"heap", pprofHeap}, {"allocs", pprofAllocs}} {
		path := filepath.Join(p.set.Dir, f.file)
		if err := p.fetch(f.what, path, 30*time.Second); err != nil {
			p.errorf("%s profile after the drain: %v", f.what, err)
			continue
		}
		p.mu.Lock()
		if f.what == "heap" {
			p.set.Heap = path
		} else {
			p.set.Allocs = path
		}
		p.mu.Unlock()
	}
	p.cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	set := p.set
	return &set
}

// abort stops everything at once (the drain failed), and returns what
// was written so far.
func (p *profiler) abort() *profileSet {
	p.stop.Do(func() { close(p.stopped) })
	p.cancel()
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	set := p.set
	return &set
}

// print lists the profiles, and how to look at them. drainSeconds is the
// drain's clock (0 when it failed).
func (s *profileSet) print(w io.Writer, drainSeconds float64) {
	fmt.Fprintf(w, "ticketrouter profiles (-pprof), in %s:\n", s.Dir)
	fmt.Fprintf(w, "  binary     %s\n", s.Binary)
	if n := len(s.CPU); n > 0 {
		drain := ""
		if drainSeconds > 0 {
			drain = fmt.Sprintf("; the drain: 0 to %.1f s", drainSeconds)
		}
		fmt.Fprintf(w, "  CPU        %d × %d s, back to back from %.1f s to %.1f s after the process started%s:\n",
			n, cpuProfileSeconds, s.CPU[0].FromS, s.CPU[n-1].ToS, drain)
		for i, c := range s.CPU {
			if n > 6 && i == 2 {
				fmt.Fprintf(w, "             … (%d more)\n", n-4)
			}
			if n > 6 && i >= 2 && i < n-2 {
				continue
			}
			fmt.Fprintf(w, "             %s  (%.1f to %.1f s)\n", c.File, c.FromS, c.ToS)
		}
	} else {
		fmt.Fprintln(w, "  CPU        none")
	}
	if s.HeapPeak != "" {
		fmt.Fprintf(w, "  heap-peak  %s  (at VmRSS %.1f MiB, %.1f s after the process started; in-use figures as of the last GC)\n",
			s.HeapPeak, s.HeapPeakRSSMiB, s.HeapPeakAtS)
	}
	if s.Heap != "" {
		fmt.Fprintf(w, "  heap       %s  (after the drain)\n", s.Heap)
	}
	if s.Allocs != "" {
		fmt.Fprintf(w, "  allocs     %s  (after the drain: everything allocated since the start)\n", s.Allocs)
	}
	for _, e := range s.Errors {
		fmt.Fprintf(w, "  error      %s\n", e)
	}
	if len(s.CPU) > 0 {
		fmt.Fprintf(w, "  look:      go tool pprof -top %s %s\n", s.Binary, filepath.Join(s.Dir, "cpu-*.pprof"))
		if s.Allocs != "" {
			fmt.Fprintf(w, "             go tool pprof -sample_index=alloc_space -top %s %s\n", s.Binary, s.Allocs)
		}
	}
}
