package rules

import (
	"bytes"
	"testing"

	"github.com/ticketrouter/ticketrouter/ingest"
)

func BenchmarkFind(b *testing.B) {
	req, err := ingest.Parse(bytes.NewReader(typicalMail(b)), ingest.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	p := DefaultPolicy()
	text := req.Subject + "\n" + req.Text
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	b.Run("fold", func(b *testing.B) {
		for b.Loop() {
			foldMap(text)
		}
	})
	b.Run("find", func(b *testing.B) {
		for b.Loop() {
			p.matcher.find(text)
		}
	})
}
