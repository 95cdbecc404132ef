package rules

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketrouter/ticketrouter/ingest/mail"
	"github.com/ticketrouter/ticketrouter/rules/accounts"
	"github.com/ticketrouter/ticketrouter/rules/senderauth"
)

// generateAccounts writes n accounts as JSON Lines: ten partner accounts,
// then customers of every colour, each with a username, a domain and two
// orders, about 330 bytes a line.
func generateAccounts(n int) []byte {
	colours := []string{"green", "blue", "red", "pink", "dark-green"}
	var b bytes.Buffer
	b.Grow(n * 340)
	for i := range n {
		colour, partner := colours[i%len(colours)], ""
		if i < 10 {
			colour = "green"
		} else if colour != "green" && colour != "pink" {
			partner = fmt.Sprintf(`,"partner":"A-%07d"`, i%10)
		}
		fmt.Fprintf(&b, `{"id":"A-%07d","colour":"%s","name":"Customer %d Ltd","username":"user%07d",`+
			`"admin_email":"admin%d@customer%07d.example","domains":["customer%07d.example"],`+
			`"orders":[{"number":"%d","domain":"www.customer%07d.example","product":"ssl"},`+
			`{"number":"%d","product":"code-signing"}]%s}`+"\n",
			i, colour, i, i, i, i, i, 20000000+2*i, i, 20000001+2*i, partner)
	}
	return b.Bytes()
}

var (
	benchDirOnce sync.Once
	benchDir     *accounts.Directory
	benchDirErr  error
)

// millionAccounts is the 1,000,000-account directory, built once per run.
func millionAccounts(b *testing.B) *accounts.Directory {
	benchDirOnce.Do(func() {
		benchDir, benchDirErr = accounts.ParseDirectory("generated", generateAccounts(1_000_000))
	})
	if benchDirErr != nil {
		b.Fatal(benchDirErr)
	}
	return benchDir
}

// typicalMail is a 6 KB support mail as it arrives: a long trail of
// Received and authentication headers, a text part and its HTML twin.
func typicalMail(b *testing.B) []byte {
	raw, err := os.ReadFile("../ingest/mail/testdata/typical.eml")
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkDecide measures Decide alone on a parsed typical mail against
// 1,000,000
func BenchmarkDecide(b *testing.B) {
	dir := millionAccounts(b)
	p := DefaultPolicy()
	req, err := mail.Parse(bytes.NewReader(typicalMail(b)), mail.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		Decide(p, dir, senderauth.Judge(senderauth.Config{}, req, nil), req)
	}
}

// BenchmarkParseDecide measures mail.Parse plus Decide for a typical
// 6 KB mail against 1,000,000  Target: 20,000 mails/s on one
// core (go test -bench ParseDecide -cpu 1).
func BenchmarkParseDecide(b *testing.B) {
	dir := millionAccounts(b)
	p := DefaultPolicy()
	raw := typicalMail(b)
	req, err := mail.Parse(bytes.NewReader(raw), mail.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	if d := Decide(p, dir, senderauth.Judge(senderauth.Config{}, req, nil), req); d.Account == nil || d.Disposition != "self-service" {
		b.Fatalf("the benchmark mail should match: %s %s", d.Disposition, strings.Join(d.Trace, "; "))
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var ps mail.Parser // as a worker does: one parser, reused
	for b.Loop() {
		req, err := ps.Parse(bytes.NewReader(raw))
		if err != nil {
			b.Fatal(err)
		}
		Decide(p, dir, senderauth.Judge(senderauth.Config{}, req, nil), req)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "mails/s")
}

// BenchmarkLoadDirectory measures loading 1,000,000 accounts from JSON
// Lines. Targets: under 5 s and under 1 GiB (the MiB-heap metric is the
// live heap after the load).
func BenchmarkLoadDirectory(b *testing.B) {
	path := filepath.Join(b.TempDir(), "accounts.jsonl")
	if err := os.WriteFile(path, generateAccounts(1_000_000), 0o600); err != nil {
		b.Fatal(err)
	}
	var heap, peak uint64
	b.ReportAllocs()
	for b.Loop() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		dir, err := accounts.LoadDirectory(path)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		peak = max(peak, after.HeapSys)
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap = after.HeapAlloc - before.HeapAlloc
		runtime.KeepAlive(dir)
		b.StartTimer()
	}
	b.ReportMetric(float64(heap)/(1<<20), "MiB-heap")
	b.ReportMetric(float64(peak)/(1<<20), "MiB-heap-sys")
}

// BenchmarkDecideHostileText measures Decide on a text that fills the
// 128 KiB text cap with what the extraction steps look for: thousands of
// distinct domains, sub-domains of an account, order-number look-alikes,
// username and password cues. Each must cost about what a pass over the
// text does (a few milliseconds), never grow with the square of the
// number of things named.
func BenchmarkDecideHostileText(b *testing.B) {
	dir, p := mustDirectory(b), DefaultPolicy()
	for _, tt := range []struct {
		name  string
		piece func(i int) string
	}{
		{"distinct-domains", func(i int) string { return fmt.Sprintf("d%d.example ", i) }},
		{"subdomains", func(i int) string { return fmt.Sprintf("s%d.acmecorp.example ", i) }},
		{"order-numbers", func(i int) string { return fmt.Sprintf("%07d ", i) }},
		{"username-cues", func(i int) string { return "username: x " }},
		{"password-cues", func(i int) string { return "password: x " }},
		{"username-cues-no-space", func(i int) string { return "login." }},
		{"password-cues-no-space", func(i int) string { return "password." }},
	} {
		var text strings.Builder
		for i := 0; text.Len() < 120<<10; i++ {
			text.WriteString(tt.piece(i))
		}
		req, err := mail.Parse(strings.NewReader("From: someone@elsewhere.example\r\nSubject: x\r\n\r\n"+text.String()), mail.Limits{})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tt.name, func(b *testing.B) {
			for b.Loop() {
				Decide(p, dir, senderauth.Judge(senderauth.Config{}, req, nil), req)
			}
		})
	}
}
