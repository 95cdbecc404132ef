package testproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv names the mode in which the test binary, run again as a child
// of a test, plays a child process (see helper).
const helperEnv = "TESTPROC_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode))
	}
	os.Exit(m.Run())
}

// helperSleep is how long a helper that waits to be killed waits at most.
const helperSleep = 10 * time.Minute

// helper is the child process of the tests, by mode:
//   - sleep: waits to be killed.
//   - ignore-term: ignores SIGTERM, prints "ready", waits to be killed.
//   - exit3: writes a line to stdout and one to stderr, exits with status 3.
//   - group: starts a sleep child in its own process group with exec,
//     prints the child's PID, waits to be killed.
//   - spawn: starts a sleep child with Start (a group of its own), prints
//     its PID, waits to be killed.
func helper(mode string) int {
	switch mode {
	case "sleep":
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
	case "exit3":
		fmt.Println("to stdout")
		fmt.Fprintln(os.Stderr, "to stderr")
		return 3
	case "group":
		cmd := helperCmd("sleep")
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(cmd.Process.Pid)
	case "spawn":
		p, err := Start(helperCmd("sleep"), Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(p.Pid())
	default:
		fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
		return 2
	}
	time.Sleep(helperSleep)
	return 0
}

// helperCmd is the test binary run as helper in mode.
func helperCmd(mode string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	return cmd
}

// startHelper starts a helper with Start and returns it and the first line
// it prints. The helper is killed when the test ends.
func startHelper(t *testing.T, mode string, opts Options) (*Process, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := helperCmd(mode)
	cmd.Stdout = w
	p, err := Start(cmd, opts)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill() })
	if mode == "sleep" {
		return p, ""
	}
	r.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the first line of helper %s: %v", mode, err)
	}
	return p, strings.TrimSpace(line)
}

// exitSignal is the signal that ended a process, or -1.
func exitSignal(p *Process) syscall.Signal {
	if st := p.ProcessState(); st != nil {
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return ws.Signal()
		}
	}
	return -1
}

func TestStop(t *testing.T) {
	tests := []struct {
		name    string
		mode    string
		grace   time.Duration
		killed  bool           // Stop reports that it had to kill
		endedBy syscall.Signal // what ended the process
	}{
		{"SIGTERM ends it", "sleep", time.Minute, false, syscall.SIGTERM},
		{"SIGKILL after the grace period", "ignore-term", 100 * time.Millisecond, true, syscall.SIGKILL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := startHelper(t, tt.mode, Options{})
			if p.Exited() {
				t.Fatalf("exited at once: %v", p.Err())
			}
			err := p.Stop(tt.grace)
			if tt.killed != (err != nil) {
				t.Errorf("Stop: %v, want an error: %v", err, tt.killed)
			}
			if !p.Exited() {
				t.Fatal("running after Stop")
			}
			if got := exitSignal(p); got != tt.endedBy {
				t.Errorf("ended by signal %v, want %v", got, tt.endedBy)
			}
			if isAlive(p.Pid()) {
				t.Errorf("pid %d alive after Stop", p.Pid())
			}
			if err := p.Stop(tt.grace); err != nil {
				t.Errorf("Stop of a stopped process: %v", err)
			}
		})
	}
}

// TestKillKillsGroup checks that Kill reaches the children that stayed in
// the process's group.
func TestKillKillsGroup(t *testing.T) {
	p, line := startHelper(t, "group", Options{})
	child, err := strconv.Atoi(line)
	if err != nil {
		t.Fatalf("helper printed %q, want a PID", line)
	}
	if !isAlive(child) {
		t.Fatalf("the helper's child %d is not running", child)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if isAlive(child) {
		t.Errorf("the helper's child %d is alive after Kill", child)
	}
	if got := exitSignal(p); got != syscall.SIGKILL {
		t.Errorf("ended by signal %v, want SIGKILL", got)
	}
}

func TestWait(t *testing.T) {
	t.Run("exit status and log", func(t *testing.T) {
		log := filepath.Join(t.TempDir(), "helper.log")
		p, err := Start(helperCmd("exit3"), Options{Name: "exit3", Log: log})
		if err != nil {
			t.Fatal(err)
		}
		err = p.Wait(context.Background())
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Fatalf("Wait: %v, want exit status 3", err)
		}
		if p.Err() != err || p.ProcessState().ExitCode() != 3 {
			t.Errorf("Err %v, exit code %d after Wait", p.Err(), p.ProcessState().ExitCode())
		}
		if got := p.Tail(5); got != "to stdout\nto stderr" {
			t.Errorf("Tail = %q, want the lines of stdout and stderr", got)
		}
	})
	t.Run("context done first", func(t *testing.T) {
		p, _ := startHelper(t, "sleep", Options{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := p.Wait(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Wait: %v, want context.Canceled", err)
		}
		if p.Exited() || p.Err() != nil || p.ProcessState() != nil {
			t.Errorf("the process ended with Wait's context: exited %v, err %v", p.Exited(), p.Err())
		}
	})
}

// TestStartError checks that a command that cannot start is an error that
// names it.
func TestStartError(t *testing.T) {
	_, err := Start(exec.Command(filepath.Join(t.TempDir(), "no-such-binary")), Options{Name: "ghost"})
	if err == nil || !strings.Contains(err.Error(), "start ghost") {
		t.Errorf("Start: %v, want an error naming ghost", err)
	}
	_, err = Start(helperCmd("sleep"), Options{Log: filepath.Join(t.TempDir(), "no-dir", "x.log")})
	if err == nil {
		t.Error("Start with a log in a missing directory: no error")
	}
}
