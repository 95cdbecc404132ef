package ingest

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestSpool(t *testing.T) {
	for _, size := range []int{0, 10, 1000, 5000} {
		data := bytes.Repeat([]byte("x"), size)
		s, err := NewSpool(bytes.NewReader(data), 1000, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // readable more than once
			got, err := io.ReadAll(s.Reader())
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("size %d: read %d bytes, %v", size, len(got), err)
			}
		}
		if s.Size() != int64(size) || (size > 1000) != (s.file != nil) {
			t.Errorf("size %d: Size %d, in a file %v", size, s.Size(), s.file != nil)
		}
		s.Close()
	}
	if _, err := NewSpool(io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(io.ErrClosedPipe)), 10, ""); err == nil {
		t.Error("a failing reader spooled without an error")
	}
}
