package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	"github.com/emersion/go-imap/v2"
)

// Checkpoint is how far a mailbox has been worked: every message with a UID
// up to LastUID, under UIDValidity, is handled. A new UIDVALIDITY voids it.
type Checkpoint struct {
	UIDValidity uint32   `json:"uidvalidity"`
	LastUID     imap.UID `json:"last_uid"`
}

// CheckpointStore keeps checkpoints durably. Losing one only costs a
// rescan (handled mail has left the mailbox, and tickets are
// de-duplicated), never a lost mail.
type CheckpointStore interface {
	// Load returns the mailbox's checkpoint, the zero Checkpoint if none.
	Load(ctx context.Context, mailbox string) (Checkpoint, error)
	Save(ctx context.Context, mailbox string, cp Checkpoint) error
}

// FileCheckpoints stores each mailbox's checkpoint as a small JSON file in
// Dir, replaced atomically.
type FileCheckpoints struct {
	Dir string
}

func (f FileCheckpoints) path(mailbox string) string {
	return filepath.Join(f.Dir, url.PathEscape(mailbox)+".json")
}

// Load implements CheckpointStore.
func (f FileCheckpoints) Load(_ context.Context, mailbox string) (Checkpoint, error) {
	var cp Checkpoint
	b, err := os.ReadFile(f.path(mailbox))
	if errors.Is(err, fs.ErrNotExist) {
		return cp, nil
	}
	if err != nil {
		return cp, fmt.Errorf("load checkpoint: %w", err)
	}
	if err := json.Unmarshal(b, &cp); err != nil {
		return Checkpoint{}, fmt.Errorf("load checkpoint %s: %w", f.path(mailbox), err)
	}
	return cp, nil
}

// Save implements CheckpointStore: write a temporary file, sync it, rename
// it over the old one.
func (f FileCheckpoints) Save(_ context.Context, mailbox string, cp Checkpoint) error {
	if err := os.MkdirAll(f.Dir, 0o700); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	b, err := json.Marshal(cp)
	if err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	tmp, err := os.CreateTemp(f.Dir, ".checkpoint-*")
	if err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("save checkpoint: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save checkpoint: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path(mailbox)); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	return nil
}
