package ingest

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// Spool holds one raw mail while it is parsed, its signatures checked and
// it is stored: in memory up to a limit, in a temporary file beyond it, so
// that a mail of any size costs bounded memory. It can be read any number
// of times; Close removes the file.
type Spool struct {
	mem  []byte
	file *os.File
	size int64
}

// NewSpool reads r to its end into a spool keeping at most memLimit bytes
// in memory; larger mail goes to a temporary file in dir ("" is the
// system's temporary directory).
func NewSpool(r io.Reader, memLimit int64, dir string) (*Spool, error) {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, memLimit+1))
	if err != nil {
		return nil, fmt.Errorf("spool mail: %w", err)
	}
	if n <= memLimit {
		return &Spool{mem: buf.Bytes(), size: n}, nil
	}
	f, err := os.CreateTemp(dir, "ticketrouter-mail-*")
	if err != nil {
		return nil, fmt.Errorf("spool mail: %w", err)
	}
	os.Remove(f.Name()) // gone once closed, even after a crash
	s := &Spool{file: f}
	if _, err := f.Write(buf.Bytes()); err != nil {
		s.Close()
		return nil, fmt.Errorf("spool mail: %w", err)
	}
	rest, err := io.Copy(f, r)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("spool mail: %w", err)
	}
	s.size = n + rest
	return s, nil
}

// Reader returns a reader of the whole mail, from its first byte.
func (s *Spool) Reader() io.Reader {
	if s.file != nil {
		return io.NewSectionReader(s.file, 0, s.size)
	}
	return bytes.NewReader(s.mem)
}

// Size is the mail's size in bytes.
func (s *Spool) Size() int64 { return s.size }

// Close releases the spool.
func (s *Spool) Close() error {
	if s.file != nil {
		return s.file.Close()
	}
	return nil
}
