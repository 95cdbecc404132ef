package router

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
//	go test -run '^$' -bench ServiceDrain -benchtime 5000x -cpuprofile cpu.out ./cmd/ticketrouter
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
	files, _ := filepath.Glob("../deploy/examples/mail/*.eml")
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
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "mails/s")
	stop()
}
