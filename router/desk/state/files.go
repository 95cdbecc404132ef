package state

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/emersion/go-message"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrWithheld: the attachment holds key material, which the desk never
// hands out (the ticket lists it as a secret, without a digest).
var ErrWithheld = errors.New("withheld: the attachment holds key material")

// Raw opens the raw mail of ticket id in the object store, recording a
// raw_viewed event by a first: the audit says who looked even if the
// reading then fails. It returns the mail and its size. Who may look is
// the caller's to decide (roles and colours).
func (s *Store) Raw(ctx context.Context, a Actor, id string) (io.ReadCloser, int64, error) {
	rec, err := s.auditView(ctx, a, id, Event{Kind: KindRawViewed})
	if err != nil {
		return nil, 0, fmt.Errorf("raw mail: %w", err)
	}
	r, size, err := s.openRaw(ctx, rec.ID)
	if err != nil {
		return nil, 0, fmt.Errorf("raw mail of %s: %w", id, err)
	}
	return r, size, nil
}

// openRaw opens the raw mail named id.
func (s *Store) openRaw(ctx context.Context, id string) (io.ReadCloser, int64, error) {
	r, err := s.js.Raw.Get(ctx, id)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, 0, fmt.Errorf("not stored: %w", ErrNotFound)
	}
	if err != nil {
		return nil, 0, err
	}
	info, err := r.Info()
	if err != nil {
		r.Close()
		return nil, 0, err
	}
	return r, int64(info.Size), nil
}

// auditView finds ticket id (taken or queued) and records ev about it by a.
func (s *Store) auditView(ctx context.Context, a Actor, id string, ev Event) (*Record, error) {
	rec, _, err := s.record(ctx, id)
	if errors.Is(err, ErrNotFound) && validID.MatchString(id) {
		// Not taken yet (no number): a ticket if its raw mail is stored.
		rctx, cancel := ctxReq(ctx)
		_, ierr := s.js.Raw.GetInfo(rctx, id)
		cancel()
		if ierr == nil {
			rec, err = Record{ID: id}, nil
		} else if !errors.Is(ierr, jetstream.ErrObjectNotFound) {
			err = ierr
		}
	}
	if err != nil {
		return nil, err
	}
	if err := s.appendEvent(ctx, a, &rec, ev); err != nil {
		return nil, err
	}
	return &rec, nil
}

// Attachment returns attachment index (0-based, as the ticket lists them)
// of ticket id, read again from the raw mail: its name, its media type and
// its decoded content. The part is found by the digest the ticket records,
// so what is returned is exactly what the service saw. An attachment that
// holds key material is ErrWithheld. An attachment_downloaded event by a is
// recorded first.
func (s *Store) Attachment(ctx context.Context, a Actor, id string, index int) (name, contentType string, body io.ReadCloser, err error) {
	_, t, err := s.Get(ctx, id)
	if err != nil {
		return "", "", nil, fmt.Errorf("attachment: %w", err)
	}
	if t == nil || index < 0 || index >= len(t.Attachments) {
		return "", "", nil, fmt.Errorf("attachment %d of %s: %w", index, id, ErrNotFound)
	}
	at := t.Attachments[index]
	if at.Secret != "" || at.SHA256 == "" {
		return "", "", nil, fmt.Errorf("attachment %d of %s: %w", index, id, ErrWithheld)
	}
	if _, err := s.auditView(ctx, a, t.ID, Event{Kind: KindAttachmentDownloaded, Detail: strconv.Itoa(index) + ": " + at.Name}); err != nil {
		return "", "", nil, fmt.Errorf("attachment: %w", err)
	}
	raw, _, err := s.openRaw(ctx, t.ID)
	if err != nil {
		return "", "", nil, fmt.Errorf("attachment %d of %s: %w", index, id, err)
	}
	defer raw.Close()
	content, err := findPart(raw, at.SHA256, at.Size)
	if err != nil {
		return "", "", nil, fmt.Errorf("attachment %d of %s: %w", index, id, err)
	}
	return at.Name, at.ContentType, io.NopCloser(bytes.NewReader(content)), nil
}

// findPart walks the mail's parts and returns the decoded content of the
// one whose SHA-256 (hex) is digest and whose length is size.
func findPart(raw io.Reader, digest string, size int64) ([]byte, error) {
	m, err := message.Read(raw)
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return nil, fmt.Errorf("read the raw mail: %w", err)
	}
	var found []byte
	errFound := errors.New("found")
	err = m.Walk(func(_ []int, e *message.Entity, err error) error {
		if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
			return err
		}
		if mt, _, _ := e.Header.ContentType(); strings.HasPrefix(mt, "multipart/") {
			return nil // Walk reads its parts
		}
		// Read one byte past size: a longer part is not the one.
		b, rerr := io.ReadAll(io.LimitReader(e.Body, size+1))
		if rerr != nil || int64(len(b)) != size {
			return nil
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) == digest {
			found = b
			return errFound
		}
		return nil
	})
	switch {
	case found != nil:
		return found, nil
	case err != nil && !errors.Is(err, errFound):
		return nil, fmt.Errorf("read the raw mail: %w", err)
	}
	return nil, fmt.Errorf("no part of the raw mail has digest %s: %w", digest, ErrNotFound)
}
