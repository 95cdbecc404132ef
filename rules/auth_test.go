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
	"github.com/ticketrouter/ticketrouter/ingest"
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
func decideWithAuth(t *testing.T, raw string, res ingest.Resolver, auth SenderAuth) (*ingest.Request, *Decision) {
	t.Helper()
	req, err := ingest.Parse(strings.NewReader(raw), ingest.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	v := ingest.DKIMVerifier{Resolver: res, Timeout: 200 * time.Millisecond, MaxSignatures: 5}
	if req.DKIM, err = v.Verify(context.Background(), strings.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	req.DKIMChecked = true
	return req, Decide(DefaultPolicy(), mustDirectory(t), auth, req)
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
	dkimOnly := SenderAuth{Mode: AuthDKIM}
	arOnly := SenderAuth{Mode: AuthResults, TrustedAuthservIDs: []string{"mx.ca.example"}}
	both := SenderAuth{Mode: AuthBoth, TrustedAuthservIDs: []string{"mx.ca.example"}}

	cases := []struct {
		name   string
		raw    string
		auth   SenderAuth
		admin  bool   // sender_is_admin
		retry  bool   // Decision.Retry
		reason string // in the sender_authenticated reason
	}{
		{"off: the From address decides", admin, SenderAuth{}, true, false, "off"},
		{"rsa signature, aligned", sign(t, admin, "acmecorp.example", rsaKey), dkimOnly, true, false, "verifies, aligned"},
		{"ed25519 signature, relaxed alignment", sign(t, admin, "mail.acmecorp.example", edKey), dkimOnly, true, false, "verifies, aligned"},
		{"sub-domain signer under strict alignment", sign(t, admin, "mail.acmecorp.example", edKey), SenderAuth{Mode: AuthDKIM, Alignment: "strict"}, false, false, "not aligned"},
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
		{"untrusted authserv-id", "Authentication-Results: mx.evil.test; dmarc=pass header.from=acmecorp.example\r\n" + admin, arOnly, false, false, "untrusted authserv-id mx.evil.test"},
		{"no Authentication-Results", admin, arOnly, false, false, "no Authentication-Results"},
		{"trusted dmarc=pass for another From domain", "Authentication-Results: mx.ca.example; dmarc=pass header.from=evil.test\r\n" + admin, arOnly, false, false, "not aligned"},

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
			if d.Checks.SenderAuthenticated.OK != (c.admin && c.auth.on()) {
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
	dir, err := ParseDirectory("a.yaml", []byte(acct))
	if err != nil {
		t.Fatal(err)
	}
	raw := sign(t, "From: it@flaky.example\r\nTo: support@ca.example\r\nSubject: reset\r\nMessage-ID: <m@x>\r\n\r\nreset my password\r\n", "flaky.example", rsaKey)
	res := &fakeResolver{temp: map[string]bool{"s1._domainkey.flaky.example": true}}
	req, err := ingest.Parse(strings.NewReader(raw), ingest.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	v := ingest.DKIMVerifier{Resolver: res}
	if req.DKIM, err = v.Verify(context.Background(), strings.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	req.DKIMChecked = true
	d := Decide(DefaultPolicy(), dir, SenderAuth{Mode: AuthDKIM}, req)
	if !d.Retry || d.Disposition == "verified" || d.Checks.SenderIsAdmin.OK {
		t.Fatalf("retry %v disposition %s admin %v (%s)", d.Retry, d.Disposition, d.Checks.SenderIsAdmin.OK, d.Checks.SenderIsAdmin.Reason)
	}
	if !strings.Contains(d.Checks.SenderIsAdmin.Reason, "dns temporary error") {
		t.Errorf("reason %q", d.Checks.SenderIsAdmin.Reason)
	}
	// Once the key can be fetched, the same mail is verified.
	res.temp = nil
	res.txt = map[string]string{"s1._domainkey.flaky.example": dkimRecord(t, rsaKey)}
	if req.DKIM, err = v.Verify(context.Background(), strings.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	if d := Decide(DefaultPolicy(), dir, SenderAuth{Mode: AuthDKIM}, req); d.Retry || d.Disposition != "verified" {
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
	v := ingest.DKIMVerifier{Resolver: res, MaxSignatures: 3}
	sigs, err := v.Verify(context.Background(), strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(sigs) != 3 {
		t.Fatalf("%d signatures checked, want 3", len(sigs))
	}
}

func TestSenderAuthCheck(t *testing.T) {
	for _, tt := range []struct {
		auth SenderAuth
		err  string
	}{
		{SenderAuth{}, ""},
		{SenderAuth{Mode: AuthDKIM}, ""},
		{SenderAuth{Mode: AuthResults, TrustedAuthservIDs: []string{"mx"}}, ""},
		{SenderAuth{Mode: "spf"}, `mode: "spf" is not one of`},
		{SenderAuth{Mode: AuthResults}, "trusted_authserv_ids: mode authentication-results needs"},
		{SenderAuth{Mode: AuthBoth}, "trusted_authserv_ids"},
		{SenderAuth{Mode: AuthDKIM, Alignment: "loose"}, `alignment: "loose"`},
	} {
		err := tt.auth.Check()
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%+v: Check() = %v, want %q", tt.auth, err, tt.err)
		}
	}
}
