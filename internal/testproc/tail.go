package testproc

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// TailBytes bounds what Tail reads of a file: its last 64 KiB.
const TailBytes = 64 << 10

// Tail returns the last n lines of the file at path (a log, for an error
// message), or why it cannot be read. It reads no more than the last
// TailBytes of the file, so a huge log costs no more than a small one;
// a line cut by that bound is left out.
func Tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no %s: %v)", filepath.Base(path), err)
	}
	defer f.Close()
	data, err := readTail(f, TailBytes)
	if err != nil {
		return fmt.Sprintf("(no %s: %v)", filepath.Base(path), err)
	}
	return lastLines(data, n)
}

// readTail reads the last max bytes of f, without the partial line they
// start with when they are not the whole file.
func readTail(f *os.File, max int64) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := st.Size() - max
	if off <= 0 {
		return io.ReadAll(f)
	}
	data := make([]byte, max)
	k, err := f.ReadAt(data, off)
	if err != nil && err != io.EOF {
		return nil, err
	}
	data = data[:k]
	// The byte before off ends a line or not; look at it to keep a line
	// that starts exactly at off.
	var prev [1]byte
	if _, err := f.ReadAt(prev[:], off-1); err != nil {
		return nil, err
	}
	if prev[0] != '\n' {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return nil, nil // one line longer than max
		}
		data = data[i+1:]
	}
	return data, nil
}

// lastLines returns the last n lines of data, without its final newline.
func lastLines(data []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
