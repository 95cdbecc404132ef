package router

import (
	"math"
	"runtime/debug"
	"testing"

	"github.com/rs/zerolog"
)

// TestSetMemoryLimit: the soft limit is the live heap plus the working
// memory, and GOMEMLIMIT, when set, is left alone.
func TestSetMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })

	t.Setenv("GOMEMLIMIT", "")
	debug.SetMemoryLimit(math.MaxInt64)
	setMemoryLimit(zerolog.Nop())
	if got := debug.SetMemoryLimit(-1); got < workingMemory || got > workingMemory+1<<30 {
		t.Errorf("limit %d, want the live heap plus %d", got, workingMemory)
	}

	t.Setenv("GOMEMLIMIT", "1GiB")
	debug.SetMemoryLimit(math.MaxInt64)
	setMemoryLimit(zerolog.Nop())
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("with GOMEMLIMIT set the limit became %d; want it left alone", got)
	}
}
