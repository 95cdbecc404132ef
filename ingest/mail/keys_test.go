package mail

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"mime/quotedprintable"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"golang.org/x/text/encoding/charmap"
)

// testKeys holds key material made once per test run: nothing secret is
// kept in the repository for these tests.
type testKeys struct {
	pkcs8, pkcs1, ec []byte // PEM private keys, LF line ends
	der              []byte // the PKCS#8 key as DER
	cert, csr, pub   []byte // PEM, no private key
	certDER          []byte
}

var (
	testKeysOnce sync.Once
	testKeysVal  testKeys
)

func keysForTest(t testing.TB) testKeys {
	t.Helper()
	testKeysOnce.Do(func() {
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(rk)
		if err != nil {
			panic(err)
		}
		ecDER, err := x509.MarshalECPrivateKey(ek)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "www.acmecorp.example"},
			NotBefore: time.Unix(1_700_000_000, 0), NotAfter: time.Unix(1_800_000_000, 0),
			DNSNames: []string{"www.acmecorp.example"},
		}
		certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &rk.PublicKey, rk)
		if err != nil {
			panic(err)
		}
		csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: tmpl.Subject}, rk)
		if err != nil {
			panic(err)
		}
		pubDER, err := x509.MarshalPKIXPublicKey(&rk.PublicKey)
		if err != nil {
			panic(err)
		}
		enc := func(typ string, b []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}) }
		testKeysVal = testKeys{
			pkcs8: enc("PRIVATE KEY", der), pkcs1: enc("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk)),
			ec: enc("EC PRIVATE KEY", ecDER), der: der,
			cert: enc("CERTIFICATE", certDER), csr: enc("CERTIFICATE REQUEST", csrDER), pub: enc("PUBLIC KEY", pubDER),
			certDER: certDER,
		}
	})
	return testKeysVal
}

// keyLine returns a line from the middle of a PEM block's base64: a
// distinctive piece of the key that must never reach Text.
func keyLine(pemBlock []byte) string {
	lines := strings.Split(strings.TrimSpace(string(pemBlock)), "\n")
	return lines[len(lines)/2]
}

// keyBody returns the base64 lines of a PEM block, without its marker lines.
func keyBody(pemBlock []byte) string {
	lines := strings.Split(strings.TrimSpace(string(pemBlock)), "\n")
	return strings.Join(lines[1:len(lines)-1], "\n") + "\n"
}

// ebcdic encodes s in EBCDIC (IBM code page 037).
func ebcdic(t testing.TB, s string) []byte {
	b, err := charmap.CodePage037.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// qpAll encodes every byte of s as =XX, line by line, with soft breaks
// every 60 characters: the ugliest legal quoted-printable.
func qpAll(s string) string {
	var b strings.Builder
	col := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			b.WriteString("\r\n")
			col = 0
			continue
		}
		if col >= 60 {
			b.WriteString("=\r\n")
			col = 0
		}
		fmt.Fprintf(&b, "=%02X", s[i])
		col += 3
	}
	return b.String()
}

// qpEncode encodes s as quoted-printable the way mailers do.
func qpEncode(s string) string {
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

// utf16LE encodes s as UTF-16LE with a byte order mark.
func utf16LE(s string) []byte {
	b := []byte{0xff, 0xfe}
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return b
}

// utf16BE encodes s as UTF-16BE without a byte order mark.
func utf16BE(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u>>8), byte(u))
	}
	return b
}

// htmlKey renders a PEM block as an HTML mailer does: lines joined by
// <br>, spaces as &nbsp;.
func htmlKey(pemBlock []byte) string {
	s := strings.TrimSpace(string(pemBlock))
	s = strings.ReplaceAll(s, " ", "&nbsp;")
	return strings.ReplaceAll(s, "\n", "<br>\r\n")
}

// entities writes every character of s as a numeric HTML entity.
func entities(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '\n' {
			b.WriteString("<br>\n")
			continue
		}
		fmt.Fprintf(&b, "&#%d;", r)
	}
	return b.String()
}

func alternative(plain, htmlHeader, html string) string {
	return "Content-Type: multipart/alternative; boundary=alt\n\n" +
		"--alt\nContent-Type: text/plain; charset=utf-8\n\n" + plain + "\n" +
		"--alt\n" + htmlHeader + "\n\n" + html + "\n--alt--\n"
}

type keyCase struct {
	name string
	raw  string
	lim  Limits
	want bool
	// line is a piece of the key that must not be in Text; "" to skip.
	line string
}

func keyCases(t testing.TB) []keyCase {
	k := keysForTest(t)
	pkcs8, ec := string(k.pkcs8), string(k.ec)
	line8, line1 := keyLine(k.pkcs8), keyLine(k.pkcs1)
	filler := strings.Repeat("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n", 2400) // 136 KiB
	big500 := strings.Repeat("--b\nContent-Type: text/plain\n\npart\n", 520)
	nest := func(levels int, leaf string) string {
		body := leaf
		for i := levels; i >= 1; i-- {
			body = fmt.Sprintf("Content-Type: multipart/mixed; boundary=n%d\n\n--n%d\n%s\n--n%d--", i, i, body, i)
		}
		return body
	}
	b64Leaf := "Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n" + b64([]byte("key:\n"+pkcs8))
	return []keyCase{
		// Where Text shows the key, the rules redact it; these are the
		// places it does not.
		{name: "html alternative not kept", want: true, line: line8,
			raw: alice + alternative("see the HTML part", "Content-Type: text/html", "<p>"+htmlKey(k.pkcs8)+"</p>")},
		{name: "html alternative base64", want: true, line: line8,
			raw: alice + alternative("nothing here", "Content-Type: text/html\nContent-Transfer-Encoding: base64", b64([]byte("<pre>"+pkcs8+"</pre>")))},
		{name: "html alternative quoted-printable, every byte escaped", want: true, line: line1,
			raw: alice + alternative("nothing here", "Content-Type: text/html\nContent-Transfer-Encoding: quoted-printable", qpAll("<div>"+htmlKey(k.pkcs1)+"</div>"))},
		{name: "html alternative entity-encoded", want: true, line: line8,
			raw: alice + alternative("nothing here", "Content-Type: text/html", entities(pkcs8))},
		{name: "html alternative tags inside the marker", want: true, line: line8,
			raw: alice + alternative("nothing here", "Content-Type: text/html",
				strings.Replace(htmlKey(k.pkcs8), "PRIVATE&nbsp;KEY", "PRI<span>VATE</span> <b>KEY</b>", 1))},
		{name: "html alternative utf-16", want: true, line: line8,
			raw: alice + alternative("nothing here", "Content-Type: text/html; charset=utf-16\nContent-Transfer-Encoding: base64", b64(utf16LE("<p>"+htmlKey(k.pkcs8)+"</p>")))},
		{name: "text past the text limit", want: true, line: line8,
			raw: alice + "Content-Type: text/plain\n\n" + filler + pkcs8},
		{name: "text past the text limit, CRLF", want: true, line: line8,
			raw: crlf(alice + "Content-Type: text/plain\n\n" + filler + pkcs8)},
		{name: "text past the text limit, base64", want: true, line: line8,
			raw: alice + "Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n" + b64([]byte(filler+pkcs8))},
		{name: "text past the text limit, quoted-printable soft breaks in the marker", want: true, line: line8,
			raw: alice + "Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n" +
				qpEncode(filler) + "=\n-----BEG=\nIN PRIV=\r\nATE K=45Y=2D=2D---\n" + keyBody(k.pkcs8) + "-----END PRIVATE KEY-----\n"},
		{name: "text budget used up by an earlier part", want: true, line: line8,
			raw: mixedMail("\n"+filler, "\nsecond part\n"+pkcs8)},
		{name: "part past the part limit", want: true, line: line8,
			raw: alice + "Content-Type: multipart/mixed; boundary=b\n\n" + big500 + "--b\n" + b64Leaf + "\n--b--\n"},
		{name: "part past the part limit, small limit", lim: Limits{MaxParts: 3}, want: true, line: line8,
			raw: mixedMail("\nhello", "Content-Type: application/octet-stream\n\nx", "\nmore", b64Leaf)},
		{name: "nested past the depth limit, base64", want: true, line: line8,
			raw: alice + nest(14, b64Leaf) + "\n"},
		{name: "nested past any bound, 7bit", want: true, line: line8,
			raw: alice + nest(120, "Content-Type: text/plain\n\n"+pkcs8) + "\n"},
		{name: "enclosed message, html alternative", want: true, line: line8,
			raw: alice + "Content-Type: message/rfc822\n\nFrom: x@example.com\n" + alternative("plain", "Content-Type: text/html", htmlKey(k.pkcs8))},
		{name: "forwarded as an attachment, base64 part", want: true, line: line8,
			raw: mixedMail("\nsee attached", "Content-Type: message/rfc822\nContent-Disposition: attachment; filename=fwd.eml\n\n"+
				"From: x@example.com\nContent-Type: multipart/mixed; boundary=inner\n\n--inner\n"+b64Leaf+"\n--inner--\n")},
		{name: "utf-16 text attachment", want: true,
			raw: mixedMail("\nkeys attached", "Content-Type: text/plain; charset=utf-16; name=keys.txt\nContent-Disposition: attachment\nContent-Transfer-Encoding: base64\n\n"+b64(utf16LE(pkcs8)))},
		{name: "utf-16be text past the limit", lim: Limits{MaxTextBytes: 100}, want: true, line: line8,
			raw: alice + "Content-Type: text/plain; charset=utf-16be\nContent-Transfer-Encoding: base64\n\n" + b64(utf16BE("hello\n"+pkcs8))},
		{name: "preamble", want: true, line: line8,
			raw: alice + "Content-Type: multipart/mixed; boundary=b\n\n" + pkcs8 + "--b\n\nhello\n--b--\n"},
		{name: "epilogue", want: true, line: line8,
			raw: alice + "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nhello\n--b--\n" + pkcs8},
		{name: "base64 attachment with a bad byte before the key", want: true,
			raw: mixedMail("\nhi", "Content-Type: application/octet-stream; name=notes.bin\nContent-Transfer-Encoding: base64\n\n"+
				"aGVsbG8K\n!!!!\n"+b64([]byte("\n"+pkcs8)))},
		{name: "quoted-printable attachment with a bad escape before the key", want: true,
			raw: mixedMail("\nhi", "Content-Type: application/octet-stream; name=notes.bin\nContent-Transfer-Encoding: quoted-printable\n\n"+
				"bad =ZZ escape\n"+qpEncode(pkcs8))},
		{name: "DER key attachment without a telling name", want: true,
			raw: mixedMail("\nhi", "Content-Type: application/octet-stream; name=server.bin\nContent-Transfer-Encoding: base64\n\n"+b64(k.der))},
		{name: "key body without its marker lines", want: true, line: line8,
			raw: alice + "\nhere is the key body:\n\n" + keyBody(k.pkcs8) + "\nthanks\n"},
		{name: "PEM in base64 in a data URL", want: true,
			raw: alice + alternative("x", "Content-Type: text/html", `<a href="data:application/x-pem-file;base64,`+
				base64.StdEncoding.EncodeToString(k.pkcs8)+`">key</a>`)},
		{name: "marker with a line break in kept HTML", want: true, line: line1,
			raw: alice + "Content-Type: text/html\n\n" + strings.Replace(htmlKey(k.pkcs1), "PRIVATE&nbsp;KEY", "PRIVATE<br>KEY", 2)},
		{name: "marker with zero-width spaces", want: true, line: line8,
			raw: alice + "Content-Type: text/plain; charset=utf-8\n\n" + strings.ReplaceAll(pkcs8, "PRIVATE KEY", "PRIVATE\u200bKEY")},
		{name: "lower-case marker", want: true, line: line8,
			raw: alice + "\n" + strings.ToLower(pkcs8[:28]) + pkcs8[28:]},
		{name: "SSH2 marker with four dashes", want: true, line: line8,
			raw: alice + "\n---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\n" + keyBody(k.pkcs8) + "---- END SSH2 ENCRYPTED PRIVATE KEY ----\n"},
		{name: "EC key in the text", want: true, line: keyLine(k.ec), raw: alice + "\n" + ec},
		{name: "watch-html alternative entity-encoded", want: true, line: line8,
			raw: alice + alternative("nothing here", "Content-Type: text/watch-html", entities(pkcs8))},
		{name: "quoted-printable attachment with a control byte before the key", want: true,
			raw: mixedMail("\nhi", "Content-Type: application/octet-stream; name=notes.bin\nContent-Transfer-Encoding: quoted-printable\n\n"+
				"bad \x01 byte\n"+qpEncode(pkcs8))},
		{name: "header field", want: true, raw: "X-Key: " + strings.ReplaceAll(strings.TrimSpace(pkcs8), "\n", "\n ") + "\n" + alice + "\nhello\n"},
		{name: "comment in kept html", want: true, line: line8,
			raw: alice + "Content-Type: text/html\n\n<p>hello</p><!-- " + pkcs8 + " -->"},
		{name: "marker joined by a dropped script", want: true,
			raw: alice + "Content-Type: text/html\n\n--begin <script>x</script>private key--<br>" + keyBody(k.pkcs8)},
		{name: "ebcdic text past the limit", lim: Limits{MaxTextBytes: 50}, want: true,
			raw: alice + "Content-Type: text/plain; charset=IBM037\nContent-Transfer-Encoding: base64\n\n" + b64(ebcdic(t, "hello, this is a long enough text for the limit\n"+pkcs8))},
		{name: "forwarded message nested in forwarded messages", want: true, line: line8,
			raw: alice + strings.Repeat("Content-Type: message/rfc822\n\nFrom: x@example.com\n", 12) + "Content-Type: text/html\nContent-Transfer-Encoding: base64\n\n" + b64([]byte(htmlKey(k.pkcs8)))},

		// Not keys.
		{name: "certificate", want: false, raw: alice + "\nour certificate:\n" + string(k.cert)},
		{name: "certificate request and public key", want: false, raw: alice + "\n" + string(k.csr) + string(k.pub)},
		{name: "certificate body without marker lines", want: false, raw: alice + "\n" + keyBody(k.cert)},
		{name: "certificate attachment", want: false,
			raw: mixedMail("\ncert", "Content-Type: application/pkix-cert; name=www.cer\nContent-Transfer-Encoding: base64\n\n"+b64(k.certDER))},
		{name: "prose about private keys", want: false,
			raw: alice + "\nI think our private key was compromised -- please revoke the certificate.\n" +
				"The e-mail with the PRIVATE KEY--well, the key-file--was sent to a third-party.\n" +
				"Begin private key rotation now!\n\n-- \nJane\n\n-----Original Message-----\nFrom: support\nEnd private key discussion ----------\n"},
		{name: "prose in html", want: false,
			raw: alice + "Content-Type: text/html\n\n<h1>Private key</h1><hr><p>--&nbsp;Begin&nbsp;private key&nbsp;rotation</p><p>&mdash; End of private key &mdash;</p>"},
		{name: "PGP message and signature", want: false,
			raw: alice + "\n-----BEGIN PGP MESSAGE-----\n\nhQEMA5b6\n-----END PGP MESSAGE-----\n-----BEGIN PGP SIGNATURE-----\n\niQEzBAEB\n-----END PGP SIGNATURE-----\n"},
	}
}

func TestKeyMaterial(t *testing.T) {
	for _, tc := range keyCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			req, err := Parse(strings.NewReader(tc.raw), tc.lim)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkInvariants(t, []byte(tc.raw), req)
			if req.KeyMaterial != tc.want {
				t.Errorf("KeyMaterial = %v, want %v (attachments %+v)", req.KeyMaterial, tc.want, req.Attachments)
			}
			if tc.line != "" && strings.Contains(req.Text, tc.line) {
				t.Errorf("Text holds the key: %q", clip(req.Text, 300))
			}
		})
	}
}

// BenchmarkKeyScan measures key detection alone on the typical mail: the
// raw bytes, the quoted-printable text part and its HTML twin, decoded.
func BenchmarkKeyScan(b *testing.B) {
	raw, err := os.ReadFile("testdata/typical.eml")
	if err != nil {
		b.Fatal(err)
	}
	i := bytes.Index(raw, []byte("quoted-printable\r\n\r\n"))
	j := bytes.Index(raw, []byte("--0000000000004fa1c2\r\nContent-Type: text/html"))
	if i < 0 || j < i {
		b.Fatal("typical.eml is not the mail this benchmark expects")
	}
	plain, html := raw[i:j], raw[j:]
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	var s keyScanner
	var k keyPipe
	for b.Loop() {
		s.reset()
		s.Write(raw)
		s.close()
		k.reset("quoted-printable", "text/plain", "", "UTF-8", false)
		k.Write(plain)
		k.secret()
		k.reset("quoted-printable", "text/html", "", "UTF-8", false)
		k.Write(html)
		if k.secret() != "" || s.kind != "" {
			b.Fatal("key material in the typical mail")
		}
	}
}

// scanKind runs a keyScanner over b, written in pieces of size n (all at
// once when n is 0), and returns the kind it found.
func scanKind(b []byte, n int) string {
	var s keyScanner
	writeIn(&s, b, n)
	s.close()
	return s.kind
}

// writeIn writes b to w in pieces of size n (all at once when n is 0).
func writeIn(w io.Writer, b []byte, n int) {
	if n <= 0 {
		w.Write(b)
		return
	}
	for len(b) > 0 {
		m := min(n, len(b))
		w.Write(b[:m])
		b = b[m:]
	}
}

func TestKeyScanner(t *testing.T) {
	k := keysForTest(t)
	pfx := b64(pfxBlob(48))
	longLines := strings.Repeat("TUxNTExNTUxMTUxNTExNTUxMTUxNTExNTUxMTUxNTExNTUxMTUxNTExNTUxMTUxNTExNTUxMTUxN\r\n", 3)
	cases := []struct {
		name, in string
		want     string
	}{
		{"pkcs8", string(k.pkcs8), SecretPrivateKey},
		{"pkcs1 marker only", "-----BEGIN RSA PRIVATE KEY-----", SecretPrivateKey},
		{"end marker only", "xx\n-----END EC PRIVATE KEY-----\n", SecretPrivateKey},
		{"openssh", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n", SecretPrivateKey},
		{"pgp block", "-----BEGIN PGP PRIVATE KEY BLOCK-----\n", SecretPrivateKey},
		{"ssh2 four dashes and spaces", "---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----", SecretPrivateKey},
		{"lower case", "-----begin private key-----", SecretPrivateKey},
		{"crlf, tabs and nbsp", "-----BEGIN\tENCRYPTED\r\n PRIVATE\u00a0KEY-----", SecretPrivateKey},
		{"utf-16le", string(utf16LE("-----BEGIN PRIVATE KEY-----")), SecretPrivateKey},
		{"utf-16be", string(utf16BE("x -----END RSA PRIVATE KEY-----")), SecretPrivateKey},
		{"zero-width space", "-----BEGIN PRIVATE\u200bKEY-----", SecretPrivateKey},
		{"en dash closing", "-----BEGIN PRIVATE KEY\u2013\u2013", SecretPrivateKey},
		{"quoted-printable soft break left in", "-----BEGIN PRI=\r\nVATE KEY-----", SecretPrivateKey},
		{"key body only", keyBody(k.pkcs8), SecretPrivateKey},
		{"key body quoted in a reply", "> " + strings.ReplaceAll(keyBody(k.pkcs1), "\n", "\n> "), SecretPrivateKey},
		{"key body of an EC key", keyBody(k.ec), SecretPrivateKey},
		{"key body in utf-16", string(utf16LE(keyBody(k.pkcs8))), SecretPrivateKey},
		{"pem in base64", "data:;base64," + base64.StdEncoding.EncodeToString(k.pkcs1), SecretPrivateKey},
		{"pfx in base64", "the pfx:\n" + pfx, SecretPKCS12},
		{"der key in base64", "key=" + base64.StdEncoding.EncodeToString(k.der), SecretPrivateKey},
		{"der key after words of base64 with M and L", "QUxMTUxN+/LM,LMLMab=" + base64.StdEncoding.EncodeToString(k.der), SecretPrivateKey},
		{"der key after lines of base64", strings.Repeat("TUxNTExNTUxM\r\n", 3) + base64.StdEncoding.EncodeToString(k.der), SecretPrivateKey},
		// Lines as long as an attachment's: the scan looks at each word's
		// first byte instead of searching for M and L.
		{"der key after an attachment's lines", longLines + base64.StdEncoding.EncodeToString(k.der), SecretPrivateKey},
		{"der key after a long word and a space", longLines[:40] + " " + base64.StdEncoding.EncodeToString(k.der), SecretPrivateKey},
		{"pfx after an attachment's lines", longLines + pfx, SecretPKCS12},
		{"der key after a full run in an attachment's lines", longLines + "M" + strings.Repeat("A", 75) + "\r\n" + base64.StdEncoding.EncodeToString(k.der), SecretPrivateKey},
		{"der key inside a long word", longLines + longLines[:40] + base64.StdEncoding.EncodeToString(k.der), ""},
		{"der key right after a full run, in the same word", longLines + "M" + strings.Repeat("A", 63) + base64.StdEncoding.EncodeToString(k.der), ""},

		{"empty", "", ""},
		{"certificate", string(k.cert), ""},
		{"request and public key", string(k.csr) + string(k.pub), ""},
		{"certificate body", keyBody(k.cert), ""},
		{"certificate in base64", base64.StdEncoding.EncodeToString(k.cert), ""},
		{"four dashes too few words", "PRIVATE KEY-----", ""},
		{"prose", "our private key was stolen -- please revoke it", ""},
		{"prose with begin and dashes", "-- begin with the private key-pair, then the CSR --", ""},
		{"prose with end and dashes", "--- End of the private key discussion ---", ""},
		{"one dash", "-BEGIN PRIVATE KEY-", ""},
		{"original message", "my private key\n-----Original Message-----\nFrom: x", ""},
		{"public key block", "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----", ""},
		{"key too far from its marker", "-----BEGIN " + strings.Repeat(" ", 300) + "PRIVATE KEY-----", ""},
		{"words that look like base64", "Mail Management Messages Maintenance Manually Located Lorem", ""},
		{"signature delimiter", "-- \nBest regards\nLinda\n", ""},
		{"pgp message", "-----BEGIN PGP MESSAGE-----\n\nhQEMA5b6\n-----END PGP MESSAGE-----\n", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []int{0, 1, 2, 3, 7, 64} {
				if got := scanKind([]byte(tc.in), n); got != tc.want {
					t.Fatalf("writes of %d: kind %q, want %q", n, got, tc.want)
				}
			}
			// Every split into two writes.
			for i := 0; i <= len(tc.in) && i < 400; i++ {
				var s keyScanner
				s.Write([]byte(tc.in[:i]))
				s.Write([]byte(tc.in[i:]))
				s.close()
				if s.kind != tc.want {
					t.Fatalf("split at %d: kind %q, want %q", i, s.kind, tc.want)
				}
			}
		})
	}
}

func TestIsKeyDER(t *testing.T) {
	k := keysForTest(t)
	ek, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalECPrivateKey(ek)
	ec8, _ := x509.MarshalPKCS8PrivateKey(ek)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ed8, _ := x509.MarshalPKCS8PrivateKey(edKey)
	rk, _ := x509.ParsePKCS8PrivateKey(k.der)
	pkcs1 := x509.MarshalPKCS1PrivateKey(rk.(*rsa.PrivateKey))
	pub1 := x509.MarshalPKCS1PublicKey(&rk.(*rsa.PrivateKey).PublicKey)
	spki, _ := x509.MarshalPKIXPublicKey(&ek.PublicKey)
	csr, _ := pem.Decode(k.csr)
	// EncryptedPrivateKeyInfo: SEQUENCE { SEQUENCE { OID PBES2, ... },
	// OCTET STRING }.
	encrypted := append([]byte{0x30, 0x82, 0x05, 0x0c, 0x30, 0x4e}, pkcs5OID...)
	encrypted = append(encrypted, 0x0d, 0x30, 0x41, 0x30, 0x29)
	for _, c := range []struct {
		name string
		der  []byte
		want bool
	}{
		{"pkcs8 rsa", k.der, true}, {"pkcs1 rsa", pkcs1, true}, {"sec1 ec", ecDER, true},
		{"pkcs8 ec", ec8, true}, {"pkcs8 ed25519", ed8, true}, {"encrypted pkcs8", encrypted, true},
		{"certificate", k.certDER, false}, {"request", csr.Bytes, false}, {"pkcs1 public", pub1, false},
		{"spki", spki, false}, {"pfx", pfxBlob(48), false}, {"nothing", nil, false},
		{"short sequence", []byte{0x30, 0x05, 0x02, 0x01, 0x00, 0x02, 0x82}, false},
	} {
		head := c.der[:min(len(c.der), 32)]
		if got := isKeyDER(head); got != c.want {
			t.Errorf("%s: isKeyDER(% x) = %v, want %v", c.name, head, got, c.want)
		}
	}
}

func TestKeyPipeDecodes(t *testing.T) {
	text := "café =3D ü\r\n" + strings.Repeat("line of text\n", 20) + "=end\n"
	var qpBuf bytes.Buffer
	w := quotedprintable.NewWriter(&qpBuf)
	w.Write([]byte(text))
	w.Close()
	qpText, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(qpBuf.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, cte, in, want string
	}{
		{"quoted-printable", "quoted-printable", qpBuf.String(), string(qpText)},
		{"quoted-printable soft breaks with padding", "Quoted-Printable", "a=  \r\nb= \nc=\r\nd=4", "abcd=4"},
		{"quoted-printable bad escapes kept", "quoted-printable", "x=ZZy=4z =", "x=ZZy=4z ="},
		{"base64", "base64", b64([]byte(text)), text},
		{"base64 with junk and no padding", "BASE64", "aGVs!bG8g\n*d29y bGQ", "hello world"},
		{"base64 concatenated", "base64", "aGk=\naGk=\r\naGk", "hihihi"},
		{"identity", "8bit", "as it is=3D", "as it is=3D"},
	} {
		for _, n := range []int{0, 1, 2, 3, 5} {
			var k keyPipe
			var got bytes.Buffer
			k.reset(c.cte, "text/plain", "", "", false)
			k.out.sink = &got
			writeIn(&k, []byte(c.in), n)
			k.secret()
			if got.String() != c.want {
				t.Errorf("%s, writes of %d: %q, want %q", c.name, n, got.String(), c.want)
			}
		}
	}
}

func TestHTMLView(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"a<br>b", "a b"},
		{"PRI<span>VATE</span> K<b>E</b>Y", "PRIVATE KEY"},
		{"<p>x</p><div>y</div>", " x  y "},
		{"a &lt; b &amp;&amp; c &gt; d &nbsp;e&NBSP;f", "a < b && c > d  e f"},
		{"&#45;&#x2D;&#X2d;&mdash;&ndash;&minus;&#8211;", "-------"},
		{"&#80;&#x52;&#73;", "PRI"},
		{"a&shy;b&#x200B;c&ZeroWidthSpace;d", "abcd"},
		{"&#xFF30;", "P"},
		{"&nbsp&#45 x", " - x"},
		{"AT&T & &unknown; <- 3 < 4", "AT&T & &unknown <- 3 < 4"},
		{"<!-- comment --> <?xml x?>t", "   t"},
		{"&#x110000;&#99999999999;&#;&#x;", "  &#&#x"},
	} {
		for _, n := range []int{0, 1, 2, 5} {
			var h htmlView
			var got bytes.Buffer
			h.reset()
			h.out.sink = io.MultiWriter(&h.scan, &got)
			writeIn(&h, []byte(c.in), n)
			h.close()
			if got.String() != c.want {
				t.Errorf("%q, writes of %d: %q, want %q", c.in, n, got.String(), c.want)
			}
		}
	}
}

func TestRedactKeys(t *testing.T) {
	k := keysForTest(t)
	pkcs8 := strings.TrimSpace(string(k.pkcs8))
	body := keyBody(k.pkcs1)
	for _, c := range []struct{ name, in, want string }{
		{"block", "key:\n" + pkcs8 + "\nthanks", "key:\n" + keyRemoved + "\nthanks"},
		{"two blocks", pkcs8 + "\nand\n" + pkcs8, keyRemoved + "\nand\n" + keyRemoved},
		{"no end: to the end", "key:\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN\nmore", "key:\n" + keyRemoved},
		{"end only", "key:\n" + body + "-----END RSA PRIVATE KEY-----\nthanks", "key:\n" + keyRemoved + "\nthanks"},
		{"body only", "key:\n\n" + body + "\nthanks", "key:\n\n" + keyRemoved + "\n\nthanks"},
		{"body joined by spaces", "key: " + strings.ReplaceAll(body, "\n", " ") + "thanks", "key: " + keyRemoved + " thanks"},
		{"line break in the marker", strings.Replace(pkcs8, "PRIVATE KEY", "PRIVATE\nKEY", 2) + "\nx", keyRemoved + "\nx"},
		{"end only, prose before", "please find the key\n" + body + "-----END RSA PRIVATE KEY-----", "please find the key\n" + keyRemoved},
		{"body only, prose after", body + "Regards, Jane\nIT", keyRemoved + "\nRegards, Jane\nIT"},
		{"body only, prose after on the last line", strings.TrimSuffix(body, "\n") + " thanks", keyRemoved + " thanks"},
		{"nothing", "hello -- world", "hello -- world"},
	} {
		var scratch keyScanner
		var buf []byte
		got, found := redactKeys(c.in, &scratch, &buf)
		if got != c.want || found != (c.in != c.want) {
			t.Errorf("%s: %q, %v\nwant %q", c.name, got, found, c.want)
		}
	}
}

// FuzzKeyScan checks that what a keyScanner finds does not depend on how
// the stream is cut into writes, nor does what a keyPipe finds.
func FuzzKeyScan(f *testing.F) {
	// The start of a PKCS#8 RSA key is all the scanner needs (generating a
	// key under the fuzzer's instrumentation takes minutes).
	const pkcs8 = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDJlekwyHA0tB6H\n"
	for _, s := range []string{
		pkcs8, pkcs8[28:], "-----BEGIN PRIVATE\u200bKEY-----", qpAll(pkcs8), b64([]byte(pkcs8)),
		"<p>&#45;&#45;BEGIN&nbsp;RSA PRIVATE<br>KEY&mdash;", string(utf16LE("--END PRIVATE KEY-")),
	} {
		f.Add([]byte(s), uint8(7))
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		n := int(cut)%17 + 1
		if a, b := scanKind(data, 0), scanKind(data, n); a != b {
			t.Fatalf("whole: %q, in writes of %d: %q", a, n, b)
		}
		for _, cte := range []string{"quoted-printable", "base64"} {
			var whole, pieces keyPipe
			whole.reset(cte, "text/html", "", "", false)
			pieces.reset(cte, "text/html", "", "", false)
			whole.Write(data)
			writeIn(&pieces, data, n)
			if a, b := whole.secret(), pieces.secret(); a != b {
				t.Fatalf("%s: whole: %q, in writes of %d: %q", cte, a, n, b)
			}
		}
	})
}

// TestBase64Set checks the table of base64 characters against
// isBase64Char, byte by byte.
func TestBase64Set(t *testing.T) {
	for c := range 256 {
		if got, want := base64Set[c] == '1', isBase64Char(byte(c)); got != want {
			t.Errorf("byte %#x: in base64Set %v, isBase64Char %v", c, got, want)
		}
	}
}

// BenchmarkKeyScanBase64 measures the raw key scan over what most of a
// backlog's bytes are: the base64 lines of attachments.
func BenchmarkKeyScanBase64(b *testing.B) {
	data := make([]byte, 300<<10)
	rand.Read(data)
	enc := base64.StdEncoding.EncodeToString(data)
	var body bytes.Buffer
	for len(enc) > 76 {
		body.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	body.WriteString(enc + "\r\n")
	b.SetBytes(int64(body.Len()))
	var s keyScanner
	for b.Loop() {
		s.reset()
		s.Write(body.Bytes())
		s.close()
	}
}
