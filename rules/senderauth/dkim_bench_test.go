package senderauth

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// benchVerify verifies raw in a loop; every signature must end in want.
func benchVerify(b *testing.B, raw string, want string) {
	b.Helper()
	v := DKIMVerifier{Resolver: testResolver(b)}
	sigs, err := v.Verify(context.Background(), strings.NewReader(raw))
	if err != nil || len(sigs) == 0 {
		b.Fatalf("Verify = %v, %v", sigs, err)
	}
	for _, s := range sigs {
		if s.Result != want {
			b.Fatalf("result %s (%s), want %s", s.Result, s.Reason, want)
		}
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(context.Background(), strings.NewReader(raw)); err != nil {
			b.Fatal(err)
		}
	}
}

// benchSizes are the sizes of the hostile parts, to show how the cost
// grows with them.
var benchSizes = []struct {
	name string
	n    int
}{{"64KB", 64_000}, {"128KB", 128_000}, {"256KB", 256_000}, {"1MB", 1_000_000}}

// BenchmarkDKIMVerifyHostileHeader verifies a mail with a relaxed signature
// over a Subject folded every 4 bytes (a 1 MB header folds it 250,000
// times). The cost must grow linearly with the size.
func BenchmarkDKIMVerifyHostileHeader(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			raw := relaxed.sign(b, adminMail(foldedSubject("\r\n x", size.n/4), ""))
			benchVerify(b, raw, DKIMPass)
		})
	}
}

// BenchmarkDKIMVerifyHostileSignatures verifies mails whose signatures ask
// for much work: a huge h= list over many fields, a thousand signatures,
// and the most work the bounds allow: five signatures of 128 fields each,
// five signatures of 16 KB, and a field folded as often as is given to
// go-msgauth as it is.
func BenchmarkDKIMVerifyHostileSignatures(b *testing.B) {
	mail := adminMail("reset", "")
	fields := func(prefix string, n int) ([]string, string) {
		h := []string{"From"}
		var hdr strings.Builder
		for i := range n {
			name := fmt.Sprintf("%s-%d", prefix, i)
			h = append(h, name)
			// As much white space at the ends as is read as it is.
			fmt.Fprintf(&hdr, "%s:%s%s%s\r\n", name, strings.Repeat(" ", 31), strings.Repeat("v", 20), strings.Repeat(" ", 31))
		}
		return h, hdr.String()
	}
	b.Run("h=10000-over-10000-fields", func(b *testing.B) {
		h, hdr := fields("X-A", 9_999)
		benchVerify(b, testSignature{headers: h}.sign(b, adminMail("reset", hdr)), DKIMPermError)
	})
	b.Run("1000-signatures", func(b *testing.B) {
		junk := testSignature{domain: "nokey.example"}.sign(b, mail)
		junk = junk[:strings.Index(junk, "\r\nFrom:")+2]
		many := []string{"From"}
		for range 1_000 {
			many = append(many, "DKIM-Signature")
		}
		benchVerify(b, testSignature{headers: many}.sign(b, strings.Repeat(junk, 1_000)+mail), DKIMPermError)
	})
	b.Run("5-signatures-of-128-fields", func(b *testing.B) {
		raw := mail
		for i := range 5 {
			h, hdr := fields(fmt.Sprintf("X-%d", i), 127)
			raw = testSignature{headers: h}.sign(b, hdr+raw)
		}
		benchVerify(b, raw, DKIMPass)
	})
	b.Run("5-signatures-of-16KB", func(b *testing.B) {
		raw := mail
		for range 5 {
			raw = relaxed.sign(b, raw)
			raw = strings.Replace(raw, "; b=", "; b="+strings.Repeat("QUJD", 3_900), 1)
		}
		benchVerify(b, raw, DKIMFail)
	})
	b.Run("folded-within-bounds", func(b *testing.B) {
		// 2,000 lines of 4 bytes: go-msgauth copies about 8 MB joining them.
		benchVerify(b, simple.sign(b, adminMail(foldedSubject("\r\n x", 2_000), "")), DKIMPass)
	})
}

// BenchmarkDKIMVerifyLargeMail verifies a mail of 25 MiB (the largest the
// watcher reads), its body plain text lines.
func BenchmarkDKIMVerifyLargeMail(b *testing.B) {
	body := strings.Repeat("please reset my password, the line is long enough to be a line.\r\n", 25<<20/66)
	for _, sig := range []struct {
		name string
		s    testSignature
	}{{"relaxed", relaxed}, {"simple", simple}} {
		b.Run(sig.name, func(b *testing.B) {
			benchVerify(b, sig.s.sign(b, withBody(adminMail("reset", ""), body)), DKIMPass)
		})
	}
}

// BenchmarkDKIMVerifyBlankLines verifies a simple signature over a body
// ending in a long run of empty lines, which go-msgauth's simple body
// canonicalization holds back and copies again at every write.
func BenchmarkDKIMVerifyBlankLines(b *testing.B) {
	for _, size := range append(benchSizes, struct {
		name string
		n    int
	}{"25MiB", 25 << 20}) {
		b.Run(size.name, func(b *testing.B) {
			raw := simple.sign(b, withBody(adminMail("reset", ""), "reset\r\n"+strings.Repeat("\r\n", size.n/2)))
			want := DKIMPermError
			if size.n <= 8<<10 {
				want = DKIMPass
			}
			benchVerify(b, raw, want)
		})
	}
}
