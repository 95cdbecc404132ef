package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
}

// Publish stores the raw mail in the object store, under the ticket id,
// then publishes the ticket with the ticket id as its message id, and
// returns once the stream acknowledged it. A ticket published before
// (within the duplicate window by the stream, or later by the published
// bucket) is not published again: published reports false for it.
func (p *Publisher) Publish(ctx context.Context, t *Ticket, raw io.Reader) (published bool, err error) {
	// Each request has its own deadline: one sent to a server that died
	// is not failed by the reconnect, and must not hold up the mailbox for
	// the caller's whole deadline.
	gctx, cancel := context.WithTimeout(ctx, requestTimeout)
	_, err = p.JS.Published.Get(gctx, t.ID)
	cancel()
	if err == nil {
		return false, nil
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, fmt.Errorf("look up ticket %s: %w", t.ID, err)
	}
	info, err := p.JS.Raw.Put(ctx, jetstream.ObjectMeta{Name: t.ID, Description: "raw mail of ticket " + t.ID}, raw)
	if err != nil {
		return false, fmt.Errorf("store raw mail %s: %w", t.ID, err)
	}
	t.Raw = &RawRef{Bucket: info.Bucket, Name: info.Name}
	data, err := json.Marshal(t)
	if err != nil {
		return false, fmt.Errorf("encode ticket %s: %w", t.ID, err)
	}
	actx, cancel := context.WithTimeout(ctx, ackTimeout)
	ack, err := p.publish(actx, t.Queue, t.ID, data)
	cancel()
	if err != nil {
		return false, err
	}
	mctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if _, err := p.JS.Published.Put(mctx, t.ID, []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
		// The stream has the ticket; the duplicate window still guards a
		// retry. Report it, for the mail must not be moved on a doubt.
		return false, fmt.Errorf("mark ticket %s published: %w", t.ID, err)
	}
	return !ack.Duplicate, nil
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
