// Package testproc runs the child processes of tests and benchmarks: a
// Dovecot daemon, the built ticketrouter binary, nats-server, mbsync. It
// makes sure none outlives its parent, stops them with a bound, finds free
// loopback ports for them and reads the end of their logs for error
// messages.
//
// A process started by Start gets a process group of its own, so that Stop
// and Kill reach its children too (Dovecot's master forks a dozen), and,
// on Linux, a parent-death signal, so that a test binary killed by
// -timeout or a crashed benchmark leaves nothing running. It runs on Linux
// and, without the parent-death signal, on the other Unix systems.
package testproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// killWait bounds how long Kill waits for the process and its group to be
// gone after SIGKILL.
const killWait = 10 * time.Second

// Options are the settings of Start.
type Options struct {
	// Name names the process in errors; the base name of the command's
	// path when empty.
	Name string
	// Log, when not empty, is a file that Start creates (or truncates) for
	// the output: the command's Stdout and Stderr that are nil go to it.
	// Being a file, it is handed to the child as it is, with no copying
	// goroutine in the parent.
	Log string
	// DeathSignal is the signal the process gets when its parent dies
	// (Linux only); SIGKILL when zero. A daemon that stops its own
	// children on SIGTERM, such as Dovecot's master, takes SIGTERM.
	DeathSignal syscall.Signal
}

// Process is a child process started by Start. Its methods are safe for
// concurrent use.
type Process struct {
	name    string
	log     string
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{} // closed once the process exited and was reaped
	err     error         // what cmd.Wait returned; read only after done
}

// Start starts cmd, which must not have been started, in a process group of
// its own, with the parent-death signal of opts (see Options), and reaps it
// when it exits. Any SysProcAttr of cmd is replaced.
func Start(cmd *exec.Cmd, opts Options) (*Process, error) {
	name := opts.Name
	if name == "" {
		name = filepath.Base(cmd.Path)
	}
	if opts.Log != "" {
		f, err := os.Create(opts.Log)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		defer f.Close() // the child has its own copy
		if cmd.Stdout == nil {
			cmd.Stdout = f
		}
		if cmd.Stderr == nil {
			cmd.Stderr = f
		}
	}
	sig := opts.DeathSignal
	if sig == 0 {
		sig = syscall.SIGKILL
	}
	cmd.SysProcAttr = sysProcAttr(sig)
	if err := spawn(cmd); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, cmd.Path, err)
	}
	p := &Process{name: name, log: opts.Log, cmd: cmd, started: time.Now(), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// spawnThread returns the channel of the one goroutine that starts every
// process. It is locked to its OS thread and never returns: Linux sends
// the parent-death signal when the thread that forked exits, not the
// process, so a child started from an ordinary goroutine could be killed
// whenever the Go runtime retires that thread. It is package state because
// the thread is the process's, shared by every caller, and it never
// changes once started.
var spawnThread = sync.OnceValue(func() chan<- func() {
	ch := make(chan func())
	go func() {
		lockThread()
		for f := range ch {
			f()
		}
	}()
	return ch
})

// spawn starts cmd from the spawning thread.
func spawn(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	spawnThread() <- func() { done <- cmd.Start() }
	return <-done
}

// Name returns the process's name, as given to Start.
func (p *Process) Name() string { return p.name }

// Pid returns the process's ID, which is also its process group's ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Started returns when the process was started.
func (p *Process) Started() time.Time { return p.started }

// LogPath returns Options.Log.
func (p *Process) LogPath() string { return p.log }

// Done returns a channel that is closed once the process has exited and
// was reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited and was reaped.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err returns why the process exited, as exec.Cmd.Wait does (nil for exit
// status 0, an *exec.ExitError otherwise); nil while it runs.
func (p *Process) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// ProcessState returns the state of the exited process (exit code, CPU
// time, resource usage); nil while it runs.
func (p *Process) ProcessState() *os.ProcessState {
	if !p.Exited() {
		return nil
	}
	return p.cmd.ProcessState
}

// Wait waits until the process has exited, returning Err, or until ctx is
// done, returning ctx.Err() and leaving the process running.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Signal sends sig to the process's group: the process and every process
// it started that stayed in its group. A group that is gone is no error.
//
// Once the process was reaped, its ID may be given to a new process (the
// machine may count only to 32768), so the group is signalled then only
// while a member of it is seen alive: a live member keeps the ID taken.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.Exited() && len(groupMembers(p.Pid())) == 0 {
		return nil
	}
	err := syscall.Kill(-p.Pid(), sig)
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %s (pid %d): %w", p.name, p.Pid(), err)
	}
	return nil
}

// Stop asks the process to stop: SIGTERM to its group, then, if it is
// still running after grace, SIGKILL (Kill). Once it has exited, whatever
// is left of its group is killed. It returns an error when the process had
// to be killed, or could not be, not for its exit status (see Err).
func (p *Process) Stop(grace time.Duration) error {
	if p.Exited() {
		return nil
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return p.Kill() // the stragglers of its group, if any
	case <-t.C:
	}
	if err := p.Kill(); err != nil {
		return err
	}
	return fmt.Errorf("%s (pid %d) still running %v after SIGTERM: killed", p.name, p.Pid(), grace)
}

// Kill sends SIGKILL to the process's group, as a crash would, and returns
// once the process was reaped and no live process is left in its group,
// or with an error after 10 s. Killing a process that has exited kills
// what is left of its group.
func (p *Process) Kill() error {
	pgid := p.Pid()
	members := groupMembers(pgid) // before the kill: the leader's children are reparented after it
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	deadline := time.NewTimer(killWait)
	defer deadline.Stop()
	select {
	case <-p.done:
	case <-deadline.C:
		return fmt.Errorf("%s (pid %d) not gone %v after SIGKILL", p.name, pgid, killWait)
	}
	ctx, cancel := context.WithTimeout(context.Background(), killWait)
	defer cancel()
	if err := WaitGone(ctx, append(members, groupMembers(pgid)...)...); err != nil {
		return fmt.Errorf("the processes of %s (pid %d) after SIGKILL: %w", p.name, pgid, err)
	}
	return nil
}

// Tail returns the last n lines of the process's log (Options.Log), as the
// package's Tail reads them.
func (p *Process) Tail(n int) string {
	if p.log == "" {
		return fmt.Sprintf("(%s has no log file)", p.name)
	}
	return Tail(p.log, n)
}

// WaitGone waits until none of pids is a live process (a zombie counts as
// gone: it only waits to be reaped), polling every 10 ms, or until ctx is
// done.
func WaitGone(ctx context.Context, pids ...int) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		var alive []int
		for _, pid := range pids {
			if isAlive(pid) {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("processes %v still alive: %w", alive, ctx.Err())
		case <-tick.C:
		}
	}
}
