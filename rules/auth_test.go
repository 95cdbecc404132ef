package rules

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/ticketrouter/ticketrouter/ingest/mail"
	"github.com/ticketrouter/ticketrouter/rules/accounts"
	"github.com/ticketrouter/ticketrouter/rules/senderauth"
)

// fakeResolver serves DKIM keys from memory; names in temp fail as a
// timed-out server would, names in block wait for the lookup's deadline.
type fakeResolver struct {
	txt   map[string]string
	temp  map[string]bool
	block map[string]bool
}

func (r *fakeResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	switch {
	case r.block[name]:
		<-ctx.Done()
		return nil, ctx.Err()
	case r.temp[name]:
		return nil, &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
	}
	if v, ok := r.txt[name]; ok {
		return []string{v}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// testKeys are generated once: an RSA key is slow to make.
var testKeys = sync.OnceValues(func() (*rsa.PrivateKey, ed25519.PrivateKey) {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	_, ek, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return rk, ek
})

// dkimRecord is the TXT record publishing the public key of signer.
func dkimRecord(t *testing.T, signer crypto.Signer) string {
	t.Helper()
	switch pub := signer.Public().(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
	}
	t.Fatalf("unknown key type %T", signer.Public())
	return ""
}

// sign returns raw signed by domain with signer under selector s1.
func sign(t *testing.T, raw, domain string, signer crypto.Signer) string {
	t.Helper()
	var b bytes.Buffer
	err := dkim.Sign(&b, strings.NewReader(raw), &dkim.SignOptions{
		Domain: domain, Selector: "s1", Signer: signer,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
		HeaderKeys: []string{"From", "To", "Subject", "Message-ID"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// decideWithAuth parses raw, verifies its DKIM signatures against the
// resolver, and decides under auth.
func decideWithAuth(t *testing.T, raw string, res senderauth.Resolver, auth senderauth.Config) (*mail.Request, *Decision) {
	t.Helper()
	req, err := mail.Parse(strings.NewReader(raw), mail.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	auth.DNSTimeout, auth.MaxSignatures = 200*time.Millisecond, 5
	return req, Decide(DefaultPolicy(), mustDirectory(t), verdictOf(t, auth, res, raw, req), req)
}

// verdictOf authenticates the sender of raw (parsed as req) under auth,
// with DKIM keys from res.
func verdictOf(t *testing.T, auth senderauth.Config, res senderauth.Resolver, raw string, req *mail.Request) senderauth.Verdict {
	t.Helper()
	v, err := senderauth.NewChecker(auth, res).Check(context.Background(), req, strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSenderAuthentication(t *testing.T) {
	rsaKey, edKey := testKeys()
	res := &fakeResolver{
		txt: map[string]string{
			"s1._domainkey.acmecorp.example":      dkimRecord(t, rsaKey),
			"s1._domainkey.mail.acmecorp.example": dkimRecord(t, edKey),
			"s1._domainkey.other.example":         dkimRecord(t, rsaKey),
			"s1._domainkey.darkwood.example":      dkimRecord(t, edKey),
		},
		temp:  map[string]bool{"s1._domainkey.flaky.example": true},
		block: map[string]bool{"s1._domainkey.slow.example": true},
	}
	// The flaky and slow domains sign with the RSA key but cannot be looked up.
	const mailFmt = "From: %s\r\nTo: support@ca.example\r\nSubject: Password reset\r\nMessage-ID: <m@x>\r\n\r\nplease reset my password\r\n"
	admin := fmt.Sprintf(mailFmt, "Acme Admin <admin@acmecorp.example>")
	dkimOnly := senderauth.Config{Mode: senderauth.ModeDKIM}
	arOnly := senderauth.Config{Mode: senderauth.ModeResults, TrustedAuthservIDs: []string{"mx.ca.example"}}
	both := senderauth.Config{Mode: senderauth.ModeBoth, TrustedAuthservIDs: []string{"mx.ca.example"}}
	strictAR := senderauth.Config{Mode: senderauth.ModeResults, TrustedAuthservIDs: []string{"mx.ca.example"}, Alignment: "strict"}
	// ar puts one Authentication-Results field with value v above the admin's mail.
	ar := func(v string) string { return "Authentication-Results: " + v + "\r\n" + admin }

	cases := []struct {
		name   string
		raw    string
		auth   senderauth.Config
		admin  bool   // sender_is_admin
		retry  bool   // Decision.Retry
		reason string // in the sender_authenticated reason
	}{
		{"off: the From address decides", admin, senderauth.Config{}, true, false, "off"},
		{"rsa signature, aligned", sign(t, admin, "acmecorp.example", rsaKey), dkimOnly, true, false, "verifies, aligned"},
		{"ed25519 signature, relaxed alignment", sign(t, admin, "mail.acmecorp.example", edKey), dkimOnly, true, false, "verifies, aligned"},
		{"sub-domain signer under strict alignment", sign(t, admin, "mail.acmecorp.example", edKey), senderauth.Config{Mode: senderauth.ModeDKIM, Alignment: "strict"}, false, false, "not aligned"},
		{"valid signature of another domain", sign(t, admin, "other.example", rsaKey), dkimOnly, false, false, "not aligned: signed by other.example"},
		{"body changed after signing", strings.Replace(sign(t, admin, "acmecorp.example", rsaKey), "please reset", "please send", 1), dkimOnly, false, false, "body hash did not verify"},
		{"From added above the signed one", "From: admin@acmecorp.example\r\n" + sign(t, strings.Replace(admin, "Acme Admin <admin@acmecorp.example>", "attacker@evil.test", 1), "evil.test", rsaKey), dkimOnly, false, false, "From is ambiguous"},
		{"signature with l=", strings.Replace(sign(t, admin, "acmecorp.example", rsaKey), "DKIM-Signature: ", "DKIM-Signature: l=10; ", 1), dkimOnly, false, false, "body length"},
		{"From not in h=", strings.Replace(sign(t, admin, "acmecorp.example", rsaKey), "h=From:To:", "h=To:", 1), dkimOnly, false, false, "From field not signed"},
		{"no signature", admin, dkimOnly, false, false, "no signature"},
		{"dns temporary failure", sign(t, admin, "flaky.example", rsaKey), dkimOnly, false, false, "not aligned"},
		{"dns temporary failure of an aligned signer", sign(t, fmt.Sprintf(mailFmt, "it@flaky.example"), "flaky.example", rsaKey), dkimOnly, false, false, "dns temporary error"},
		{"dns timeout", sign(t, fmt.Sprintf(mailFmt, "it@slow.example"), "slow.example", rsaKey), dkimOnly, false, false, "dns temporary error"},
		{"no key published", sign(t, fmt.Sprintf(mailFmt, "it@nokey.example"), "nokey.example", rsaKey), dkimOnly, false, false, "no key"},

		{"trusted dmarc=pass", "Authentication-Results: mx.ca.example; dmarc=pass header.from=acmecorp.example\r\n" + admin, arOnly, true, false, "dmarc=pass"},
		{"trusted aligned dkim=pass", "Authentication-Results: mx.ca.example; dkim=pass header.d=acmecorp.example\r\n" + admin, arOnly, true, false, "dkim=pass"},
		{"trusted dkim=pass of another domain", "Authentication-Results: mx.ca.example; dkim=pass header.d=evil.test\r\n" + admin, arOnly, false, false, "not aligned"},
		{"trusted dmarc=fail, forged pass below", "Authentication-Results: mx.ca.example; dmarc=fail header.from=acmecorp.example\r\n" +
			"Authentication-Results: mx.ca.example; dmarc=pass header.from=acmecorp.example\r\n" + admin, arOnly, false, false, "dmarc=fail"},
		{"forged pass above the trusted one from another id", "Authentication-Results: evil.test; dmarc=pass header.from=acmecorp.example\r\n" +
			"Authentication-Results: mx.ca.example; dmarc=fail header.from=acmecorp.example\r\n" + admin, arOnly, false, false, "dmarc=fail"},
		{"untrusted authserv-id", "Authentication-Results: mx.evil.test; dmarc=pass header.from=acmecorp.example\r\n" + admin, arOnly, false, false, `untrusted authserv-id "mx.evil.test"`},
		{"no Authentication-Results", admin, arOnly, false, false, "no Authentication-Results"},
		{"trusted dmarc=pass for another From domain", "Authentication-Results: mx.ca.example; dmarc=pass header.from=evil.test\r\n" + admin, arOnly, false, false, "not for the From domain"},

		// The whole header decides: a veto anywhere beats a pass anywhere.
		{"dmarc=none leaves the aligned dkim=pass", ar("mx.ca.example; dkim=pass header.d=acmecorp.example; dmarc=none header.from=acmecorp.example"), arOnly, true, false, "dkim=pass for acmecorp.example"},
		{"dmarc=temperror vetoes dkim=pass", ar("mx.ca.example; dkim=pass header.d=acmecorp.example; dmarc=temperror header.from=acmecorp.example"), arOnly, false, false, "dmarc=temperror for acmecorp.example wins over dkim=pass"},
		{"dmarc=fail without header.from vetoes", ar("mx.ca.example; dkim=pass header.d=acmecorp.example; dmarc=fail"), arOnly, false, false, "dmarc=fail for an unnamed domain"},
		{"dkim=pass found through header.i", ar("mx.ca.example; dkim=pass header.i=@acmecorp.example"), arOnly, true, false, "dkim=pass for acmecorp.example"},
		{"header.d decides over header.i", ar("mx.ca.example; dkim=pass header.d=evil.test header.i=@acmecorp.example"), arOnly, false, false, "not aligned"},
		{"dkim=pass without a domain does not count", ar("mx.ca.example; dkim=pass header.s=s1"), arOnly, false, false, "dkim=pass without header.d"},
		{"dkim=fail without a domain vetoes", ar("mx.ca.example; dkim=fail; dkim=pass header.d=acmecorp.example"), arOnly, false, false, "dkim=fail for an unnamed domain wins over"},
		{"dkim=hardfail, an unknown result, vetoes", ar("mx.ca.example; dkim=pass header.d=acmecorp.example; dkim=hardfail header.d=acmecorp.example"), arOnly, false, false, "dkim=hardfail for acmecorp.example wins over its pass"},
		{"dkim=temperror beside a pass does not veto", ar("mx.ca.example; dkim=temperror header.d=acmecorp.example header.s=s2; dkim=pass header.d=acmecorp.example"), arOnly, true, false, "dkim=pass"},
		{"dkim=neutral beside a pass does not veto", ar("mx.ca.example; dkim=neutral (bad format) header.d=acmecorp.example; dkim=pass header.d=acmecorp.example"), arOnly, true, false, "dkim=pass"},
		{"dkim=fail of an unaligned domain does not veto", ar("mx.ca.example; dkim=fail header.d=list.example; dkim=pass header.d=acmecorp.example"), arOnly, true, false, "dkim=pass"},
		{"strict: dkim=fail of a sub-domain does not veto", ar("mx.ca.example; dkim=fail header.d=mail.acmecorp.example; dkim=pass header.d=acmecorp.example"), strictAR, true, false, "dkim=pass"},
		{"relaxed: dkim=fail of a sub-domain vetoes", ar("mx.ca.example; dkim=fail header.d=mail.acmecorp.example; dkim=pass header.d=acmecorp.example"), arOnly, false, false, "dkim=fail for mail.acmecorp.example wins over"},
		{"dkim=none beside a pass is contradictory", ar("mx.ca.example; dkim=none; dkim=pass header.d=acmecorp.example"), arOnly, false, false, "dkim=none beside"},
		{"dkim header.d twice", ar("mx.ca.example; dkim=pass header.d=evil.test header.d=acmecorp.example"), arOnly, false, false, "header.d twice"},
		{"spf=fail of the helo when no mailfrom", ar("mx.ca.example; spf=fail smtp.helo=acmecorp.example; dmarc=pass header.from=acmecorp.example"), arOnly, false, false, "spf=fail for acmecorp.example wins over dmarc=pass"},
		{"spf=fail of an unaligned mailfrom does not veto", ar("mx.ca.example; spf=fail smtp.mailfrom=bounce@evil.test smtp.helo=acmecorp.example; dkim=pass header.d=acmecorp.example; dmarc=pass header.from=acmecorp.example"), arOnly, true, false, "dmarc=pass"},
		{"spf=softfail does not veto", ar("mx.ca.example; spf=softfail smtp.mailfrom=admin@acmecorp.example; dkim=pass header.i=@acmecorp.example; dmarc=pass header.from=acmecorp.example"), arOnly, true, false, "dmarc=pass"},
		{"dmarc=pass resting on an aligned spf=pass", ar("mx.ca.example; spf=pass smtp.mailfrom=bounce@mail.acmecorp.example; dkim=none; dmarc=pass header.from=acmecorp.example"), strictAR, true, false, "dmarc=pass"},
		{"dmarc=pass resting on a dkim=pass without a domain", ar("mx.ca.example; dkim=pass; dmarc=pass header.from=acmecorp.example"), arOnly, true, false, "dmarc=pass"},
		{"dmarc=pass alone, as a DMARC milter writes it", ar("mx.ca.example; dmarc=pass (p=reject dis=none) header.from=acmecorp.example"), arOnly, true, false, "dmarc=pass"},
		{"dmarc=pass resting on nothing", ar("mx.ca.example; spf=pass smtp.mailfrom=evil.test; dkim=pass header.d=evil.test; dmarc=pass header.from=acmecorp.example"), arOnly, false, false, "no dkim or spf pass aligned with it"},
		{"dmarc=pass beside dkim=none and spf=none", ar("mx.ca.example; spf=none smtp.helo=x.evil.test; dkim=none; dmarc=pass header.from=acmecorp.example"), arOnly, false, false, "contradictory"},
		{"spf=pass alone does not authenticate", ar("mx.ca.example; spf=pass smtp.mailfrom=admin@acmecorp.example"), arOnly, false, false, "neither dmarc nor dkim"},
		{"unknown method version", ar("mx.ca.example; dkim/2=pass header.d=acmecorp.example"), arOnly, false, false, "dkim/2: unknown version"},
		{"unknown header version", ar("mx.ca.example 2; dmarc=pass header.from=acmecorp.example"), arOnly, false, false, "version 2"},
		{"none", ar("mx.ca.example; none"), arOnly, false, false, "none"},
		{"unknown version of the top header, forged pass below", "Authentication-Results: mx.ca.example 2; dkim=none\r\n" + ar("mx.ca.example; dmarc=pass header.from=acmecorp.example"), arOnly, false, false, "version 2"},
		{"off-grammar property is unreadable", ar("mx.ca.example; dkim=pass header.d=acmecorp.example; dmarc=pass action=none header.from=acmecorp.example"), arOnly, false, false, "unreadable: byte 69"},
		{"trailing semicolon is unreadable", ar("mx.ca.example; dmarc=pass header.from=acmecorp.example;"), arOnly, false, false, "unreadable"},
		{"quoted string in a property keeps its semicolon", ar(`mx.ca.example; spf=pass smtp.mailfrom="a;dkim=pass header.d=acmecorp.example"@evil.test; dkim=pass header.d=evil.test`), arOnly, false, false, "not aligned"},
		{"comment holding a result beside a real pass", ar("mx.ca.example; dkim=pass header.d=acmecorp.example (x; dmarc=pass header.from=acmecorp.example)"), arOnly, false, false, "reads as an authentication result"},
		{"untrusted authserv-id with a control character", "Authentication-Results: \"mx.evil\x1b[2J\"; dmarc=pass\r\n" + admin, arOnly, false, false, `untrusted authserv-id unreadable (byte 8: control character '\x1b')`},
		{"untrusted authserv-id with a bidi override", "Authentication-Results: \"mx.\u202eevil\"; dmarc=pass\r\n" + admin, arOnly, false, false, `untrusted authserv-id "mx.\u202eevil"`},
		{"authserv-id with a Kelvin sign", ar("\"mx.ca.exampl\u212a\"; dmarc=pass header.from=acmecorp.example"), senderauth.Config{Mode: senderauth.ModeResults, TrustedAuthservIDs: []string{"mx.ca.examplk"}}, false, false, "untrusted authserv-id"},
		{"many untrusted authserv-ids", strings.Repeat("Authentication-Results: evil.test; dmarc=pass header.from=acmecorp.example\r\n", 50) + admin, arOnly, false, false, "and 47 more"},

		{"both: DKIM alone authenticates", sign(t, admin, "acmecorp.example", rsaKey), both, true, false, "verifies"},
		{"both: results alone authenticate", "Authentication-Results: mx.ca.example; dmarc=pass header.from=acmecorp.example\r\n" + admin, both, true, false, "dmarc=pass"},
		{"both: neither", admin, both, false, false, "no Authentication-Results header; no signature"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, d := decideWithAuth(t, c.raw, res, c.auth)
			if got := d.Checks.SenderIsAdmin.OK; got != c.admin {
				t.Errorf("sender_is_admin = %v (%s), want %v", got, d.Checks.SenderIsAdmin.Reason, c.admin)
			}
			if d.Checks.SenderAuthenticated.OK != (c.admin && c.auth.Required()) {
				t.Errorf("sender_authenticated = %v", d.Checks.SenderAuthenticated.OK)
			}
			if !strings.Contains(d.Checks.SenderAuthenticated.Reason, c.reason) {
				t.Errorf("sender_authenticated reason %q lacks %q", d.Checks.SenderAuthenticated.Reason, c.reason)
			}
			if d.Retry != c.retry {
				t.Errorf("retry = %v, want %v", d.Retry, c.retry)
			}
			if c.admin && d.Disposition != "verified" || !c.admin && d.Disposition == "verified" {
				t.Errorf("disposition %s with sender_is_admin %v", d.Disposition, c.admin)
			}
		})
	}
}

// TestSenderAuthenticationRetry: a temporary DNS failure on the admin's own
// domain is "not yet authenticated": the decision asks to be retried, and
// is never "verified" meanwhile.
func TestSenderAuthenticationRetry(t *testing.T) {
	rsaKey, _ := testKeys()
	const acct = "accounts:\n  - {id: F-1, colour: green, admin_email: it@flaky.example, domains: [flaky.example]}\n"
	dir, err := accounts.ParseDirectory("a.yaml", []byte(acct))
	if err != nil {
		t.Fatal(err)
	}
	raw := sign(t, "From: it@flaky.example\r\nTo: support@ca.example\r\nSubject: reset\r\nMessage-ID: <m@x>\r\n\r\nreset my password\r\n", "flaky.example", rsaKey)
	res := &fakeResolver{temp: map[string]bool{"s1._domainkey.flaky.example": true}}
	req, err := mail.Parse(strings.NewReader(raw), mail.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	dkim := senderauth.Config{Mode: senderauth.ModeDKIM}
	d := Decide(DefaultPolicy(), dir, verdictOf(t, dkim, res, raw, req), req)
	if !d.Retry || d.Disposition == "verified" || d.Checks.SenderIsAdmin.OK {
		t.Fatalf("retry %v disposition %s admin %v (%s)", d.Retry, d.Disposition, d.Checks.SenderIsAdmin.OK, d.Checks.SenderIsAdmin.Reason)
	}
	if !strings.Contains(d.Checks.SenderIsAdmin.Reason, "dns temporary error") {
		t.Errorf("reason %q", d.Checks.SenderIsAdmin.Reason)
	}
	// Once the key can be fetched, the same mail is verified.
	res.temp = nil
	res.txt = map[string]string{"s1._domainkey.flaky.example": dkimRecord(t, rsaKey)}
	if d := Decide(DefaultPolicy(), dir, verdictOf(t, dkim, res, raw, req), req); d.Retry || d.Disposition != "verified" {
		t.Fatalf("after the DNS recovered: retry %v disposition %s", d.Retry, d.Disposition)
	}
}

// TestDKIMSignatureCap: only the first MaxSignatures signatures are
// checked, so a mail cannot make us do unbounded work.
func TestDKIMSignatureCap(t *testing.T) {
	rsaKey, _ := testKeys()
	res := &fakeResolver{txt: map[string]string{"s1._domainkey.acmecorp.example": dkimRecord(t, rsaKey)}}
	raw := "From: admin@acmecorp.example\r\nTo: support@ca.example\r\nSubject: x\r\nMessage-ID: <m@x>\r\n\r\nbody\r\n"
	for range 7 {
		raw = sign(t, raw, "acmecorp.example", rsaKey)
	}
	v := senderauth.DKIMVerifier{Resolver: res, MaxSignatures: 3}
	sigs, err := v.Verify(context.Background(), strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(sigs) != 3 {
		t.Fatalf("%d signatures checked, want 3", len(sigs))
	}
}
