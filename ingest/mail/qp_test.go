package mail

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/quotedprintable"
	"strings"
	"testing"
	"testing/iotest"
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

// TestBase64Reader: the streaming decoder of attachments yields what the
// standard library decodes, however the input is wrapped and read, and
// stops at bad input with its offset.
func TestBase64Reader(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var ps Parser
	for _, size := range []int{0, 1, 2, 3, 4, 57, 100, 24 << 10, 24<<10 + 1, 100 << 10} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		enc := base64.StdEncoding.EncodeToString(data)
		var wrapped strings.Builder
		for i := 0; i < len(enc); i += 76 {
			wrapped.WriteString(enc[i:min(i+76, len(enc))])
			wrapped.WriteString("\r\n")
		}
		for name, in := range map[string]string{
			"wrapped":     wrapped.String(),
			"one line":    enc,
			"no padding":  strings.TrimRight(enc, "="),
			"spaces":      strings.ReplaceAll(wrapped.String(), "\r\n", " \t\n"),
			"LF":          strings.ReplaceAll(wrapped.String(), "\r\n", "\n"),
			"lone CR":     strings.ReplaceAll(wrapped.String(), "\r\n", "\r"),
			"blank lines": strings.ReplaceAll(wrapped.String(), "\r\n", "\r\n\r\n"),
		} {
			for rname, r := range map[string]io.Reader{
				"whole":    strings.NewReader(in),
				"one byte": iotest.OneByteReader(strings.NewReader(in)),
				"halves":   iotest.HalfReader(strings.NewReader(in)),
			} {
				got, err := io.ReadAll(&base64Reader{r: r})
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("%d bytes, %s, read %s: %d bytes back, %v", size, name, rname, len(got), err)
				}
			}
			// io.Copy takes WriteTo, with a reader reused as Parse does.
			var out bytes.Buffer
			if _, err := io.Copy(&out, ps.base64Reader(strings.NewReader(in))); err != nil || !bytes.Equal(out.Bytes(), data) {
				t.Errorf("%d bytes, %s, copied: %d bytes back, %v", size, name, out.Len(), err)
			}
		}
	}
	got, err := io.ReadAll(&base64Reader{r: strings.NewReader("QUJD\r\nRE!G\r\n")})
	if string(got) != "ABC" || err == nil || !strings.Contains(err.Error(), "input byte 6") {
		t.Errorf("bad input: %q, %v; want \"ABC\" and an error at input byte 6", got, err)
	}
	// Bad input past what the quick way decoded: the offset counts every
	// character before it, line ends not.
	line := strings.Repeat("QUJD", 19) + "\r\n"
	in := strings.Repeat(line, 2000) + "RE!G\r\n"
	for name, copyAll := range map[string]func(io.Reader) ([]byte, error){
		"read": io.ReadAll,
		"copy": func(r io.Reader) ([]byte, error) { var b bytes.Buffer; _, err := io.Copy(&b, r); return b.Bytes(), err },
	} {
		got, err := copyAll(ps.base64Reader(strings.NewReader(in)))
		want := fmt.Sprintf("input byte %d", 2000*76+2)
		if len(got) != 2000*57 || err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: bad input after 2,000 lines: %d bytes, %v; want %d bytes and an error at %s", name, len(got), err, 2000*57, want)
		}
	}
}
