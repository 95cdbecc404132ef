package rules

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"github.com/ticketrouter/ticketrouter/ingest/mail"
	"github.com/ticketrouter/ticketrouter/rules/accounts"
	"github.com/ticketrouter/ticketrouter/rules/senderauth"
	"golang.org/x/net/idna"
)

// testAccounts is the directory the decision tests run against: one account
// of each colour, their partners, and accounts built to make the "Which
// account" rules ambiguous.
const testAccounts = `
accounts:
  - {id: WH-100, colour: green, name: HostingCo, admin_email: certs@hostingco.example, domains: [hostingco.example]}
  - {id: RS-200, colour: green, name: ResellCerts, admin_email: admin@resellcerts.example, domains: [resellcerts.example]}
  - {id: AF-300, colour: green, name: AffiliateSSL, admin_email: partners@affiliatessl.example}
  - {id: ALT-1, colour: red, name: ALTAIRE, username: altaire-api, admin_email: it@altaire.example,
     domains: [altaire.example], partner: RS-200, do_not_reset: true}
  - {id: B-1, colour: blue, name: Bakery, admin_email: owner@bakery.example, domains: [bakery.example],
     partner: WH-100, orders: [{number: "5100001", domain: bakery.example, product: ssl}]}
  - {id: R-1, colour: red, username: redwood, admin_email: admin@redwood.example, domains: [redwood.example],
     partner: RS-200, orders: [{number: "5200001", product: ssl}]}
  - {id: P-1, colour: pink, username: pinkerton, admin_email: pki@pinkerton.example, domains: [pinkerton.example],
     orders: [{number: "5300001", domain: www.pinkerton.example, product: ssl}]}
  - {id: G-1, colour: green, username: acmeadmin, admin_email: admin@acmecorp.example, domains: [acmecorp.example],
     orders: [{number: "5400001", product: ssl}, {number: "5400002", product: code-signing}]}
  - {id: DG-1, colour: dark-green, username: darkwood, admin_email: it@darkwood.example, domains: [darkwood.example],
     partner: AF-300, orders: [{number: "5500001", product: ssl}]}
  - {id: G-2, colour: green, admin_email: shared@multi.example, domains: [alpha.example]}
  - {id: G-3, colour: green, admin_email: shared@multi.example, domains: [beta.example]}
  - {id: G-4, colour: green, admin_email: a@four.example, domains: [shared-domain.example]}
  - {id: G-5, colour: green, admin_email: a@five.example, domains: [shared-domain.example]}
  - {id: G-6, colour: green, username: jsmith, admin_email: js@jsmith-co.example}
  - {id: G-7, colour: green, admin_email: admin@bücher.example, domains: [bücher.example]}
`

// msg builds a raw mail. extra holds more header lines; body is the text.
func msg(from, subject, body string, extra ...string) string {
	var b strings.Builder
	if from != "" {
		b.WriteString("From: " + from + "\r\n")
	}
	b.WriteString("To: support@ca.example\r\nSubject: " + subject + "\r\nMessage-ID: <t@test>\r\n")
	for _, e := range extra {
		b.WriteString(e + "\r\n")
	}
	if !slices.ContainsFunc(extra, func(e string) bool { return strings.HasPrefix(strings.ToLower(e), "content-type") }) {
		b.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	}
	b.WriteString("\r\n" + body + "\r\n")
	return b.String()
}

type want struct {
	disposition string
	colour      string
	row         int
	account     string // "" means no account
	intent      string // checked when set
	candidates  []string
	// checks, when set
	senderAdmin, partnerAdmin, domainNamed, orderMatched, usernameNamed *bool
	guidance                                                            []string // each must be a substring of some guidance line
	noGuidance                                                          []string // none may be
	keyExposed                                                          bool
	bodyHas                                                             []string
	bodyLacks                                                           []string
	subject                                                             string // redacted subject, when set
}

var yes, no = ptr(true), ptr(false)

func ptr(b bool) *bool { return &b }

func mustDirectory(t testing.TB) *accounts.Directory {
	t.Helper()
	dir, err := accounts.ParseDirectory("test accounts", []byte(testAccounts))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func decide(t testing.TB, p *Policy, dir *accounts.Directory, raw string) (*mail.Request, *Decision) {
	t.Helper()
	req, err := mail.Parse(strings.NewReader(raw), mail.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return req, Decide(p, dir, senderauth.Judge(senderauth.Config{}, req, nil), req)
}

func TestDecide(t *testing.T) {
	p := DefaultPolicy()
	dir := mustDirectory(t)
	homoglyph := "\u0430cmecorp.example" // Cyrillic a
	puny, err := idna.Lookup.ToASCII(homoglyph)
	if err != nil {
		t.Fatal(err)
	}
	const admin = "Acme Admin <admin@acmecorp.example>"
	const stranger = "Someone <someone@elsewhere.example>"
	pemKey := "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAtopsecretkeymaterial\nQWxhZGRpbjpvcGVuIHNlc2FtZQ==\n-----END RSA PRIVATE KEY-----"

	cases := []struct {
		name string
		raw  string
		want want
	}{
		// Row 1: automatic mail.
		{"row1 auto-submitted", msg(admin, "Out of office", "Away until Monday.", "Auto-Submitted: auto-replied"),
			want{disposition: "ignored", colour: "green", row: 1, account: "G-1", guidance: []string{"No reply, ever"}, noGuidance: []string{"Reply-To", "username may"}}},
		{"row1 auto-generated with params", msg(admin, "Notice", "x", "Auto-Submitted: auto-generated; owner-email=x@y"),
			want{disposition: "ignored", row: 1, colour: "green", account: "G-1"}},
		{"row1 precedence bulk", msg(stranger, "News", "x", "Precedence: bulk"), want{disposition: "ignored", row: 1, colour: "unknown"}},
		{"row1 precedence junk", msg(stranger, "News", "x", "Precedence: junk"), want{disposition: "ignored", row: 1, colour: "unknown"}},
		{"row1 precedence list", msg(stranger, "News", "x", "Precedence: list"), want{disposition: "ignored", row: 1, colour: "unknown"}},
		{"row1 x-autoreply", msg(stranger, "Re: ticket", "x", "X-Autoreply: yes"), want{disposition: "ignored", row: 1, colour: "unknown"}},
		{"row1 mailer-daemon", msg("Mail Delivery System <MAILER-DAEMON@mx.example>", "Undelivered Mail", "reset my password"),
			want{disposition: "ignored", row: 1, colour: "unknown"}},
		{"row1 postmaster", msg("postmaster@mx.example", "Delivery failure", "x"), want{disposition: "ignored", row: 1, colour: "unknown"}},
		{"row1 null return-path", msg(stranger, "Returned mail", "x", "Return-Path: <>"), want{disposition: "ignored", row: 1, colour: "unknown"}},
		{"row1 multipart/report", msg(stranger, "Delivery Status Notification", "--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b--",
			"Content-Type: multipart/report; report-type=delivery-status; boundary=b"), want{disposition: "ignored", row: 1, colour: "unknown"}},
		{"row1 auto-submitted no is a person", msg(admin, "Password reset", "please reset my password", "Auto-Submitted: no"),
			want{disposition: "verified", row: 12, colour: "green", account: "G-1"}},

		// Row 2: the ALTAIRE account is never reset, whatever else holds.
		{"row2 do_not_reset", msg("ALTAIRE IT <it@altaire.example>", "Password reset", "we forgot our password"),
			want{disposition: "blocked", colour: "red", row: 2, account: "ALT-1", guidance: []string{"Never reset"}}},
		{"row2 beats code-signing", msg("it@altaire.example", "PFX password", "we lost the pfx password"),
			want{disposition: "blocked", row: 2, colour: "red", account: "ALT-1", intent: "code-signing"}},

		// Row 3: code signing.
		{"row3 code-signing with account", msg(admin, "Code signing", "I lost the certificate password for order 5400002"),
			want{disposition: "code-signing", colour: "green", row: 3, account: "G-1", intent: "code-signing", guidance: []string{"export the certificate again"}}},
		{"row3 code-signing without account", msg(stranger, "PFX", "What is the password of the pfx file?"),
			want{disposition: "code-signing", colour: "unknown", row: 3, intent: "code-signing"}},
		{"row3 code-signing german", msg(admin, "Zertifikat", "Ich habe das Zertifikatspasswort vergessen."),
			want{disposition: "code-signing", row: 3, colour: "green", account: "G-1", intent: "code-signing"}},
		{"row3 code-signing italian", msg(admin, "Certificato", "Ho perso la password del certificato."),
			want{disposition: "code-signing", row: 3, colour: "green", account: "G-1", intent: "code-signing"}},

		// Rows 4 and 5: blue (web host).
		{"row4 blue partner admin", msg("certs@hostingco.example", "Reset", "reset the password for our customer, order 5100001"),
			want{disposition: "verified", colour: "blue", row: 4, account: "B-1", partnerAdmin: yes, senderAdmin: no, guidance: []string{"HostingCo"}}},
		{"row5 blue customer admin", msg("owner@bakery.example", "Forgot my password", "I forgot my password"),
			want{disposition: "refer-to-web-host", colour: "blue", row: 5, account: "B-1", senderAdmin: yes, partnerAdmin: no,
				guidance: []string{"refer them back to HostingCo", "Do not give out the username"}}},
		{"row5 blue stranger", msg(stranger, "Reset", "please reset the password for bakery.example"),
			want{disposition: "refer-to-web-host", colour: "blue", row: 5, account: "B-1", domainNamed: yes}},

		// Rows 6 and 7: red (reseller).
		{"row6 red partner admin", msg("admin@resellcerts.example", "Reset", "reset for redwood.example please, order 5200001"),
			want{disposition: "verified", colour: "red", row: 6, account: "R-1", partnerAdmin: yes, guidance: []string{"reseller ResellCerts"}}},
		{"partner without order is its own account", msg("admin@resellcerts.example", "Reset", "reset for redwood.example please"),
			want{disposition: "verified", colour: "green", row: 12, account: "RS-200", guidance: []string{"several accounts (RS-200, R-1)"}}},
		{"row7 red customer", msg("admin@redwood.example", "Passwort vergessen", "Ich habe mein Passwort vergessen."),
			want{disposition: "refer-to-reseller", colour: "red", row: 7, account: "R-1", senderAdmin: yes, guidance: []string{"SASP users must all be authorised"}}},

		// Rows 8 to 10: pink (EPKI).
		{"row8 pink order matched", msg(stranger, "Forgotten password", "my order number is 5300001"),
			want{disposition: "self-service", colour: "pink", row: 8, account: "P-1", orderMatched: yes, senderAdmin: no,
				guidance: []string{"automated password reminder", "username may be given"}}},
		{"row9 pink admin names domain", msg("pki@pinkerton.example", "Reset", "please reset the account for pinkerton.example"),
			want{disposition: "verified", colour: "pink", row: 9, account: "P-1", senderAdmin: yes, domainNamed: yes}},
		{"row9 pink admin names sub-domain", msg("pki@pinkerton.example", "Reset", "our cert for shop.pinkerton.example"),
			want{disposition: "verified", colour: "pink", row: 9, account: "P-1", domainNamed: yes}},
		{"row9 pink admin names order domain", msg("pki@pinkerton.example", "Reset", "the one for www.pinkerton.example"),
			want{disposition: "verified", colour: "pink", row: 9, account: "P-1", domainNamed: yes}},
		{"row10 pink admin without domain", msg("pki@pinkerton.example", "Reset", "please reset our password"),
			want{disposition: "needs-verification", colour: "pink", row: 10, account: "P-1", senderAdmin: yes, domainNamed: no,
				guidance: []string{"names the original domain"}}},
		{"row10 pink stranger names domain", msg(stranger, "Reset", "reset pinkerton.example please"),
			want{disposition: "needs-verification", colour: "pink", row: 10, account: "P-1", senderAdmin: no, domainNamed: yes}},

		// Rows 11 to 13: green and dark green.
		{"row11 green order and admin", msg(admin, "Reset", "forgot my password, order 5400001"),
			want{disposition: "self-service", colour: "green", row: 11, account: "G-1", orderMatched: yes, senderAdmin: yes,
				guidance: []string{"'forgotten password' link"}}},
		{"row11 green order and username", msg(stranger, "Reset", "order 5400001, username acmeadmin"),
			want{disposition: "self-service", colour: "green", row: 11, account: "G-1", senderAdmin: no, usernameNamed: yes}},
		{"row11 dark-green order and admin", msg("it@darkwood.example", "Reset", "order 5500001"),
			want{disposition: "self-service", colour: "dark-green", row: 11, account: "DG-1"}},
		{"row12 green admin", msg(admin, "Password reset", "please reset my password"),
			want{disposition: "verified", colour: "green", row: 12, account: "G-1", senderAdmin: yes, orderMatched: no,
				guidance: []string{"Reset allowed", "admin address on file (admin@acmecorp.example)"}}},
		{"row12 dark-green admin", msg("it@darkwood.example", "Password reset", "please reset"),
			want{disposition: "verified", colour: "dark-green", row: 12, account: "DG-1"}},
		{"row13 green order without admin or username", msg(stranger, "Reset", "order 5400001"),
			want{disposition: "needs-verification", colour: "green", row: 13, account: "G-1", orderMatched: yes, usernameNamed: no}},
		{"row13 green stranger names domain", msg(stranger, "Reset", "reset acmecorp.example"),
			want{disposition: "needs-verification", colour: "green", row: 13, account: "G-1", guidance: []string{"as much detail as possible"}}},
		{"row13 username inside a longer word does not count", msg(stranger, "Reset", "order 5400001, user acmeadmin2"),
			want{disposition: "needs-verification", row: 13, colour: "green", account: "G-1", usernameNamed: no}},

		// Row 14 and dead letters.
		{"row14 nothing matches", msg("nobody@unknown.example", "Wachtwoord vergeten", "ik ben mijn wachtwoord vergeten"),
			want{disposition: "unmatched", colour: "unknown", row: 14, candidates: []string{}, guidance: []string{"locate the order by hand"}}},
		{"deadletter headerless", "\x00\x01garbage without any header", want{disposition: "deadletter", colour: "unknown", row: 0}},
		{"deadletter empty", "", want{disposition: "deadletter", colour: "unknown", row: 0}},

		// Which account.
		{"order beats sender", msg(admin, "Reset", "order 5300001"),
			want{disposition: "self-service", colour: "pink", row: 8, account: "P-1", senderAdmin: no}},
		{"first of two orders, both named", msg(admin, "Reset", "orders 5400001 and 5300001"),
			want{disposition: "self-service", row: 11, colour: "green", account: "G-1", guidance: []string{"several accounts (G-1, P-1)"}}},
		{"order inside ORDER- prefix", msg(admin, "Reset", "ref ORDER-5400001"),
			want{disposition: "self-service", row: 11, colour: "green", account: "G-1", orderMatched: yes}},
		{"order digits inside a longer number do not count", msg(stranger, "Reset", "call 0154000012"),
			want{disposition: "unmatched", row: 14, colour: "unknown", orderMatched: no}},
		{"shared admin picks named domain", msg("shared@multi.example", "Reset", "for alpha.example"),
			want{disposition: "verified", row: 12, colour: "green", account: "G-2", senderAdmin: yes}},
		{"shared admin without domain is unmatched", msg("shared@multi.example", "Reset", "please reset"),
			want{disposition: "unmatched", row: 14, colour: "unknown", candidates: []string{"G-2", "G-3"}}},
		{"shared admin naming both is unmatched", msg("shared@multi.example", "Reset", "alpha.example and beta.example"),
			want{disposition: "unmatched", row: 14, colour: "unknown", candidates: []string{"G-2", "G-3"}}},
		{"username cue picks account", msg(stranger, "Forgot password", "My username: jsmith"),
			want{disposition: "needs-verification", row: 13, colour: "green", account: "G-6", usernameNamed: yes}},
		{"username cue in german", msg(stranger, "Passwort", "Benutzername ist JSmith."),
			want{disposition: "needs-verification", row: 13, colour: "green", account: "G-6", usernameNamed: yes}},
		{"domain shared by two accounts is unmatched", msg(stranger, "Reset", "shared-domain.example"),
			want{disposition: "unmatched", row: 14, colour: "unknown", candidates: []string{"G-4", "G-5"}}},
		{"domain in a URL", msg(stranger, "Reset", "see https://www.acmecorp.example/login"),
			want{disposition: "needs-verification", row: 13, colour: "green", account: "G-1", domainNamed: yes}},
		{"look-alike suffix domain", msg(stranger, "Reset", "reset acmecorp.example.evil.test"),
			want{disposition: "unmatched", row: 14, colour: "unknown"}},
		{"look-alike prefix domain", msg(stranger, "Reset", "reset evil-acmecorp.example"),
			want{disposition: "unmatched", row: 14, colour: "unknown"}},
		{"homoglyph domain", msg(stranger, "Reset", "reset "+homoglyph), want{disposition: "unmatched", row: 14, colour: "unknown"}},
		{"punycode homoglyph domain", msg(stranger, "Reset", "reset "+puny), want{disposition: "unmatched", row: 14, colour: "unknown"}},
		{"unicode domain named as A-label", msg(stranger, "Reset", "reset xn--bcher-kva.example"),
			want{disposition: "needs-verification", row: 13, colour: "green", account: "G-7", domainNamed: yes}},

		// Spoofing: only the single From address counts.
		{"display-name spoof", msg(`"admin@acmecorp.example" <attacker@evil.test>`, "Reset", "reset acmecorp.example"),
			want{disposition: "needs-verification", row: 13, colour: "green", account: "G-1", senderAdmin: no,
				guidance: []string{"display name shows an address (admin@acmecorp.example)"}}},
		{"two From headers", msg(admin, "Reset", "reset acmecorp.example", "From: attacker@evil.test"),
			want{disposition: "needs-verification", row: 13, colour: "green", account: "G-1", senderAdmin: no,
				guidance: []string{"From header is ambiguous (2 From headers)"}}},
		{"two mailboxes in From", msg("admin@acmecorp.example, attacker@evil.test", "Reset", "reset acmecorp.example"),
			want{disposition: "needs-verification", row: 13, colour: "green", account: "G-1", senderAdmin: no,
				guidance: []string{"holds 2 mailboxes"}}},
		{"reply-to set to the admin", msg("attacker@evil.test", "Reset", "reset acmecorp.example", "Reply-To: admin@acmecorp.example"),
			want{disposition: "needs-verification", row: 13, colour: "green", account: "G-1", senderAdmin: no,
				guidance: []string{"Reply-To (admin@acmecorp.example) differs"}}},
		{"sender header set to the admin", msg("attacker@evil.test", "Reset", "reset acmecorp.example", "Sender: admin@acmecorp.example"),
			want{disposition: "needs-verification", row: 13, colour: "green", account: "G-1", senderAdmin: no}},
		{"resent-from set to the admin", msg("attacker@evil.test", "Reset", "reset acmecorp.example", "Resent-From: admin@acmecorp.example"),
			want{disposition: "needs-verification", row: 13, colour: "green", account: "G-1", senderAdmin: no}},
		{"look-alike sender domain", msg("admin@acmecorp.example.evil.test", "Reset", "reset acmecorp.example"),
			want{disposition: "needs-verification", row: 13, colour: "green", account: "G-1", senderAdmin: no}},
		{"homoglyph sender domain", msg("admin@"+homoglyph, "Reset", "reset acmecorp.example"),
			want{disposition: "needs-verification", row: 13, colour: "green", account: "G-1", senderAdmin: no}},
		{"plus tag is another sender", msg("admin+it@acmecorp.example", "Reset", "reset acmecorp.example"),
			want{disposition: "needs-verification", row: 13, colour: "green", account: "G-1", senderAdmin: no}},
		{"sender compared case-insensitively", msg("ADMIN@AcmeCorp.Example", "Password reset", "please reset my password"),
			want{disposition: "verified", row: 12, colour: "green", account: "G-1", senderAdmin: yes}},
		{"sender IDN compared as A-label", msg("admin@xn--bcher-kva.example", "Reset", "reset please"),
			want{disposition: "verified", row: 12, colour: "green", account: "G-7", senderAdmin: yes}},
		{"unparsable From", msg("admin@acmecorp.example <<broken", "Reset", "reset acmecorp.example"),
			want{disposition: "needs-verification", row: 13, colour: "green", account: "G-1", senderAdmin: no}},

		// Encodings reach the rules decoded.
		{"quoted-printable french", msg(admin, "Aide", "J'ai oubli=C3=A9 mon mot de passe. Commande 54000=\r\n01", "Content-Transfer-Encoding: quoted-printable"),
			want{disposition: "self-service", row: 11, colour: "green", account: "G-1", intent: "password-reset"}},
		{"base64 german", msg(admin, "Hilfe", base64.StdEncoding.EncodeToString([]byte("Wie lautet mein Passwort? Bestellung 5400001")), "Content-Transfer-Encoding: base64"),
			want{disposition: "self-service", row: 11, colour: "green", account: "G-1", intent: "password-disclosure"}},
		{"latin-1 body", msg(stranger, "Hilfe", "Passwort zur\xfccksetzen f\xfcr acmecorp.example", "Content-Type: text/plain; charset=iso-8859-1"),
			want{disposition: "needs-verification", row: 13, colour: "green", account: "G-1", intent: "password-reset", bodyHas: []string{"zurücksetzen"}}},
		{"windows-1252 quotes around a domain", msg(stranger, "Reset", "reset \x93acmecorp.example\x94 please", "Content-Type: text/plain; charset=windows-1252"),
			want{disposition: "needs-verification", row: 13, colour: "green", account: "G-1", bodyHas: []string{"“acmecorp.example”"}}},
		{"encoded-word subject", msg(stranger, "=?iso-8859-1?q?Contrase=F1a_olvidada?=", "x"),
			want{disposition: "unmatched", row: 14, colour: "unknown", intent: "password-reset", subject: "Contraseña olvidada"}},
		{"html-only", msg(admin, "Reset", "<html><body><p>Forgot my password,</p><p>order <b>5400001</b></p><script>x=1</script></body></html>", "Content-Type: text/html; charset=utf-8"),
			want{disposition: "self-service", row: 11, colour: "green", account: "G-1", bodyHas: []string{"order 5400001"}, bodyLacks: []string{"<b>", "x=1"}}},

		// Intents in several languages.
		{"intent username reminder", msg(admin, "Help", "I forgot my username"), want{disposition: "verified", row: 12, colour: "green", account: "G-1", intent: "username-reminder"}},
		{"intent password disclosure", msg(admin, "Help", "Please send me my password"), want{disposition: "verified", row: 12, colour: "green", account: "G-1", intent: "password-disclosure"}},
		{"intent other", msg(admin, "Invoice", "Where is my invoice?"), want{disposition: "verified", row: 12, colour: "green", account: "G-1", intent: "other"}},
		{"intent default", msg(admin, "Hello", "Hello there"), want{disposition: "verified", row: 12, colour: "green", account: "G-1", intent: "password-reset"}},
		{"intent dutch username", msg(admin, "Hulp", "Ik ben mijn gebruikersnaam vergeten"), want{disposition: "verified", row: 12, colour: "green", account: "G-1", intent: "username-reminder"}},
		{"intent portuguese", msg(admin, "Ajuda", "Esqueci minha senha"), want{disposition: "verified", row: 12, colour: "green", account: "G-1", intent: "password-reset"}},
		{"intent spanish disclosure", msg(admin, "Ayuda", "¿Cuál es mi contraseña?"), want{disposition: "verified", row: 12, colour: "green", account: "G-1", intent: "password-disclosure"}},
		{"intent french username", msg(admin, "Aide", "J'ai oublié mon nom d'utilisateur"), want{disposition: "verified", row: 12, colour: "green", account: "G-1", intent: "username-reminder"}},

		// Secrets never reach the ticket.
		{"password after colon", msg(admin, "Reset", "old Password: hunter2 please reset"),
			want{disposition: "verified", row: 12, colour: "green", account: "G-1", bodyHas: []string{"old Password: [redacted]"}, bodyLacks: []string{"hunter2", "please reset"}}},
		{"password is secret", msg(admin, "Reset", "my password is Summer2024! and it fails"),
			want{disposition: "verified", row: 12, colour: "green", account: "G-1", bodyHas: []string{"my password is [redacted]"}, bodyLacks: []string{"Summer2024", "and it fails"}}},
		{"password is harmless word kept", msg(admin, "Reset", "my password is expired"),
			want{disposition: "verified", row: 12, colour: "green", account: "G-1", bodyHas: []string{"password is expired"}}},
		{"german password phrase", msg(admin, "Reset", "Mein Passwort lautet Geheim123 und geht nicht"),
			want{disposition: "verified", row: 12, colour: "green", account: "G-1", bodyLacks: []string{"Geheim123"}}},
		{"password in subject", msg(admin, "new password = abc123xyz", "x"),
			want{disposition: "verified", row: 12, colour: "green", account: "G-1", subject: "new password = [redacted]"}},
		{"pem private key", msg(admin, "Key", "here is our key\n"+pemKey+"\nthanks"),
			want{disposition: "verified", row: 12, colour: "green", account: "G-1", keyExposed: true,
				bodyHas: []string{"[private key removed]", "thanks"}, bodyLacks: []string{"topsecret", "BEGIN RSA"}, guidance: []string{"key compromise"}}},
		{"pem private key cut off", msg(admin, "Key", "key:\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANtopsecret"),
			want{disposition: "verified", row: 12, colour: "green", account: "G-1", keyExposed: true, bodyLacks: []string{"topsecret"}}},
		{"certificate is no key", msg(admin, "Cert", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"),
			want{disposition: "verified", row: 12, colour: "green", account: "G-1", keyExposed: false, bodyHas: []string{"BEGIN CERTIFICATE"}}},
		{"pfx attachment", msg(admin, "PFX", "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/x-pkcs12; name=cert.pfx\r\nContent-Transfer-Encoding: base64\r\n\r\nMIIKAgEDMIIJ\r\n--b--",
			"Content-Type: multipart/mixed; boundary=b"),
			want{disposition: "verified", row: 12, colour: "green", account: "G-1", keyExposed: true, guidance: []string{"revocation team"}}},
		{"key in ignored mail still flagged", msg(admin, "Auto", pemKey, "Auto-Submitted: auto-replied"),
			want{disposition: "ignored", row: 1, colour: "green", account: "G-1", keyExposed: true}},
	}
	if len(cases) < 60 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, d := decide(t, p, dir, c.raw)
			w := c.want
			if d.Disposition != w.disposition || d.Colour != w.colour || d.Row != w.row {
				t.Errorf("got %s/%s row %d, want %s/%s row %d\n%s", d.Colour, d.Disposition, d.Row, w.colour, w.disposition, w.row, strings.Join(d.Trace, "\n"))
			}
			gotAccount := ""
			if d.Account != nil {
				gotAccount = d.Account.ID
			}
			if gotAccount != w.account {
				t.Errorf("account %q, want %q (%s)", gotAccount, w.account, d.AccountReason)
			}
			if w.intent != "" && d.Intent != w.intent {
				t.Errorf("intent %q, want %q (%s)", d.Intent, w.intent, d.IntentReason)
			}
			if w.candidates != nil && !slices.Equal(d.Candidates, w.candidates) && !(len(w.candidates) == 0 && len(d.Candidates) == 0) {
				t.Errorf("candidates %v, want %v", d.Candidates, w.candidates)
			}
			for _, ck := range []struct {
				name string
				want *bool
				got  Check
			}{
				{"sender_is_admin", w.senderAdmin, d.Checks.SenderIsAdmin},
				{"sender_is_partner_admin", w.partnerAdmin, d.Checks.SenderIsPartnerAdmin},
				{"domain_named", w.domainNamed, d.Checks.DomainNamed},
				{"order_matched", w.orderMatched, d.Checks.OrderMatched},
				{"username_named", w.usernameNamed, d.Checks.UsernameNamed},
			} {
				if ck.want != nil && ck.got.OK != *ck.want {
					t.Errorf("%s = %v (%s), want %v", ck.name, ck.got.OK, ck.got.Reason, *ck.want)
				}
				if ck.got.Reason == "" {
					t.Errorf("%s has no reason", ck.name)
				}
			}
			for _, g := range w.guidance {
				if !slices.ContainsFunc(d.Guidance, func(l string) bool { return strings.Contains(l, g) }) {
					t.Errorf("no guidance line contains %q:\n%s", g, strings.Join(d.Guidance, "\n"))
				}
			}
			for _, g := range w.noGuidance {
				if slices.ContainsFunc(d.Guidance, func(l string) bool { return strings.Contains(l, g) }) {
					t.Errorf("a guidance line contains %q:\n%s", g, strings.Join(d.Guidance, "\n"))
				}
			}
			if !slices.ContainsFunc(d.Guidance, func(l string) bool { return strings.Contains(l, "never given out") }) {
				t.Errorf("guidance lacks the never-give-out-passwords line")
			}
			if d.KeyExposed != w.keyExposed {
				t.Errorf("key_exposed = %v, want %v", d.KeyExposed, w.keyExposed)
			}
			for _, s := range w.bodyHas {
				if !strings.Contains(d.Body, s) {
					t.Errorf("body lacks %q: %q", s, d.Body)
				}
			}
			for _, s := range w.bodyLacks {
				if strings.Contains(d.Body, s) || strings.Contains(d.Subject, s) {
					t.Errorf("body or subject holds %q: %q %q", s, d.Subject, d.Body)
				}
			}
			if w.subject != "" && d.Subject != w.subject {
				t.Errorf("subject %q, want %q", d.Subject, w.subject)
			}
		})
	}
}

// TestDecideTraceNamesEveryRowTried checks --explain's raw material: one
// trace line per row tried, ending with the row that fired.
func TestDecideTraceNamesEveryRowTried(t *testing.T) {
	p := DefaultPolicy()
	_, d := decide(t, p, mustDirectory(t), msg("it@darkwood.example", "Password reset", "please reset"))
	var rows []string
	for _, l := range d.Trace {
		if strings.HasPrefix(l, "row ") {
			rows = append(rows, l)
		}
	}
	if len(rows) != 12 || !strings.HasPrefix(rows[11], "row 12 verified: yes") {
		t.Fatalf("trace rows:\n%s", strings.Join(rows, "\n"))
	}
	for _, l := range rows[:11] {
		if !strings.Contains(l, ": no: ") {
			t.Errorf("row line without a reason: %q", l)
		}
	}
}

// TestDecideCustomPolicy shows the policy is data: a table that sends all
// green mail to one queue changes the decision without code.
func TestDecideCustomPolicy(t *testing.T) {
	y := strings.Replace(string(DefaultPolicyYAML()), "  - id: 11\n", `  - id: 99
    when: {colour: [green]}
    disposition: green-desk
    guidance: ["All green mail goes to the green desk ({account})."]
  - id: 11
`, 1)
	p, err := ParsePolicy("custom.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	_, d := decide(t, p, mustDirectory(t), msg("Acme Admin <admin@acmecorp.example>", "Password reset", "reset"))
	if d.Disposition != "green-desk" || d.Row != 99 || d.Guidance[0] != "All green mail goes to the green desk (G-1)." {
		t.Fatalf("got %s row %d %q", d.Disposition, d.Row, d.Guidance)
	}
}

// TestDecideParseProblemsRedacted: parse problems quote input lines, which
// may hold a pasted password; they are redacted like the body.
func TestDecideParseProblemsRedacted(t *testing.T) {
	raw := "From: a@b.example\r\nSubject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nthe password is hunter2\r\n\r\ntext\r\n--b--\r\n"
	req, d := decide(t, DefaultPolicy(), mustDirectory(t), raw)
	if len(req.Problems) == 0 {
		t.Fatal("expected a parse problem")
	}
	for _, pr := range d.Problems {
		if strings.Contains(pr, "hunter2") {
			t.Errorf("problem leaks the password: %q", pr)
		}
	}
	if !slices.ContainsFunc(d.Guidance, func(l string) bool { return strings.Contains(l, "malformed") }) {
		t.Errorf("no guidance about the malformed mail: %q", d.Guidance)
	}
}

// TestDecideNeverMarked: the rules that say never or do not are marked by
// the policy data (a guidance line {text, never: true}), not found by
// searching the text, and the decision says which lines they are.
func TestDecideNeverMarked(t *testing.T) {
	_, d := decide(t, DefaultPolicy(), mustDirectory(t), msg("Acme Admin <admin@acmecorp.example>", "Password reset", "reset"))
	var never, other []string
	for i, g := range d.Guidance {
		if slices.Contains(d.Never, i) {
			never = append(never, g)
		} else {
			other = append(other, g)
		}
	}
	for _, want := range []string{"Passwords are never given out", "A reset only ever goes to the admin address"} {
		if !slices.ContainsFunc(never, func(l string) bool { return strings.HasPrefix(l, want) }) {
			t.Errorf("%q not marked never; never lines: %q", want, never)
		}
	}
	if !slices.ContainsFunc(other, func(l string) bool { return strings.HasPrefix(l, "Reset allowed") }) {
		t.Errorf("the row's guidance should not be a never rule; other lines: %q", other)
	}

	y := strings.Replace(string(DefaultPolicyYAML()), "  - id: 11\n", `  - id: 99
    when: {colour: [green]}
    disposition: green-desk
    guidance: ["Plain advice.", {text: "Do not call {account}.", never: true}]
  - id: 11
`, 1)
	p, err := ParsePolicy("custom.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	_, d = decide(t, p, mustDirectory(t), msg("Acme Admin <admin@acmecorp.example>", "Password reset", "reset"))
	if d.Guidance[1] != "Do not call G-1." || !slices.Contains(d.Never, 1) || slices.Contains(d.Never, 0) {
		t.Fatalf("guidance %q never %v", d.Guidance, d.Never)
	}
	bad := strings.Replace(y, `{account}.", never: true}`, `{account}.", nevr: true}`, 1)
	if _, err := ParsePolicy("bad.yaml", []byte(bad)); err == nil || !strings.Contains(err.Error(), "nevr") {
		t.Errorf("a misspelt key in a guidance line: err = %v", err)
	}
}
