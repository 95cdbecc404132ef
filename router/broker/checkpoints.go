package broker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/ticketrouter/ticketrouter/ingest"
)

// KVCheckpoints keeps the IMAP checkpoints in a NATS key-value bucket,
// where every replica finds them.
type KVCheckpoints struct {
	KV jetstream.KeyValue
}

// mailboxKey turns a mailbox name into a valid key (checkpoints, leases):
// mailbox names hold characters keys may not.
func mailboxKey(mailbox string) string {
	return "mailbox." + base64.RawURLEncoding.EncodeToString([]byte(mailbox))
}

// Load implements ingest.CheckpointStore.
func (k KVCheckpoints) Load(ctx context.Context, mailbox string) (ingest.Checkpoint, error) {
	var cp ingest.Checkpoint
	e, err := k.KV.Get(ctx, mailboxKey(mailbox))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return cp, nil
	}
	if err != nil {
		return cp, fmt.Errorf("load checkpoint of %s: %w", mailbox, err)
	}
	if err := json.Unmarshal(e.Value(), &cp); err != nil {
		return ingest.Checkpoint{}, fmt.Errorf("load checkpoint of %s: %w", mailbox, err)
	}
	return cp, nil
}

// Save implements ingest.CheckpointStore.
func (k KVCheckpoints) Save(ctx context.Context, mailbox string, cp ingest.Checkpoint) error {
	b, err := json.Marshal(cp)
	if err != nil {
		return fmt.Errorf("save checkpoint of %s: %w", mailbox, err)
	}
	if _, err := k.KV.Put(ctx, mailboxKey(mailbox), b); err != nil {
		return fmt.Errorf("save checkpoint of %s: %w", mailbox, err)
	}
	return nil
}
