package ingest

import (
	"io"
	"mime/quotedprintable"
	"strings"
	"testing"
)

func TestDecodeQuotedPrintable(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"plain text", "plain text"},
		{"caf=C3=A9", "café"},
		{"lower =c3=a9 hex", "lower é hex"},
		{"soft=\r\nbreak", "softbreak"},
		{"soft=\nbreak LF", "softbreak LF"},
		{"soft= \t\r\nbreak with padding", "softbreak with padding"},
		{"trailing spaces   \r\nnext", "trailing spaces\r\nnext"},
		{"trailing tab\t\nnext", "trailing tab\nnext"},
		{"inner  spaces kept", "inner  spaces kept"},
		{"bad =ZZ sequence kept", "bad =ZZ sequence kept"},
		{"equals at end =", "equals at end "},
		{"a=3D=3Db", "a==b"},
		{"cut =C", "cut =C"},
		{"", ""},
	} {
		if got := string(decodeQuotedPrintable([]byte(tt.in))); got != tt.want {
			t.Errorf("decodeQuotedPrintable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestDecodeQuotedPrintableAgreesWithStdlib checks the decoder against
// mime/quotedprintable on well-formed input.
func TestDecodeQuotedPrintableAgreesWithStdlib(t *testing.T) {
	for _, text := range []string{
		"Grüße aus Köln, mot de passe oublié — ¿Cuál es mi contraseña?",
		strings.Repeat("long line with = signs and tabs\t", 20),
		"line one  \r\nline two\t\r\n\r\nline four",
	} {
		var enc strings.Builder
		w := quotedprintable.NewWriter(&enc)
		io.WriteString(w, text)
		w.Close()
		want, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(enc.String())))
		if err != nil {
			t.Fatal(err)
		}
		if got := decodeQuotedPrintable([]byte(enc.String())); string(got) != string(want) {
			t.Errorf("decode(%q)\n got %q\nwant %q", enc.String(), got, want)
		}
	}
}

func TestDecodeBase64(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		bad      int
	}{
		{"aGVsbG8gd29ybGQ=", "hello world", -1},
		{"aGVs\r\nbG8g\r\nd29y\r\nbGQ=\r\n", "hello world", -1},
		{"aGVsbG8gd29ybGQ", "hello world", -1}, // no padding
		{"aGVsbG8*d29ybGQ=", "hel", 7},
		{"", "", -1},
	} {
		got, bad := decodeBase64([]byte(tt.in))
		if string(got) != tt.want || bad != tt.bad {
			t.Errorf("decodeBase64(%q) = %q, %d; want %q, %d", tt.in, got, bad, tt.want, tt.bad)
		}
	}
}
