package state

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/ticketrouter/ticketrouter/router/broker"
	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// Get returns the record and the ticket of a ticket number (TR-100001 or
// 100001) or id. The ticket is nil when the stream no longer holds it (past
// the stream's max age) or its message is not a ticket document. A ticket
// the desk has not taken yet has a record of StateQueued: found by its
// number always, by its id once indexed (see Search).
func (s *Store) Get(ctx context.Context, numberOrID string) (*Record, *ticket.Ticket, error) {
	if seq, ok := ticket.ParseNumber(numberOrID); ok {
		return s.atSeq(ctx, seq)
	}
	id := numberOrID
	if !validID.MatchString(id) {
		return nil, nil, fmt.Errorf("ticket %q: %w", id, ErrNotFound)
	}
	rec, _, err := s.record(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return s.queued(ctx, id) // not taken yet, maybe indexed
	}
	if err != nil {
		return nil, nil, err
	}
	t, err := s.ticketAt(ctx, rec.StreamSeq)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, nil, err
	}
	return &rec, t, nil
}

// atSeq returns the record and the ticket of the message at seq in the
// tickets stream: the desk's record when it took the ticket, else a queued
// one.
func (s *Store) atSeq(ctx context.Context, seq uint64) (*Record, *ticket.Ticket, error) {
	m, t, err := s.messageAt(ctx, seq)
	if err != nil {
		return nil, nil, err
	}
	id := "s" + strconv.FormatUint(seq, 10)
	if t != nil && validID.MatchString(t.ID) {
		id = t.ID
	}
	rec, _, err := s.record(ctx, id)
	switch {
	case err == nil:
		return &rec, t, nil
	case errors.Is(err, ErrNotFound):
		rec = s.queuedRecord(id, m, t)
		return &rec, t, nil
	default:
		return nil, nil, err
	}
}

// History returns the events of ticket id, oldest first, from the audit
// stream.
func (s *Store) History(ctx context.Context, id string) ([]Event, error) {
	if !validID.MatchString(id) {
		return nil, fmt.Errorf("history of %q: %w", id, ErrNotFound)
	}
	subject := s.opts.EventsSubject + "." + id
	var out []Event
	// Each get returns the first event at or after seq on the subject.
	for seq := uint64(1); ; {
		rctx, cancel := ctxReq(ctx)
		m, err := s.events.GetMsg(rctx, seq, jetstream.WithGetMsgSubject(subject))
		cancel()
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", id, err)
		}
		var ev Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			return nil, fmt.Errorf("history of %s: event %d: %w", id, m.Sequence, err)
		}
		out = append(out, ev)
		seq = m.Sequence + 1
	}
}

// Board counts every queue's tickets (Queues, in order): waiting (never
// taken, plus returned, transferred or escalated to it), owned, and the age
// of the oldest waiting. Counts of records come from the watcher's cache,
// and may lag another replica's change by a moment.
func (s *Store) Board(ctx context.Context) ([]QueueCount, error) {
	now := s.opts.Now()
	counts := map[string]*QueueCount{}
	var out []QueueCount
	for _, q := range s.Queues() {
		out = append(out, QueueCount{Queue: q})
	}
	for i := range out {
		counts[out[i].Queue] = &out[i]
	}
	oldest := func(c *QueueCount, published time.Time) {
		if age := now.Sub(published); age > c.OldestWaiting {
			c.OldestWaiting = age
		}
	}
	s.mu.Lock()
	for _, c := range s.cache {
		qc := counts[c.rec.Queue]
		if qc == nil {
			continue
		}
		switch c.rec.State {
		case StateOwned:
			qc.Owned++
		case StateWaiting, StateEscalated:
			qc.Waiting++
			oldest(qc, c.rec.Published)
		}
	}
	s.mu.Unlock()
	pending, err := s.pending(ctx, now)
	if err != nil {
		return nil, err
	}
	for q, p := range pending {
		if qc := counts[q]; qc != nil {
			qc.Waiting += p.waiting
			if !p.oldest.IsZero() {
				oldest(qc, p.oldest)
			}
		}
	}
	return out, nil
}

// Mine returns the tickets agent owns, the longest owned first.
func (s *Store) Mine(ctx context.Context, agent string) ([]Record, error) {
	var out []Record
	s.mu.Lock()
	for _, c := range s.cache {
		if c.rec.State == StateOwned && c.rec.Owner == agent {
			out = append(out, c.rec)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Record) int {
		if c := a.TakenAt.Compare(b.TakenAt); c != 0 {
			return c
		}
		return cmp.Compare(a.StreamSeq, b.StreamSeq)
	})
	return out, ctx.Err()
}

// queuePending is what a queue's consumer holds that the desk has not
// taken: how many tickets, and when the oldest was published.
type queuePending struct {
	waiting int
	oldest  time.Time
}

// boardReading is the last reading of every queue's consumer.
type boardReading struct {
	mu         sync.Mutex
	at         time.Time
	queues     map[string]queuePending
	refreshing bool
}

// pending reads what each queue's consumer holds, or returns the last
// reading while it is younger than Options.BoardMaxAge; of the callers
// that find it older, one reads again and the others get the last one.
func (s *Store) pending(ctx context.Context, now time.Time) (map[string]queuePending, error) {
	maxAge := s.opts.BoardMaxAge
	b := &s.board
	b.mu.Lock()
	fresh := b.queues != nil && now.Sub(b.at) < maxAge
	stale := b.queues != nil && b.refreshing
	if fresh || stale {
		q := b.queues
		b.mu.Unlock()
		return q, nil
	}
	b.refreshing = true
	b.mu.Unlock()
	q, err := s.readPending(ctx)
	b.mu.Lock()
	b.refreshing = false
	if err == nil && maxAge > 0 {
		b.queues, b.at = q, now
	}
	b.mu.Unlock()
	return q, err
}

// readPending asks every queue's consumer how many tickets it holds and
// reads the first of them for its age.
func (s *Store) readPending(ctx context.Context) (map[string]queuePending, error) {
	out := map[string]queuePending{}
	for _, q := range broker.Queues() {
		rctx, cancel := ctxReq(ctx)
		cons, err := s.js.Stream.Consumer(rctx, q)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("board: queue %s: %w", q, err)
		}
		info := cons.CachedInfo()
		p := queuePending{waiting: int(info.NumPending)}
		if info.NumPending > 0 {
			// The next new ticket is the first on the filter after the
			// last delivered.
			m, err := s.js.Stream.GetMsg(rctx, info.Delivered.Stream+1, jetstream.WithGetMsgSubject(info.Config.FilterSubject))
			if err == nil {
				p.oldest = m.Time
			}
		}
		cancel()
		out[q] = p
	}
	return out, nil
}
