package state

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/ticketrouter/ticketrouter/ingest/mail"
	"github.com/ticketrouter/ticketrouter/internal/natstest"
	"github.com/ticketrouter/ticketrouter/router/broker"
	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// desk is a test's NATS: a server, the service's provisioned layout, and a
// publisher of tickets.
type desk struct {
	t      testing.TB
	server *broker.Embedded
	js     *broker.JetStream
	pub    *broker.Publisher
	n      int // mails published
}

// startDesk starts an embedded nats-server on a free loopback port and
// provisions the service's stream and queues.
func startDesk(t testing.TB) *desk {
	t.Helper()
	d := &desk{t: t, server: natstest.Start(t)}
	d.js = d.connect("service")
	d.pub = &broker.Publisher{JS: d.js, Prefix: ticket.DefaultPrefix}
	return d
}

// startOne runs the test in parallel with a desk and one Store on it.
func startOne(t *testing.T) (*desk, *Store, context.Context) {
	t.Helper()
	t.Parallel()
	d := startDesk(t)
	return d, d.open("desk"), testContext(t)
}

// connect makes a new connection, as another replica would, and
// provisions on it.
func (d *desk) connect(name string) *broker.JetStream {
	d.t.Helper()
	return natstest.Connect(d.t, d.server, name)
}

// open opens a Store on a connection of its own: one desk replica.
func (d *desk) open(name string) *Store {
	d.t.Helper()
	s, err := Open(testContext(d.t), d.connect(name), ticket.DefaultPrefix, Options{})
	if err != nil {
		d.t.Fatalf("Open: %v", err)
	}
	d.t.Cleanup(s.Close)
	return s
}

// publish publishes a ticket of colour, from sender about account, and
// returns it.
func (d *desk) publish(colour, from, account string) *ticket.Ticket {
	d.t.Helper()
	raw := fmt.Sprintf("From: <%s>\r\nSubject: Reset %d\r\nMessage-ID: <m%d@test.example>\r\n\r\nPlease reset it.\r\n", from, d.n+1, d.n+1)
	return d.publishRaw(colour, raw, func(tk *ticket.Ticket) {
		if account != "" {
			tk.Account = &ticket.Account{ID: account, Colour: colour}
		}
	})
}

// publishRaw publishes the ticket of colour for the raw mail, as parsed by
// ingest/mail, changed by edit, and returns it.
func (d *desk) publishRaw(colour, raw string, edit func(*ticket.Ticket)) *ticket.Ticket {
	d.t.Helper()
	d.n++
	req, err := mail.Parse(strings.NewReader(raw), mail.Limits{})
	if err != nil {
		d.t.Fatal(err)
	}
	tk := &ticket.Ticket{
		Version: ticket.Version, ID: req.ID, MessageID: req.MessageID,
		From: ticket.From{Address: req.From.Address, Problem: req.FromProblem}, EmailSubject: req.Subject, Size: req.Size,
		Intent: "password-reset", Colour: colour, Disposition: "verified",
		Queue: ticket.Subject(ticket.DefaultPrefix, colour, "verified"), Body: req.Text,
		ReplyTo: []string{}, Candidates: []string{}, Guidance: []string{}, Attachments: req.Attachments, ParseProblems: []string{},
	}
	edit(tk)
	if _, ok, err := d.pub.Publish(testContext(d.t), tk, broker.RawMail{Reader: strings.NewReader(raw), Size: int64(len(raw))}); err != nil || !ok {
		d.t.Fatalf("Publish: %v, %v", ok, err)
	}
	return tk
}

func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var (
	alice = Actor{Agent: "alice", Addr: "192.0.2.1"}
	bob   = Actor{Agent: "bob", Addr: "192.0.2.2"}
	carol = Actor{Agent: "carol", Addr: "192.0.2.3", Supervisor: true}
)

// take takes the next ticket of queue as a, failing the test on an error.
// A ticket published just before may not reach the queue's consumer at
// once on a loaded machine: ErrNoTicket is tried again, for ten seconds.
func take(t *testing.T, s *Store, a Actor, queue string) (*Record, *ticket.Ticket) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		rec, tk, err := s.TakeNext(testContext(t), a, queue)
		if errors.Is(err, ErrNoTicket) && time.Now().Before(deadline) {
			continue
		}
		if err != nil {
			t.Fatalf("TakeNext(%s, %s): %v", a.Agent, queue, err)
		}
		return rec, tk
	}
}

// noTicket checks that queue has nothing left for a.
func noTicket(t *testing.T, s *Store, a Actor, queue string) {
	t.Helper()
	if rec, _, err := s.TakeNext(testContext(t), a, queue); !errors.Is(err, ErrNoTicket) {
		t.Fatalf("TakeNext(%s) on an empty queue = %+v, %v; want ErrNoTicket", queue, rec, err)
	}
}

// TestTakeNextInOrder: tickets come oldest first, numbered by their place
// in the stream from TR-100001, owned by the taker, and the consumer's
// messages are acknowledged.
func TestTakeNextInOrder(t *testing.T) {
	d, s, ctx := startOne(t)
	var want []*ticket.Ticket
	for range 3 {
		want = append(want, d.publish("blue", "admin@acme.example", "A1"))
	}
	d.publish("red", "x@red.example", "")
	noTicket(t, s, alice, "pink")
	for i, w := range want {
		rec, tk := take(t, s, alice, "blue")
		if tk == nil || tk.ID != w.ID || rec.ID != w.ID {
			t.Fatalf("take %d: got %+v, want ticket %s", i, rec, w.ID)
		}
		if wantN := ticket.Number(uint64(i + 1)); rec.Number != wantN || rec.State != StateOwned || rec.Owner != "alice" || rec.Queue != "blue" || rec.Colour != "blue" {
			t.Errorf("take %d: record %+v, want number %s owned by alice in blue", i, rec, wantN)
		}
	}
	noTicket(t, s, alice, "blue")
	info, err := d.js.Stream.Consumer(ctx, "blue")
	if err != nil {
		t.Fatal(err)
	}
	if ci := info.CachedInfo(); ci.NumPending != 0 || ci.NumAckPending != 0 {
		t.Errorf("blue consumer: %d pending, %d unacknowledged; want 0, 0", ci.NumPending, ci.NumAckPending)
	}
	if _, _, err := s.TakeNext(ctx, alice, "purple"); !errors.Is(err, ErrInvalid) {
		t.Errorf("TakeNext(purple) = %v, want ErrInvalid", err)
	}
}

// TestTakeNextConcurrent: takers at once, in one replica or in two, never
// get one ticket twice, and get every ticket; the numbers are unique.
func TestTakeNextConcurrent(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		replicas int
		takers   int
	}{
		{"one replica, two takers", 1, 2},
		{"two replicas, two takers each", 2, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := startDesk(t)
			const n = 30
			for range n {
				d.publish("blue", "admin@acme.example", "A1")
			}
			var stores []*Store
			for i := range tt.replicas {
				stores = append(stores, d.open(fmt.Sprintf("desk-%d", i)))
			}
			checkTakeAll(t, stores, tt.takers, n)
			// All returned, they wait in the tickets bucket: taken
			// again by compare-and-set on their records.
			ctx := testContext(t)
			waitBoard(t, stores[0], "blue", 0, n)
			for _, s := range stores[:1] {
				for _, r := range mine(t, s) {
					if err := s.Return(ctx, Actor{Agent: r.Owner}, r.ID); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, s := range stores {
				waitBoard(t, s, "blue", n, 0)
			}
			checkTakeAll(t, stores, tt.takers, n)
		})
	}
}

// mine lists every owned record in s's cache.
func mine(t *testing.T, s *Store) []Record {
	t.Helper()
	var out []Record
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.cache {
		if c.rec.State == StateOwned {
			out = append(out, c.rec)
		}
	}
	return out
}

// waitBoard waits, for up to ten seconds, until s's board shows waiting
// and owned tickets in queue (another replica's changes reach its cache a
// moment later), and fails the test if it does not.
func waitBoard(t *testing.T, s *Store, queue string, waiting, owned int) {
	t.Helper()
	var last QueueCount
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, err := s.Board(testContext(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range b {
			if c.Queue == queue {
				last = c
			}
		}
		if last.Waiting == waiting && last.Owned == owned {
			return
		}
	}
	t.Fatalf("board of %s: %+v, want %d waiting, %d owned", queue, last, waiting, owned)
}

// checkTakeAll has takers in every store take from blue at once until it
// is empty, and checks that the n tickets were each taken once.
func checkTakeAll(t *testing.T, stores []*Store, takers, n int) {
	t.Helper()
	var (
		mu    sync.Mutex
		got   []*Record
		errs  []error
		wg    sync.WaitGroup
		ctx   = testContext(t)
		start = make(chan struct{})
	)
	for _, s := range stores {
		for i := range takers {
			a := Actor{Agent: fmt.Sprintf("agent-%p-%d", s, i)}
			wg.Go(func() {
				<-start
				for range n + 1 { // bounded: n tickets at most
					rec, _, err := s.TakeNext(ctx, a, "blue")
					mu.Lock()
					if err != nil {
						if !errors.Is(err, ErrNoTicket) {
							errs = append(errs, err)
						}
						mu.Unlock()
						return
					}
					got = append(got, rec)
					mu.Unlock()
				}
			})
		}
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("TakeNext errors: %v", errs)
	}
	ids, numbers := map[string]string{}, map[string]bool{}
	for _, r := range got {
		if owner, dup := ids[r.ID]; dup {
			t.Errorf("ticket %s taken twice: by %s and %s", r.ID, owner, r.Owner)
		}
		if numbers[r.Number] {
			t.Errorf("number %s given twice", r.Number)
		}
		ids[r.ID], numbers[r.Number] = r.Owner, true
	}
	if len(ids) != n {
		t.Errorf("%d tickets taken, want %d", len(ids), n)
	}
}

// TestTakeNextCrash: a desk that dies after writing the ownership record
// and before acknowledging the message loses nothing: the message comes
// again, to another replica, and is skipped, and the ticket keeps its one
// owner; a desk that dies before writing the record leaves the ticket to
// the next taker.
func TestTakeNextCrash(t *testing.T) {
	t.Parallel()
	d := startDesk(t)
	first := d.publish("blue", "admin@acme.example", "A1")
	second := d.publish("blue", "admin@acme.example", "A1")
	crashing, other := d.open("desk-crashing"), d.open("desk-other")
	ctx := testContext(t)

	crash := errors.New("the desk died")
	crashing.afterRecord = func(msg jetstream.Msg) error {
		// Dying leaves the message unacknowledged; the server would
		// redeliver it after the ack wait. A nak redelivers it now.
		if err := msg.Nak(); err != nil {
			t.Errorf("nak: %v", err)
		}
		return crash
	}
	if _, _, err := crashing.TakeNext(ctx, alice, "blue"); !errors.Is(err, crash) {
		t.Fatalf("TakeNext with a crash after the record = %v, want the crash", err)
	}
	rec, tk := take(t, other, bob, "blue")
	if tk.ID != second.ID {
		t.Fatalf("after the crash, bob took %s, want the second ticket %s (the first is alice's)", tk.ID, second.ID)
	}
	noTicket(t, other, bob, "blue")
	got, _, err := other.Get(ctx, first.ID)
	if err != nil || got.Owner != "alice" || got.State != StateOwned {
		t.Fatalf("first ticket after the crash: %+v, %v; want owned by alice", got, err)
	}
	if got.Number == rec.Number {
		t.Errorf("both tickets are %s", got.Number)
	}
	if mine, _ := crashing.Mine(ctx, "alice"); len(mine) != 1 || mine[0].ID != first.ID {
		t.Errorf("alice's tickets after the crash: %+v, want the first", mine)
	}
	cons, err := d.js.Stream.Consumer(ctx, "blue")
	if err != nil {
		t.Fatal(err)
	}
	if ci := cons.CachedInfo(); ci.NumPending != 0 || ci.NumAckPending != 0 {
		t.Errorf("blue consumer: %d pending, %d unacknowledged; want 0, 0", ci.NumPending, ci.NumAckPending)
	}

	// Dying before the record: the message was taken and abandoned.
	third := d.publish("blue", "admin@acme.example", "A1")
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := msg.Nak(); err != nil {
		t.Fatal(err)
	}
	if _, tk := take(t, other, bob, "blue"); tk.ID != third.ID {
		t.Fatalf("after an abandoned claim, bob took %s, want %s", tk.ID, third.ID)
	}
}

// TestActionsNeedOwner: another agent's action on a ticket fails with
// ErrNotOwner and changes nothing; a supervisor may act on escalated
// tickets and reassign; actions on a resolved ticket fail.
func TestActionsNeedOwner(t *testing.T) {
	d, s, ctx := startOne(t)
	d.publish("blue", "admin@acme.example", "A1")
	rec, _ := take(t, s, alice, "blue")
	for _, tt := range []struct {
		name string
		do   func(Actor) error
	}{
		{"resolve", func(a Actor) error { return s.Resolve(ctx, a, rec.ID, "reset-done", "") }},
		{"return", func(a Actor) error { return s.Return(ctx, a, rec.ID) }},
		{"escalate", func(a Actor) error { return s.Escalate(ctx, a, rec.ID, "odd") }},
		{"transfer", func(a Actor) error { return s.Transfer(ctx, a, rec.ID, "red") }},
		{"note", func(a Actor) error { return s.Note(ctx, a, rec.ID, "hello") }},
		{"reassign", func(a Actor) error { return s.Reassign(ctx, a, rec.ID, "bob") }},
	} {
		for _, a := range []Actor{bob, {Agent: "", Addr: "192.0.2.9"}} {
			if err := tt.do(a); !errors.Is(err, ErrNotOwner) {
				t.Errorf("%s by %q: %v, want ErrNotOwner", tt.name, a.Agent, err)
			}
		}
	}
	if got, _, _ := s.Get(ctx, rec.ID); got.Owner != "alice" || got.State != StateOwned {
		t.Fatalf("after refused actions: %+v", got)
	}
	if h, _ := s.History(ctx, rec.ID); len(h) != 1 {
		t.Errorf("refused actions left events: %+v", h)
	}

	// Escalated: a supervisor acts on it without owning it.
	if err := s.Escalate(ctx, alice, rec.ID, "the sender looks spoofed"); err != nil {
		t.Fatal(err)
	}
	if err := s.Note(ctx, alice, rec.ID, "late"); !errors.Is(err, ErrNotOwner) {
		t.Errorf("note by alice after escalating: %v, want ErrNotOwner", err)
	}
	if err := s.Note(ctx, carol, rec.ID, "looking"); err != nil {
		t.Errorf("note by a supervisor on an escalated ticket: %v", err)
	}
	if err := s.Reassign(ctx, carol, rec.ID, "bob"); err != nil {
		t.Fatalf("reassign by a supervisor: %v", err)
	}
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"unknown outcome", s.Resolve(ctx, bob, rec.ID, "nonsense", "")},
		{"note too long", s.Resolve(ctx, bob, rec.ID, "other", strings.Repeat("x", maxText+1))},
		{"no reason", s.Escalate(ctx, bob, rec.ID, " ")},
		{"unknown colour", s.Transfer(ctx, bob, rec.ID, "purple")},
		{"empty note", s.Note(ctx, bob, rec.ID, "\n")},
		{"to nobody", s.Reassign(ctx, carol, rec.ID, "")},
	} {
		if !errors.Is(tt.err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tt.name, tt.err)
		}
	}
	if err := s.Resolve(ctx, bob, rec.ID, "refused", "spoofed"); err != nil {
		t.Fatalf("resolve by the new owner: %v", err)
	}
	if err := s.Return(ctx, bob, rec.ID); !errors.Is(err, ErrConflict) {
		t.Errorf("return of a resolved ticket: %v, want ErrConflict", err)
	}
	got, _, _ := s.Get(ctx, rec.Number)
	if got.State != StateResolved || got.Outcome != "refused" || got.Owner != "bob" {
		t.Errorf("resolved record: %+v", got)
	}
}

// TestWaitingServedFirst: returned and transferred tickets are taken
// before the queue's new ones; escalated ones only from the supervisors'
// queue.
func TestWaitingServedFirst(t *testing.T) {
	d, s, ctx := startOne(t)
	t1 := d.publish("blue", "a@acme.example", "A1")
	t2 := d.publish("blue", "b@acme.example", "A2")
	r1, _ := take(t, s, alice, "blue")
	if err := s.Return(ctx, alice, r1.ID); err != nil {
		t.Fatal(err)
	}
	if mine, _ := s.Mine(ctx, "alice"); len(mine) != 0 {
		t.Errorf("alice still has %+v after returning it", mine)
	}
	if r, tk := take(t, s, bob, "blue"); tk.ID != t1.ID || r.Number != r1.Number {
		t.Fatalf("after a return, bob took %s (%s), want the returned %s (%s)", tk.ID, r.Number, t1.ID, r1.Number)
	}
	if err := s.Transfer(ctx, bob, r1.ID, "red"); err != nil {
		t.Fatal(err)
	}
	if _, tk := take(t, s, bob, "blue"); tk.ID != t2.ID {
		t.Fatalf("bob took %s from blue, want %s", tk.ID, t2.ID)
	}
	r, tk := take(t, s, alice, "red")
	if tk.ID != t1.ID || r.Colour != "red" || r.Queue != "red" {
		t.Fatalf("from red, alice took %+v, want the transferred %s", r, t1.ID)
	}
	if err := s.Escalate(ctx, alice, r1.ID, "odd"); err != nil {
		t.Fatal(err)
	}
	noTicket(t, s, alice, "red")
	if r, _ := take(t, s, carol, EscalatedQueue); r.ID != t1.ID || r.Owner != "carol" {
		t.Fatalf("from the supervisors' queue, carol took %+v", r)
	}
	noTicket(t, s, carol, EscalatedQueue)
}

// TestHistory: a ticket's events come in order with who, what and from
// where, and the audit stream refuses to delete or purge them.
func TestHistory(t *testing.T) {
	d, s, ctx := startOne(t)
	d.publish("blue", "a@acme.example", "A1")
	d.publish("blue", "b@acme.example", "A2")
	r1, _ := take(t, s, alice, "blue")
	r2, _ := take(t, s, bob, "blue")
	steps := []func() error{
		func() error { return s.Note(ctx, alice, r1.ID, "called the admin") },
		func() error { return s.Note(ctx, bob, r2.ID, "other ticket") },
		func() error { return s.Return(ctx, alice, r1.ID) },
		func() error { _, _, err := s.TakeNext(ctx, bob, "blue"); return err },
		func() error { return s.Resolve(ctx, bob, r1.ID, "reset-done", "done by phone") },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	h, err := s.History(ctx, r1.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ kind, agent string }{
		{KindTaken, "alice"}, {KindNote, "alice"}, {KindReturned, "alice"}, {KindTaken, "bob"}, {KindResolved, "bob"},
	}
	if len(h) != len(want) {
		t.Fatalf("history %+v, want %d events", h, len(want))
	}
	for i, w := range want {
		e := h[i]
		if e.Kind != w.kind || e.Agent != w.agent || e.Ticket != r1.ID || e.Number != r1.Number || e.At.IsZero() {
			t.Errorf("event %d: %+v, want %s by %s", i, e, w.kind, w.agent)
		}
		if i > 0 && e.At.Before(h[i-1].At) {
			t.Errorf("event %d at %v, before the one before", i, e.At)
		}
	}
	if h[1].Note != "called the admin" || h[1].Addr != alice.Addr || h[4].Outcome != "reset-done" || h[4].Note != "done by phone" {
		t.Errorf("event details: %+v", h)
	}
	if err := s.events.DeleteMsg(ctx, 1); err == nil {
		t.Error("the audit stream deleted an event")
	}
	if err := s.events.Purge(ctx); err == nil {
		t.Error("the audit stream was purged")
	}
	cfg := s.events.CachedInfo().Config
	cfg.DenyDelete, cfg.DenyPurge = false, false
	if _, err := s.js.JS.UpdateStream(ctx, cfg); err == nil {
		t.Error("the audit stream's config was changed to allow delete and purge")
	}
	if h2, _ := s.History(ctx, r1.ID); len(h2) != len(h) {
		t.Errorf("after refused delete and purge, history has %d events, want %d", len(h2), len(h))
	}
}

// TestGet: a ticket is found by its number in either form and by its id,
// with the ticket; what does not exist is ErrNotFound.
func TestGet(t *testing.T) {
	d, s, ctx := startOne(t)
	tk := d.publish("green", "a@acme.example", "A1")
	rec, _ := take(t, s, alice, "green")
	for _, q := range []string{rec.Number, strings.ToLower(rec.Number), strings.TrimPrefix(rec.Number, "TR-"), tk.ID} {
		got, gt, err := s.Get(ctx, q)
		if err != nil || got.ID != tk.ID || gt == nil || gt.MessageID != tk.MessageID {
			t.Errorf("Get(%q) = %+v, %v, %v", q, got, gt, err)
		}
	}
	for _, q := range []string{"TR-999999", "TR-1", "", "../x", strings.Repeat("a", 64)} {
		if _, _, err := s.Get(ctx, q); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", q, err)
		}
	}
}

// TestOpen: replicas opening at once on a fresh server all succeed; the
// audit stream denies delete and purge; opening again keeps the state.
func TestOpen(t *testing.T) {
	t.Parallel()
	d := startDesk(t)
	const n = 3
	var jss []*broker.JetStream
	for i := range n {
		jss = append(jss, d.connect(fmt.Sprintf("replica-%d", i)))
	}
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = Open(testContext(t), jss[i], ticket.DefaultPrefix, Options{}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: Open: %v", i, err)
		}
		t.Cleanup(stores[i].Close)
	}
	ctx := testContext(t)
	d.publish("blue", "a@acme.example", "A1")
	rec, _ := take(t, stores[0], alice, "blue")
	info, err := stores[1].events.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := info.Config; !c.DenyDelete || !c.DenyPurge || c.Name != "DESK-events" || !slices.Equal(c.Subjects, []string{"desk.events.>"}) {
		t.Errorf("audit stream config %+v", c)
	}
	again := d.open("replica-again")
	if got, _, err := again.Get(ctx, rec.Number); err != nil || got.Owner != "alice" {
		t.Errorf("after opening again: %+v, %v", got, err)
	}
	if mine, _ := again.Mine(ctx, "alice"); len(mine) != 1 {
		t.Errorf("a new replica's cache: alice owns %+v", mine)
	}
	if h, _ := again.History(ctx, rec.ID); len(h) != 1 {
		t.Errorf("after opening again, history %+v", h)
	}
}
