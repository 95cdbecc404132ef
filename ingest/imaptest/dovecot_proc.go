package imaptest

// Dovecot's processes: the daemon started with internal/testproc (in a
// process group of its own, killed with the test binary), and what tests
// do to its processes: kill or freeze the connections' ones, count
// connections, reset a UIDVALIDITY with doveadm.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/ticketrouter/ticketrouter/internal/testproc"
)

// startDaemon runs `dovecot -F` and waits until it greets on s.port. retry
// reports a failure that another port may cure (the port was taken).
//
// A graceful stop (SIGTERM) costs over a second: Dovecot's master sleeps
// one second for its log process. The directory is thrown away, so Close
// kills the master and its children (all in the master's process group) at
// once. Only when the test binary dies does the master get SIGTERM, and
// then it stops its children itself.
func (s *Dovecot) startDaemon(dovecot string) (retry bool, err error) {
	stderrPath := filepath.Join(s.dir, "dovecot.stderr")
	cmd := exec.Command(dovecot, "-F", "-c", s.cfg)
	cmd.Env = append(os.Environ(), "HOME="+filepath.Join(s.dir, "home"))
	p, err := testproc.Start(cmd, testproc.Options{Name: "dovecot", Log: stderrPath, DeathSignal: syscall.SIGTERM})
	if err != nil {
		return false, err
	}

	deadline := time.Now().Add(20 * time.Second)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	for {
		select {
		case <-p.Done():
			msg := strings.TrimSpace(testproc.Tail(stderrPath, 10))
			log := testproc.Tail(filepath.Join(s.dir, "dovecot.log"), 30)
			inUse := strings.Contains(msg+log, "in use")
			return inUse, fmt.Errorf("dovecot exited at start (%s): %s", p.ProcessState(), msg)
		default:
		}
		if ok := dovecotGreets(addr); ok {
			break
		}
		if time.Now().After(deadline) {
			p.Kill()
			return false, fmt.Errorf("dovecot did not greet on %s within 20 s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.pid = p.Pid()
	s.proc = p
	return false, nil
}

func dovecotGreets(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "* OK") && strings.Contains(line, "Dovecot")
}

// dovecotWaitGone waits up to timeout until none of pids is alive.
func dovecotWaitGone(pids []int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return testproc.WaitGone(ctx, pids...)
}

// KickConnections SIGKILLs every imap and imap-login process of this Dovecot:
// the kernel closes their sockets at once, with no BYE, like a crash.
func (s *Dovecot) KickConnections(t testing.TB) {
	t.Helper()
	pids := testproc.Children(s.pid, "imap", "imap-login")
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if err := dovecotWaitGone(pids, 5*time.Second); err != nil {
		t.Fatalf("imaptest: dovecot: kicked processes still alive after 5 s: %v", err)
	}
}

// FreezeConnections stops (SIGSTOP) the IMAP processes serving the
// current connections: their sockets stay open but nothing answers, as
// with a silently dead network path. New connections get new processes.
// The frozen ones are killed when the test ends.
func (s *Dovecot) FreezeConnections(t testing.TB) {
	t.Helper()
	pids := testproc.Children(s.pid, "imap")
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGSTOP)
	}
	t.Cleanup(func() {
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

func (s *Dovecot) doveadmRun(args ...string) (string, error) {
	cmd := exec.Command(s.doveadm, append([]string{"-c", s.cfg}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+filepath.Join(s.dir, "home"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		return out.String(), errors.New("timed out after 30 s")
	}
}

// ResetUIDValidity sets a new UIDVALIDITY with `doveadm mailbox update`.
// The messages keep their UID numbers (Dovecot cannot renumber them). Sessions
// with the mailbox selected are dropped (see below); one that slips through
// gets Dovecot's own BYE at its next command ("IMAP session state is
// inconsistent, please relogin").
func (s *Dovecot) ResetUIDValidity(t testing.TB, mailbox string) {
	t.Helper()
	status := func() uint32 {
		hc := s.admin(t)
		defer hc.close()
		st, err := hc.Client.Status(mailbox, &imap.StatusOptions{UIDValidity: true}).Wait()
		if err != nil {
			t.Fatalf("imaptest: dovecot: status of %q: %v", mailbox, err)
		}
		return st.UIDValidity
	}
	old := status()
	next := old + 1
	if next == 0 {
		next = 1
	}
	out, err := s.doveadmRun("mailbox", "update", "--uid-validity", strconv.FormatUint(uint64(next), 10), "-u", imapHarnessUser, mailbox)
	if err != nil {
		t.Fatalf("imaptest: dovecot: doveadm mailbox update %q: %v: %s", mailbox, err, out)
	}
	// Left alone, Dovecot drops such a session only at its next command (an
	// idling one never wakes up); drop them now, as the memserver does: kill
	// the imap processes that hold the mailbox's index open.
	dir := filepath.Join(s.dir, "mail", "box")
	if !strings.EqualFold(mailbox, "INBOX") {
		dir = filepath.Join(dir, filepath.FromSlash(mailbox))
	}
	var stale []int
	for _, pid := range testproc.Children(s.pid, "imap") {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if err == nil && filepath.Dir(target) == dir && strings.HasPrefix(filepath.Base(target), "dovecot.index") {
				stale = append(stale, pid)
				break
			}
		}
	}
	for _, pid := range stale {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	dovecotWaitGone(stale, 5*time.Second)
	if got := status(); got != next {
		t.Fatalf("imaptest: dovecot: UIDVALIDITY of %q is %d after update to %d (was %d)", mailbox, got, next, old)
	}
}

// Connections counts the established TCP connections to Dovecot's port
// (from /proc/net/tcp), leaving out the harness's own.
func (s *Dovecot) Connections() int {
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return -1
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != "01" { // 01 = ESTABLISHED
			continue
		}
		lport, ok1 := imaptestHexPort(f[1])
		rport, ok2 := imaptestHexPort(f[2])
		if ok1 && ok2 && lport == s.port && !s.isHarnessPort(rport) {
			n++
		}
	}
	return n
}

func imaptestHexPort(addr string) (int, bool) {
	_, p, ok := strings.Cut(addr, ":")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(p, 16, 16)
	return int(v), err == nil
}
