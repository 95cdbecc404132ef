package mail

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// want is what a test case expects of a parsed Request. Every field is
// checked: zero values mean "must be empty", except where noted.
type want struct {
	from        Mailbox
	fromProblem bool // FromProblem set and FromAmbiguous true
	replyTo     []Mailbox
	subject     string
	messageID   string
	date        string // RFC 3339, "" for the zero time
	loop        Loop   // ContentType is only checked when set here
	text        string // exact Text, unless textHas is set
	textHas     []string
	textNot     []string
	attachments []Attachment
	// problems lists one substring per expected problem, in order; the
	// number of problems must match exactly.
	problems   []string
	headerless bool
}

// sum is the hex SHA-256 of s.
func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// crlf turns LF line ends into CRLF.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// pfxBlob is the start of a DER PKCS#12 PFX: SEQUENCE { INTEGER 3,
// SEQUENCE { OID id-data, ... } }, padded to n bytes.
func pfxBlob(n int) []byte {
	b := []byte{0x30, 0x82, 0x0a, 0x10, 0x02, 0x01, 0x03, 0x30, 0x82, 0x09, 0xd6,
		0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01, 0xa0, 0x82}
	for len(b) < n {
		b = append(b, byte(len(b)*7))
	}
	return b
}

// b64 encodes b as base64 in lines of 76 characters.
func b64(b []byte) string {
	enc := base64.StdEncoding.EncodeToString(b)
	var sb strings.Builder
	for len(enc) > 76 {
		sb.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	sb.WriteString(enc)
	return sb.String()
}

const alice = "From: Alice Example <alice@example.com>\n"

var parseCases = []struct {
	name string
	raw  string
	lim  Limits
	want want
}{
	{
		name: "plain mail",
		raw: "From: alice@example.com\nTo: support@ca.example\nSubject: Reset my password\n" +
			"Date: Tue, 04 Mar 2025 10:15:00 +0100\nMessage-ID: <m1@example.com>\n\n" +
			"Hello,\nplease reset the password of account 1234.\n",
		want: want{
			from: Mailbox{Address: "alice@example.com"}, subject: "Reset my password",
			messageID: "m1@example.com", date: "2025-03-04T10:15:00+01:00",
			text: "Hello,\nplease reset the password of account 1234.",
		},
	},
	{
		name: "CRLF line ends give the same request as LF",
		raw: crlf("From: alice@example.com\nSubject: Reset my password\n" +
			"Date: Tue, 04 Mar 2025 10:15:00 +0100\nMessage-ID: <m1@example.com>\n\n" +
			"Hello,\nplease reset the password of account 1234.\n"),
		want: want{
			from: Mailbox{Address: "alice@example.com"}, subject: "Reset my password",
			messageID: "m1@example.com", date: "2025-03-04T10:15:00+01:00",
			text: "Hello,\nplease reset the password of account 1234.",
		},
	},
	{
		name: "From with display name",
		raw:  alice + "Subject: hi\n\nbody\n",
		want: want{from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, subject: "hi", text: "body"},
	},
	{
		name: "From with quoted display name holding a comma",
		raw:  "From: \"Example, Alice\" <alice@example.com>\n\nbody\n",
		want: want{from: Mailbox{Name: "Example, Alice", Address: "alice@example.com"}, text: "body"},
	},
	{
		name: "encoded words, Q, utf-8",
		raw:  "From: =?UTF-8?Q?Andr=C3=A9_Dupont?= <andre@example.fr>\nSubject: =?utf-8?q?Caf=C3=A9_ouvert?=\n\nx\n",
		want: want{from: Mailbox{Name: "André Dupont", Address: "andre@example.fr"}, subject: "Café ouvert", text: "x"},
	},
	{
		name: "encoded words, B, utf-8",
		raw:  "From: =?utf-8?B?Q2Fmw6kgb3V2ZXJ0?= <cafe@example.fr>\nSubject: =?UTF-8?B?Q2Fmw6kgb3V2ZXJ0?=\n\nx\n",
		want: want{from: Mailbox{Name: "Café ouvert", Address: "cafe@example.fr"}, subject: "Café ouvert", text: "x"},
	},
	{
		name: "encoded words, Q and B, iso-8859-1",
		raw:  "From: =?ISO-8859-1?Q?Ren=E9_M=FCller?= <rene@example.de>\nSubject: =?iso-8859-1?b?UulzdW3p?=\n\nx\n",
		want: want{from: Mailbox{Name: "René Müller", Address: "rene@example.de"}, subject: "Résumé", text: "x"},
	},
	{
		name: "adjacent encoded words join, folded subject unfolds",
		raw:  "From: a@example.com\nSubject: =?utf-8?q?Renew_?=\n =?utf-8?q?certificate?= for\n\tshop.example.com\n\nx\n",
		want: want{from: Mailbox{Address: "a@example.com"}, subject: "Renew certificate for shop.example.com", text: "x"},
	},
	{
		name: "encoded word in an unknown charset is kept raw",
		raw:  "From: a@example.com\nSubject: =?x-klingon?q?Qapla?=\n\nx\n",
		want: want{
			from: Mailbox{Address: "a@example.com"}, subject: "=?x-klingon?q?Qapla?=", text: "x",
			problems: []string{"Subject:"},
		},
	},
	{
		name: "raw 8-bit latin-1 subject is read as windows-1252",
		raw:  "From: a@example.com\nSubject: R\xe9sum\xe9 \x80 10\n\nx\n",
		want: want{
			from: Mailbox{Address: "a@example.com"}, subject: "Résumé € 10", text: "x",
			problems: []string{"Subject: 8-bit bytes that are not UTF-8"},
		},
	},
	{
		name: "raw UTF-8 subject (RFC 6532) is kept without a problem",
		raw:  "From: a@example.com\nSubject: Grüße aus Köln\n\nx\n",
		want: want{from: Mailbox{Address: "a@example.com"}, subject: "Grüße aus Köln", text: "x"},
	},
	{
		name: "quoted-printable body with soft line breaks",
		raw: alice + "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n" +
			"Caf=C3=A9 au lait, this line is long and was wrapped by the sender's mai=\nler here.\nA=3DB\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"},
			text: "Café au lait, this line is long and was wrapped by the sender's mailer here.\nA=B",
		},
	},
	{
		name: "base64 body",
		raw: alice + "Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: base64\n\n" +
			"Qm9uam91ciwgdm9pY2kgbWEgZGVtYW5kZSBkZSByw6lpbml0aWFsaXNhdGlvbi4=\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"},
			text: "Bonjour, voici ma demande de réinitialisation.",
		},
	},
	{
		name: "iso-8859-1 body",
		raw:  alice + "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\nCaf\xe9 cr\xe8me\n",
		want: want{from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, text: "Café crème"},
	},
	{
		name: "windows-1252 body: 0x80 is the euro sign",
		raw:  alice + "Content-Type: text/plain; charset=windows-1252\n\nPrice: \x80 12, caf\xe9, \x93quoted\x94\n",
		want: want{from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, text: "Price: € 12, café, “quoted”"},
	},
	{
		name: "quoted-printable windows-1252 body",
		raw: alice + "Content-Type: text/plain; charset=\"Windows-1252\"\nContent-Transfer-Encoding: quoted-printable\n\n" +
			"=80 5 pour le caf=E9\n",
		want: want{from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, text: "€ 5 pour le café"},
	},
	{
		name: "koi8-r body",
		raw:  alice + "Content-Type: text/plain; charset=KOI8-R\n\n\xf0\xd2\xc9\xd7\xc5\xd4\n",
		want: want{from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, text: "Привет"},
	},
	{
		name: "shift_jis body",
		raw:  alice + "Content-Type: text/plain; charset=shift_jis\n\n\x93\xfa\x96\x7b\x8c\xea\n",
		want: want{from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, text: "日本語"},
	},
	{
		name: "undeclared 8-bit body is read as windows-1252 with a problem",
		raw:  alice + "\nCaf\xe9\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, text: "Café",
			problems: []string{"body: text is not valid UTF-8; read as windows-1252"},
		},
	},
	{
		name: "unknown charset: ASCII text kept",
		raw:  alice + "Content-Type: text/plain; charset=x-klingon\n\nplain ascii\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, text: "plain ascii",
			problems: []string{"unknown charset"},
		},
	},
	{
		name: "unknown charset: 8-bit text read as windows-1252",
		raw:  alice + "Content-Type: text/plain; charset=x-klingon\n\ncaf\xe9\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, text: "café",
			problems: []string{"unknown charset"},
		},
	},
	{
		name: "unknown Content-Transfer-Encoding: body kept as it stands",
		raw:  alice + "Content-Type: text/plain\nContent-Transfer-Encoding: x-uuencode-ish\n\nraw body\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, text: "raw body",
			problems: []string{"x-uuencode-ish"},
		},
	},
	{
		name: "HTML-only mail converted to text",
		raw: alice + "Content-Type: text/html; charset=utf-8\n\n" +
			"<html><head><title>T</title><style>p{color:red}</style></head><body>" +
			"<p>Caf&eacute; &amp; th&#233;&nbsp;bar</p><script>alert(1)</script>" +
			"Line one<br>Line two<p>See <a href=\"https://ca.example/help\">our help</a>.</p></body></html>\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"},
			text: "Café & thé bar\nLine one\nLine two\nSee our help <https://ca.example/help>.",
		},
	},
	{
		name: "multipart/alternative prefers text/plain",
		raw: alice + "MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"b1\"\n\n" +
			"preamble\n--b1\nContent-Type: text/plain; charset=utf-8\n\nplain version\n" +
			"--b1\nContent-Type: text/html; charset=utf-8\n\n<p>html version</p>\n--b1--\nepilogue\n",
		want: want{from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, text: "plain version",
			loop: Loop{ContentType: "multipart/alternative"}},
	},
	{
		name: "multipart/alternative prefers text/plain even when it comes last",
		raw: alice + "Content-Type: multipart/alternative; boundary=b1\n\n" +
			"--b1\nContent-Type: text/html\n\n<p>html version</p>\n" +
			"--b1\nContent-Type: text/plain\n\nplain version\n--b1--\n",
		want: want{from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, text: "plain version",
			loop: Loop{ContentType: "multipart/alternative"}},
	},
	{
		name: "multipart/alternative with an empty plain part falls back to HTML",
		raw: alice + "Content-Type: multipart/alternative; boundary=b1\n\n" +
			"--b1\nContent-Type: text/plain\n\n\n" +
			"--b1\nContent-Type: text/html\n\n<div>only<br>html</div>\n--b1--\n",
		want: want{from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, text: "only\nhtml",
			loop: Loop{ContentType: "multipart/alternative"}},
	},
	{
		name: "multipart/mixed with text and an attachment",
		raw: alice + "Subject: CSR\nContent-Type: multipart/mixed; boundary=\"==outer==\"\n\n" +
			"--==outer==\nContent-Type: text/plain\n\nHere is my CSR.\n" +
			"--==outer==\nContent-Type: application/pdf; name=\"order.pdf\"\nContent-Disposition: attachment; filename=\"order.pdf\"\n" +
			"Content-Transfer-Encoding: base64\n\n" + "JVBERi0xLjQKJcfs\n" + "--==outer==--\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, subject: "CSR",
			text: "Here is my CSR.", loop: Loop{ContentType: "multipart/mixed"},
			attachments: []Attachment{{Name: "order.pdf", ContentType: "application/pdf", Size: 12, SHA256: sum("%PDF-1.4\n%\xc7\xec")}},
		},
	},
	{
		name: "multipart/mixed: several text parts are joined, alternative inside picks plain",
		raw: alice + "Content-Type: multipart/mixed; boundary=out\n\n" +
			"--out\nContent-Type: multipart/alternative; boundary=in\n\n" +
			"--in\nContent-Type: text/plain\n\nfirst\n--in\nContent-Type: text/html\n\n<b>first html</b>\n--in--\n" +
			"--out\nContent-Type: text/plain\n\nsecond\n--out--\n",
		want: want{from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, text: "first\n\nsecond",
			loop: Loop{ContentType: "multipart/mixed"}},
	},
	{
		name: "attachment names: RFC 2047 and RFC 2231",
		raw: alice + "Content-Type: multipart/mixed; boundary=b\n\n" +
			"--b\nContent-Type: text/plain\n\nsee attached\n" +
			"--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"=?UTF-8?B?Q2Fmw6kgb3V2ZXJ0?=.csr\"\n\nAAA\n" +
			"--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.txt\n\nBBB\n" +
			"--b\nContent-Type: application/octet-stream; name=\"=?iso-8859-1?q?d=E9j=E0.bin?=\"\n\nCCC\n--b--\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, text: "see attached",
			loop: Loop{ContentType: "multipart/mixed"},
			attachments: []Attachment{
				{Name: "Café ouvert.csr", ContentType: "application/octet-stream", Size: 3, SHA256: sum("AAA")},
				{Name: "résumé.txt", ContentType: "application/octet-stream", Size: 3, SHA256: sum("BBB")},
				{Name: "déjà.bin", ContentType: "application/octet-stream", Size: 3, SHA256: sum("CCC")},
			},
		},
	},
	{
		name: "text attachment in latin-1: hash covers the bytes as sent, not a charset conversion",
		raw: alice + "Content-Type: multipart/mixed; boundary=b\n\n" +
			"--b\n\nlog attached\n" +
			"--b\nContent-Type: text/plain; charset=iso-8859-1\nContent-Disposition: attachment; filename=log.txt\n\ncaf\xe9\n--b--\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, text: "log attached",
			loop:        Loop{ContentType: "multipart/mixed"},
			attachments: []Attachment{{Name: "log.txt", ContentType: "text/plain", Size: 4, SHA256: sum("caf\xe9")}},
		},
	},
	{
		name: "forwarded message/rfc822: text enclosed, its From not the sender",
		raw: alice + "Subject: Fwd: invoice\nContent-Type: multipart/mixed; boundary=b\n\n" +
			"--b\nContent-Type: text/plain\n\nSee below.\n" +
			"--b\nContent-Type: message/rfc822\n\n" +
			"From: Mallory <mallory@evil.example>\nSubject: =?utf-8?q?Facture_=E2=82=AC?=\n\nPay now.\n" +
			"--b--\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, subject: "Fwd: invoice",
			loop: Loop{ContentType: "multipart/mixed"},
			text: "See below.\n\n---- enclosed message from Mallory <mallory@evil.example>, subject \"Facture €\" ----\nPay now.",
		},
	},
	{
		name: "no From header",
		raw:  "Subject: anonymous\n\nbody\n",
		want: want{fromProblem: true, subject: "anonymous", text: "body"},
	},
	{
		name: "two From headers",
		raw:  "From: alice@example.com\nFrom: mallory@evil.example\n\nbody\n",
		want: want{fromProblem: true, from: Mailbox{Address: "alice@example.com"}, text: "body"},
	},
	{
		name: "From with two mailboxes",
		raw:  "From: alice@example.com, Mallory <mallory@evil.example>\n\nbody\n",
		want: want{fromProblem: true, from: Mailbox{Address: "alice@example.com"}, text: "body"},
	},
	{
		name: "unparsable From is salvaged for display only",
		raw:  "From: Alice <alice@example.com\n\nbody\n",
		want: want{fromProblem: true, from: Mailbox{Address: "alice@example.com"}, text: "body", problems: []string{"From:"}},
	},
	{
		name: "From that is a bare word",
		raw:  "From: postmaster\n\nbody\n",
		want: want{fromProblem: true, from: Mailbox{Name: "postmaster"}, text: "body", problems: []string{"From:"}},
	},
	{
		name: "empty group as From holds no mailbox",
		raw:  "From: undisclosed-recipients:;\n\nbody\n",
		want: want{fromProblem: true, text: "body"},
	},
	{
		name: "From with a latin-1 display name still yields its mailbox",
		raw:  "From: Ren\xe9 <rene@example.fr>\n\nbody\n",
		want: want{from: Mailbox{Name: "René", Address: "rene@example.fr"}, text: "body",
			problems: []string{"From: 8-bit bytes that are not UTF-8"}},
	},
	{
		name: "Reply-To parsed and never the sender",
		raw:  alice + "Reply-To: Helpdesk <help@example.com>, =?utf-8?q?B=C3=B6b?= <bob@example.com>\n\nbody\n",
		want: want{
			from:    Mailbox{Name: "Alice Example", Address: "alice@example.com"},
			replyTo: []Mailbox{{Name: "Helpdesk", Address: "help@example.com"}, {Name: "Böb", Address: "bob@example.com"}},
			text:    "body",
		},
	},
	{
		name: "Message-ID without brackets",
		raw:  alice + "Message-ID: 1234.5678@mail.example.com\n\nbody\n",
		want: want{from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, messageID: "1234.5678@mail.example.com", text: "body"},
	},
	{
		name: "unparsable Date: problem and zero Date",
		raw:  alice + "Date: yesterday at noon\n\nbody\n",
		want: want{from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, text: "body", problems: []string{"Date: unparsable"}},
	},
	{
		name: "loop fields",
		raw: alice + "Auto-Submitted: Auto-Replied (vacation)\nPrecedence: BULK\nX-Autoreply: yes\n" +
			"List-Id: Support list <support.lists.example.com>\nReturn-Path: < >\n\nI am away.\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, text: "I am away.",
			loop: Loop{AutoSubmitted: "auto-replied", Precedence: "bulk",
				ListID: "Support list <support.lists.example.com>", ReturnPathNull: true},
		},
	},
	{
		name: "a real Return-Path is not null",
		raw:  alice + "Return-Path: <alice@example.com>\nAuto-Submitted: no\n\nhi\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, text: "hi",
			loop: Loop{AutoSubmitted: "no"},
		},
	},
	{
		name: "multipart/report delivery status",
		raw: "From: MAILER-DAEMON@mx.example\nReturn-Path: <>\nSubject: Undelivered Mail\n" +
			"Content-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\n\n" +
			"--r\nContent-Type: text/plain\n\nDelivery failed.\n" +
			"--r\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n\nAction: failed\n--r--\n",
		want: want{
			from: Mailbox{Address: "MAILER-DAEMON@mx.example"}, subject: "Undelivered Mail", text: "Delivery failed.",
			loop: Loop{ReturnPathNull: true, ContentType: "multipart/report", ReportType: "delivery-status"},
			attachments: []Attachment{{ContentType: "message/delivery-status", Size: 46,
				SHA256: sum("Reporting-MTA: dns; mx.example\n\nAction: failed")}},
		},
	},
	{
		name: "mbox From line skipped",
		raw:  "From alice@example.com Tue Mar  4 10:15:00 2025\n" + alice + "Subject: mbox\n\nbody\n",
		want: want{from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, subject: "mbox", text: "body"},
	},
	{
		name: "obsolete From with a space before the colon on the first line is a field",
		raw:  "From : alice@example.com\nSubject: obs\n\nbody\n",
		want: want{from: Mailbox{Address: "alice@example.com"}, subject: "obs", text: "body"},
	},
	{
		name: "UTF-8 byte order mark before the header",
		raw:  "\xef\xbb\xbf" + alice + "Subject: bom\n\nbody\n",
		want: want{from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, subject: "bom", text: "body"},
	},
	{
		name: "first header line indented",
		raw:  "   " + alice + "Subject: indented\n\nbody\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, subject: "indented", text: "body",
			problems: []string{"header line 1 starts with white space"},
		},
	},
	{
		name: "header line without colon: the body starts there",
		raw:  alice + "Subject: no separator\nHello team,\nplease help.\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, subject: "no separator",
			text:     "Hello team,\nplease help.",
			problems: []string{"header line 3 is not a header field"},
		},
	},
	{
		name: "malformed field name skipped",
		raw:  alice + "Bad Name: x\nSubject: ok\n\nbody\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, subject: "ok", text: "body",
			problems: []string{"malformed field name"},
		},
	},
	{
		name: "headerless input",
		raw:  "Hello,\nthis is not an email at all.\n",
		want: want{
			fromProblem: true, headerless: true, text: "Hello,\nthis is not an email at all.",
			problems: []string{"line 1 is not a header field"},
		},
	},
	{
		name: "empty input",
		raw:  "",
		want: want{fromProblem: true, headerless: true},
	},
	{
		name: "NUL bytes and bare CR removed from text",
		raw:  alice + "\nab\x00c\rdef\r\nghi\x07\n",
		want: want{from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, text: "abc\ndef\nghi"},
	},
	{
		name: "missing closing boundary: text kept",
		raw: alice + "Content-Type: multipart/mixed; boundary=b\n\n" +
			"--b\nContent-Type: text/plain\n\nfirst part\n--b\nContent-Type: text/plain\n\nsecond part, cut\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, loop: Loop{ContentType: "multipart/mixed"},
			text:     "first part\n\nsecond part, cut",
			problems: []string{`body: closing MIME boundary "b" missing`},
		},
	},
	{
		name: "multipart without boundary parameter read as text",
		raw:  alice + "Content-Type: multipart/mixed\n\njust text\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, loop: Loop{ContentType: "multipart/mixed"},
			text: "just text", problems: []string{"without boundary"},
		},
	},
	{
		name: "multipart whose boundary never appears: body kept as text",
		raw:  alice + "Content-Type: multipart/mixed; boundary=nowhere\n\nthe sender forgot the parts\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, loop: Loop{ContentType: "multipart/mixed"},
			text: "the sender forgot the parts", problems: []string{"body"},
		},
	},
	{
		name: "bad base64 in an attachment",
		raw: alice + "Content-Type: multipart/mixed; boundary=b\n\n" +
			"--b\nContent-Type: text/plain\n\nsee file\n" +
			"--b\nContent-Type: application/octet-stream; name=a.bin\nContent-Transfer-Encoding: base64\n\nQUJD!!!!RA==\n--b--\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, loop: Loop{ContentType: "multipart/mixed"},
			text:        "see file",
			attachments: []Attachment{{Name: "a.bin", ContentType: "application/octet-stream", Size: 3, SHA256: sum("ABC"), Truncated: true}},
			problems:    []string{`body.2: attachment "a.bin"`},
		},
	},
	{
		name: "malformed Content-Type: duplicate parameter salvaged, first wins",
		raw:  alice + "Content-Type: text/plain; charset=iso-8859-1; charset=utf-8\n\ncaf\xe9\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, loop: Loop{ContentType: "text/plain"},
			text: "café", problems: []string{"Content-Type"},
		},
	},
	{
		name: "malformed Content-Type: unquoted specials salvaged",
		raw: alice + "Content-Type: multipart/mixed; boundary=----=_Part_1; x=(y)\n\n" +
			"------=_Part_1\nContent-Type: text/plain; charset=koi8-r; format=flowed; name=a b.txt\n\n\xf0\xd2\xc9\xd7\xc5\xd4\n------=_Part_1--\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, loop: Loop{ContentType: "multipart/mixed"},
			text: "Привет", problems: []string{"body: Content-Type", "body.1: Content-Type"},
		},
	},
	{
		name: "Content-Type that is no media type read as text",
		raw:  alice + "Content-Type: text\n\nhello\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"},
			text: "hello", problems: []string{"is no media type"},
		},
	},
	{
		name: "CRLF multipart: the line end before a delimiter is not content",
		raw: crlf(alice + "Content-Type: multipart/mixed; boundary=\"b\"\n\n" +
			"--b\nContent-Type: text/plain\n\nline one\nline two\n\n" +
			"--b\nContent-Type: application/octet-stream; name=x.bin\n\nAB\nCD\n--b--\n"),
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, loop: Loop{ContentType: "multipart/mixed"},
			text:        "line one\nline two",
			attachments: []Attachment{{Name: "x.bin", ContentType: "application/octet-stream", Size: 6, SHA256: sum("AB\r\nCD")}},
		},
	},
	{
		name: "a line that only starts like the boundary is content",
		raw: alice + "Content-Type: multipart/mixed; boundary=b\n\n" +
			"--b\n\n--bx is not a delimiter\n--b-- \n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, loop: Loop{ContentType: "multipart/mixed"},
			text: "--bx is not a delimiter",
		},
	},
	{
		name: "malformed part header: the part and the parts after it are kept",
		raw: alice + "Content-Type: multipart/mixed; boundary=b\n\n" +
			"--b\nContent-Type: text/plain\n\nfirst\n" +
			"--b\nI'm a section without headers\n" +
			"--b\nContent-Type: application/pdf; name=a.pdf\nbroken header line\n\n%PDF\n" +
			"--b\nContent-Type: text/plain\n\nlast\n--b--\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, loop: Loop{ContentType: "multipart/mixed"},
			text:        "first\n\nI'm a section without headers\n\nlast",
			attachments: []Attachment{{Name: "a.pdf", ContentType: "application/pdf", Size: 24, SHA256: sum("broken header line\n\n%PDF")}},
			problems:    []string{"body.2: line 1 is not a header field", "body.3: header line 2 is not a header field"},
		},
	},
	{
		name: "closing delimiter with junk after it",
		raw: alice + "Content-Type: multipart/mixed; boundary=b\n\n" +
			"--b\n\ntext\n--b-->\nepilogue is not text\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, loop: Loop{ContentType: "multipart/mixed"},
			text: "text",
		},
	},
	{
		name: "nested multipart missing its closing delimiter ends at the outer one",
		raw: alice + "Content-Type: multipart/mixed; boundary=out\n\n" +
			"--out\nContent-Type: multipart/alternative; boundary=in\n\n--in\n\ninner text\n" +
			"--out\nContent-Type: application/zip; name=z.zip\n\nPK\n--out--\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, loop: Loop{ContentType: "multipart/mixed"},
			text:        "inner text",
			attachments: []Attachment{{Name: "z.zip", ContentType: "application/zip", Size: 2, SHA256: sum("PK")}},
			problems:    []string{`body.1: closing MIME boundary "in" missing`},
		},
	},
	{
		name: "a part starting with \"From \" keeps that line",
		raw: alice + "Content-Type: multipart/mixed; boundary=b\n\n" +
			"--b\nFrom now on, no header\n--b--\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, loop: Loop{ContentType: "multipart/mixed"},
			text: "From now on, no header", problems: []string{"body.1: line 1 is not a header field"},
		},
	},
	{
		name: "message/rfc822 at the top level",
		raw:  alice + "Content-Type: message/rfc822\n\nFrom: bob@example.com\nSubject: inner\n\ninner body\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, loop: Loop{ContentType: "message/rfc822"},
			text: "---- enclosed message from bob@example.com, subject \"inner\" ----\ninner body",
		},
	},
	{
		name: "enclosed message line stays one line",
		raw:  alice + "Content-Type: message/rfc822\n\nFrom: =?utf-8?q?Eve=0D=0AX?= <eve@example.com>\nSubject: =?utf-8?q?a=00b?=\n\nbody\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, loop: Loop{ContentType: "message/rfc822"},
			text: "---- enclosed message from Eve  X <eve@example.com>, subject \"a b\" ----\nbody",
		},
	},
	{
		name: "control characters in decoded header text become spaces",
		raw:  "From: =?utf-8?q?Alice=0ABob?= <alice@example.com>\nSubject: =?utf-8?q?line1=0D=0Aline2=00?=\n\nx\n",
		want: want{from: Mailbox{Name: "Alice Bob", Address: "alice@example.com"}, subject: "line1  line2 ", text: "x"},
	},
	{
		name: "HTML without </head> keeps its body",
		raw:  alice + "Content-Type: text/html\n\n<html><head><meta charset=utf-8><body><p>Please reset</p></body></html>\n",
		want: want{from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, loop: Loop{ContentType: "text/html"}, text: "Please reset"},
	},
	{
		name: "header of a part only, no From, no content",
		raw:  "Content-Type: text/html; name=file.html\nContent-Disposition: inline\n",
		want: want{fromProblem: true, loop: Loop{ContentType: "text/html"}, problems: []string{"the message is empty"}},
	},
	{
		name: "pkcs12 by name, extension and type: no hash kept",
		raw: alice + "Content-Type: multipart/mixed; boundary=b\n\n" +
			"--b\nContent-Type: text/plain\n\nmy certificate\n" +
			"--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"Shop.PFX\"\n\nsecret-bytes\n" +
			"--b\nContent-Type: application/octet-stream; name=cert.p12\n\nsecret-bytes\n" +
			"--b\nContent-Type: application/x-pkcs12\n\nsecret-bytes\n--b--\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, loop: Loop{ContentType: "multipart/mixed"},
			text: "my certificate",
			attachments: []Attachment{
				{Name: "Shop.PFX", ContentType: "application/octet-stream", Size: 12, Secret: "pkcs12"},
				{Name: "cert.p12", ContentType: "application/octet-stream", Size: 12, Secret: "pkcs12"},
				{ContentType: "application/x-pkcs12", Size: 12, Secret: "pkcs12"},
			},
		},
	},
	{
		name: "pkcs12 DER under a neutral name",
		raw: alice + "Content-Type: multipart/mixed; boundary=b\n\n" +
			"--b\nContent-Type: application/octet-stream; name=backup.bin\nContent-Transfer-Encoding: base64\n\n" +
			b64(pfxBlob(300)) + "\n--b--\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, loop: Loop{ContentType: "multipart/mixed"},
			attachments: []Attachment{{Name: "backup.bin", ContentType: "application/octet-stream", Size: 300, Secret: "pkcs12"}},
		},
	},
	{
		name: "DER that is not pkcs12 is hashed",
		raw: alice + "Content-Type: multipart/mixed; boundary=b\n\n" +
			"--b\nContent-Type: application/pkix-cert; name=ca.cer\nContent-Transfer-Encoding: base64\n\n" +
			b64([]byte{0x30, 0x82, 0x01, 0x0a, 0x30, 0x82, 0x00, 0xf0, 0xa0, 0x03, 0x02, 0x01, 0x02}) + "\n--b--\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, loop: Loop{ContentType: "multipart/mixed"},
			attachments: []Attachment{{Name: "ca.cer", ContentType: "application/pkix-cert", Size: 13,
				SHA256: sum("\x30\x82\x01\x0a\x30\x82\x00\xf0\xa0\x03\x02\x01\x02")}},
		},
	},
	{
		name: "PEM private key in a .txt attachment",
		raw: alice + "Content-Type: multipart/mixed; boundary=b\n\n" +
			"--b\nContent-Type: text/plain\n\nkey attached\n" +
			"--b\nContent-Type: text/plain; name=notes.txt\nContent-Disposition: attachment; filename=notes.txt\n\n" +
			"my notes\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n--b--\n",
		want: want{
			from: Mailbox{Name: "Alice Example", Address: "alice@example.com"}, loop: Loop{ContentType: "multipart/mixed"},
			text:        "key attached",
			attachments: []Attachment{{Name: "notes.txt", ContentType: "text/plain", Size: 77, Secret: "private-key"}},
		},
	},
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := Parse(strings.NewReader(tc.raw), tc.lim)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkRequest(t, req, tc.want)
			checkInvariants(t, []byte(tc.raw), req)
		})
	}
}

func checkRequest(t *testing.T, req *Request, w want) {
	t.Helper()
	if req.From != w.from {
		t.Errorf("From = %+v, want %+v", req.From, w.from)
	}
	if got := req.FromAmbiguous(); got != w.fromProblem || (req.FromProblem != "") != w.fromProblem {
		t.Errorf("FromAmbiguous() = %v (FromProblem %q), want %v", got, req.FromProblem, w.fromProblem)
	}
	if !reflect.DeepEqual(req.ReplyTo, w.replyTo) {
		t.Errorf("ReplyTo = %+v, want %+v", req.ReplyTo, w.replyTo)
	}
	if req.Subject != w.subject {
		t.Errorf("Subject = %q, want %q", req.Subject, w.subject)
	}
	if req.MessageID != w.messageID {
		t.Errorf("MessageID = %q, want %q", req.MessageID, w.messageID)
	}
	if w.date == "" {
		if !req.Date.IsZero() {
			t.Errorf("Date = %v, want zero", req.Date)
		}
	} else if d, err := time.Parse(time.RFC3339, w.date); err != nil || !req.Date.Equal(d) {
		t.Errorf("Date = %v, want %s", req.Date, w.date)
	}
	gotLoop := req.Loop
	if w.loop.ContentType == "" {
		gotLoop.ContentType = ""
	}
	if gotLoop != w.loop {
		t.Errorf("Loop = %+v, want %+v", req.Loop, w.loop)
	}
	if w.textHas == nil {
		if req.Text != w.text {
			t.Errorf("Text = %q, want %q", req.Text, w.text)
		}
	}
	for _, s := range w.textHas {
		if !strings.Contains(req.Text, s) {
			t.Errorf("Text = %q, want it to contain %q", req.Text, s)
		}
	}
	for _, s := range w.textNot {
		if strings.Contains(req.Text, s) {
			t.Errorf("Text = %q, want it not to contain %q", req.Text, s)
		}
	}
	if !reflect.DeepEqual(req.Attachments, w.attachments) {
		t.Errorf("Attachments =\n%+v\nwant\n%+v", req.Attachments, w.attachments)
	}
	if len(req.Problems) != len(w.problems) {
		t.Errorf("Problems = %q, want %d matching %q", req.Problems, len(w.problems), w.problems)
	} else {
		for i, s := range w.problems {
			if !strings.Contains(req.Problems[i], s) {
				t.Errorf("Problems[%d] = %q, want it to contain %q", i, req.Problems[i], s)
			}
		}
	}
	if req.Headerless != w.headerless {
		t.Errorf("Headerless = %v, want %v", req.Headerless, w.headerless)
	}
}

// checkInvariants asserts what holds for every parsed message.
func checkInvariants(t *testing.T, raw []byte, req *Request) {
	t.Helper()
	if req.Size != int64(len(raw)) {
		t.Errorf("Size = %d, want %d", req.Size, len(raw))
	}
	if want := sum(string(raw)); req.ID != want {
		t.Errorf("ID = %s, want %s", req.ID, want)
	}
	if !utf8.ValidString(req.Text) {
		t.Errorf("Text is not valid UTF-8: %q", req.Text)
	}
	if strings.ContainsAny(req.Text, "\r\x00") {
		t.Errorf("Text holds CR or NUL: %q", req.Text)
	}
	for _, s := range []string{req.Subject, req.From.Name, req.From.Address, req.MessageID} {
		if !utf8.ValidString(s) {
			t.Errorf("header text is not valid UTF-8: %q", s)
		}
	}
	for _, pr := range req.Problems {
		if pr == "" || strings.ContainsAny(pr, "\r\n") || !utf8.ValidString(pr) {
			t.Errorf("problem is not one valid line: %q", pr)
		}
	}
}

func TestParseID(t *testing.T) {
	a := alice + "Subject: one\n\nbody\n"
	b := alice + "Subject: one\n\nbody.\n"
	ra1, err1 := Parse(strings.NewReader(a), Limits{})
	ra2, err2 := Parse(strings.NewReader(a), Limits{})
	rb, err3 := Parse(strings.NewReader(b), Limits{})
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatal(err)
	}
	if ra1.ID != ra2.ID {
		t.Errorf("same bytes, different IDs: %s %s", ra1.ID, ra2.ID)
	}
	if ra1.ID == rb.ID {
		t.Errorf("different bytes, same ID %s", ra1.ID)
	}
	if ra1.ID != sum(a) || rb.ID != sum(b) {
		t.Errorf("ID is not the hex SHA-256 of the input")
	}
	if ra1.Size != int64(len(a)) || rb.Size != int64(len(b)) {
		t.Errorf("Size = %d, %d, want %d, %d", ra1.Size, rb.Size, len(a), len(b))
	}
	// The ID covers bytes past every limit, read through a slow reader.
	big := a + strings.Repeat("x", 300<<10)
	rbig, err := Parse(io.LimitReader(oneByteReader{strings.NewReader(big)}, int64(len(big))), Limits{MaxTextBytes: 10})
	if err != nil {
		t.Fatal(err)
	}
	if rbig.ID != sum(big) || rbig.Size != int64(len(big)) {
		t.Errorf("ID/Size do not cover the whole input: %d bytes", rbig.Size)
	}
}

// oneByteReader returns at most one byte per Read.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

// failingReader yields data and then a non-EOF error.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestParseReaderError(t *testing.T) {
	boom := errors.New("connection reset")
	multi := alice + "Content-Type: multipart/mixed; boundary=b\n\n--b\n\ntext\n--b\n" +
		"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nQUJD\nQUJD\n"
	for name, data := range map[string]string{
		"in the header":     "From: alice@example.com\nSubj",
		"before any byte":   "",
		"in the text":       alice + "\nhalf a sent",
		"in an attachment":  multi,
		"in an html body":   alice + "Content-Type: text/html\n\n<p>abc",
		"in a forwarded":    alice + "Content-Type: message/rfc822\n\nFrom: b@example.com\n\nhi",
		"after the message": alice + "\nbody\n",
	} {
		t.Run(name, func(t *testing.T) {
			req, err := Parse(&failingReader{data: []byte(data), err: boom}, Limits{})
			if !errors.Is(err, boom) {
				t.Errorf("err = %v, want %v", err, boom)
			}
			if req != nil {
				t.Errorf("got a request with an error: %+v", req)
			}
		})
	}
}

func TestSecretDetectorSplitWrites(t *testing.T) {
	key := "some text before\n-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI\n"
	// Every split of the marker across two writes, and writes of every
	// small size, must find the key.
	for i := 0; i <= len(key); i++ {
		d := newSecretDetector("text/plain", "notes.txt")
		d.Write([]byte(key[:i]))
		d.Write([]byte(key[i:]))
		if got := d.secret(); got != SecretPrivateKey {
			t.Fatalf("split at %d: secret = %q, want %q", i, got, SecretPrivateKey)
		}
	}
	for size := 1; size <= 20; size++ {
		d := newSecretDetector("application/octet-stream", "")
		for s := key; s != ""; {
			n := min(size, len(s))
			d.Write([]byte(s[:n]))
			s = s[n:]
		}
		if got := d.secret(); got != SecretPrivateKey {
			t.Errorf("writes of %d bytes: secret = %q, want %q", size, got, SecretPrivateKey)
		}
	}
	// Near misses are no key.
	for _, s := range []string{"PRIVATE KEY----", "-----BEGIN PUBLIC KEY-----\nMII\n", "private key-----", ""} {
		d := newSecretDetector("text/plain", "a.txt")
		for i := 0; i < len(s); i++ {
			d.Write([]byte{s[i]})
		}
		if got := d.secret(); got != "" {
			t.Errorf("%q: secret = %q, want none", s, got)
		}
	}
}

func TestSecretDetectorPKCS12(t *testing.T) {
	blob := pfxBlob(64)
	for _, size := range []int{1, 3, 7, 64} {
		d := newSecretDetector("application/octet-stream", "data")
		for b := blob; len(b) > 0; {
			n := min(size, len(b))
			d.Write(b[:n])
			b = b[n:]
		}
		if got := d.secret(); got != SecretPKCS12 {
			t.Errorf("writes of %d: secret = %q, want pkcs12", size, got)
		}
	}
	// Short-form length and other versions.
	short := []byte{0x30, 0x20, 0x02, 0x01, 0x03, 0x30, 0x1b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01}
	if !isPKCS12(short) {
		t.Errorf("short-form PFX not recognised")
	}
	v2 := append([]byte(nil), short...)
	v2[4] = 0x02
	for _, b := range [][]byte{v2, {0x30}, {0x30, 0xff}, {0x30, 0x84, 0x02}, nil, []byte("-----BEGIN CERTIFICATE-----")} {
		if isPKCS12(b) {
			t.Errorf("isPKCS12(% x) = true", b)
		}
	}
	// Labels.
	for _, c := range []struct{ mt, name, want string }{
		{"application/pkcs12", "", SecretPKCS12},
		{"application/octet-stream", "x.P12", SecretPKCS12},
		{"application/pkcs8", "", SecretPrivateKey},
		{"application/octet-stream", "server.key", SecretPrivateKey},
		{"application/octet-stream", "server.crt", ""},
		{"application/octet-stream", "pfx", ""},
	} {
		if got := newSecretDetector(c.mt, c.name).secret(); got != c.want {
			t.Errorf("label %s %q: secret = %q, want %q", c.mt, c.name, got, c.want)
		}
	}
}

func mixedMail(parts ...string) string {
	var b strings.Builder
	b.WriteString(alice + "Content-Type: multipart/mixed; boundary=b\n\n")
	for _, p := range parts {
		b.WriteString("--b\n" + p + "\n")
	}
	b.WriteString("--b--\n")
	return b.String()
}

func countProblems(req *Request, sub string) int {
	n := 0
	for _, p := range req.Problems {
		if strings.Contains(p, sub) {
			n++
		}
	}
	return n
}

func TestLimitText(t *testing.T) {
	// "é" is two bytes: a cut at an odd byte count must not split it.
	raw := alice + "Content-Type: text/plain; charset=utf-8\n\n" + strings.Repeat("é", 100) + "\n"
	req, err := Parse(strings.NewReader(raw), Limits{MaxTextBytes: 51})
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, []byte(raw), req)
	if req.Text != strings.Repeat("é", 25) {
		t.Errorf("Text = %q, want 25 × é", req.Text)
	}
	if n := countProblems(req, "text longer than 51 bytes"); n != 1 || len(req.Problems) != 1 {
		t.Errorf("Problems = %q, want one text cut", req.Problems)
	}

	// Several text parts share one budget, reported once.
	parts := make([]string, 10)
	for i := range parts {
		parts[i] = "\n" + strings.Repeat(fmt.Sprint(i), 30)
	}
	req, err = Parse(strings.NewReader(mixedMail(parts...)), Limits{MaxTextBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Text) > 100 {
		t.Errorf("len(Text) = %d, over the limit of 100", len(req.Text))
	}
	if !strings.HasPrefix(req.Text, strings.Repeat("0", 30)+"\n\n"+strings.Repeat("1", 30)) {
		t.Errorf("Text = %q, want the first parts", req.Text)
	}
	if n := countProblems(req, "text longer than"); n != 1 || len(req.Problems) != 1 {
		t.Errorf("Problems = %q, want one text cut", req.Problems)
	}

	// HTML is cut too, and the text stays valid.
	html := alice + "Content-Type: text/html; charset=utf-8\n\n<p>" + strings.Repeat("ü &amp; ", 200) + "</p>\n"
	req, err = Parse(strings.NewReader(html), Limits{MaxTextBytes: 33})
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, []byte(html), req)
	if len(req.Text) > 33 || !strings.HasPrefix(req.Text, "ü & ü & ") {
		t.Errorf("Text = %q, want a valid cut of at most 33 bytes", req.Text)
	}
	if n := countProblems(req, "text longer than"); n != 1 || len(req.Problems) != 1 {
		t.Errorf("Problems = %q, want one text cut", req.Problems)
	}

	// A plain alternative that fits is not reported as cut because of the
	// HTML alternative next to it.
	alt := alice + "Content-Type: multipart/alternative; boundary=a\n\n" +
		"--a\nContent-Type: text/plain\n\n" + strings.Repeat("p", 80) + "\n" +
		"--a\nContent-Type: text/html\n\n<p>" + strings.Repeat("h", 80) + "</p>\n--a--\n"
	req, err = Parse(strings.NewReader(alt), Limits{MaxTextBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	if req.Text != strings.Repeat("p", 80) || len(req.Problems) != 0 {
		t.Errorf("Text = %q, Problems = %q; want the plain part whole and no problem", req.Text, req.Problems)
	}
}

func TestLimitParts(t *testing.T) {
	parts := make([]string, 20)
	for i := range parts {
		parts[i] = fmt.Sprintf("Content-Type: application/octet-stream; name=f%d.bin\n\ndata%d", i, i)
	}
	raw := mixedMail(parts...)
	req, err := Parse(strings.NewReader(raw), Limits{MaxParts: 5})
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, []byte(raw), req)
	// The top-level entity is a part too.
	if len(req.Attachments) != 4 {
		t.Errorf("%d attachments, want 4", len(req.Attachments))
	}
	if n := countProblems(req, "more than 5 MIME parts"); n != 1 || len(req.Problems) != 1 {
		t.Errorf("Problems = %q, want one parts cap", req.Problems)
	}

	// Nested multiparts share the count and the problem is still reported once.
	inner := "Content-Type: multipart/mixed; boundary=i\n\n" +
		strings.Repeat("--i\nContent-Type: application/octet-stream\n\nx\n", 10) + "--i--"
	raw = mixedMail(inner, inner, inner)
	req, err = Parse(strings.NewReader(raw), Limits{MaxParts: 7})
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Attachments) != 5 {
		t.Errorf("%d attachments, want 5", len(req.Attachments))
	}
	if n := countProblems(req, "more than 7 MIME parts"); n != 1 || len(req.Problems) != 1 {
		t.Errorf("Problems = %q, want one parts cap", req.Problems)
	}
}

func TestLimitDepth(t *testing.T) {
	// Five nested multiparts with text at the bottom.
	body := "Content-Type: text/plain\n\ndeep text"
	for i := 5; i >= 1; i-- {
		body = fmt.Sprintf("Content-Type: multipart/mixed; boundary=d%d\n\n--d%d\n%s\n--d%d--", i, i, body, i)
	}
	raw := alice + body + "\n"
	req, err := Parse(strings.NewReader(raw), Limits{MaxDepth: 10})
	if err != nil {
		t.Fatal(err)
	}
	if req.Text != "deep text" || len(req.Problems) != 0 {
		t.Errorf("depth 5 under limit 10: Text %q, Problems %q", req.Text, req.Problems)
	}
	req, err = Parse(strings.NewReader(raw), Limits{MaxDepth: 3})
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, []byte(raw), req)
	if req.Text != "" || len(req.Attachments) != 1 || req.Attachments[0].ContentType != "application/octet-stream" {
		t.Errorf("depth 5 over limit 3: Text %q, Attachments %+v", req.Text, req.Attachments)
	}
	if n := countProblems(req, "nested deeper than 3"); n != 1 || len(req.Problems) != 1 {
		t.Errorf("Problems = %q, want one depth problem", req.Problems)
	}

	// Forwarded messages nest too.
	fwd := "From: x@example.com\n\ninnermost"
	for i := 0; i < 6; i++ {
		fwd = "From: x@example.com\nContent-Type: message/rfc822\n\n" + fwd
	}
	req, err = Parse(strings.NewReader(fwd), Limits{MaxDepth: 3})
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, []byte(fwd), req)
	if strings.Contains(req.Text, "innermost") || len(req.Attachments) != 1 || req.Attachments[0].ContentType != "message/rfc822" {
		t.Errorf("forwards over limit: Text %q, Attachments %+v", req.Text, req.Attachments)
	}
	if c := strings.Count(req.Text, "enclosed message"); c != 3 {
		t.Errorf("%d enclosed messages shown, want 3: %q", c, req.Text)
	}
}

func TestLimitHeader(t *testing.T) {
	raw := alice + "Subject: kept\nX-Big: " + strings.Repeat("a", 200) + "\nX-After: dropped\nReply-To: r@example.com\n\nbody\n"
	req, err := Parse(strings.NewReader(raw), Limits{MaxHeaderBytes: 150})
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, []byte(raw), req)
	if req.Subject != "kept" || req.From.Address != "alice@example.com" || req.Text != "body" {
		t.Errorf("Subject %q From %+v Text %q", req.Subject, req.From, req.Text)
	}
	if len(req.HeaderValues("X-After")) != 0 || len(req.ReplyTo) != 0 {
		t.Errorf("fields past the limit were kept: %+v", req.Header)
	}
	if n := countProblems(req, "header exceeds 150 bytes"); n != 1 || len(req.Problems) != 1 {
		t.Errorf("Problems = %q, want one header cap", req.Problems)
	}

	// A continued field grows no further than the limit either.
	raw = alice + "X-Long: a\n" + strings.Repeat(" continued line\n", 100) + "Subject: s\n\nbody\n"
	req, err = Parse(strings.NewReader(raw), Limits{MaxHeaderBytes: 200})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, f := range req.Header {
		total += len(f.Name) + len(f.Value)
	}
	if total > 200+100 || req.Text != "body" {
		t.Errorf("header kept %d bytes past a 200-byte limit; Text %q", total, req.Text)
	}
	if n := countProblems(req, "header exceeds 200 bytes"); n != 1 || len(req.Problems) != 1 {
		t.Errorf("Problems = %q, want one header cap", req.Problems)
	}
}

func TestHugeHeaders(t *testing.T) {
	var b strings.Builder
	b.WriteString(alice)
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&b, "Received: from host%d.example by mx.example; Tue, 4 Mar 2025 10:15:00 +0100\n", i)
	}
	b.WriteString("Subject: lots of hops\n\nbody\n")
	raw := b.String()
	req, err := Parse(strings.NewReader(raw), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, []byte(raw), req)
	if req.From.Address != "alice@example.com" || req.Text != "body" {
		t.Errorf("From %+v Text %q", req.From, req.Text)
	}
	if len(req.Problems) != 1 || !strings.Contains(req.Problems[0], "header exceeds") {
		t.Errorf("Problems = %q, want one header cap", req.Problems)
	}

	// One field folded over 10,000 lines.
	b.Reset()
	b.WriteString(alice + "X-Folded: start\n")
	for i := 0; i < 10000; i++ {
		b.WriteString("\t" + strings.Repeat("w", 70) + "\n")
	}
	b.WriteString("Subject: after\n\nbody\n")
	raw = b.String()
	req, err = Parse(strings.NewReader(raw), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, []byte(raw), req)
	if v := req.HeaderValues("X-Folded"); len(v) != 1 || len(v[0]) > 256<<10 {
		t.Errorf("folded field kept %d values, first %d bytes", len(v), len(v[0]))
	}
	if req.Text != "body" {
		t.Errorf("Text %q", req.Text)
	}

	// A single 1 MB header line.
	raw = alice + "Subject: " + strings.Repeat("s", 1<<20) + "\nX-After: yes\n\nbody\n"
	req, err = Parse(strings.NewReader(raw), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, []byte(raw), req)
	if len(req.Subject) > 256<<10 || req.Text != "body" || req.From.Address != "alice@example.com" {
		t.Errorf("Subject %d bytes, Text %q, From %+v", len(req.Subject), req.Text, req.From)
	}
	if len(req.Problems) != 1 || !strings.Contains(req.Problems[0], "header exceeds") {
		t.Errorf("Problems = %q, want one header cap", req.Problems)
	}

	// A 1 MB first field is cut to the limit, and the cut is reported.
	raw = "Subject: " + strings.Repeat("s", 1<<20) + "\n\nbody\n"
	req, err = Parse(strings.NewReader(raw), Limits{MaxHeaderBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, []byte(raw), req)
	if req.Subject != strings.Repeat("s", 1000-len("Subject: ")) || req.Text != "body" {
		t.Errorf("Subject %d bytes, Text %q", len(req.Subject), req.Text)
	}
	if len(req.Problems) != 1 || !strings.Contains(req.Problems[0], "header line 1 longer than 1000 bytes; cut") {
		t.Errorf("Problems = %q, want one cut line", req.Problems)
	}

	// A 1 MB line that starts the body is cut the same way, not silently.
	raw = alice + strings.Repeat("b", 1<<20) + "\n"
	req, err = Parse(strings.NewReader(raw), Limits{MaxHeaderBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, []byte(raw), req)
	if req.Text != strings.Repeat("b", 1000) || countProblems(req, "line 2 longer than 1000 bytes; cut") != 1 {
		t.Errorf("Text %d bytes, Problems %q", len(req.Text), req.Problems)
	}
}

func TestProblemsCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString(alice)
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&b, "Bad Field %d: x\n", i)
	}
	b.WriteString("\nbody\n")
	req, err := Parse(strings.NewReader(b.String()), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Problems) != 51 || req.Problems[50] != "more problems not recorded" {
		t.Errorf("%d problems, last %q", len(req.Problems), req.Problems[len(req.Problems)-1])
	}
}

func TestHeaderOrderAndValues(t *testing.T) {
	raw := "Received: one\nFrom: a@example.com\nreceived: two\nSubject:  spaced  \n folded\n\nx"
	req, err := Parse(strings.NewReader(raw), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Field{{"Received", "one"}, {"From", "a@example.com"}, {"received", "two"}, {"Subject", "spaced folded"}}
	if !reflect.DeepEqual(req.Header, want) {
		t.Errorf("Header = %q, want %q", req.Header, want)
	}
	if got := req.HeaderValues("RECEIVED"); !reflect.DeepEqual(got, []string{"one", "two"}) {
		t.Errorf("HeaderValues = %q", got)
	}
	if req.Text != "x" {
		t.Errorf("Text %q", req.Text)
	}
}

func TestParseDoesNotKeepAttachmentBytes(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	raw := mixedMail("\nsee file", "Content-Type: application/zip; name=big.zip\nContent-Transfer-Encoding: base64\n\n"+b64(payload))
	req, err := Parse(strings.NewReader(raw), Limits{MaxTextBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	want := []Attachment{{Name: "big.zip", ContentType: "application/zip", Size: int64(len(payload)), SHA256: sum(string(payload))}}
	if !reflect.DeepEqual(req.Attachments, want) || req.Text != "see file" || len(req.Problems) != 0 {
		t.Errorf("Attachments %+v Text %q Problems %q", req.Attachments, req.Text, req.Problems)
	}
}

// TestThreadingFields: In-Reply-To and References give their Message-IDs
// without brackets, in order, folded lines and comments around them
// ignored; ids with spaces or controls, or too long, are skipped; a long
// References list keeps its newest maxReferences.
func TestThreadingFields(t *testing.T) {
	var many strings.Builder
	for i := range 30 {
		fmt.Fprintf(&many, " <r%d@x.example>", i)
	}
	tests := []struct {
		name       string
		header     string
		inReplyTo  []string
		references []string
	}{
		{"none", "", nil, nil},
		{"plain", "In-Reply-To: <a@x.example>\r\nReferences: <r1@x.example> <a@x.example>\r\n",
			[]string{"a@x.example"}, []string{"r1@x.example", "a@x.example"}},
		{"folded with comments", "In-Reply-To: (see) <a@x.example>\r\n (your mail)\r\nReferences: <r1@x.example>\r\n\t<r2@x.example>\r\n",
			[]string{"a@x.example"}, []string{"r1@x.example", "r2@x.example"}},
		{"hostile ids skipped", "In-Reply-To: <a b@x.example> <> <" + strings.Repeat("y", 300) + "@x.example> <ok@x.example>\r\n",
			[]string{"ok@x.example"}, nil},
		{"unclosed", "In-Reply-To: <a@x.example\r\n", nil, nil},
		{"long list keeps the newest", "References:" + many.String() + "\r\n", nil, func() []string {
			var want []string
			for i := 30 - maxReferences; i < 30; i++ {
				want = append(want, fmt.Sprintf("r%d@x.example", i))
			}
			return want
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := "From: a@x.example\r\nSubject: s\r\n" + tt.header + "\r\nbody\r\n"
			req, err := Parse(strings.NewReader(raw), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(req.InReplyTo, tt.inReplyTo) || !slices.Equal(req.References, tt.references) {
				t.Errorf("In-Reply-To %q, References %q; want %q, %q", req.InReplyTo, req.References, tt.inReplyTo, tt.references)
			}
		})
	}
}
