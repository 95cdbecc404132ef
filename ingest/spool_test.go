package ingest

import (
	"bytes"
	"fmt"
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
		// Bytes gives the mail held in memory, and says nil for one in a file.
		if b := s.Bytes(); size > 1000 && b != nil || size <= 1000 && !bytes.Equal(b, data) {
			t.Errorf("size %d: Bytes gave %d bytes (nil %v)", size, len(b), b == nil)
		}
		s.Close()
	}
	if _, err := NewSpool(io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(io.ErrClosedPipe)), 10, ""); err == nil {
		t.Error("a failing reader spooled without an error")
	}
}

// TestSpoolSized: a spool told the mail's size beforehand, its memory from
// a pool, holds the mail even when the size it was told is wrong; a mail
// said to be over the limit goes to a file at once.
func TestSpoolSized(t *testing.T) {
	var buffers spoolBuffers
	for _, tc := range []struct{ size, hint int }{
		{0, 0}, {10, 10}, {4095, 4095}, {4096, 4096}, {5000, 5000}, {1000, 1000}, {1001, 1001},
		{300, 100}, {100, 300}, {2000, 10}, {10, 2000},
	} {
		data := bytes.Repeat([]byte("y"), tc.size)
		s, err := newSpool(bytes.NewReader(data), int64(tc.hint), 1000, t.TempDir(), &buffers)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(s.Reader())
		// In a file when it is larger than the limit, or said to be.
		if err != nil || !bytes.Equal(got, data) || s.Size() != int64(tc.size) || (max(tc.size, tc.hint) > 1000) != (s.file != nil) {
			t.Errorf("size %d, told %d: read %d bytes (%v), Size %d, in a file %v", tc.size, tc.hint, len(got), err, s.Size(), s.file != nil)
		}
		s.Close()
	}
	for _, n := range []int{1, 4096, 4097, 1 << 20, 2 << 20} {
		if b := buffers.get(n); cap(b) < n || len(b) != 0 {
			t.Errorf("get(%d): len %d, cap %d", n, len(b), cap(b))
		}
	}
}

// BenchmarkSpool spools a mail of the drain's mean size and one too large
// for memory, with the watcher's pool: what each costs in allocation
// (B/op) is what the collector pays for it in a long drain.
func BenchmarkSpool(b *testing.B) {
	for _, size := range []int{40 << 10, 3 << 20 / 2} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			data := bytes.Repeat([]byte("z"), size)
			var buffers spoolBuffers
			dir := b.TempDir()
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				s, err := newSpool(bytes.NewReader(data), int64(size), SpoolMemory, dir, &buffers)
				if err != nil {
					b.Fatal(err)
				}
				s.Close()
			}
		})
	}
}
