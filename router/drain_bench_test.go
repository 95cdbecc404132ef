//go:build unix

package router

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/ticketrouter/ticketrouter/ingest/imaptest"
)

// BenchmarkServiceDrain measures the service draining a backlog of b.N
// mails (the example mails, each made unique) from a real Dovecot into the
// embedded NATS: fetch, parse, decide, store the raw mail, publish with
// an ack, move. The time per op is the time per mail, start-up included.
// With -cpuprofile it shows where that time goes:
//
//	go test -run '^$' -bench ServiceDrain -benchtime 5000x -cpuprofile cpu.out ./router
//
// The example mails are a few hundred bytes: they show the cost of each
// mail. TICKETROUTER_BENCH_MAILS=DIR takes the *.eml files of DIR instead,
// such as deploy/bench's generated mails (-keep keeps them), which show
// the cost of each byte too. It reports the CPU time of this process (not
// Dovecot's) per mail, which the machine's other load moves less than the
// wall time.
//
// deploy/bench compares the built binary with mbsync and a raw fetch.
func BenchmarkServiceDrain(b *testing.B) {
	srv, err := imaptest.NewDovecot(imaptest.Options{})
	if errors.Is(err, imaptest.ErrNoDovecot) || errors.Is(err, imaptest.ErrNotRoot) {
		b.Skip(err)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	dir := "../deploy/examples/mail"
	if d := os.Getenv("TICKETROUTER_BENCH_MAILS"); d != "" {
		dir = d
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	var samples [][]byte
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		samples = append(samples, raw)
	}
	for i := range b.N {
		raw := fmt.Appendf(nil, "X-Bench-Sequence: %d\r\n%s", i, samples[i%len(samples)])
		if err := srv.Deliver("INBOX", raw); err != nil {
			b.Fatal(err)
		}
	}
	if n := len(srv.UIDs(b, "INBOX")); n != b.N { // also builds Dovecot's index before the clock starts
		b.Fatalf("INBOX holds %d mails, want %d", n, b.N)
	}
	b.ResetTimer()
	var before syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	s, stop := startService(b, srv, "", nil)
	moved := s.metrics.moved.WithLabelValues("INBOX")
	deadline := time.Now().Add(max(2*time.Minute, time.Duration(b.N)*20*time.Millisecond))
	for testutil.ToFloat64(moved) < float64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("%v of %d mails moved by the deadline", testutil.ToFloat64(moved), b.N)
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.StopTimer()
	var after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "mails/s")
	// CPU time of this process only (Dovecot is another): the machine's
	// other load moves wall time, much less CPU time.
	cpu := time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/mail")
	stop()
}
