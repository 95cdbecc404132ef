package testproc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTail(t *testing.T) {
	tests := []struct {
		name, data string
		n          int
		want       string
	}{
		{"empty", "", 3, ""},
		{"fewer lines than asked", "a\nb\n", 5, "a\nb"},
		{"last lines", "a\nb\nc\nd\n", 2, "c\nd"},
		{"no final newline", "a\nb\nc", 2, "b\nc"},
		{"trailing empty lines dropped", "a\nb\n\n\n", 1, "b"},
		{"zero lines", "a\nb\n", 0, ""},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("%d.log", i))
			if err := os.WriteFile(path, []byte(tt.data), 0o600); err != nil {
				t.Fatal(err)
			}
			if got := Tail(path, tt.n); got != tt.want {
				t.Errorf("Tail(%q, %d) = %q, want %q", tt.data, tt.n, got, tt.want)
			}
		})
	}
	if got := Tail(filepath.Join(dir, "missing.log"), 3); !strings.HasPrefix(got, "(no missing.log: ") {
		t.Errorf("Tail of a missing file = %q, want why", got)
	}
}

// TestTailKeepsLastBytes checks the bound: of a log larger than TailBytes,
// Tail reads only the end, whole lines, up to the last one.
func TestTailKeepsLastBytes(t *testing.T) {
	var b strings.Builder
	for i := 0; b.Len() < 4*TailBytes; i++ {
		fmt.Fprintf(&b, "line %06d\n", i)
	}
	data := b.String()
	path := filepath.Join(t.TempDir(), "big.log")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	got := Tail(path, 1<<20)
	if len(got) > TailBytes {
		t.Errorf("Tail gave %d bytes, more than the bound %d", len(got), TailBytes)
	}
	if len(got) < TailBytes-len("line 000000\n") {
		t.Errorf("Tail gave %d bytes, want nearly all of the last %d", len(got), TailBytes)
	}
	if !strings.HasSuffix(data, got+"\n") {
		t.Errorf("Tail is not the end of the file: ...%q", got[max(0, len(got)-40):])
	}
	if first, _, _ := strings.Cut(got, "\n"); len(first) != len("line 000000") || !strings.HasPrefix(first, "line ") {
		t.Errorf("Tail starts with a cut line %q", first)
	}
	if got := Tail(path, 2); !strings.HasSuffix(data, got+"\n") || strings.Count(got, "\n") != 1 {
		t.Errorf("Tail(2) = %q", got)
	}
}

func TestReadTail(t *testing.T) {
	const data = "aaaa\nbbbb\ncccc\n"
	tests := []struct {
		max  int64
		want string
	}{
		{100, data},              // the whole file
		{int64(len(data)), data}, // exactly the whole file
		{5, "cccc\n"},            // starts on a line's first byte: kept
		{7, "cccc\n"},            // starts inside a line: that line left out
		{4, ""},                  // shorter than a line
		{11, "bbbb\ncccc\n"},     // inside the first line
	}
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readTail(f, tt.max)
		f.Close()
		if err != nil || string(got) != tt.want {
			t.Errorf("readTail(max %d) = %q, %v; want %q", tt.max, got, err, tt.want)
		}
	}
}
