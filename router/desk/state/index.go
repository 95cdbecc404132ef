package state

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// StateQueued is the state Search and Get give a ticket the desk has not
// taken yet: it waits in its queue's consumer and has no record (nor a
// number).
const StateQueued = "queued"

// maxIndexed bounds the tickets one index key lists (the latest kept), and
// maxResults the records one search returns.
const (
	maxIndexed = 200
	maxResults = 100
)

// indexEntry is one ticket an index key lists.
type indexEntry struct {
	ID  string `json:"id"`
	Seq uint64 `json:"seq"` // its message in the tickets stream
}

// Index key kinds. Every value is hashed (SHA-256, hex) into the key, so
// that any Message-ID, address, account id or order number makes a valid
// key of bounded length.
const (
	byMessageID = "msgid"
	bySender    = "from"
	byAccount   = "account"
	byOrder     = "order"
	byID        = "id" // ticket id -> its stream sequence, for tickets not taken
)

// indexKey is the index bucket's key of value under kind.
func indexKey(kind, value string) string {
	if kind == byID {
		return kind + "." + value
	}
	sum := sha256.Sum256([]byte(normalize(kind, value)))
	return kind + "." + hex.EncodeToString(sum[:])
}

// normalize is the form of value that is indexed and searched: a
// Message-ID without its angle brackets, an address in lower case, an
// order number in upper case.
func normalize(kind, value string) string {
	value = strings.TrimSpace(value)
	switch kind {
	case byMessageID:
		return strings.TrimSuffix(strings.TrimPrefix(value, "<"), ">")
	case bySender:
		return strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(value, "<"), ">"))
	case byOrder:
		return strings.ToUpper(value)
	}
	return value
}

// orderReason reads the order number out of a passed order check's reason
// (rules: "order N exists (account A)"): the ticket has no field of its
// own for it.
var orderReason = regexp.MustCompile(`^order (\S+) exists`)

// indexTicket adds ticket t (id, at seq in the tickets stream) to the keys
// of its Message-ID, sender, account, order number and conversation.
func (s *Store) indexTicket(ctx context.Context, id string, seq uint64, t *ticket.Ticket) error {
	keys := []string{indexKey(byID, id)}
	add := func(kind, value string) {
		if normalize(kind, value) != "" {
			keys = append(keys, indexKey(kind, value))
		}
	}
	add(byMessageID, t.MessageID)
	if t.From.Problem == "" {
		add(bySender, t.From.Address)
	}
	if t.Account != nil {
		add(byAccount, t.Account.ID)
	}
	if c := t.Checks.OrderMatched; c.OK {
		if m := orderReason.FindStringSubmatch(c.Reason); m != nil {
			add(byOrder, m[1])
		}
	}
	if c := joined(t); c != nil {
		add(byConversation, c.Root)
	}
	for _, key := range keys {
		if err := s.appendIndex(ctx, key, indexEntry{ID: id, Seq: seq}); err != nil {
			return err
		}
	}
	return nil
}

// appendIndex adds e to the list of key, with compare-and-set, unless the
// list has it.
func (s *Store) appendIndex(ctx context.Context, key string, e indexEntry) error {
	err := casKey(ctx, s.index, key, func(cur []byte) ([]byte, error) {
		var list []indexEntry
		if cur != nil && json.Unmarshal(cur, &list) != nil {
			list = nil // unreadable: start again
		}
		if slices.Contains(list, e) {
			return nil, nil
		}
		list = append(list, e)
		return json.Marshal(list[max(0, len(list)-maxIndexed):])
	})
	if err != nil {
		return fmt.Errorf("index %s: %w", e.ID, err)
	}
	return nil
}

// lookup returns the entries of an index key; none when it does not exist.
func (s *Store) lookup(ctx context.Context, key string) ([]indexEntry, error) {
	rctx, cancel := ctxReq(ctx)
	defer cancel()
	e, err := s.index.Get(rctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	var list []indexEntry
	if err := json.Unmarshal(e.Value(), &list); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	return list, nil
}

// Search finds tickets by ticket number, ticket id, Message-ID (with or
// without angle brackets), sender address, account id or order number,
// newest first. Tickets the desk has not taken yet show with StateQueued
// (no owner): by number always, otherwise once RunIndexer has indexed
// them.
func (s *Store) Search(ctx context.Context, q string) ([]Record, error) {
	q = strings.TrimSpace(q)
	if q == "" {
		return nil, nil
	}
	// A number may be an account id or an order number too: the ticket
	// of that number comes first, then what the index holds.
	var numbered *Record
	if _, ok := ticket.ParseNumber(q); ok {
		rec, _, err := s.Get(ctx, q)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("search: %w", err)
		}
		numbered = rec
	}
	var keys []string
	if validID.MatchString(q) {
		keys = append(keys, indexKey(byID, q))
	}
	for _, kind := range []string{byMessageID, bySender, byAccount, byOrder} {
		keys = append(keys, indexKey(kind, q))
	}
	var entries []indexEntry
	for _, key := range keys {
		list, err := s.lookup(ctx, key)
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(key, byID+".") {
			// The id key lists the ticket itself, by that id.
			list = slices.DeleteFunc(list, func(e indexEntry) bool { return e.ID != q })
		}
		entries = append(entries, list...)
	}
	if numbered == nil {
		return s.records(ctx, entries)
	}
	entries = slices.DeleteFunc(entries, func(e indexEntry) bool { return e.ID == numbered.ID })
	out, err := s.records(ctx, entries)
	return append([]Record{*numbered}, out[:min(len(out), maxResults-1)]...), err
}

// Related returns the other tickets of ticket id's sender and account,
// newest first.
func (s *Store) Related(ctx context.Context, id string) ([]Record, error) {
	rec, t, err := s.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("related: %w", err)
	}
	if t == nil {
		return nil, nil
	}
	var keys []string
	if t.From.Problem == "" && t.From.Address != "" {
		keys = append(keys, indexKey(bySender, t.From.Address))
	}
	if t.Account != nil && t.Account.ID != "" {
		keys = append(keys, indexKey(byAccount, t.Account.ID))
	}
	var entries []indexEntry
	for _, key := range keys {
		list, err := s.lookup(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("related: %w", err)
		}
		entries = append(entries, list...)
	}
	entries = slices.DeleteFunc(entries, func(e indexEntry) bool { return e.ID == rec.ID })
	return s.records(ctx, entries)
}

// records returns the records of entries, each ticket once, newest (latest
// in the stream) first: the desk's record where there is one, else a
// queued one.
func (s *Store) records(ctx context.Context, entries []indexEntry) ([]Record, error) {
	slices.SortFunc(entries, func(a, b indexEntry) int { return cmp.Compare(b.Seq, a.Seq) })
	var out []Record
	seen := map[string]bool{}
	for _, e := range entries {
		if seen[e.ID] || len(out) == maxResults {
			continue
		}
		seen[e.ID] = true
		rec, err := s.recordOrQueued(ctx, e)
		if errors.Is(err, ErrNotFound) {
			continue // gone from the stream
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// recordOrQueued returns the desk's record of e's ticket, or, when the
// desk has not taken it, a record made from its message (queuedRecord).
func (s *Store) recordOrQueued(ctx context.Context, e indexEntry) (Record, error) {
	rec, _, err := s.record(ctx, e.ID)
	if !errors.Is(err, ErrNotFound) {
		return rec, err
	}
	m, t, err := s.messageAt(ctx, e.Seq)
	if err != nil {
		return Record{}, err
	}
	if t == nil || t.ID != e.ID {
		return Record{}, fmt.Errorf("ticket %s: not at %d: %w", e.ID, e.Seq, ErrNotFound)
	}
	return s.queuedRecord(e.ID, m, t), nil
}

// queuedRecord is the record of ticket id (t, nil when its message m is no
// ticket document) that the desk has not taken: StateQueued, its number,
// queue and colour, no owner.
func (s *Store) queuedRecord(id string, m *jetstream.RawStreamMsg, t *ticket.Ticket) Record {
	rec := Record{Number: ticket.Number(m.Sequence), ID: id, Queue: s.queueOf(m.Subject), State: StateQueued, Published: m.Time.UTC(), StreamSeq: m.Sequence}
	if t != nil {
		rec.Colour = t.Colour
	}
	return rec
}

// queueOf is the queue of a ticket published on subject: the token after
// the prefix (a colour, rate-limited, ignored, deadletter).
func (s *Store) queueOf(subject string) string {
	queue, _, _ := strings.Cut(strings.TrimPrefix(subject, s.prefix+"."), ".")
	return queue
}

// queued returns the queued record and ticket of a ticket id the desk has
// not taken, found through the index.
func (s *Store) queued(ctx context.Context, id string) (*Record, *ticket.Ticket, error) {
	list, err := s.lookup(ctx, indexKey(byID, id))
	if err != nil {
		return nil, nil, err
	}
	for _, e := range list {
		if e.ID != id {
			continue
		}
		rec, err := s.recordOrQueued(ctx, e)
		if err != nil {
			return nil, nil, err
		}
		t, err := s.ticketAt(ctx, e.Seq)
		if err != nil {
			return nil, nil, err
		}
		return &rec, t, nil
	}
	return nil, nil, fmt.Errorf("ticket %s: %w", id, ErrNotFound)
}

// checkpointKey is the index bucket's key of the last stream sequence
// Index went through.
const checkpointKey = "checkpoint"

// indexBatch is how many stream messages Index reads at a time, and
// saves its checkpoint after.
const indexBatch = 256

// Index indexes, for Search, every ticket of the tickets stream after the
// checkpoint, up to the last one stored when it is called, and moves the
// checkpoint on: so that tickets no agent has taken yet are found too. It
// returns how many tickets it indexed. Replicas may run it at once:
// indexing a ticket twice changes nothing, and the checkpoint only moves
// forward.
func (s *Store) Index(ctx context.Context) (int, error) {
	cp, err := s.checkpoint(ctx)
	if err != nil {
		return 0, err
	}
	rctx, cancel := ctxReq(ctx)
	info, err := s.js.Stream.Info(rctx)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("index: %w", err)
	}
	last := info.State.LastSeq
	if last <= cp {
		return 0, nil
	}
	cons, err := s.js.JS.OrderedConsumer(ctx, info.Config.Name, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: cp + 1,
		InactiveThreshold: indexConsumerIdle,
	})
	if err != nil {
		return 0, fmt.Errorf("index: %w", err)
	}
	// The server keeps an ordered consumer for its inactive threshold
	// after the last fetch: one left by each pass would pile up, against
	// the account's consumer limit.
	defer func() {
		if ci := cons.CachedInfo(); ci != nil {
			dctx, cancel := ctxReq(context.WithoutCancel(ctx))
			s.js.Stream.DeleteConsumer(dctx, ci.Name)
			cancel()
		}
	}()
	n := 0
	cp = max(cp, info.State.FirstSeq-1) // older ones are gone
	for cp < last {
		// Asking for no more than there is: a fetch waits for all it
		// asks for.
		batch, err := cons.Fetch(int(min(indexBatch, last-cp)), jetstream.FetchMaxWait(requestTimeout))
		if err != nil {
			return n, fmt.Errorf("index: %w", err)
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			meta, err := msg.Metadata()
			if err != nil {
				return n, fmt.Errorf("index: %w", err)
			}
			var t ticket.Ticket
			if json.Unmarshal(msg.Data(), &t) == nil && validID.MatchString(t.ID) {
				if err := s.indexTicket(ctx, t.ID, meta.Sequence.Stream, &t); err != nil {
					return n, err
				}
				if _, err := s.followUp(ctx, &t, meta.Sequence.Stream, meta.Timestamp, s.queueOf(msg.Subject()), ""); err != nil {
					return n, fmt.Errorf("index: %w", err)
				}
				n++
			}
			cp = meta.Sequence.Stream
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return n, fmt.Errorf("index: %w", err)
		}
		if err := s.saveCheckpoint(ctx, cp); err != nil {
			return n, err
		}
		if got == 0 {
			break // the rest is gone (max age) or was never there
		}
	}
	return n, nil
}

// indexConsumerIdle is how long the server keeps an indexing pass's
// consumer that was not deleted (the pass's process died).
const indexConsumerIdle = 30 * time.Second

// RunIndexer runs Index now and then every interval until ctx ends, and
// returns ctx's error. An error of one run is given to report (which may
// be nil) and the next run tries again.
func (s *Store) RunIndexer(ctx context.Context, every time.Duration, report func(error)) error {
	for {
		if _, err := s.Index(ctx); err != nil && ctx.Err() == nil && report != nil {
			report(err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

// checkpoint reads the last stream sequence indexed; 0 at first.
func (s *Store) checkpoint(ctx context.Context) (uint64, error) {
	rctx, cancel := ctxReq(ctx)
	defer cancel()
	e, err := s.index.Get(rctx, checkpointKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("index checkpoint: %w", err)
	}
	cp, err := strconv.ParseUint(string(e.Value()), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("index checkpoint %q: %w", e.Value(), err)
	}
	return cp, nil
}

// saveCheckpoint moves the checkpoint to seq, unless another replica moved
// it further already.
func (s *Store) saveCheckpoint(ctx context.Context, seq uint64) error {
	err := casKey(ctx, s.index, checkpointKey, func(cur []byte) ([]byte, error) {
		if n, err := strconv.ParseUint(string(cur), 10, 64); err == nil && n >= seq {
			return nil, nil
		}
		return []byte(strconv.FormatUint(seq, 10)), nil
	})
	if err != nil {
		return fmt.Errorf("index checkpoint: %w", err)
	}
	return nil
}
