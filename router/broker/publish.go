package broker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// Deadlines of the single requests of a publication; the raw mail's
// upload, which may be large, has only the caller's.
const (
	requestTimeout = 5 * time.Second  // a key-value read or write
	ackTimeout     = 10 * time.Second // the stream's ack of a ticket
)

// Publisher puts tickets on their subjects, with the raw mail they came
// from stored first, and returns only once JetStream has them.
type Publisher struct {
	JS     *JetStream
	Prefix string

	// chunks recycles the buffers of raw-mail chunks read from a reader
	// (a mail spooled to a file): a backlog's large mails would otherwise
	// allocate one per chunk, and the collector reclaim them.
	chunks sync.Pool // of *[rawChunkSize]byte
	// docs recycles the buffers tickets are encoded in.
	docs sync.Pool // of *bytes.Buffer
}

// RawMail is the raw mail a ticket came from, as Publish stores it.
type RawMail struct {
	// Reader reads the whole mail from its first byte.
	Reader io.Reader
	// Size is the mail's length in bytes, -1 when unknown: with it, the
	// chunks read are allocated at the size needed.
	Size int64
	// Bytes is the whole mail when the caller holds it in memory, nil
	// otherwise: the chunks stored are then slices of it, with no copy.
	// It must not change before Publish returns.
	Bytes []byte
	// Digest is the mail's SHA-256 when the caller knows it; nil: Publish
	// computes it while storing the mail.
	Digest []byte
}

// Publish stores the raw mail in the object store under the ticket id,
// publishes the ticket, with a reference to the stored mail and the
// ticket id as its message id, and returns once the stream acknowledged
// it, with the ticket's sequence in the stream (its number:
// ticket.Number). t itself is not changed.
//
// The raw mail's chunks are stored first; its meta message, which makes
// the object visible, goes last and records the ticket's sequence
// (TicketSeqKey in its metadata): a visible raw mail is the mark of a
// published ticket. So a ticket published before, within the duplicate
// window by the stream or later by that mark, is not published again:
// published reports false for it, and seq is the first publication's (0
// when a version that did not record it published it). A crash between
// the ticket and the meta message leaves the ticket without its raw mail
// until the mail is retried, within the duplicate window.
func (p *Publisher) Publish(ctx context.Context, t *ticket.Ticket, raw RawMail) (seq uint64, published bool, err error) {
	// Each request has its own deadline: one sent to a server that died
	// is not failed by the reconnect, and must not hold up the mailbox for
	// the caller's whole deadline.
	gctx, cancel := context.WithTimeout(ctx, requestTimeout)
	info, err := p.JS.Raw.GetInfo(gctx, t.ID, jetstream.GetObjectInfoShowDeleted())
	cancel()
	switch {
	case errors.Is(err, jetstream.ErrObjectNotFound):
		info = nil
	case err != nil:
		return 0, false, fmt.Errorf("look up raw mail %s: %w", t.ID, err)
	default:
		if seq, ok := info.Metadata[TicketSeqKey]; ok {
			n, _ := strconv.ParseUint(seq, 10, 64)
			return n, false, nil
		}
		// Stored by a version that marked tickets in a bucket of their own.
		if seq, found, err := p.legacyMark(ctx, t.ID); err != nil || found {
			return seq, false, err
		}
		if info.Deleted {
			info = nil
		} // else stored by an attempt that did not publish: the same bytes, for the name is their SHA-256
	}
	if info == nil {
		if info, err = p.putChunks(ctx, t.ID, raw); err != nil {
			return 0, false, fmt.Errorf("store raw mail %s: %w", t.ID, err)
		}
	}
	doc := *t
	doc.Raw = &ticket.RawRef{Bucket: p.JS.RawBucket, Name: t.ID}
	buf, _ := p.docs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	if err := json.NewEncoder(buf).Encode(&doc); err != nil {
		return 0, false, fmt.Errorf("encode ticket %s: %w", t.ID, err)
	}
	data := bytes.TrimSuffix(buf.Bytes(), []byte("\n")) // as json.Marshal gives it
	actx, cancel := context.WithTimeout(ctx, ackTimeout)
	ack, err := p.publish(actx, t.Queue, t.ID, data)
	cancel()
	if err != nil {
		return 0, false, err // the buffer may be resent still: not reused
	}
	if buf.Cap() <= maxPooledDoc {
		p.docs.Put(buf)
	}
	if info.Metadata == nil {
		info.Metadata = map[string]string{}
	}
	info.Metadata[TicketSeqKey] = strconv.FormatUint(ack.Sequence, 10)
	mctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if err := p.putMeta(mctx, info); err != nil {
		// The stream has the ticket; the duplicate window still guards a
		// retry. Report it, for the mail must not be moved on a doubt.
		return 0, false, fmt.Errorf("mark ticket %s published: %w", t.ID, err)
	}
	return ack.Sequence, !ack.Duplicate, nil
}

// TicketSeqKey is the key, in the metadata of a raw mail in the object
// store, of the sequence of the ticket published from it.
const TicketSeqKey = "ticket-seq"

// legacyMark reads the mark of ticket id in the published bucket, which
// versions that did not keep the mark with the raw mail wrote: found, and
// the ticket's sequence (0 when unknown). Without the bucket, nothing is
// found.
func (p *Publisher) legacyMark(ctx context.Context, id string) (seq uint64, found bool, err error) {
	if p.JS.Published == nil {
		return 0, false, nil
	}
	gctx, cancel := context.WithTimeout(ctx, requestTimeout)
	e, err := p.JS.Published.Get(gctx, id)
	cancel()
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("look up ticket %s: %w", id, err)
	}
	var mark struct {
		Seq uint64 `json:"seq"`
	}
	_ = json.Unmarshal(e.Value(), &mark) // a bare time, before sequences were recorded: 0
	return mark.Seq, true, nil
}

// maxPooledDoc is the largest ticket buffer kept for the next ticket: a
// rare large one goes to the collector instead of staying in memory.
const maxPooledDoc = 64 << 10

// A raw mail is stored in chunks of the object store's default size, a
// few at a time.
const (
	rawChunkSize      = 128 << 10
	rawChunksInFlight = 8
)

// putChunks stores the chunks of a raw mail in the object store's own
// format, on a subject of their own, and returns the object's info for
// the meta message (putMeta) that makes it visible, so that Raw.Get and
// the nats CLI read it; but it publishes on the shared JetStream context.
// The library's Put makes a context with a reply subscription of its own
// for every object: subscribing and unsubscribing once a mail was over
// half of the service's CPU time per mail in the drain benchmark's
// profile.
func (p *Publisher) putChunks(ctx context.Context, name string, raw RawMail) (_ *jetstream.ObjectInfo, err error) {
	id := nuid.Next()
	chunks := fmt.Sprintf("$O.%s.C.%s", p.JS.RawBucket, id)
	info := &jetstream.ObjectInfo{
		ObjectMeta: jetstream.ObjectMeta{
			Name: name, Description: "raw mail of ticket " + name,
			Opts: &jetstream.ObjectMetaOptions{ChunkSize: rawChunkSize},
		},
		Bucket: p.JS.RawBucket, NUID: id,
	}
	digest := raw.Digest
	var sum hash.Hash
	if digest == nil {
		sum = sha256.New()
	}
	next, release := p.rawChunks(raw)
	defer func() {
		if err == nil { // else a chunk may be in flight still
			release()
		}
	}()
	var acks []jetstream.PubAckFuture // of chunks in flight, oldest first
	for {
		chunk, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			p.purgeChunks(ctx, chunks)
			return nil, fmt.Errorf("read: %w", err)
		}
		// A few chunks in flight keep the stream busy; more would only
		// hold a large mail in memory (each future keeps its chunk for a
		// resend).
		if len(acks) == rawChunksInFlight {
			if err := awaitAck(ctx, acks[0]); err != nil {
				p.purgeChunks(ctx, chunks)
				return nil, err
			}
			acks = acks[1:]
		}
		if sum != nil {
			sum.Write(chunk)
		}
		ack, err := p.JS.JS.PublishMsgAsync(&nats.Msg{Subject: chunks, Data: chunk})
		if err != nil {
			p.purgeChunks(ctx, chunks)
			return nil, err
		}
		acks = append(acks, ack)
		info.Size += uint64(len(chunk))
		info.Chunks++
	}
	if sum != nil {
		digest = sum.Sum(nil)
	}
	info.Digest = "SHA-256=" + base64.URLEncoding.EncodeToString(digest) // as GetObjectDigestValue writes it
	for _, ack := range acks {
		if err := awaitAck(ctx, ack); err != nil {
			p.purgeChunks(ctx, chunks)
			return nil, err
		}
	}
	return info, nil
}

// putMeta publishes the meta message of a raw mail whose chunks are
// stored, as the object store writes it: readers see the object from
// then on.
func (p *Publisher) putMeta(ctx context.Context, info *jetstream.ObjectInfo) error {
	info.ModTime = time.Time{} // as the object store writes it: the message's time is the object's
	data, err := json.Marshal(info)
	if err != nil {
		return err
	}
	meta := nats.NewMsg(fmt.Sprintf("$O.%s.M.%s", p.JS.RawBucket, base64.URLEncoding.EncodeToString([]byte(info.Name))))
	meta.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	meta.Data = data
	ack, err := p.JS.JS.PublishMsgAsync(meta)
	if err == nil {
		err = awaitAck(ctx, ack)
	}
	return err
}

// rawChunks returns the function that yields a raw mail's chunks in turn,
// then io.EOF, and the function that gives back their memory once no
// chunk is in flight. The chunks are slices of the mail when it is in
// memory (Bytes), else read from Reader into buffers of p.chunks, each
// used again once rawChunksInFlight more chunks were read after it: by
// then putRaw had the ack of the chunk it held.
func (p *Publisher) rawChunks(raw RawMail) (next func() ([]byte, error), release func()) {
	if raw.Bytes != nil {
		rest := raw.Bytes
		return func() ([]byte, error) {
			if len(rest) == 0 {
				return nil, io.EOF
			}
			n := min(len(rest), rawChunkSize)
			chunk := rest[:n:n]
			rest = rest[n:]
			return chunk, nil
		}, func() {}
	}
	var ring [rawChunksInFlight + 1]*[rawChunkSize]byte
	turn := 0
	release = func() {
		for i, b := range ring {
			if b != nil {
				p.chunks.Put(b)
				ring[i] = nil
			}
		}
	}
	r, left := raw.Reader, raw.Size // bytes still to read; -1 unknown
	return func() ([]byte, error) {
		size := int64(rawChunkSize)
		if left >= 0 {
			size = min(left, size)
		}
		if size == 0 {
			return nil, io.EOF
		}
		b := &ring[turn%len(ring)]
		turn++
		if *b == nil {
			*b, _ = p.chunks.Get().(*[rawChunkSize]byte)
			if *b == nil {
				*b = new([rawChunkSize]byte)
			}
		}
		chunk := (*b)[:size:size]
		n, err := io.ReadFull(r, chunk)
		left -= int64(n)
		if n > 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
			err = nil // the end: the next call says so
		}
		return chunk[:n], err
	}, release
}

// purgeChunks removes the chunks of a raw mail that was not stored, as far
// as it can: left over, they only take space until the bucket's TTL.
func (p *Publisher) purgeChunks(ctx context.Context, subject string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	defer cancel()
	if s, err := p.JS.JS.Stream(ctx, "OBJ_"+p.JS.RawBucket); err == nil {
		s.Purge(ctx, jetstream.WithPurgeSubject(subject))
	}
}

// awaitAck waits for one asynchronous publication's ack.
func awaitAck(ctx context.Context, ack jetstream.PubAckFuture) error {
	select {
	case <-ack.Ok():
		return nil
	case err := <-ack.Err():
		return err
	case <-ctx.Done():
		return fmt.Errorf("no ack: %w", ctx.Err())
	}
}

// DeadLetter is the record of a mail moved to the quarantine folder,
// published on <prefix>.deadletter beside tickets of unparsable mail.
type DeadLetter struct {
	Kind        string    `json:"kind"` // "quarantined"
	Mailbox     string    `json:"mailbox"`
	UIDValidity uint32    `json:"uidvalidity"`
	UID         uint32    `json:"uid"`
	Size        int64     `json:"size"`
	Reason      string    `json:"reason"`
	Attempts    int       `json:"attempts"`
	At          time.Time `json:"at"`
}

// PublishDeadLetter publishes the record of a quarantined mail.
func (p *Publisher) PublishDeadLetter(ctx context.Context, d DeadLetter) error {
	d.Kind = "quarantined"
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode dead letter: %w", err)
	}
	id := fmt.Sprintf("quarantined-%s-%d-%d", d.Mailbox, d.UIDValidity, d.UID)
	_, err = p.publish(ctx, p.Prefix+".deadletter", id, data)
	return err
}

// publish publishes asynchronously and waits for the stream's ack.
func (p *Publisher) publish(ctx context.Context, subject, id string, data []byte) (*jetstream.PubAck, error) {
	fut, err := p.JS.JS.PublishMsgAsync(&nats.Msg{Subject: subject, Data: data}, jetstream.WithMsgID(id))
	if err != nil {
		return nil, fmt.Errorf("publish to %s: %w", subject, err)
	}
	select {
	case ack := <-fut.Ok():
		return ack, nil
	case err := <-fut.Err():
		return nil, fmt.Errorf("publish to %s: %w", subject, err)
	case <-ctx.Done():
		return nil, fmt.Errorf("publish to %s: no ack: %w", subject, ctx.Err())
	}
}
