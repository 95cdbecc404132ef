package ingest

import (
	"bytes"
	"fmt"
	"io"
	"math/bits"
	"os"
	"sync"

	"github.com/ticketrouter/ticketrouter/ingest/mail"
)

// Spool holds one raw mail while it is parsed, its signatures checked and
// it is stored: in memory up to a limit, in a temporary file beyond it, so
// that a mail of any size costs bounded memory. It can be read any number
// of times; Close removes the file.
type Spool struct {
	mem     []byte
	file    *os.File
	size    int64
	buffers *spoolBuffers // where mem goes back on Close; nil: to the GC
}

// SpoolMemory is how much of one mail a spool holds in memory, by
// default: the rest of a larger one goes to a temporary file.
const SpoolMemory = 1 << 20

// NewSpool reads r to its end into a spool keeping at most memLimit bytes
// in memory; larger mail goes to a temporary file in dir ("" is the
// system's temporary directory).
func NewSpool(r io.Reader, memLimit int64, dir string) (*Spool, error) {
	return newSpool(r, -1, memLimit, dir, nil)
}

// newSpool is NewSpool for a mail whose size is known beforehand (size;
// -1 when not), with its memory taken from, and given back to, buffers.
// A mail said to be larger than memLimit goes straight to a file.
func newSpool(r io.Reader, size, memLimit int64, dir string, buffers *spoolBuffers) (*Spool, error) {
	if size > memLimit {
		return spoolFile(r, nil, dir, buffers)
	}
	var buf []byte
	if size >= 0 {
		buf = buffers.get(int(size) + 1) // + 1: room to see the end without growing
	}
	buf, err := mail.ReadAtMost(buf, r, int(memLimit)+1)
	if err != nil {
		buffers.put(buf)
		return nil, fmt.Errorf("spool mail: %w", err)
	}
	if int64(len(buf)) <= memLimit {
		return &Spool{mem: buf, size: int64(len(buf)), buffers: buffers}, nil
	}
	return spoolFile(r, buf, dir, buffers)
}

// spoolCopyBuffer is the size of the buffer a mail is copied to its file
// through.
const spoolCopyBuffer = 64 << 10

// spoolFile spools a mail to a temporary file in dir: head, the bytes of
// it already read (given back to buffers), then the rest of r.
func spoolFile(r io.Reader, head []byte, dir string, buffers *spoolBuffers) (*Spool, error) {
	f, err := os.CreateTemp(dir, "ticketrouter-mail-*")
	if err != nil {
		buffers.put(head)
		return nil, fmt.Errorf("spool mail: %w", err)
	}
	os.Remove(f.Name()) // gone once closed, even after a crash
	s := &Spool{file: f}
	_, err = f.Write(head)
	n := int64(len(head))
	buffers.put(head)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("spool mail: %w", err)
	}
	// Through a buffer of the pool: the file's own ReadFrom would
	// allocate one for every mail.
	buf := buffers.get(spoolCopyBuffer)
	rest, err := io.CopyBuffer(struct{ io.Writer }{f}, r, buf[:cap(buf)])
	buffers.put(buf)
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

// Bytes returns the whole mail when the spool holds it in memory, and nil
// when it is in a file: a consumer that needs the bytes as they are (the
// publisher's chunks) takes them without a copy. They must not be changed,
// nor kept past Close.
func (s *Spool) Bytes() []byte {
	if s.file != nil {
		return nil
	}
	return s.mem
}

// Size is the mail's size in bytes.
func (s *Spool) Size() int64 { return s.size }

// Close releases the spool. Readers from it must not be used after.
func (s *Spool) Close() error {
	if s.file != nil {
		return s.file.Close()
	}
	s.buffers.put(s.mem)
	s.mem = nil
	return nil
}

// spoolBuffers recycles the memory of spools, by powers of two from 4 KiB
// to 2 MiB: a drain of thousands of mails would otherwise allocate (and
// clear) a buffer for each, and the collector reclaim it. The zero value
// is ready; a nil one allocates and drops.
type spoolBuffers struct {
	classes [10]sync.Pool // of *[]byte with a capacity of 4 KiB << i
}

// get returns an empty buffer with room for n bytes.
func (b *spoolBuffers) get(n int) []byte {
	i := bufferClass(n)
	if b == nil || i >= len(b.classes) {
		return make([]byte, 0, n)
	}
	if p, ok := b.classes[i].Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return make([]byte, 0, 4<<10<<i)
}

// put gives a buffer from get back.
func (b *spoolBuffers) put(buf []byte) {
	if b == nil || cap(buf) < 4<<10 || cap(buf)&(cap(buf)-1) != 0 {
		return // not one of ours: the collector takes it
	}
	if i := bufferClass(cap(buf)); i < len(b.classes) {
		b.classes[i].Put(&buf)
	}
}

// bufferClass returns the class of buffers with room for n bytes.
func bufferClass(n int) int {
	if n <= 4<<10 {
		return 0
	}
	return bits.Len(uint(n-1)) - 12
}
