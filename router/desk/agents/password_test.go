package agents

import (
	"io"
	"strings"
	"testing"
)

// TestReadPasswordPipe: from a pipe, the password is the first line
// without its line ending; none, a short one or an overlong line is an
// error that does not hold it.
func TestReadPasswordPipe(t *testing.T) {
	long := strings.Repeat("p", MaxPasswordLength+1)
	for _, tt := range []struct {
		in, want, err string
	}{
		{"a long password\n", "a long password", ""},
		{"a long password\r\nsecond line\n", "a long password", ""},
		{"  spaces kept  ", "  spaces kept  ", ""},
		{"", "", "standard input has none"},
		{"\nsecond line is ignored\n", "", "standard input has none"},
		{"shortpw\n", "", "want at least 12"},
		{long + "\n", "", "over 1024 bytes"},
		{long, "", "over 1024 bytes"},
	} {
		got, err := ReadPassword(strings.NewReader(tt.in), io.Discard, "alice")
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("ReadPassword(%.20q) = %q, %v; want %q", tt.in, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("ReadPassword(%.20q) = %q, %v; want an error saying %q", tt.in, got, err, tt.err)
		case err != nil && strings.Contains(err.Error(), "shortpw"):
			t.Errorf("error %q holds the password", err)
		}
	}
}
