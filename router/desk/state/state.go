// Package state is the agents' desk's state in JetStream: who owns which
// ticket, the tickets returned, transferred or escalated, the never-edited
// audit history of every ticket, and the search index. It holds nothing of
// its own between calls that another replica could not read: any number of
// desk replicas share one JetStream, and every change is a compare-and-set
// on a key-value revision, so that two replicas never both own a ticket.
//
// Tickets come from the service's stream through its queue consumers
// (router/broker): TakeNext claims one, writes the desk's record of it and
// only then acknowledges the consumer's message, so that a desk that dies
// mid-claim loses nothing (the message comes again; a ticket that already
// has a record is acknowledged and skipped).
package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ticketrouter/ticketrouter/router/broker"
	"github.com/ticketrouter/ticketrouter/rules"
	"github.com/ticketrouter/ticketrouter/rules/accounts"
)

// Errors the desk's handlers tell apart (match with errors.Is).
var (
	// ErrNoTicket: the queue has no ticket to take.
	ErrNoTicket = errors.New("no ticket waiting")
	// ErrNotOwner: the agent does not own the ticket (and is not a
	// supervisor allowed to act on it).
	ErrNotOwner = errors.New("not the ticket's owner")
	// ErrNotFound: no ticket has that number or id.
	ErrNotFound = errors.New("no such ticket")
	// ErrConflict: the ticket changed under the action too often, or is in
	// a state the action does not apply to (e.g. resolved).
	ErrConflict = errors.New("the ticket changed or is in another state")
	// ErrInvalid: an argument is not one the action takes (an unknown
	// outcome, colour or queue, an empty reason).
	ErrInvalid = errors.New("invalid argument")
)

// States of a desk record.
const (
	StateOwned     = "owned"     // an agent works it
	StateWaiting   = "waiting"   // returned or transferred: waits in its queue
	StateEscalated = "escalated" // waits in the supervisors' queue
	StateResolved  = "resolved"  // done, with an outcome
)

// EscalatedQueue is the default name of the supervisors' queue.
const EscalatedQueue = "escalated"

// Outcomes are the outcomes a ticket may be resolved with.
var Outcomes = []string{"reset-done", "referred", "self-service-sent", "refused", "spam", "duplicate", "other"}

// Event kinds of the audit stream.
const (
	KindTaken                = "taken"
	KindReturned             = "returned"
	KindEscalated            = "escalated"
	KindTransferred          = "transferred"
	KindResolved             = "resolved"
	KindNote                 = "note"
	KindRawViewed            = "raw_viewed"
	KindAttachmentDownloaded = "attachment_downloaded"
	KindReassigned           = "reassigned"
	KindReplied              = "replied"
)

// Actor is who acts and from where, as the audit records it. Supervisor
// lets the actor reassign tickets and act on escalated tickets it does not
// own; the caller (the web server) sets it from the agent's roles.
type Actor struct {
	Agent      string
	Addr       string
	Supervisor bool
}

// Record is the desk's truth about a ticket it has taken from a queue, the
// value of the ticket's key in the tickets bucket.
type Record struct {
	Number    string    `json:"number"`     // TR-100001
	ID        string    `json:"id"`         // the ticket id (hex SHA-256 of the raw mail)
	Queue     string    `json:"queue"`      // the queue it was taken from, or waits in
	Colour    string    `json:"colour"`     // the ticket's colour (changed by a transfer)
	State     string    `json:"state"`      // StateOwned, StateWaiting, StateEscalated, StateResolved
	Owner     string    `json:"owner"`      // the agent who owns it, or owned it last
	Outcome   string    `json:"outcome"`    // once resolved
	TakenAt   time.Time `json:"taken_at"`   // first taken from the queue
	UpdatedAt time.Time `json:"updated_at"` // last changed
	Published time.Time `json:"published"`  // when the service published the ticket
	StreamSeq uint64    `json:"stream_seq"` // the ticket's message in the tickets stream
}

// Event is one entry of a ticket's history in the audit stream.
type Event struct {
	Ticket  string    `json:"ticket"`
	Number  string    `json:"number"`
	Kind    string    `json:"kind"`
	Agent   string    `json:"agent"`
	Addr    string    `json:"addr"`
	At      time.Time `json:"at"`
	Outcome string    `json:"outcome,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	Note    string    `json:"note,omitempty"`
	Detail  string    `json:"detail,omitempty"`
}

// QueueCount is a queue's line on the board.
type QueueCount struct {
	Queue string
	// Waiting: never taken (the consumer's NumPending) plus returned,
	// transferred or escalated to it.
	Waiting int
	// Owned: taken from it (or transferred to it) and owned now.
	Owned int
	// OldestWaiting is the age of the oldest waiting ticket, since the
	// service published it; zero when none waits.
	OldestWaiting time.Duration
}

// Options are the desk state's settings; the zero value works.
type Options struct {
	// Replicas of the buckets and the audit stream; 1. Use the nats
	// section's replicas.
	Replicas int
	// Name heads the buckets and the audit stream: <Name>-tickets,
	// <Name>-index, <Name>-events. "DESK".
	Name string
	// EventsSubject heads the audit events' subjects:
	// <EventsSubject>.<ticket id>. "desk.events".
	EventsSubject string
	// Escalated names the supervisors' queue; EscalatedQueue.
	Escalated string
	// FetchWait bounds how long TakeNext waits for a queue's consumer to
	// hand out a ticket it says it holds (one just published, or put
	// back); 250ms. A queue whose tickets are all claimed elsewhere (by
	// 'queue next') costs a take this long before ErrNoTicket.
	FetchWait time.Duration
	// BoardMaxAge is how old the queues' own counts on a Board may be:
	// within it, boards share one reading of the consumers (each costs a
	// request per queue), and a reading older than that is refreshed by
	// one caller while the others are served the last one. Zero: every
	// Board reads the consumers. The tickets the desk holds are always
	// counted as they are.
	BoardMaxAge time.Duration
	// Active says whether an agent may still be given tickets (exists and
	// is not disabled); nil: every agent may. A ticket that joined a
	// conversation whose owner is not active stays in the queue.
	Active func(agent string) bool
	// Now is the clock; time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.Name == "" {
		o.Name = "DESK"
	}
	if o.EventsSubject == "" {
		o.EventsSubject = "desk.events"
	}
	if o.Escalated == "" {
		o.Escalated = EscalatedQueue
	}
	if o.FetchWait <= 0 {
		o.FetchWait = 250 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Store is the desk's state on one JetStream. It is safe for concurrent
// use; Close stops its watcher.
type Store struct {
	js      *broker.JetStream
	prefix  string
	opts    Options
	tickets jetstream.KeyValue
	index   jetstream.KeyValue
	events  jetstream.Stream

	stop context.CancelFunc
	done chan struct{}

	mu        sync.Mutex
	cache     map[string]cached // unresolved records, by ticket id, from the watcher
	consumers map[string]jetstream.Consumer

	// board is the last reading of the queues' consumers (BoardMaxAge).
	board boardReading

	// afterRecord, when set (by tests), runs in TakeNext after the record
	// of a new ticket is written and before its message is acknowledged;
	// an error returned makes TakeNext return it there, as if the desk died.
	afterRecord func(msg jetstream.Msg) error
}

// cached is a record as the tickets bucket held it at revision rev.
type cached struct {
	rec Record
	rev uint64
}

// requestTimeout bounds one key-value or stream request.
const requestTimeout = 5 * time.Second

// Open provisions the desk's buckets and audit stream on js (creating them,
// or bringing them to opts' settings; idempotent, every replica calls it),
// and starts watching the tickets bucket. prefix is the tickets' subject
// prefix (the queues' consumers filter on it).
func Open(ctx context.Context, js *broker.JetStream, prefix string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	s := &Store{js: js, prefix: prefix, opts: opts, cache: map[string]cached{}, consumers: map[string]jetstream.Consumer{}}
	for _, b := range []struct {
		kv   *jetstream.KeyValue
		name string
		desc string
	}{
		{&s.tickets, "tickets", "the desk's record of each ticket taken"},
		{&s.index, "index", "search index: Message-ID, sender, account, order to ticket ids"},
	} {
		cfg := jetstream.KeyValueConfig{
			Bucket: opts.Name + "-" + b.name, Description: b.desc, History: 1,
			Storage: jetstream.FileStorage, Replicas: opts.Replicas,
		}
		err := retry(ctx, func(ctx context.Context) error {
			// What already has the settings is only read, so that
			// replicas starting together do not race to change it.
			bs, err := js.JS.Stream(ctx, "KV_"+cfg.Bucket)
			switch {
			case err == nil && bs.CachedInfo().Config.Replicas == opts.Replicas:
				*b.kv, err = js.JS.KeyValue(ctx, cfg.Bucket)
			case err == nil || errors.Is(err, jetstream.ErrStreamNotFound):
				*b.kv, err = js.JS.CreateOrUpdateKeyValue(ctx, cfg)
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("provision desk bucket %s: %w", cfg.Bucket, err)
		}
	}
	want := jetstream.StreamConfig{
		Name:        opts.Name + "-events",
		Description: "the desk's audit events; never edited",
		Subjects:    []string{opts.EventsSubject + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Replicas:    opts.Replicas,
		// Once set, the server refuses to clear them.
		DenyDelete: true,
		DenyPurge:  true,
	}
	err := retry(ctx, func(ctx context.Context) error {
		ev, err := js.JS.Stream(ctx, want.Name)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			ev, err = js.JS.CreateStream(ctx, want)
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				ev, err = js.JS.Stream(ctx, want.Name)
			}
		case err == nil:
			have := ev.CachedInfo().Config
			if !slices.Equal(have.Subjects, want.Subjects) || have.Replicas != want.Replicas || !have.DenyDelete || !have.DenyPurge {
				ev, err = js.JS.UpdateStream(ctx, want)
			}
		}
		s.events = ev
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("provision desk stream %s: %w", want.Name, err)
	}
	if err := s.watch(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// retry runs op, with a deadline of requestTimeout, until it succeeds, fails
// for good, or ctx ends: in a cluster, JetStream may not answer one of two
// identical creates sent at once by replicas starting together (see
// router/broker's Provision), and asking again finds the thing made.
func retry(ctx context.Context, op func(context.Context) error) error {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		rctx, cancel := ctxReq(ctx)
		err := op(rctx)
		cancel()
		var apiErr *jetstream.APIError
		again := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
			errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
			errors.As(err, &apiErr) && apiErr.Code == 503
		if err == nil || !again || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// watch starts the watcher that keeps the cache of unresolved records, and
// returns once the cache holds what the bucket held.
func (s *Store) watch(ctx context.Context) error {
	wctx, stop := context.WithCancel(context.Background())
	w, err := s.tickets.WatchAll(wctx)
	if err != nil {
		stop()
		return fmt.Errorf("watch desk tickets: %w", err)
	}
	s.stop, s.done = stop, make(chan struct{})
	ready := make(chan struct{})
	go func() {
		defer close(s.done)
		defer w.Stop()
		initial := true
		for {
			select {
			case <-wctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					if initial {
						initial = false
						close(ready)
					}
					continue
				}
				var rec Record
				if e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &rec) != nil {
					continue
				}
				s.remember(rec, e.Revision())
			}
		}
	}()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		s.Close()
		return fmt.Errorf("watch desk tickets: %w", ctx.Err())
	}
}

// remember puts rec, of revision rev, into the cache unless the cache has
// a later revision; resolved records leave it.
func (s *Store) remember(rec Record, rev uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cache[rec.ID]; ok && c.rev >= rev {
		return
	}
	if rec.State == StateResolved {
		// A tombstone, so that an older revision arriving late is ignored.
		s.cache[rec.ID] = cached{rec: Record{ID: rec.ID, State: StateResolved}, rev: rev}
		return
	}
	s.cache[rec.ID] = cached{rec: rec, rev: rev}
}

// Close stops the watcher. The Store must not be used after.
func (s *Store) Close() {
	if s.stop != nil {
		s.stop()
		<-s.done
	}
}

// Queues lists every queue the desk serves: the service's queues, then the
// supervisors' queue.
func (s *Store) Queues() []string {
	return append(broker.Queues(), s.opts.Escalated)
}

// Colours are the colours a ticket may be transferred to.
func Colours() []string {
	return append(slices.Clone(accounts.Colours), rules.ColourUnknown)
}

// validID matches the ids the desk accepts: ticket ids (hex) and the
// s<seq> ids of stream messages that are not tickets. It keeps subjects and
// keys built from them valid.
var validID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// ctxReq is ctx with the deadline of one request.
func ctxReq(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, requestTimeout)
}
