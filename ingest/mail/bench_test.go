package mail

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkParse measures Parse on a typical 6 KB support mail: a trail of
// Received headers and a quoted-printable text part with its HTML twin.
func BenchmarkParse(b *testing.B) {
	raw, err := os.ReadFile("testdata/typical.eml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	var ps Parser // as a worker does: one parser, reused
	for b.Loop() {
		if _, err := ps.Parse(bytes.NewReader(raw)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseMails parses the *.eml files of the directory
// TICKETROUTER_BENCH_MAILS names (deploy/bench's generated mails, say),
// one after another with one Parser: the cost of a realistic mix, per
// mail, attachments included. It is skipped without the variable.
func BenchmarkParseMails(b *testing.B) {
	dir := os.Getenv("TICKETROUTER_BENCH_MAILS")
	if dir == "" {
		b.Skip("TICKETROUTER_BENCH_MAILS names no directory of mails")
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil || len(files) == 0 {
		b.Fatalf("no *.eml in %s (%v)", dir, err)
	}
	var mails [][]byte
	var size int64
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		if len(raw) > 1<<20 {
			continue // a big one would be most of the time
		}
		mails = append(mails, raw)
		size += int64(len(raw))
	}
	b.SetBytes(size / int64(len(mails)))
	b.ReportAllocs()
	var ps Parser
	i := 0
	for b.Loop() {
		if _, err := ps.Parse(bytes.NewReader(mails[i%len(mails)])); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
