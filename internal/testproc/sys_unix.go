//go:build unix && !linux

package testproc

import "syscall"

// sysProcAttr puts the child in a process group of its own; only Linux has
// a parent-death signal.
func sysProcAttr(syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// lockThread does nothing: without a parent-death signal, the thread that
// forks does not matter.
func lockThread() {}

// Children finds nothing: it reads Linux's /proc.
func Children(pid int, comms ...string) []int { return nil }

// groupMembers finds nothing: it reads Linux's /proc.
func groupMembers(pgid int) []int { return nil }

// isAlive reports whether pid is a process (a zombie, too).
func isAlive(pid int) bool { return syscall.Kill(pid, 0) == nil }
