package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// maxText bounds a note's or a reason's length in bytes.
const maxText = 16 << 10

// update changes the record of ticket id by change, with compare-and-set on
// its revision, reading it again and calling change again when another
// replica changed it meanwhile. change returns an error to refuse the
// change. UpdatedAt is set.
func (s *Store) update(ctx context.Context, id string, change func(*Record) error) (Record, error) {
	if !validID.MatchString(id) {
		return Record{}, fmt.Errorf("ticket %q: %w", id, ErrNotFound)
	}
	for range maxAttempts {
		rec, rev, err := s.record(ctx, id)
		if err != nil {
			return Record{}, err
		}
		if err := change(&rec); err != nil {
			return Record{}, fmt.Errorf("%s: %w", rec.Number, err)
		}
		rec.UpdatedAt = s.opts.Now().UTC()
		data, err := json.Marshal(&rec)
		if err != nil {
			return Record{}, err
		}
		rctx, cancel := ctxReq(ctx)
		rev, err = s.tickets.Update(rctx, id, data, rev)
		cancel()
		switch {
		case err == nil:
			s.remember(rec, rev)
			return rec, nil
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			continue
		default:
			return Record{}, fmt.Errorf("%s: write: %w", rec.Number, err)
		}
	}
	return Record{}, fmt.Errorf("ticket %s: %w", id, ErrConflict)
}

// record reads the record of ticket id and its revision.
func (s *Store) record(ctx context.Context, id string) (Record, uint64, error) {
	rctx, cancel := ctxReq(ctx)
	e, err := s.tickets.Get(rctx, id)
	cancel()
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Record{}, 0, fmt.Errorf("ticket %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Record{}, 0, fmt.Errorf("ticket %s: %w", id, err)
	}
	var rec Record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return Record{}, 0, fmt.Errorf("ticket %s: %w", id, err)
	}
	return rec, e.Revision(), nil
}

// mayAct says whether a may change rec: its owner, while it is owned, or a
// supervisor, when it is in the supervisors' queue.
func (s *Store) mayAct(a Actor, rec *Record) error {
	switch {
	case rec.State == StateResolved:
		return fmt.Errorf("resolved already: %w", ErrConflict)
	case a.Supervisor && rec.Queue == s.opts.Escalated:
		return nil
	case rec.State == StateOwned && rec.Owner == a.Agent && a.Agent != "":
		return nil
	}
	return ErrNotOwner
}

// act changes ticket id as a, when a may, and records the event.
func (s *Store) act(ctx context.Context, a Actor, id string, ev Event, change func(*Record) error) error {
	rec, err := s.update(ctx, id, func(r *Record) error {
		if err := s.mayAct(a, r); err != nil {
			return err
		}
		return change(r)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", ev.Kind, err)
	}
	return s.appendEvent(ctx, a, &rec, ev)
}

// Resolve closes ticket id with outcome (one of Outcomes) and an optional
// note. Only its owner may.
func (s *Store) Resolve(ctx context.Context, a Actor, id, outcome, note string) error {
	if !slices.Contains(Outcomes, outcome) {
		return fmt.Errorf("resolve: outcome %q: %w", outcome, ErrInvalid)
	}
	if len(note) > maxText {
		return fmt.Errorf("resolve: note of %d bytes: %w", len(note), ErrInvalid)
	}
	return s.act(ctx, a, id, Event{Kind: KindResolved, Outcome: outcome, Note: note}, func(r *Record) error {
		r.State, r.Outcome = StateResolved, outcome
		return nil
	})
}

// Return puts ticket id back into its queue, unowned, to be taken again
// before the queue's new tickets.
func (s *Store) Return(ctx context.Context, a Actor, id string) error {
	return s.act(ctx, a, id, Event{Kind: KindReturned}, func(r *Record) error {
		r.State = StateWaiting
		if r.Queue == s.opts.Escalated {
			r.State = StateEscalated
		}
		return nil
	})
}

// Escalate moves ticket id, unowned, to the supervisors' queue, with a
// reason (required).
func (s *Store) Escalate(ctx context.Context, a Actor, id, reason string) error {
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > maxText {
		return fmt.Errorf("escalate: a reason (up to %d bytes) is required: %w", maxText, ErrInvalid)
	}
	return s.act(ctx, a, id, Event{Kind: KindEscalated, Reason: reason}, func(r *Record) error {
		r.State, r.Queue = StateEscalated, s.opts.Escalated
		return nil
	})
}

// Transfer moves ticket id, unowned, to the queue of colour (one of
// Colours).
func (s *Store) Transfer(ctx context.Context, a Actor, id, colour string) error {
	if !slices.Contains(Colours(), colour) {
		return fmt.Errorf("transfer: colour %q: %w", colour, ErrInvalid)
	}
	return s.act(ctx, a, id, Event{Kind: KindTransferred, Detail: "to " + colour}, func(r *Record) error {
		r.State, r.Queue, r.Colour = StateWaiting, colour, colour
		return nil
	})
}

// Reassign makes agent to the owner of ticket id, whatever its state but
// resolved. Only a supervisor may.
func (s *Store) Reassign(ctx context.Context, a Actor, id, to string) error {
	if !a.Supervisor {
		return fmt.Errorf("reassign: only a supervisor may: %w", ErrNotOwner)
	}
	if to == "" {
		return fmt.Errorf("reassign: to whom: %w", ErrInvalid)
	}
	var from string
	rec, err := s.update(ctx, id, func(r *Record) error {
		if r.State == StateResolved {
			return fmt.Errorf("resolved already: %w", ErrConflict)
		}
		from = r.Owner
		r.State, r.Owner = StateOwned, to
		return nil
	})
	if err != nil {
		return fmt.Errorf("reassign: %w", err)
	}
	return s.appendEvent(ctx, a, &rec, Event{Kind: KindReassigned, Detail: fmt.Sprintf("from %s to %s", from, to)})
}

// Note adds an internal note to ticket id's history. Its owner may, and a
// supervisor on an escalated ticket; the record is not changed.
func (s *Store) Note(ctx context.Context, a Actor, id, text string) error {
	text = strings.TrimSpace(text)
	if text == "" || len(text) > maxText {
		return fmt.Errorf("note: a text (up to %d bytes) is required: %w", maxText, ErrInvalid)
	}
	if !validID.MatchString(id) {
		return fmt.Errorf("note: ticket %q: %w", id, ErrNotFound)
	}
	rec, _, err := s.record(ctx, id)
	if err != nil {
		return fmt.Errorf("note: %w", err)
	}
	if err := s.mayAct(a, &rec); err != nil {
		return fmt.Errorf("note: %s: %w", rec.Number, err)
	}
	return s.appendEvent(ctx, a, &rec, Event{Kind: KindNote, Note: text})
}

// Reply sends an agent's reply on ticket id and records it: send runs
// once a may act on the ticket (its owner, or a supervisor on an
// escalated ticket), and only when it succeeded is the event appended,
// with detail (to whom, which mail) and the text sent as its note. send
// must be idempotent: a failed append is answered by the agent sending
// again.
func (s *Store) Reply(ctx context.Context, a Actor, id, detail, text string, send func(context.Context) error) error {
	if !validID.MatchString(id) {
		return fmt.Errorf("reply: ticket %q: %w", id, ErrNotFound)
	}
	if len(text) > 4*maxText {
		return fmt.Errorf("reply: %d bytes: %w", len(text), ErrInvalid)
	}
	rec, _, err := s.record(ctx, id)
	if err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	if err := s.mayAct(a, &rec); err != nil {
		return fmt.Errorf("reply: %s: %w", rec.Number, err)
	}
	if err := send(ctx); err != nil {
		return fmt.Errorf("reply: %s: %w", rec.Number, err)
	}
	return s.appendEvent(ctx, a, &rec, Event{Kind: KindReplied, Detail: detail, Note: text})
}

// appendEvent appends ev, about rec, by a, to the audit stream, and
// returns once the stream has it.
func (s *Store) appendEvent(ctx context.Context, a Actor, rec *Record, ev Event) error {
	ev.Ticket, ev.Number, ev.Agent, ev.Addr, ev.At = rec.ID, rec.Number, a.Agent, a.Addr, s.opts.Now().UTC()
	data, err := json.Marshal(&ev)
	if err != nil {
		return fmt.Errorf("audit %s: %w", ev.Kind, err)
	}
	rctx, cancel := ctxReq(ctx)
	defer cancel()
	if _, err := s.js.JS.Publish(rctx, s.opts.EventsSubject+"."+rec.ID, data, jetstream.WithExpectStream(s.events.CachedInfo().Config.Name)); err != nil {
		return fmt.Errorf("audit %s of %s: %w", ev.Kind, rec.Number, err)
	}
	return nil
}
