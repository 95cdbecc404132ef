package testproc

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// TestParentDeathKillsChild checks the parent-death signal: a child
// started by Start, in a group of its own, dies when its parent is killed.
func TestParentDeathKillsChild(t *testing.T) {
	p, line := startHelper(t, "spawn", Options{})
	child, err := strconv.Atoi(line)
	if err != nil {
		t.Fatalf("helper printed %q, want a PID", line)
	}
	st, ok := readStat(child)
	if !ok || st.State == 'Z' {
		t.Fatalf("the helper's child %d is not running", child)
	}
	if st.Pgrp != child || st.Pgrp == p.Pid() {
		t.Fatalf("the helper's child is in group %d, want its own (%d): killing the helper's group would kill it", st.Pgrp, child)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := WaitGone(ctx, child); err != nil {
		t.Errorf("the child of a killed parent lives on: %v", err)
	}
}

func TestReadStat(t *testing.T) {
	p, _ := startHelper(t, "sleep", Options{})
	st, ok := readStat(p.Pid())
	if !ok {
		t.Fatalf("no /proc/%d/stat", p.Pid())
	}
	if st.Pgrp != p.Pid() {
		t.Errorf("group %d, want its own, %d", st.Pgrp, p.Pid())
	}
	if got := Children(st.PPid); !containsInt(got, p.Pid()) {
		t.Errorf("Children(%d) = %v, want %d among them", st.PPid, got, p.Pid())
	}
	if got := Children(st.PPid, "no-such-command"); containsInt(got, p.Pid()) {
		t.Errorf("Children with another command name = %v, want %d left out", got, p.Pid())
	}
	p.Kill()
	if _, ok := readStat(p.Pid()); ok && isAlive(p.Pid()) {
		t.Errorf("pid %d alive after Kill", p.Pid())
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
