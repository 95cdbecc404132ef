package testproc

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// sysProcAttr puts the child in a process group of its own and has the
// kernel send it sig when the thread that started it exits.
func sysProcAttr(sig syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: sig}
}

// lockThread locks the spawning goroutine to its thread for good: the
// parent-death signal is tied to the thread that forked.
func lockThread() { runtime.LockOSThread() }

// stat is what /proc/PID/stat says of a process.
type stat struct {
	PPid  int    // its parent's ID
	Pgrp  int    // its process group's ID
	Comm  string // its command name, as ps shows it
	State byte   // R, S, D, T (stopped), Z (zombie), ...
}

// readStat reads /proc/PID/stat; false when there is no such process.
func readStat(pid int) (stat, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, false
	}
	s := string(data)
	// The command name is in parentheses and may hold anything, ")" too.
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return stat{}, false
	}
	f := strings.Fields(s[end+1:]) // state, ppid, pgrp, ...
	if len(f) < 3 || f[0] == "" {
		return stat{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgrp, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		return stat{}, false
	}
	return stat{PPid: ppid, Pgrp: pgrp, Comm: s[open+1 : end], State: f[0][0]}, true
}

// Children returns the live (not zombie) children of pid, only those
// whose command name is one of comms when comms are given.
func Children(pid int, comms ...string) []int {
	return scan(func(st stat) bool {
		if st.PPid != pid {
			return false
		}
		if len(comms) == 0 {
			return true
		}
		for _, c := range comms {
			if st.Comm == c {
				return true
			}
		}
		return false
	})
}

// groupMembers returns the live processes of process group pgid.
func groupMembers(pgid int) []int {
	return scan(func(st stat) bool { return st.Pgrp == pgid })
}

// scan returns the live processes for which match holds.
func scan(match func(stat) bool) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(pid); ok && st.State != 'Z' && match(st) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// isAlive reports whether pid is a process that is not a zombie.
func isAlive(pid int) bool {
	st, ok := readStat(pid)
	return ok && st.State != 'Z'
}
