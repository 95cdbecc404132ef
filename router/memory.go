package router

import (
	"os"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"

	"github.com/rs/zerolog"
)

// workingMemory is the heap a replica needs beyond what it holds at rest
// (the account directory, mostly) while it drains a backlog at the
// default concurrency: 70 MB live at the peak of deploy/bench's
// 20,000 mails with a 50 MiB one (the embedded NATS server's block caches
// and subject index most of it), and room for the collector. The room is
// what the collector's CPU depends on: with 96 MiB it ran 156 times in
// that drain, 3.8 CPU seconds of 17; with 112 MiB 107 times, 2.1 CPU
// seconds, for a peak of 136 MiB resident instead of 120.
const workingMemory = 112 << 20

// setMemoryLimit gives the Go runtime a soft memory limit: the live heap
// now plus workingMemory, unless GOMEMLIMIT is set. Without a limit the
// heap grows to twice what is live before each collection: draining
// 20,000 mails peaked at 156 MiB resident, with the limit at 117 MiB in
// the same time. Called again when the directory is reloaded, since its
// size is most of the live heap (390 MiB for a million accounts).
func setMemoryLimit(log zerolog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return // the operator's
	}
	runtime.GC()
	live := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	rtmetrics.Read(live)
	if live[0].Value.Kind() != rtmetrics.KindUint64 {
		return
	}
	limit := int64(live[0].Value.Uint64()) + workingMemory
	debug.SetMemoryLimit(limit)
	log.Info().Int64("memory_limit", limit).Msg("soft memory limit set (GOMEMLIMIT overrides it)")
}
