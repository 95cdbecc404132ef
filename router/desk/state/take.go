package state

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// maxAttempts bounds a compare-and-set loop; past it, ErrConflict.
const maxAttempts = 64

// maxSkips bounds how many messages one TakeNext skips (their tickets
// already taken, after a crash mid-claim) before it gives up.
const maxSkips = 256

// casKey changes key in kv by change, with compare-and-set on its
// revision, and tries again when another replica wrote it meanwhile.
// change gets the current value (nil when there is none) and returns the
// new one, or nil to leave the key as it is.
func casKey(ctx context.Context, kv jetstream.KeyValue, key string, change func(cur []byte) ([]byte, error)) error {
	for range maxAttempts {
		rctx, cancel := ctxReq(ctx)
		e, err := kv.Get(rctx, key)
		var (
			cur []byte
			rev uint64
		)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			cancel()
			return err
		default:
			cur, rev = e.Value(), e.Revision()
		}
		next, err := change(cur)
		if err != nil || next == nil {
			cancel()
			return err
		}
		if rev == 0 {
			_, err = kv.Create(rctx, key, next)
		} else {
			_, err = kv.Update(rctx, key, next, rev)
		}
		cancel()
		switch {
		case err == nil:
			return nil
		case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			continue // another replica wrote it meanwhile
		default:
			return err
		}
	}
	return ErrConflict
}

// TakeNext makes a the owner of the oldest ticket of queue: first of those
// returned, transferred or escalated to it (held in the tickets bucket),
// then of those never taken (from the queue's consumer). It returns the
// desk's record and the ticket (nil for a stream message that is not a
// ticket document), or ErrNoTicket when the queue is empty.
//
// A new ticket is claimed crash-safe: its message is acknowledged only
// after its record is written; a message whose ticket has a record already
// (the desk died between the two) is acknowledged and skipped, so the ticket
// keeps its one owner. Two takers, in one replica or two, never get the same
// ticket: records are created and changed by compare-and-set.
func (s *Store) TakeNext(ctx context.Context, a Actor, queue string) (*Record, *ticket.Ticket, error) {
	if a.Agent == "" {
		return nil, nil, fmt.Errorf("take next of %s: no agent: %w", queue, ErrInvalid)
	}
	if !slices.Contains(s.Queues(), queue) {
		return nil, nil, fmt.Errorf("take next of %q: no such queue: %w", queue, ErrInvalid)
	}
	rec, err := s.takeWaiting(ctx, a, queue)
	if err != nil || rec == nil && queue == s.opts.Escalated {
		return nil, nil, cmp.Or(err, fmt.Errorf("take next of %s: %w", queue, ErrNoTicket))
	}
	var t *ticket.Ticket
	if rec == nil {
		// A new ticket: its message is at hand, and the indexer
		// (RunIndexer) indexes it with the rest of the stream.
		if rec, t, err = s.takeNew(ctx, a, queue); err != nil {
			return nil, nil, err
		}
	} else if t, err = s.ticketAt(ctx, rec.StreamSeq); err != nil && !errors.Is(err, ErrNotFound) {
		// Owned all the same: it is in the agent's tickets (Mine).
		return nil, nil, fmt.Errorf("take next of %s: %s is yours, but %w", queue, rec.Number, err)
	}
	if err := s.appendEvent(ctx, a, rec, Event{Kind: KindTaken, Detail: "from " + queue}); err != nil {
		return nil, nil, fmt.Errorf("take next of %s: %s is yours, but %w", queue, rec.Number, err)
	}
	return rec, t, nil
}

// takeWaiting makes a the owner of the oldest ticket waiting in queue in
// the tickets bucket, as the cache knows them; nil when none could be had.
func (s *Store) takeWaiting(ctx context.Context, a Actor, queue string) (*Record, error) {
	var waiting []Record
	s.mu.Lock()
	for _, c := range s.cache {
		if c.rec.Queue == queue && (c.rec.State == StateWaiting || c.rec.State == StateEscalated) {
			waiting = append(waiting, c.rec)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(waiting, oldestFirst)
	for _, w := range waiting[:min(len(waiting), maxAttempts)] {
		rec, err := s.update(ctx, w.ID, func(r *Record) error {
			if r.Queue != queue || r.State != StateWaiting && r.State != StateEscalated {
				return ErrConflict // another took it
			}
			r.State, r.Owner = StateOwned, a.Agent
			return nil
		})
		switch {
		case err == nil:
			return &rec, nil
		case errors.Is(err, ErrConflict):
			continue
		default:
			return nil, fmt.Errorf("take next of %s: %w", queue, err)
		}
	}
	return nil, nil
}

// oldestFirst orders records by publication, then stream sequence.
func oldestFirst(a, b Record) int {
	return cmp.Or(a.Published.Compare(b.Published), cmp.Compare(a.StreamSeq, b.StreamSeq))
}

// takeNew claims a ticket never taken from queue's consumer.
func (s *Store) takeNew(ctx context.Context, a Actor, queue string) (*Record, *ticket.Ticket, error) {
	cons, err := s.consumer(ctx, queue)
	if err != nil {
		return nil, nil, fmt.Errorf("take next of %s: consumer: %w", queue, err)
	}
	for range maxSkips {
		msg, err := s.fetch(ctx, cons)
		if err != nil {
			return nil, nil, fmt.Errorf("take next of %s: %w", queue, err)
		}
		if msg == nil {
			return nil, nil, fmt.Errorf("take next of %s: %w", queue, ErrNoTicket)
		}
		rec, t, err := s.claim(ctx, a, queue, msg)
		if err != nil {
			// Not acknowledged: the message comes again.
			_ = msg.Nak()
			return nil, nil, err
		}
		if rec != nil {
			return rec, t, nil
		}
	}
	return nil, nil, fmt.Errorf("take next of %s: %d tickets in a row were taken already: %w", queue, maxSkips, ErrConflict)
}

// claim writes the record of msg's ticket, owned by a, then acknowledges
// msg, and returns the record and the ticket (nil when msg is not a ticket
// document). It returns a nil record, acknowledging msg, when the ticket
// has a record already. The ticket's number is its message's (ticket.Number):
// nothing is shared with other takers but the record's compare-and-set.
func (s *Store) claim(ctx context.Context, a Actor, queue string, msg jetstream.Msg) (*Record, *ticket.Ticket, error) {
	meta, err := msg.Metadata()
	if err != nil {
		return nil, nil, fmt.Errorf("take next of %s: %w", queue, err)
	}
	seq := meta.Sequence.Stream
	t := new(ticket.Ticket)
	if json.Unmarshal(msg.Data(), t) != nil || t.ID == "" {
		t = nil
	}
	id := "s" + strconv.FormatUint(seq, 10) // not a ticket of ours (a dead letter's record): named by its place
	if t != nil && validID.MatchString(t.ID) {
		id = t.ID
	}
	// A ticket that joined a conversation goes to its owner.
	if given, err := s.followUp(ctx, t, seq, meta.Timestamp, queue, a.Agent); err != nil {
		return nil, nil, fmt.Errorf("take next of %s: %w", queue, err)
	} else if given {
		return nil, nil, s.ack(ctx, msg, queue)
	}
	rec := s.newRecord(id, t, seq, meta.Timestamp, queue, a.Agent)
	data, err := json.Marshal(&rec)
	if err != nil {
		return nil, nil, fmt.Errorf("take next of %s: %w", queue, err)
	}
	rctx, cancel := ctxReq(ctx)
	rev, err := s.tickets.Create(rctx, rec.ID, data)
	cancel()
	switch {
	case errors.Is(err, jetstream.ErrKeyExists):
		// Taken before (the desk died before acknowledging), or by
		// another taker just now.
		return nil, nil, s.ack(ctx, msg, queue)
	case err != nil:
		return nil, nil, fmt.Errorf("take next of %s: record %s: %w", queue, rec.ID, err)
	}
	s.remember(rec, rev)
	if s.afterRecord != nil {
		if err := s.afterRecord(msg); err != nil {
			return nil, nil, err
		}
	}
	// The record is the truth now: a failed acknowledgement only means the
	// message comes again, and is then skipped.
	_ = s.ack(ctx, msg, queue)
	return &rec, t, nil
}

// ack acknowledges msg and waits for the server's confirmation.
func (s *Store) ack(ctx context.Context, msg jetstream.Msg, queue string) error {
	rctx, cancel := ctxReq(ctx)
	defer cancel()
	if err := msg.DoubleAck(rctx); err != nil {
		return fmt.Errorf("take next of %s: acknowledge: %w", queue, err)
	}
	return nil
}

// ticketAt reads the ticket at seq in the tickets stream; nil when the
// message there is not a ticket document.
func (s *Store) ticketAt(ctx context.Context, seq uint64) (*ticket.Ticket, error) {
	_, t, err := s.messageAt(ctx, seq)
	return t, err
}

// messageAt reads the message at seq in the tickets stream, and its ticket:
// nil when the message is not a ticket document.
func (s *Store) messageAt(ctx context.Context, seq uint64) (*jetstream.RawStreamMsg, *ticket.Ticket, error) {
	rctx, cancel := ctxReq(ctx)
	defer cancel()
	m, err := s.js.Stream.GetMsg(rctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil, fmt.Errorf("ticket %s: not in the stream: %w", ticket.Number(seq), ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("ticket %s: %w", ticket.Number(seq), err)
	}
	var t ticket.Ticket
	if json.Unmarshal(m.Data, &t) != nil || t.ID == "" {
		return m, nil, nil
	}
	return m, &t, nil
}

// consumer returns the handle of queue's consumer, looked up once.
func (s *Store) consumer(ctx context.Context, queue string) (jetstream.Consumer, error) {
	s.mu.Lock()
	c, ok := s.consumers[queue]
	s.mu.Unlock()
	if ok {
		return c, nil
	}
	rctx, cancel := ctxReq(ctx)
	defer cancel()
	c, err := s.js.Stream.Consumer(rctx, queue)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.consumers[queue] = c
	s.mu.Unlock()
	return c, nil
}

// fetch pulls the next message of cons: nil when there is none. It asks
// without waiting first; the consumer learns of a message a moment after
// the stream stored it, and of a message put back a moment after the nak,
// so when it says it holds messages (pending, or delivered and not yet
// acknowledged) it asks again, waiting up to Options.FetchWait.
func (s *Store) fetch(ctx context.Context, cons jetstream.Consumer) (jetstream.Msg, error) {
	for i := range 2 {
		var batch jetstream.MessageBatch
		var err error
		if i == 0 {
			batch, err = cons.FetchNoWait(1)
		} else {
			batch, err = cons.Fetch(1, jetstream.FetchMaxWait(s.opts.FetchWait))
		}
		if err != nil {
			return nil, err
		}
		var msg jetstream.Msg
		for m := range batch.Messages() {
			msg = m
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) {
			return nil, err
		}
		if msg != nil || i == 1 {
			return msg, nil
		}
		rctx, cancel := ctxReq(ctx)
		info, err := cons.Info(rctx)
		cancel()
		if err != nil {
			return nil, err
		}
		if info.NumPending == 0 && info.NumAckPending == 0 {
			return nil, nil
		}
	}
	return nil, nil
}
