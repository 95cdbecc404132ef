package mail

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ticketrouter/ticketrouter/internal/corpus"
)

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"",
		"From: a@example.com\nSubject: hi\n\nbody\n",
		crlf(alice + "Subject: =?utf-8?q?Caf=C3=A9?=\nDate: Tue, 04 Mar 2025 10:15:00 +0100\n\nhello\n"),
		"From alice@example.com Tue Mar  4 10:15:00 2025\n\xef\xbb\xbfFrom: a@b\n\nx",
		"   From: a@b\nno colon here\nbody",
		alice + "Subject: R\xe9sum\xe9\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\ncaf=E9 =\nsoft\n",
		alice + "Content-Type: text/html\n\n<p>a<br>b<script>x</script><a href=\"http://x\">y</a>",
		alice + "Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\nplain\n--b\nContent-Type: text/html\n\n<b>h</b>\n--b--\n",
		mixedMail("\ntext", "Content-Type: application/pdf; name=\"=?utf-8?b?w6k=?=.pdf\"\nContent-Transfer-Encoding: base64\n\nJVBERi0x!!", "Content-Type: message/rfc822\n\nFrom: m@evil.example\nSubject: fwd\n\ninner"),
		alice + "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain; charset=koi8-r; charset=x\n\n\xf0\xd2\n--b\nContent-Type: application/x-pkcs12\n\n0\x82",
		alice + "Content-Type: multipart/report; report-type=delivery-status; boundary=r\nReturn-Path: <>\nAuto-Submitted: auto-replied\n\n--r\n\nfailed\n--r\nContent-Type: message/delivery-status\n\nAction: failed\n",
		"From: a@b, c@d\nFrom: e@f\nReply-To: <x\nMessage-ID: abc\nDate: never\n\nab\x00c\rd",
		mixedMail("Content-Type: application/octet-stream; name=k.txt\n\n-----BEGIN PRIVATE KEY-----\nMII"),
		alice + "Content-Type: multipart/alternative; boundary=a\n\n--a\n\nplain\n--a\nContent-Type: text/html\nContent-Transfer-Encoding: quoted-printable\n\n&#45;-BEGIN PRIVATE<br>KEY=2D-\n--a--\n",
		alice + "Content-Type: text/html\n\n--begin <script>x</script>private key--\n<p>MIIEvQIBADANBgkqhkiG9w0BAQEFAASC</p>",
		"Content-Type: multipart/mixed; boundary=\"\"\n\n--\n\n",
	} {
		f.Add([]byte(seed))
	}
	if _, files, err := corpus.List(); err == nil {
		for _, path := range files {
			if b, err := os.ReadFile(path); err == nil {
				f.Add(b)
			}
		}
	}
	small := Limits{MaxHeaderBytes: 300, MaxParts: 6, MaxDepth: 3, MaxTextBytes: 200}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, lim := range []Limits{{}, small} {
			req, err := Parse(bytes.NewReader(data), lim)
			if err != nil {
				t.Fatalf("Parse returned an error for an in-memory reader: %v", err)
			}
			checkFuzzRequest(t, data, req, lim.withDefaults())
			again, _ := Parse(bytes.NewReader(data), lim)
			if !reflect.DeepEqual(req, again) {
				t.Fatalf("Parse is not deterministic:\n%+v\n%+v", req, again)
			}
		}
		if b, ok := ReadBounce(bytes.NewReader(data)); ok && b.MessageID == "" {
			t.Fatalf("ReadBounce = %+v, true with no Message-ID", b)
		}
	})
}

func checkFuzzRequest(t *testing.T, data []byte, req *Request, lim Limits) {
	t.Helper()
	if !utf8.ValidString(req.Text) {
		t.Errorf("Text is not valid UTF-8: %q", req.Text)
	}
	if strings.ContainsAny(req.Text, "\r\x00") {
		t.Errorf("Text holds CR or NUL: %q", req.Text)
	}
	if len(req.Text) > lim.MaxTextBytes {
		t.Errorf("len(Text) = %d, over the limit %d", len(req.Text), lim.MaxTextBytes)
	}
	for _, s := range []string{req.Subject, req.From.Name, req.From.Address, req.MessageID, req.Loop.ListID} {
		if !utf8.ValidString(s) || strings.ContainsAny(s, "\r\n\x00") {
			t.Errorf("header text is not one valid line: %q", s)
		}
	}
	if len(req.Problems) > 51 {
		t.Errorf("%d problems", len(req.Problems))
	}
	for _, p := range req.Problems {
		if p == "" || strings.ContainsAny(p, "\r\n") || !utf8.ValidString(p) {
			t.Errorf("problem is not a single line: %q", p)
		}
		if strings.HasPrefix(p, "internal error") {
			t.Errorf("Parse recovered from a panic: %s", p)
		}
	}
	if req.FromAmbiguous() == (req.FromProblem == "") {
		t.Errorf("FromAmbiguous() = %v with FromProblem %q", req.FromAmbiguous(), req.FromProblem)
	}
	for _, a := range req.Attachments {
		if (a.Secret == "") == (a.SHA256 == "") {
			t.Errorf("attachment %+v: a hash must be kept exactly when it holds no secret", a)
		}
	}
	var scratch keyScanner
	var buf []byte
	if _, found := redactKeys(req.Text, &scratch, &buf); found {
		t.Errorf("key material left in Text: %q", req.Text)
	}
	if len(req.ID) != 64 || strings.Trim(req.ID, "0123456789abcdef") != "" {
		t.Errorf("ID %q is not 64 hex digits", req.ID)
	}
	if req.Size != int64(len(data)) {
		t.Errorf("Size = %d, want %d", req.Size, len(data))
	}
}
