package mail

import (
	"bytes"
	"os"
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
