package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ticketrouter/ticketrouter/internal/testproc"
)

// child is a child process (see testproc: it dies with the bench, killed
// or crashed, and never before) whose output goes to a log file (and its
// stdout, optionally, to a writer of the caller's).
type child struct {
	*testproc.Process
	// parentHWM is the bench's own peak RSS (KiB) just after the start:
	// Linux counts it into the ru_maxrss of a child spawned with vfork, as
	// Go spawns them (see usage).
	parentHWM int64
	hwm       atomic.Int64 // the child's VmHWM (KiB), read every 10 ms while it runs
}

// startChild starts bin with args; env is added to the bench's own
// environment. stdout, when not nil, receives the child's standard output
// instead of the log.
func (b *bench) startChild(name, logPath string, stdout io.Writer, env []string, bin string, args ...string) (*child, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = childEnv(env...)
	cmd.Stdout = stdout // nil: the log
	p, err := testproc.Start(cmd, testproc.Options{Name: name, Log: logPath})
	if err != nil {
		return nil, err
	}
	c := &child{Process: p, parentHWM: vmHWM("self")}
	go c.sampleHWM()
	return c, nil
}

// childEnv is the bench's environment without the variables that would
// override ticketrouter's configuration, plus extra.
func childEnv(extra ...string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "TICKETROUTER_") })
	return append(env, extra...)
}

// wait waits up to timeout for the process to exit by itself; on timeout
// or cancellation it kills it and says so.
func (c *child) wait(ctx context.Context, timeout time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if c.Wait(wctx) == nil || c.Exited() {
		return nil // its exit status is the caller's to judge
	}
	c.Kill()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", c.Name(), err)
	}
	return fmt.Errorf("%s (pid %d) still running after %v: killed", c.Name(), c.Pid(), timeout.Round(time.Second))
}

// sampleHWM reads the child's VmHWM every 10 ms until it exits.
func (c *child) sampleHWM() {
	pid := fmt.Sprint(c.Pid())
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if v := vmHWM(pid); v > c.hwm.Load() {
			c.hwm.Store(v)
		}
		select {
		case <-c.Done():
			return
		case <-t.C:
		}
	}
}

// vmHWM returns a process's peak resident set (VmHWM, KiB) from
// /proc/PID/status; 0 when unknown (or the process has exited).
func vmHWM(pid string) int64 { return procStatusKiB(pid, "VmHWM") }

// procStatusKiB returns a field in kB of /proc/PID/status (VmHWM, VmRSS)
// in KiB; 0 when unknown (or the process has exited).
func procStatusKiB(pid, field string) int64 {
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			v, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return v
		}
	}
	return 0
}

// usage is the peak RSS (MiB) and CPU time (user+system seconds) of an
// exited process, and where the RSS comes from. The kernel's ru_maxrss is
// exact when it is above the bench's own peak: Go starts children with
// vfork, and Linux records the spawning process's peak into the child's
// ru_maxrss at exec. Below, it may be the bench's, so the child's own
// VmHWM, read every 10 ms while it ran, is used (it misses at most the
// last 10 ms).
func (c *child) usage() (rssMiB, cpuSeconds float64, source string) {
	st := c.ProcessState()
	if st == nil {
		return 0, 0, ""
	}
	cpuSeconds = (st.UserTime() + st.SystemTime()).Seconds()
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > c.parentHWM {
		return float64(ru.Maxrss) / 1024, cpuSeconds, "ru_maxrss"
	}
	return float64(c.hwm.Load()) / 1024, cpuSeconds, "VmHWM sampled every 10 ms"
}

// cpuClock reads the machine's CPU time (all cores) from /proc/stat, to
// tell how busy the machine was during a clock.
type cpuClock struct{ busy, total uint64 }

func readCPU() cpuClock {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuClock{}
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return cpuClock{}
	}
	var c cpuClock
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		n, _ := strconv.ParseUint(v, 10, 64)
		c.total += n
		if i != 3 && i != 4 {
			c.busy += n
		}
	}
	return c
}

// busySince is the share of all cores busy since c (0 to 1).
func (c cpuClock) busySince() float64 {
	now := readCPU()
	if now.total <= c.total {
		return 0
	}
	return float64(now.busy-c.busy) / float64(now.total-c.total)
}
