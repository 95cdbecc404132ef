package state

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketrouter/ticketrouter/router/broker"
	"github.com/ticketrouter/ticketrouter/router/ticket"
	"github.com/ticketrouter/ticketrouter/rules"
)

// TestBoardAndMine: the board counts never-taken and returned tickets as
// waiting, taken ones as owned, escalated ones in the supervisors' queue,
// with the age of the oldest waiting by the store's clock; Mine lists an
// agent's owned tickets, first taken first.
func TestBoardAndMine(t *testing.T) {
	t.Parallel()
	d := startDesk(t)
	later := time.Now().Add(time.Hour) // the clock an hour on: every ticket waited over an hour
	s, err := Open(testContext(t), d.connect("desk"), ticket.DefaultPrefix, Options{Now: func() time.Time { return later }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	ctx := testContext(t)
	for range 4 {
		d.publish("blue", "a@acme.example", "A1")
	}
	d.publish("red", "b@acme.example", "A2")
	r1, _ := take(t, s, alice, "blue")
	r2, _ := take(t, s, alice, "blue")
	r3, _ := take(t, s, bob, "blue")
	if err := s.Return(ctx, bob, r3.ID); err != nil {
		t.Fatal(err)
	}
	r4, _ := take(t, s, bob, "red")
	if err := s.Escalate(ctx, bob, r4.ID, "odd"); err != nil {
		t.Fatal(err)
	}
	b, err := s.Board(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]int{"blue": {2, 2}, "red": {0, 0}, EscalatedQueue: {1, 0}, "green": {0, 0}}
	var queues []string
	for _, c := range b {
		queues = append(queues, c.Queue)
		w, ok := want[c.Queue]
		if !ok {
			continue
		}
		if c.Waiting != w[0] || c.Owned != w[1] {
			t.Errorf("board %s: %d waiting, %d owned; want %d, %d", c.Queue, c.Waiting, c.Owned, w[0], w[1])
		}
		if oldest := c.OldestWaiting; (c.Waiting > 0) != (oldest >= 30*time.Minute) || oldest > 2*time.Hour {
			t.Errorf("board %s: oldest waiting %v with %d waiting; want about an hour exactly when some wait", c.Queue, oldest, c.Waiting)
		}
	}
	if got := strings.Join(queues, ","); got != strings.Join(s.Queues(), ",") {
		t.Errorf("board queues %s, want %v", got, s.Queues())
	}
	mine, err := s.Mine(ctx, "alice")
	if err != nil || len(mine) != 2 || mine[0].ID != r1.ID || mine[1].ID != r2.ID {
		t.Errorf("Mine(alice) = %+v, %v; want %s, %s", mine, err, r1.Number, r2.Number)
	}
	if mine, _ := s.Mine(ctx, "bob"); len(mine) != 0 {
		t.Errorf("Mine(bob) = %+v, want none (returned, escalated)", mine)
	}
}

// TestSearch: tickets are found by number, id, Message-ID, sender, account
// and order; taken ones at once, the others once Index ran; Related lists
// the other tickets of the sender and the account.
func TestSearch(t *testing.T) {
	d, s, ctx := startOne(t)
	order := func(n string) func(*ticket.Ticket) {
		return func(tk *ticket.Ticket) {
			tk.Account = &ticket.Account{ID: "ACC-7", Colour: "blue"}
			tk.Checks.OrderMatched = rules.Check{OK: true, Reason: fmt.Sprintf("order %s exists (account ACC-7)", n)}
		}
	}
	raw := func(from string, n int) string {
		return fmt.Sprintf("From: Someone <%s>\r\nSubject: s%d\r\nMessage-ID: <q%d@mail.example>\r\n\r\nbody\r\n", from, n, n)
	}
	t1 := d.publishRaw("blue", raw("Admin@Acme.example", 1), order("ord-100"))
	t2 := d.publishRaw("blue", raw("admin@acme.example", 2), order("ORD-200"))
	t3 := d.publishRaw("blue", raw("other@else.example", 3), func(*ticket.Ticket) {})
	r1, _ := take(t, s, alice, "blue")
	// An account id that reads as a ticket number.
	t4 := d.publishRaw("blue", raw("digits@else.example", 4), func(tk *ticket.Ticket) {
		tk.Account = &ticket.Account{ID: strings.TrimPrefix(r1.Number, "TR-")}
	})

	check := func(when, q string, want ...*ticket.Ticket) {
		t.Helper()
		got, err := s.Search(ctx, q)
		if err != nil {
			t.Fatalf("%s: Search(%q): %v", when, q, err)
		}
		var ids, wantIDs []string
		for _, r := range got {
			ids = append(ids, r.ID[:8]+"/"+r.State)
		}
		for _, w := range want {
			state := StateQueued
			if w.ID == t1.ID {
				state = StateOwned
			}
			wantIDs = append(wantIDs, w.ID[:8]+"/"+state)
		}
		if strings.Join(ids, ",") != strings.Join(wantIDs, ",") {
			t.Errorf("%s: Search(%q) = %v, want %v", when, q, ids, wantIDs)
		}
	}
	// Before the indexer: numbers only, of tickets taken or queued.
	check("not indexed", r1.Number, t1)
	check("not indexed", ticket.Number(3), t3)
	check("not indexed", "q1@mail.example")
	check("not indexed", "admin@acme.example")
	if rec, tk, err := s.Get(ctx, "tr-100002"); err != nil || rec.State != StateQueued || rec.Number != "TR-100002" || tk == nil || tk.ID != t2.ID {
		t.Errorf("Get(a queued ticket's number) = %+v, %v, %v", rec, tk, err)
	}
	n, err := s.Index(ctx)
	if err != nil || n != 4 {
		t.Fatalf("Index = %d, %v; want 4 tickets", n, err)
	}
	if n, err := s.Index(ctx); err != nil || n != 0 {
		t.Fatalf("Index again = %d, %v; want 0 (the checkpoint moved)", n, err)
	}
	// A pass leaves no consumer behind: only the queues' remain.
	var names []string
	for name := range s.js.Stream.ConsumerNames(ctx).Name() {
		names = append(names, name)
	}
	if len(names) != len(broker.Queues()) {
		t.Errorf("consumers after indexing: %v, want only the %d queues'", names, len(broker.Queues()))
	}
	for _, tt := range []struct {
		q    string
		want []*ticket.Ticket
	}{
		{r1.Number, []*ticket.Ticket{t1}},
		{strings.TrimPrefix(r1.Number, "TR-"), []*ticket.Ticket{t1, t4}},
		{t2.ID, []*ticket.Ticket{t2}},
		{"<q2@mail.example>", []*ticket.Ticket{t2}},
		{"q3@mail.example", []*ticket.Ticket{t3}},
		{"ADMIN@acme.example", []*ticket.Ticket{t2, t1}},
		{"<other@else.example>", []*ticket.Ticket{t3}},
		{"ACC-7", []*ticket.Ticket{t2, t1}},
		{"ORD-100", []*ticket.Ticket{t1}},
		{"ord-200", []*ticket.Ticket{t2}},
		{"nobody@nowhere.example", nil},
		{"TR-999999", nil},
		{"", nil},
	} {
		check("indexed", tt.q, tt.want...)
	}
	rel, err := s.Related(ctx, r1.ID)
	if err != nil || len(rel) != 1 || rel[0].ID != t2.ID {
		t.Errorf("Related(%s) = %+v, %v; want only %s", r1.Number, rel, err, t2.ID)
	}
	rec, tk, err := s.Get(ctx, t3.ID)
	if err != nil || rec.State != StateQueued || rec.Queue != "blue" || tk == nil || tk.ID != t3.ID {
		t.Errorf("Get(a queued ticket) = %+v, %v, %v", rec, tk, err)
	}
}

// TestRawAndAttachment: the raw mail and an attachment read again from it
// come back as published, each with an audit event; an attachment with
// key material is withheld.
func TestRawAndAttachment(t *testing.T) {
	d, s, ctx := startOne(t)
	pdf := bytes.Repeat([]byte("%PDF-1.4 not really\x00\x01"), 40)
	raw := "From: <a@acme.example>\r\nSubject: see attached\r\nMessage-ID: <att@acme.example>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n" +
		"--XX\r\nContent-Type: text/plain\r\n\r\nSee the invoice.\r\n" +
		"--XX\r\nContent-Type: application/pdf; name=\"invoice.pdf\"\r\nContent-Disposition: attachment; filename=\"invoice.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString(pdf) + "\r\n" +
		"--XX\r\nContent-Type: application/octet-stream; name=\"key.pem\"\r\nContent-Disposition: attachment; filename=\"key.pem\"\r\n\r\n" +
		"-----BEGIN PRIVATE KEY-----\r\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA\r\n-----END PRIVATE KEY-----\r\n" +
		"--XX--\r\n"
	tk := d.publishRaw("blue", raw, func(*ticket.Ticket) {})
	if len(tk.Attachments) != 2 || tk.Attachments[0].Name != "invoice.pdf" || tk.Attachments[1].Secret == "" {
		t.Fatalf("the test mail's attachments: %+v", tk.Attachments)
	}
	rec, _ := take(t, s, alice, "blue")

	r, size, err := s.Raw(ctx, bob, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || string(got) != raw || size != int64(len(raw)) {
		t.Errorf("Raw = %d bytes (size %d), %v; want the %d published", len(got), size, err, len(raw))
	}
	name, ct, body, err := s.Attachment(ctx, bob, rec.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(body)
	body.Close()
	if name != "invoice.pdf" || ct != "application/pdf" || !bytes.Equal(got, pdf) {
		t.Errorf("Attachment 0 = %q, %q, %d bytes; want invoice.pdf, application/pdf, the %d bytes", name, ct, len(got), len(pdf))
	}
	for _, tt := range []struct {
		index int
		want  error
	}{{1, ErrWithheld}, {2, ErrNotFound}, {-1, ErrNotFound}} {
		if _, _, _, err := s.Attachment(ctx, bob, rec.ID, tt.index); !errors.Is(err, tt.want) {
			t.Errorf("Attachment %d: %v, want %v", tt.index, err, tt.want)
		}
	}
	h, err := s.History(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range h {
		kinds = append(kinds, e.Kind+":"+e.Agent)
	}
	if want := "taken:alice,raw_viewed:bob,attachment_downloaded:bob"; strings.Join(kinds, ",") != want {
		t.Errorf("history %v, want %s", kinds, want)
	}
	if _, _, err := s.Raw(ctx, bob, strings.Repeat("0", 64)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Raw of an unknown ticket: %v, want ErrNotFound", err)
	}
	if h, _ := s.History(ctx, strings.Repeat("0", 64)); len(h) != 0 {
		t.Errorf("a view of an unknown ticket left events: %+v", h)
	}
}

// TestTakeDeadLetter: a stream message that is not a ticket document (a
// quarantined mail's record) is taken like a ticket, named by its stream
// sequence, with no ticket.
func TestTakeDeadLetter(t *testing.T) {
	d, s, ctx := startOne(t)
	if err := d.pub.PublishDeadLetter(ctx, broker.DeadLetter{Mailbox: "INBOX", UIDValidity: 1, UID: 7, Reason: "unreadable"}); err != nil {
		t.Fatal(err)
	}
	rec, tk := take(t, s, alice, "deadletter")
	if tk != nil || !strings.HasPrefix(rec.ID, "s") || rec.Number == "" {
		t.Fatalf("took %+v, %+v; want a record named s<seq> with no ticket", rec, tk)
	}
	got, tk, err := s.Get(ctx, rec.Number)
	if err != nil || got.ID != rec.ID || tk != nil {
		t.Errorf("Get(%s) = %+v, %+v, %v", rec.Number, got, tk, err)
	}
	if err := s.Resolve(ctx, alice, rec.ID, "other", "a mail nobody can read"); err != nil {
		t.Errorf("resolve: %v", err)
	}
}

// TestBoardMaxAge: within BoardMaxAge, boards share one reading of the
// consumers; past it the next board reads them again.
func TestBoardMaxAge(t *testing.T) {
	t.Parallel()
	d := startDesk(t)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	s, err := Open(testContext(t), d.connect("desk"), ticket.DefaultPrefix, Options{Now: clock, BoardMaxAge: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	tick := func() {
		mu.Lock()
		now = now.Add(2 * time.Minute)
		mu.Unlock()
	}
	d.publish("green", "a@acme.example", "A1")
	for i := 0; greenWaiting(t, s) != 1; i++ { // a reading that sees it, past any earlier one
		if i == 100 {
			t.Fatal("the published ticket never showed on the board")
		}
		tick()
		time.Sleep(10 * time.Millisecond)
	}
	d.publish("green", "b@acme.example", "A2")
	if n := greenWaiting(t, s); n != 1 {
		t.Fatalf("within the max age: %d green waiting, want the reading's 1", n)
	}
	tick()
	if n := greenWaiting(t, s); n != 2 {
		t.Fatalf("past the max age: %d green waiting, want 2", n)
	}
}

func greenWaiting(t *testing.T, s *Store) int {
	t.Helper()
	b, err := s.Board(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range b {
		if c.Queue == "green" {
			return c.Waiting
		}
	}
	t.Fatal("no green queue on the board")
	return 0
}
