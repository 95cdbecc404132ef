package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// byConversation is the index kind of a conversation's first ticket id:
// it lists the tickets that joined the conversation.
const byConversation = "conv"

// KindFollowUp is the audit event of a ticket that joined a conversation
// and was given to the conversation's owner without passing the queue.
const KindFollowUp = "follow_up"

// Conversation returns the tickets of the conversation ticket id is part
// of, oldest first: its first ticket and each ticket that joined it (once
// the indexer has seen it).
func (s *Store) Conversation(ctx context.Context, id string) ([]Record, error) {
	rec, t, err := s.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("conversation: %w", err)
	}
	root, rootSeq := rec.ID, rec.StreamSeq
	if c := joined(t); c != nil {
		root, rootSeq = c.Root, 0
		if seq, ok := ticket.ParseNumber(c.RootNumber); ok {
			rootSeq = seq
		}
	}
	entries, err := s.lookup(ctx, indexKey(byConversation, root))
	if err != nil {
		return nil, fmt.Errorf("conversation: %w", err)
	}
	if rootSeq != 0 {
		entries = append(entries, indexEntry{ID: root, Seq: rootSeq})
	}
	out, err := s.records(ctx, entries)
	if err != nil {
		return nil, fmt.Errorf("conversation: %w", err)
	}
	slices.Reverse(out) // records gives the newest first
	return out, nil
}

// joined is t's conversation when t joined one; nil otherwise.
func joined(t *ticket.Ticket) *ticket.Conversation {
	if t == nil || t.Conversation == nil || !t.Conversation.Joined || !validID.MatchString(t.Conversation.Root) {
		return nil
	}
	return t.Conversation
}

// conversationOwner is the agent a ticket that joined the conversation of
// root goes to: whoever owns root's record, or resolved it, while that
// agent is active; "" when nobody has it (never taken, returned,
// escalated, its agent disabled).
func (s *Store) conversationOwner(ctx context.Context, root string) (string, error) {
	rec, _, err := s.record(ctx, root)
	switch {
	case errors.Is(err, ErrNotFound):
		return "", nil
	case err != nil:
		return "", err
	case rec.State != StateOwned && rec.State != StateResolved:
		return "", nil
	case s.opts.Active != nil && !s.opts.Active(rec.Owner):
		return "", nil // gone or disabled: the queue's
	}
	return rec.Owner, nil
}

// followUp gives t, a ticket that joined a conversation (at seq in the
// stream, published at, from queue), to the conversation's owner: its
// record is created owned by them, and the history says why. It reports
// whether it did; false when the conversation has no owner, when except
// owns it (the taker, who may as well take it), or when the ticket has a
// record already. The queue's message is left to the next take, which
// skips it.
func (s *Store) followUp(ctx context.Context, t *ticket.Ticket, seq uint64, at time.Time, queue, except string) (bool, error) {
	c := joined(t)
	if c == nil || !validID.MatchString(t.ID) {
		return false, nil
	}
	owner, err := s.conversationOwner(ctx, c.Root)
	if err != nil || owner == "" || owner == except {
		return false, err
	}
	rec := s.newRecord(t.ID, t, seq, at, queue, owner)
	data, err := json.Marshal(&rec)
	if err != nil {
		return false, err
	}
	rctx, cancel := ctxReq(ctx)
	rev, err := s.tickets.Create(rctx, rec.ID, data)
	cancel()
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("follow-up %s: %w", rec.Number, err)
	}
	s.remember(rec, rev)
	ev := Event{Kind: KindFollowUp, Detail: fmt.Sprintf("joined %s (%s): given to its owner %s", c.RootNumber, c.Reason, owner)}
	if err := s.appendEvent(ctx, Actor{Agent: "ticketrouter"}, &rec, ev); err != nil {
		return true, fmt.Errorf("follow-up %s: %w", rec.Number, err)
	}
	return true, nil
}

// newRecord is the record of a ticket (id; t nil when its message is not a
// ticket document) at seq in the stream, published at, from queue, as
// owner takes it now.
func (s *Store) newRecord(id string, t *ticket.Ticket, seq uint64, at time.Time, queue, owner string) Record {
	now := s.opts.Now().UTC()
	rec := Record{
		Number: ticket.Number(seq), ID: id, Queue: queue, State: StateOwned, Owner: owner,
		TakenAt: now, UpdatedAt: now, Published: at.UTC(), StreamSeq: seq,
	}
	if t != nil {
		rec.Colour = t.Colour
	}
	return rec
}
