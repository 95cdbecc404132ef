package senderauth

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/emersion/go-msgauth/dkim"
)

// TestDKIMVerifierContract: Verify fails only when its reader does; a
// message without signatures or without a readable header has none.
func TestDKIMVerifierContract(t *testing.T) {
	v := DKIMVerifier{Resolver: noResolver{}}
	for _, tt := range []struct {
		name string
		raw  string
	}{
		{"no signature", "From: a@b.example\r\nSubject: x\r\n\r\nbody\r\n"},
		{"no header", "\x00\x01 not a message"},
		{"empty", ""},
	} {
		sigs, err := v.Verify(context.Background(), strings.NewReader(tt.raw))
		if err != nil || len(sigs) != 0 {
			t.Errorf("%s: Verify = %v, %v; want no signature, no error", tt.name, sigs, err)
		}
	}
	broken := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("From: a@b.example\r\nDKIM-Signature: v=1; a=rsa-sha256; d=b.example; s=s; h=from; bh=x; b=y\r\n\r\n"), iotest.ErrReader(broken))
	if _, err := v.Verify(context.Background(), r); !errors.Is(err, broken) {
		t.Errorf("Verify with a failing reader = %v, want %v", err, broken)
	}
	sigs, err := v.Verify(context.Background(), strings.NewReader("From: a@b.example\r\nDKIM-Signature: v=1; a=rsa-sha256; d=B.Example; s=s; h=from; bh=x; b=y\r\n\r\nbody\r\n"))
	if err != nil || len(sigs) != 1 || sigs[0].Result != DKIMPermError || sigs[0].Domain != "b.example" || sigs[0].Reason == "" {
		t.Errorf("signature without a key: %+v, %v", sigs, err)
	}
}

type noResolver struct{}

func (noResolver) LookupTXT(context.Context, string) ([]string, error) {
	return nil, errors.New("no such host")
}

// memResolver serves DKIM key records from memory; every other name does
// not exist.
type memResolver map[string]string

func (r memResolver) LookupTXT(_ context.Context, name string) ([]string, error) {
	if v, ok := r[name]; ok {
		return []string{v}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// testRSAKey is made once: an RSA key is slow to generate.
var testRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// testEdKey is the ed25519 key of the tests, made from a fixed seed.
func testEdKey() ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
}

// testResolver publishes the test keys: selector s1 is the ed25519 key and
// selector rsa the RSA key, for acmecorp.example and other.example.
func testResolver(tb testing.TB) memResolver {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(testRSAKey().Public())
	if err != nil {
		tb.Fatal(err)
	}
	ed := "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(testEdKey().Public().(ed25519.PublicKey))
	rs := "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	return memResolver{
		"s1._domainkey.acmecorp.example":  ed,
		"rsa._domainkey.acmecorp.example": rs,
		"s1._domainkey.other.example":     ed,
	}
}

// testSignature is a DKIM signature that a test adds to a mail.
type testSignature struct {
	domain   string   // d=; acmecorp.example when empty
	selector string   // s=; s1 (the ed25519 key) when empty, or rsa
	canon    string   // c=; relaxed/relaxed when empty
	headers  []string // h=; From, To, Subject and Message-ID when nil
	tags     string   // more tags, written before b= (such as "l=10; ")
}

// sign returns raw with s's signature on top. It reads the header once, the
// way RFC 6376 section 5.4.2 picks fields (go-msgauth's own Sign joins
// folded lines in quadratic time, far too slow for the hostile mails), and
// hashes the body itself: raw's body must end its lines with CRLF and hold
// no whitespace that relaxed canonicalization would change.
func (s testSignature) sign(tb testing.TB, raw string) string {
	tb.Helper()
	domain, selector, canon, headers := s.domain, s.selector, s.canon, s.headers
	if domain == "" {
		domain = "acmecorp.example"
	}
	if selector == "" {
		selector = "s1"
	}
	if canon == "" {
		canon = "relaxed/relaxed"
	}
	if headers == nil {
		headers = []string{"From", "To", "Subject", "Message-ID"}
	}
	hdr, body, ok := strings.Cut(raw, "\r\n\r\n")
	if !ok {
		tb.Fatal("sign: no end of header")
	}
	headerCanon, bodyCanon, _ := strings.Cut(canon, "/")
	fields := splitTestFields(hdr + "\r\n")
	byName := make(map[string][]string)
	for _, f := range fields {
		name, _, _ := strings.Cut(f, ":")
		k := strings.ToLower(strings.TrimSpace(name))
		byName[k] = append(byName[k], f)
	}
	h := sha256.New()
	used := make(map[string]int)
	for _, name := range headers {
		k := strings.ToLower(name)
		same := byName[k]
		if n := used[k]; n < len(same) {
			h.Write([]byte(testCanonHeader(headerCanon, same[len(same)-1-n])))
		}
		used[k]++
	}
	alg, signer := "ed25519-sha256", crypto.Signer(testEdKey())
	if selector == "rsa" {
		alg, signer = "rsa-sha256", testRSAKey()
	}
	bh := sha256.Sum256([]byte(testCanonBody(bodyCanon, body)))
	field := fmt.Sprintf("DKIM-Signature: v=1; a=%s; c=%s; d=%s; s=%s;\r\n\th=%s;\r\n\tbh=%s; %sb=",
		alg, canon, domain, selector, strings.Join(headers, ":"), base64.StdEncoding.EncodeToString(bh[:]), s.tags)
	h.Write([]byte(strings.TrimRight(testCanonHeader(headerCanon, field), "\r\n")))
	digest := h.Sum(nil)
	var sig []byte
	var err error
	if selector == "rsa" {
		sig, err = signer.Sign(rand.Reader, digest, crypto.SHA256)
	} else {
		sig, err = signer.Sign(rand.Reader, digest, crypto.Hash(0))
	}
	if err != nil {
		tb.Fatal(err)
	}
	return field + base64.StdEncoding.EncodeToString(sig) + "\r\n" + raw
}

// splitTestFields splits a header (CRLF line ends) into its fields, each
// with its continuation lines and its CRLF.
func splitTestFields(hdr string) []string {
	var fields []string
	start := 0
	for i := 0; i < len(hdr); {
		end := strings.Index(hdr[i:], "\r\n") + i + 2
		if end < len(hdr) && hdr[end] != ' ' && hdr[end] != '\t' || end == len(hdr) {
			fields = append(fields, hdr[start:end])
			start = end
		}
		i = end
	}
	return fields
}

// testCanonHeader canonicalizes a header field as RFC 6376 section 3.4
// says (and go-msgauth does).
func testCanonHeader(canon, field string) string {
	if canon == "simple" {
		return field
	}
	k, v, _ := strings.Cut(field, ":")
	v = strings.Join(strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' }), " ")
	return strings.ToLower(strings.TrimSpace(k)) + ":" + v + "\r\n"
}

// testCanonBody canonicalizes a body whose lines end with CRLF and whose
// whitespace is single spaces between words: both canonicalizations only
// drop its empty lines at the end.
func testCanonBody(canon, body string) string {
	trimmed := body
	for strings.HasSuffix(trimmed, "\r\n") {
		trimmed = trimmed[:len(trimmed)-2]
	}
	if trimmed == "" && canon == "relaxed" {
		return ""
	}
	return trimmed + "\r\n"
}

// msgauthSign signs raw with go-msgauth's own signer, which picks the
// fields to sign exactly as its verifier does. No headers means every
// field of the header.
func msgauthSign(tb testing.TB, raw string, canon dkim.Canonicalization, headers ...string) string {
	tb.Helper()
	var b bytes.Buffer
	err := dkim.Sign(&b, strings.NewReader(raw), &dkim.SignOptions{
		Domain: "acmecorp.example", Selector: "s1", Signer: testEdKey(),
		HeaderCanonicalization: canon, BodyCanonicalization: canon, HeaderKeys: headers,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b.String()
}

// adminMail is the admin's password reset request, with more header fields
// (each with its CRLF) before its own.
func adminMail(subject, more string) string {
	return more + "From: Acme Admin <admin@acmecorp.example>\r\n" +
		"To: support@ca.example,\r\n\tbilling@ca.example\r\n" +
		"Subject: " + subject + "\r\n" +
		"Message-ID: <m1@acmecorp.example>\r\n" +
		"\r\n" +
		"please reset my password\r\n"
}

// withBody replaces raw's body.
func withBody(raw, body string) string {
	hdr, _, _ := strings.Cut(raw, "\r\n\r\n")
	return hdr + "\r\n\r\n" + body
}

// The signatures most tests make: relaxed or simple, by acmecorp.example.
var (
	relaxed = testSignature{}
	simple  = testSignature{canon: "simple/simple"}
)

// verifyDirect is the naive verification, the oracle: the whole
// message handed to go-msgauth.
func verifyDirect(raw string, res Resolver, max int) []DKIMSignature {
	lookup := func(name string) ([]string, error) { return res.LookupTXT(context.Background(), name) }
	vs, err := dkim.VerifyWithOptions(strings.NewReader(raw), &dkim.VerifyOptions{LookupTXT: lookup, MaxVerifications: max})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		return nil
	}
	out := []DKIMSignature{}
	for _, ver := range vs {
		out = append(out, result(ver)) // the same reading of each verdict: what differs is the input
	}
	return out
}

// TestDKIMVerifyAgreesWithGoMsgauth: on every mail that breaks no bound,
// odd as it may be, Verify says exactly what go-msgauth says of the whole
// message: the same fields picked, the same results, the same reasons.
func TestDKIMVerifyAgreesWithGoMsgauth(t *testing.T) {
	typical, err := os.ReadFile("../../ingest/mail/testdata/typical.eml")
	if err != nil {
		t.Fatal(err)
	}
	crlf := strings.ReplaceAll(strings.ReplaceAll(string(typical), "\r\n", "\n"), "\n", "\r\n")
	mail := adminMail("Password reset", "")
	both := func(t *testing.T, raw string) string {
		return simple.sign(t, relaxed.sign(t, raw))
	}
	oversign := testSignature{headers: []string{"From", "from", "FROM", "To", "Subject", "Reply-To", "DKIM-Signature", "Received", "Received"}}
	cases := []struct {
		name string
		raw  func(t *testing.T) string
	}{
		{"typical mail, its own signatures", func(t *testing.T) string { return string(typical) }},
		{"typical mail signed", func(t *testing.T) string {
			s := testSignature{headers: []string{"From", "To", "Subject", "Date", "Message-ID", "Received", "ARC-Seal", "DKIM-Signature", "Authentication-Results"}}
			raw := withBody(crlf, "please reset my password\r\n")
			return s.sign(t, testSignature{canon: "simple/relaxed", headers: s.headers}.sign(t, raw))
		}},
		{"typical mail signed by go-msgauth, every field", func(t *testing.T) string {
			return msgauthSign(t, msgauthSign(t, crlf, dkim.CanonicalizationSimple), dkim.CanonicalizationRelaxed)
		}},
		{"typical mail signed, bare LF line ends", func(t *testing.T) string {
			return strings.ReplaceAll(msgauthSign(t, both(t, crlf), dkim.CanonicalizationSimple), "\r\n", "\n")
		}},
		{"oversigned", func(t *testing.T) string { return oversign.sign(t, both(t, mail)) }},
		{"oversigned, Reply-To added", func(t *testing.T) string { return "Reply-To: x@evil.test\r\n" + oversign.sign(t, both(t, mail)) }},
		{"From added on top", func(t *testing.T) string { return "From: admin@acmecorp.example\r\n" + both(t, mail) }},
		{"From added at the bottom", func(t *testing.T) string {
			return strings.Replace(both(t, mail), "\r\n\r\n", "\r\nFrom: admin@acmecorp.example\r\n\r\n", 1)
		}},
		{"many Received, some signed", func(t *testing.T) string {
			raw := adminMail("reset", strings.Repeat("Received: from x\r\n\tby y\r\n", 50))
			return msgauthSign(t, raw, dkim.CanonicalizationSimple, "From", "Received", "Received", "Received", "Subject")
		}},
		{"names in odd case and space", func(t *testing.T) string {
			raw := strings.Replace(mail, "Subject:", "SUBJECT \t:", 1)
			raw = strings.Replace(raw, "To:", "tO\r\n :", 1)
			return msgauthSign(t, raw, dkim.CanonicalizationSimple, "from", "TO", "Subject", "subject", "To")
		}},
		{"Kelvin sign and long s", func(t *testing.T) string {
			raw := adminMail("reset", "X-\u212a: kelvin\r\nX-k: k\r\nX-S: s\r\nX-\u017f: long s\r\nX-\u0130: dotted\r\nX-i\u0307: i dot\r\n")
			raw = msgauthSign(t, raw, dkim.CanonicalizationSimple, "From", "X-k", "X-K", "x-\u212a", "X-s", "X-\u017f", "x-S", "X-\u0130", "x-\u0130")
			return msgauthSign(t, raw, dkim.CanonicalizationRelaxed, "From", "x-s", "x-s", "x-s", "X-I\u0307", "DKIM-Signature")
		}},
		{"signature named with a Kelvin sign", func(t *testing.T) string {
			return strings.Replace(both(t, mail), "DKIM-Signature:", "D\u212aIM-Signature:", 1)
		}},
		{"signature named with trailing space and a fold", func(t *testing.T) string {
			return strings.Replace(both(t, mail), "DKIM-Signature:", "DKIM-Signature \r\n :", 1)
		}},
		{"invalid UTF-8 in names", func(t *testing.T) string {
			raw := adminMail("reset", "X-\xff: a\r\nX-\xfe: b\r\nX-\ufffd: c\r\n")
			return msgauthSign(t, raw, dkim.CanonicalizationRelaxed, "From", "X-\xff", "x-\xfe", "X-\ufffd", "X-\xff")
		}},
		{"empty field names", func(t *testing.T) string {
			raw := adminMail("reset", ": no name\r\n\r: cr name\r\nnocolon\r\nX-CR: a\r\r\n")
			return msgauthSign(t, raw, dkim.CanonicalizationSimple, "From", "", "nocolon", "X-CR", "", "")
		}},
		{"first field folded before any", func(t *testing.T) string {
			// The signature goes to the bottom: on top, it would be what
			// the first line continues.
			signed := testSignature{canon: "simple/simple", headers: []string{"From", "X-First"}}.sign(t, " X-First: folded\r\n"+mail)
			sig, rest, _ := strings.Cut(signed, "\r\n X-First")
			return strings.Replace(" X-First"+rest, "\r\n\r\n", "\r\n"+sig+"\r\n\r\n", 1)
		}},
		{"lone CRs in the header", func(t *testing.T) string {
			raw := strings.Replace(mail, "Subject: ", "Subject: \rre\rset\r\r", 1)
			return msgauthSign(t, raw, dkim.CanonicalizationSimple, "From", "Subject")
		}},
		{"a signature over the one below it, changed since", func(t *testing.T) string {
			inner := testSignature{domain: "other.example"}.sign(t, mail)
			outer := testSignature{headers: []string{"From", "Subject", "DKIM-Signature"}}.sign(t, inner)
			return strings.Replace(outer, "d=other.example", "d=other.example ", 1)
		}},
		{"l= and x= and a bad version", func(t *testing.T) string {
			raw := testSignature{tags: "l=10; "}.sign(t, mail)
			raw = testSignature{tags: "x=1; "}.sign(t, raw)
			return strings.Replace(testSignature{}.sign(t, raw), "v=1", "v=2", 1)
		}},
		{"duplicate tags, missing tags, no From", func(t *testing.T) string {
			raw := strings.Replace(relaxed.sign(t, mail), "v=1;", "v=1; d=x.example;", 1)
			raw = "DKIM-Signature: v=1; d=acmecorp.example\r\n" + raw
			return testSignature{headers: []string{"To"}}.sign(t, raw)
		}},
		{"seven signatures", func(t *testing.T) string {
			raw := mail
			for range 7 {
				raw = relaxed.sign(t, raw)
			}
			return raw
		}},
		{"seven signatures, the top one over all others", func(t *testing.T) string {
			raw := mail
			for range 6 {
				raw = testSignature{canon: "simple/simple"}.sign(t, raw)
			}
			return testSignature{headers: []string{"From", "DKIM-Signature", "DKIM-Signature", "DKIM-Signature", "DKIM-Signature", "DKIM-Signature", "DKIM-Signature", "DKIM-Signature"}}.sign(t, raw)
		}},
		{"body changed", func(t *testing.T) string { return strings.Replace(both(t, mail), "please", "pleas", 1) }},
		{"empty body, CRLFs at the end", func(t *testing.T) string {
			return both(t, withBody(mail, "")) + "\r\n\r\n\r\n"
		}},
		{"no end of header", func(t *testing.T) string {
			raw := both(t, mail)
			return raw[:strings.Index(raw, "\r\n\r\n")]
		}},
		{"no end of header, no newline at the end", func(t *testing.T) string {
			raw := both(t, mail)
			return raw[:strings.Index(raw, "\r\n\r\n")] + "\r\nX: y"
		}},
	}
	res := testResolver(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := c.raw(t)
			want := verifyDirect(raw, res, 5)
			got, err := (&DKIMVerifier{Resolver: res}).Verify(context.Background(), strings.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 && len(want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Verify:\n%+v\ngo-msgauth:\n%+v", got, want)
			}
		})
	}
}

// dkimCase is a mail and what each of its signatures must verify to.
type dkimCase struct {
	name   string
	raw    func(t *testing.T) string
	want   []string // results, one per signature checked
	reason string   // in the reason of the first signature that does not pass
}

// runDKIMCases verifies each case's mail with at most 5 signatures.
func runDKIMCases(t *testing.T, cases []dkimCase) {
	res := testResolver(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := c.raw(t)
			v := DKIMVerifier{Resolver: res}
			sigs, err := v.Verify(context.Background(), strings.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			got := make([]string, len(sigs))
			reason := ""
			for i, s := range sigs {
				got[i] = s.Result
				if s.Result != DKIMPass && reason == "" {
					reason = s.Reason
				}
			}
			if !reflect.DeepEqual(got, c.want) && len(got)+len(c.want) > 0 {
				t.Fatalf("results %v, want %v (%+v)", got, c.want, sigs)
			}
			if !strings.Contains(reason, c.reason) {
				t.Errorf("reason %q lacks %q", reason, c.reason)
			}
		})
	}
}

// foldedSubject is a subject folded n times: between words (fold "\r\n x"),
// or on lines holding nothing but the fold's whitespace (fold "\r\n\t").
func foldedSubject(fold string, n int) string {
	return "Password" + strings.Repeat(fold, n) + " reset"
}

// TestDKIMVerifyFoldedHeader: go-msgauth joins folded lines in quadratic
// time, so header fields folded absurdly often are unfolded before it sees
// them. A relaxed signature still verifies (unfolding changes nothing it
// hashes); a simple one over an unfolded field is not verified, never
// passed; fields that no signature covers are not looked at.
func TestDKIMVerifyFoldedHeader(t *testing.T) {
	usual := adminMail("Password\r\n reset,\r\n\tplease", "")
	runDKIMCases(t, []dkimCase{
		{"relaxed over the usual folding", func(t *testing.T) string { return relaxed.sign(t, usual) }, []string{DKIMPass}, ""},
		{"simple over the usual folding", func(t *testing.T) string { return simple.sign(t, usual) }, []string{DKIMPass}, ""},
		{"go-msgauth's relaxed over the usual folding", func(t *testing.T) string { return msgauthSign(t, usual, dkim.CanonicalizationRelaxed) }, []string{DKIMPass}, ""},
		{"go-msgauth's simple over the usual folding", func(t *testing.T) string { return msgauthSign(t, usual, dkim.CanonicalizationSimple) }, []string{DKIMPass}, ""},
		{"relaxed, a field folded over 900 lines", func(t *testing.T) string {
			return relaxed.sign(t, adminMail(foldedSubject("\r\n x", 900), ""))
		}, []string{DKIMPass}, ""},
		{"simple, a field folded over 900 lines", func(t *testing.T) string {
			return simple.sign(t, adminMail(foldedSubject("\r\n x", 900), ""))
		}, []string{DKIMPass}, ""},

		{"relaxed, Subject folded 100,000 times between words", func(t *testing.T) string {
			return relaxed.sign(t, adminMail(foldedSubject("\r\n x", 100_000), ""))
		}, []string{DKIMPass}, ""},
		{"relaxed, Subject folded 100,000 times on blank lines", func(t *testing.T) string {
			return relaxed.sign(t, adminMail(foldedSubject("\r\n\t", 100_000), ""))
		}, []string{DKIMPass}, ""},
		{"relaxed with RSA, From folded 100,000 times", func(t *testing.T) string {
			raw := strings.Replace(adminMail("reset", ""), "From: Acme Admin", "From: Acme"+strings.Repeat("\r\n ", 100_000)+"Admin", 1)
			return testSignature{selector: "rsa"}.sign(t, raw)
		}, []string{DKIMPass}, ""},
		{"relaxed, signed after the folding was removed", func(t *testing.T) string {
			// A relay folded the Subject after it was signed.
			signed := relaxed.sign(t, adminMail("Password reset", ""))
			return strings.Replace(signed, "Subject: Password reset", "Subject: "+foldedSubject("\r\n ", 100_000), 1)
		}, []string{DKIMPass}, ""},
		{"relaxed, its own DKIM-Signature folded 100,000 times", func(t *testing.T) string {
			signed := relaxed.sign(t, adminMail("reset", ""))
			return strings.Replace(signed, "\r\n\tbh=", strings.Repeat("\r\n ", 100_000)+"\r\n\tbh=", 1)
		}, []string{DKIMPass}, ""},
		{"relaxed, 200 KB of spaces at the end of Subject", func(t *testing.T) string {
			return relaxed.sign(t, adminMail("reset"+strings.Repeat(" ", 200_000), ""))
		}, []string{DKIMPass}, ""},
		{"relaxed, 200 KB of spaces and tabs at the start of Subject", func(t *testing.T) string {
			return relaxed.sign(t, adminMail(strings.Repeat(" \t", 100_000)+"reset", ""))
		}, []string{DKIMPass}, ""},

		{"simple, Subject folded 100,000 times between words", func(t *testing.T) string {
			return simple.sign(t, adminMail(foldedSubject("\r\n x", 100_000), ""))
		}, []string{DKIMPermError}, "Subject"},
		{"simple, Subject folded 100,000 times on blank lines", func(t *testing.T) string {
			return simple.sign(t, adminMail(foldedSubject("\r\n ", 100_000), ""))
		}, []string{DKIMPermError}, "unfolded"},
		{"simple with RSA, From folded 100,000 times", func(t *testing.T) string {
			raw := strings.Replace(adminMail("reset", ""), "From: Acme Admin", "From: Acme"+strings.Repeat("\r\n ", 100_000)+"Admin", 1)
			return testSignature{selector: "rsa", canon: "simple/relaxed"}.sign(t, raw)
		}, []string{DKIMPermError}, "From"},
		{"simple, its own DKIM-Signature folded 100,000 times", func(t *testing.T) string {
			signed := simple.sign(t, adminMail("reset", ""))
			return strings.Replace(signed, "\r\n\tbh=", strings.Repeat("\r\n ", 100_000)+"\r\n\tbh=", 1)
		}, []string{DKIMPermError}, "DKIM-Signature"},
		{"simple, 200 KB of spaces at the end of Subject", func(t *testing.T) string {
			return simple.sign(t, adminMail("reset"+strings.Repeat(" ", 200_000), ""))
		}, []string{DKIMPermError}, "Subject"},
		{"simple, 100 KB of no-break spaces at the end of Subject", func(t *testing.T) string {
			return simple.sign(t, adminMail("reset"+strings.Repeat("\u00a0", 50_000), ""))
		}, []string{DKIMPermError}, "Subject"},
		{"relaxed, 100 KB of no-break spaces at the end of Subject", func(t *testing.T) string {
			// Relaxed canonicalization keeps them: the field cannot be
			// reduced, and is not checked.
			return relaxed.sign(t, adminMail("reset"+strings.Repeat("\u00a0", 50_000), ""))
		}, []string{DKIMPermError}, "Subject"},

		{"simple, an unsigned field folded 100,000 times", func(t *testing.T) string {
			return simple.sign(t, adminMail("reset", "X-Junk: a"+strings.Repeat("\r\n a", 100_000)+"\r\n"))
		}, []string{DKIMPass}, ""},
		{"simple, an unsigned field folded 100,000 times above the signature", func(t *testing.T) string {
			return "X-Junk: a" + strings.Repeat("\r\n a", 100_000) + "\r\n" + simple.sign(t, adminMail("reset", ""))
		}, []string{DKIMPass}, ""},
		{"simple, 30,000 unsigned Received fields", func(t *testing.T) string {
			return simple.sign(t, adminMail("reset", strings.Repeat("Received: from x by y\r\n", 30_000)))
		}, []string{DKIMPass}, ""},
		{"relaxed, Received signed among 30,000 Received fields", func(t *testing.T) string {
			s := testSignature{headers: []string{"From", "Received", "Received", "Subject"}}
			return s.sign(t, adminMail("reset", strings.Repeat("Received: from x by y\r\n", 30_000)))
		}, []string{DKIMPass}, ""},
		{"simple, a Subject folded 100,000 times added above the signed one", func(t *testing.T) string {
			// h= names Subject once: the bottom-most one is signed.
			return "Subject: " + foldedSubject("\r\n x", 100_000) + "\r\n" + simple.sign(t, adminMail("reset", ""))
		}, []string{DKIMPass}, ""},
		{"simple, a Subject folded 100,000 times added below the signed one", func(t *testing.T) string {
			raw := simple.sign(t, adminMail("reset", ""))
			return strings.Replace(raw, "\r\n\r\n", "\r\nSubject: "+foldedSubject("\r\n x", 100_000)+"\r\n\r\n", 1)
		}, []string{DKIMPermError}, "Subject"},
		{"relaxed, a Subject folded 100,000 times added below the signed one", func(t *testing.T) string {
			raw := relaxed.sign(t, adminMail("reset", ""))
			return strings.Replace(raw, "\r\n\r\n", "\r\nSubject: "+foldedSubject("\r\n x", 100_000)+"\r\n\r\n", 1)
		}, []string{DKIMFail}, "signature did not verify"},
	})
}

// TestDKIMVerifySignatureBounds: a signature asking for unbounded work (a
// huge h= list, one of a thousand signatures, a huge tag, a huge header) is
// reported as permerror with the bound it broke, never passed unchecked;
// the other signatures of the mail are checked as usual.
func TestDKIMVerifySignatureBounds(t *testing.T) {
	mail := adminMail("reset", "")
	many := func(name string, n int) []string {
		h := []string{"From"}
		for range n {
			h = append(h, name)
		}
		return h
	}
	runDKIMCases(t, []dkimCase{
		{"oversigned, the usual way", func(t *testing.T) string {
			s := testSignature{headers: []string{"From", "From", "To", "To", "Subject", "Subject", "Reply-To", "Reply-To", "Message-ID", "Date"}}
			return s.sign(t, mail)
		}, []string{DKIMPass}, ""},
		{"h= of 120 entries", func(t *testing.T) string {
			return testSignature{headers: many("x-a", 119)}.sign(t, mail)
		}, []string{DKIMPass}, ""},
		{"h= of 10,000 entries", func(t *testing.T) string {
			return testSignature{headers: many("a", 9_999)}.sign(t, mail)
		}, []string{DKIMPermError}, "h= lists 10000 header fields"},
		{"h= of 10,000 entries, each a field of the header", func(t *testing.T) string {
			return testSignature{headers: many("x-a", 9_999)}.sign(t, adminMail("reset", strings.Repeat("X-A: 1\r\n", 10_000)))
		}, []string{DKIMPermError}, "h= lists"},
		{"h= of 10,000 entries above a good signature", func(t *testing.T) string {
			return testSignature{headers: many("x-a", 9_999)}.sign(t, relaxed.sign(t, mail))
		}, []string{DKIMPermError, DKIMPass}, "h= lists"},
		{"h= naming a field of 1,000 bytes", func(t *testing.T) string {
			long := "X-" + strings.Repeat("a", 998)
			return testSignature{headers: []string{"From", long}}.sign(t, adminMail("reset", long+": 1\r\n"))
		}, []string{DKIMPermError}, "h= names a field of 1000 bytes"},

		{"a signature over the one below it", func(t *testing.T) string {
			inner := testSignature{domain: "other.example"}.sign(t, mail)
			return testSignature{headers: []string{"From", "Subject", "DKIM-Signature"}}.sign(t, inner)
		}, []string{DKIMPass, DKIMPass}, ""},
		{"a good signature above 1,000 others", func(t *testing.T) string {
			junk := testSignature{domain: "nokey.example"}.sign(t, mail)
			junk = junk[:strings.Index(junk, "\r\nFrom:")+2]
			return relaxed.sign(t, strings.Repeat(junk, 1_000)+mail)
		}, []string{DKIMPass, DKIMPermError, DKIMPermError, DKIMPermError, DKIMPermError}, "no key"},
		{"1,000 signatures, the first signing all others", func(t *testing.T) string {
			junk := testSignature{domain: "nokey.example"}.sign(t, mail)
			junk = junk[:strings.Index(junk, "\r\nFrom:")+2]
			return testSignature{headers: many("DKIM-Signature", 1_000)}.sign(t, strings.Repeat(junk, 1_000)+mail)
		}, []string{DKIMPermError, DKIMPermError, DKIMPermError, DKIMPermError, DKIMPermError}, "h= lists 1001 header fields"},
		{"a signature over one whose h= is over the bound", func(t *testing.T) string {
			inner := testSignature{headers: many("a", 9_999)}.sign(t, mail)
			return testSignature{headers: []string{"From", "DKIM-Signature"}}.sign(t, inner)
		}, []string{DKIMPermError, DKIMPermError}, "DKIM-Signature"},
		{"a signature over the good ones below one whose h= is over the bound", func(t *testing.T) string {
			// Picks count from the bottom: the third signature is not
			// among the fields the top one signs.
			inner := testSignature{domain: "other.example"}.sign(t, relaxed.sign(t, mail))
			inner = testSignature{headers: many("a", 9_999)}.sign(t, inner)
			return testSignature{headers: []string{"From", "DKIM-Signature", "DKIM-Signature"}}.sign(t, inner)
		}, []string{DKIMPass, DKIMPermError, DKIMPass, DKIMPass}, "h= lists"},

		{"b= of 1 MB", func(t *testing.T) string {
			signed := relaxed.sign(t, mail)
			return strings.Replace(signed, "; b=", "; b="+strings.Repeat("QUJD", 250_000), 1)
		}, []string{DKIMPermError}, "bytes"},
		{"bh= of 1 MB", func(t *testing.T) string {
			signed := relaxed.sign(t, mail)
			return strings.Replace(signed, "bh=", "bh="+strings.Repeat("QUJD", 250_000), 1)
		}, []string{DKIMPermError}, "bytes"},
		{"three signatures over a Subject of 200 KB", func(t *testing.T) string {
			raw := adminMail(strings.Repeat("reset ", 35_000), "")
			return relaxed.sign(t, relaxed.sign(t, relaxed.sign(t, raw)))
		}, []string{DKIMPass, DKIMPass, DKIMPermError}, "signatures hash"},
		{"a Subject of 2 MB", func(t *testing.T) string {
			return relaxed.sign(t, adminMail(strings.Repeat("reset ", 350_000), ""))
		}, []string{DKIMPermError}, "header"},
		{"a header of 2 MB", func(t *testing.T) string {
			return relaxed.sign(t, adminMail("reset", strings.Repeat("X-Junk: "+strings.Repeat("j", 90)+"\r\n", 20_000)))
		}, []string{DKIMPermError}, "header"},
		{"a header of 2 MB, the signature past 1 MiB", func(t *testing.T) string {
			return strings.Repeat("X-Junk: "+strings.Repeat("j", 90)+"\r\n", 20_000) + relaxed.sign(t, mail)
		}, nil, ""},
	})
}

// TestDKIMVerifyFailingBody: a reader failing in a large body is Verify's
// error, whatever go-msgauth made of the part it read.
func TestDKIMVerifyFailingBody(t *testing.T) {
	broken := errors.New("connection reset")
	raw := relaxed.sign(t, adminMail(foldedSubject("\r\n x", 10_000), ""))
	for _, body := range []string{strings.Repeat("text\r\n", 100_000), strings.Repeat("\r\n", 100_000)} {
		r := io.MultiReader(strings.NewReader(raw+body), iotest.ErrReader(broken))
		if _, err := (&DKIMVerifier{Resolver: testResolver(t)}).Verify(context.Background(), r); !errors.Is(err, broken) {
			t.Errorf("Verify with a reader failing in the body = %v, want %v", err, broken)
		}
	}
}

// TestDKIMVerifyBody: a large body verifies; a body that would make
// go-msgauth's body canonicalization quadratic (a long run of line breaks,
// which it holds back and copies again at every write) is not verified.
func TestDKIMVerifyBody(t *testing.T) {
	mail := adminMail("reset", "")
	large := strings.Repeat("please reset my password, the line is long enough to be a line.\r\n", 25<<20/66)
	runDKIMCases(t, []dkimCase{
		{"relaxed, body of 25 MiB", func(t *testing.T) string { return relaxed.sign(t, withBody(mail, large)) }, []string{DKIMPass}, ""},
		{"simple, body of 25 MiB", func(t *testing.T) string { return simple.sign(t, withBody(mail, large)) }, []string{DKIMPass}, ""},
		{"simple, 1,000 empty lines at the end", func(t *testing.T) string {
			return simple.sign(t, withBody(mail, "reset\r\n"+strings.Repeat("\r\n", 1_000)))
		}, []string{DKIMPass}, ""},
		{"simple, 1 MiB of empty lines in the middle", func(t *testing.T) string {
			return simple.sign(t, withBody(mail, "reset\r\n"+strings.Repeat("\r\n", 1<<19)+"please\r\n"))
		}, []string{DKIMPermError}, "line breaks"},
		{"relaxed, 1 MiB of empty lines in the middle", func(t *testing.T) string {
			return relaxed.sign(t, withBody(mail, "reset\r\n"+strings.Repeat("\r\n", 1<<19)+"please\r\n"))
		}, []string{DKIMPermError}, "line breaks"},
		{"simple, 25 MiB of empty lines at the end", func(t *testing.T) string {
			return simple.sign(t, withBody(mail, "reset\r\n"+strings.Repeat("\r\n", 25<<19)))
		}, []string{DKIMPermError}, "line breaks"},
		{"two signatures, 25 MiB of empty lines at the end", func(t *testing.T) string {
			return simple.sign(t, relaxed.sign(t, withBody(mail, "reset\r\n"+strings.Repeat("\r\n", 25<<19))))
		}, []string{DKIMPermError, DKIMPermError}, "line breaks"},
	})
	// A body of bare CRs or LFs is such a run too; its hash is not
	// testCanonBody's, and it does not matter: it is not checked.
	for _, run := range []string{"\r", "\n", "\n\r"} {
		raw := simple.sign(t, withBody(mail, "reset\r\n")) + strings.Repeat(run, 2<<20/len(run)) + "x\r\n"
		sigs, err := (&DKIMVerifier{Resolver: testResolver(t)}).Verify(context.Background(), strings.NewReader(raw))
		if err != nil || len(sigs) != 1 || sigs[0].Result != DKIMPermError || !strings.Contains(sigs[0].Reason, "line breaks") {
			t.Errorf("body of %q runs: %+v, %v", run, sigs, err)
		}
	}
}

// msgauthHeader reads a header as go-msgauth's readHeader does (a copy of
// it), and what is left of the message after it.
func msgauthHeader(raw []byte) (fields []string, rest []byte, ok bool) {
	br := bufio.NewReader(bytes.NewReader(raw))
	tr := textproto.NewReader(br)
	for {
		l, err := tr.ReadLine()
		if err != nil {
			return fields, nil, false
		}
		if len(l) == 0 {
			break
		} else if len(fields) > 0 && (l[0] == ' ' || l[0] == '\t') {
			fields[len(fields)-1] += l + "\r\n"
		} else {
			fields = append(fields, l+"\r\n")
		}
	}
	rest, _ = io.ReadAll(br)
	return fields, rest, true
}

// msgauthPick picks fields as go-msgauth's headerPicker does (a copy of
// it): the index of the field hashed for each name, -1 for none.
func msgauthPick(fields []string, names []string) []int {
	picked := make(map[string]int)
	var out []int
	for _, key := range names {
		key = strings.ToLower(key)
		at, found := picked[key], -1
		for i := len(fields) - 1; i >= 0; i-- {
			k, _, _ := strings.Cut(fields[i], ":")
			if !strings.EqualFold(strings.TrimSpace(k), key) {
				continue
			}
			if at == 0 {
				picked[key]++
				found = i
				break
			}
			at--
		}
		if found >= 0 {
			out = append(out, found)
		}
	}
	return out
}

// msgauthRelaxed canonicalizes a header field as go-msgauth's relaxed
// canonicalization does (a copy of it).
func msgauthRelaxed(s string) string {
	k, v, ok := strings.Cut(s, ":")
	if !ok {
		return strings.TrimSpace(strings.ToLower(s)) + ":" + "\r\n"
	}
	k = strings.TrimSpace(strings.ToLower(k))
	v = strings.Join(strings.FieldsFunc(v, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\n' || r == '\r'
	}), " ")
	return k + ":" + v + "\r\n"
}

// FuzzDKIMHeader: the header is read into the same fields as go-msgauth
// reads it, the same fields are picked for any h= list, and a field
// unfolded canonicalizes (relaxed) to the same bytes under the same name.
func FuzzDKIMHeader(f *testing.F) {
	for _, seed := range []struct{ raw, names string }{
		{"From: a\r\nTo: b\r\n\r\nbody", "from:to"},
		{"From: a\nTo: b,\n c\n\nbody\n", "From:To:to:Cc"},
		{" X-First: a\r\n\tcontinued\r\nFrom: b\r\n\r\n", "x-first:from"},
		{"Subject: \r\r\nX: a\rb\r\n\r\nbody", "subject:x:x"},
		{"X-\u212a: 1\r\nX-k: 2\r\nx-K: 3\r\nX-S: 4\r\nX-\u017f: 5\r\n\r\n", "x-k:X-\u212a:x-s:X-\u017f:X-S:x-k:x-k"},
		{"X-\xff: 1\r\nX-\ufffd: 2\r\nX-\u0130: 3\r\nX-i\u0307: 4\r\n\r\n", "x-\xff:X-\ufffd:X-\u0130:x-i\u0307"},
		{": 1\r\n\r: 2\r\nno colon\r\nnocolon  \r\n \r\n\r\n", "::nocolon:no colon"},
		{"From \t\r\n : a\r\nSUBJECT:\r\n \r\n \r\n\r\n", "from:subject"},
		{"From: a\r\nno end of header", "from"},
		{"", ""},
	} {
		f.Add([]byte(seed.raw), seed.names)
	}
	f.Fuzz(func(t *testing.T, raw []byte, names string) {
		want, wantRest, wantOK := msgauthHeader(raw)
		br := bufio.NewReaderSize(bytes.NewReader(raw), 16)
		h, ok := readDKIMHeader(br)
		if ok != wantOK || h.tooLarge {
			t.Fatalf("readDKIMHeader ok %v, go-msgauth %v", ok, wantOK)
		}
		if !ok {
			return
		}
		got := make([]string, len(h.starts))
		for i := range h.starts {
			got[i] = string(h.field(i))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("fields %q, go-msgauth %q", got, want)
		}
		if rest, _ := io.ReadAll(br); !bytes.Equal(rest, wantRest) {
			t.Fatalf("body %q, go-msgauth %q", rest, wantRest)
		}
		list := strings.Split(names, ":")
		for i, name := range list {
			list[i] = stripWhitespace(name)
		}
		if len(list) > maxSignedFields {
			list = list[:maxSignedFields]
		}
		p := dkimPlan{sigs: []dkimSig{{names: list}}}
		p.pick(&h)
		if wantPicks := msgauthPick(want, list); !slices.Equal(p.sigs[0].picks, wantPicks) {
			t.Fatalf("picks %v, go-msgauth %v", p.sigs[0].picks, wantPicks)
		}
		for _, field := range got {
			u := unfoldField([]byte(field))
			if u == nil {
				if name, _, colon := strings.Cut(field, ":"); !strings.Contains(strings.TrimRight(name, " \t\r\n"), "\n") && (colon || strings.TrimRight(name, " \t\r\n") != "") {
					t.Fatalf("%q not unfolded", field)
				}
				continue
			}
			if bytes.Count(u, []byte("\n")) != 1 || !bytes.HasSuffix(u, []byte("\r\n")) {
				t.Fatalf("%q unfolds to %q, not one line", field, u)
			}
			if msgauthRelaxed(string(u)) != msgauthRelaxed(field) {
				t.Fatalf("%q unfolds to %q: relaxed %q, was %q", field, u, msgauthRelaxed(string(u)), msgauthRelaxed(field))
			}
			if !bytes.Equal(appendFoldKey(nil, fieldName(u)), appendFoldKey(nil, fieldName([]byte(field)))) {
				t.Fatalf("%q unfolds to %q, another name", field, u)
			}
		}
	})
}

// FuzzDKIMFoldKey: two names have the same fold key exactly when
// strings.EqualFold says they are equal.
func FuzzDKIMFoldKey(f *testing.F) {
	for _, pair := range [][2]string{
		{"DKIM-Signature", "dkim-signature"}, {"D\u212aIM-Signature", "dkim-SIGNATURE"}, {"\u017f", "S"},
		{"\u0130", "i\u0307"}, {"\u0130", "i"}, {"\xff", "\ufffd"}, {"\xff\xfe", "\ufffd"}, {"\u03a3", "\u03c2"},
		{"\u1e9e", "\u00df"}, {"", ""}, {"a", ""},
	} {
		f.Add(pair[0], pair[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		same := foldKey(a) == foldKey(b)
		if same != strings.EqualFold(a, b) {
			t.Fatalf("fold keys %q, %q (same %v); EqualFold %v", foldKey(a), foldKey(b), same, !same)
		}
	})
}

// TestLineBreakLimiter: a run of line breaks longer than the bound is
// found wherever it starts and however reads split it, and the body reads
// as ending before it; runs of the bound pass whole.
func TestLineBreakLimiter(t *testing.T) {
	const max = 16
	chunkings := []struct {
		name string
		r    func(io.Reader) io.Reader
	}{{"whole", func(r io.Reader) io.Reader { return r }}, {"byte by byte", iotest.OneByteReader}, {"halves", iotest.HalfReader}}
	for lead := range 3 * max {
		for _, run := range []int{max - 1, max, max + 1, 3 * max} {
			breaks := strings.Repeat("\r\n", run)[:run]
			for _, body := range []string{
				strings.Repeat("x", lead) + breaks + "x",
				strings.Repeat("x", lead) + breaks,
				strings.Repeat("x", lead) + breaks + "x" + breaks + strings.Repeat("x", 2*max),
			} {
				for _, c := range chunkings {
					l := &lineBreakLimiter{r: c.r(strings.NewReader(body)), max: max}
					got, err := io.ReadAll(l)
					want := body
					if run > max {
						want = body[:lead+max]
					}
					if err != nil || l.over != (run > max) || string(got) != want {
						t.Fatalf("%q read %s: over %v, read %q, %v; want over %v, %q", body, c.name, l.over, got, err, run > max, want)
					}
				}
			}
		}
	}
}
