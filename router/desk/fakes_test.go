package desk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ticketrouter/ticketrouter/ingest/mail"
	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// fakeAuth is an Auth in memory: agents by name with a password each,
// sessions by cookie value.
type fakeAuth struct {
	mu       sync.Mutex
	agents   map[string]*Agent
	pw       map[string]string
	sessions map[string]*Agent
	n        int
}

func newFakeAuth() *fakeAuth {
	f := &fakeAuth{agents: map[string]*Agent{}, pw: map[string]string{}, sessions: map[string]*Agent{}}
	f.add("alice", "pw-a", []string{"agent"}, "blue", "red")
	f.add("bob", "pw-b", []string{"agent"}, "blue")
	f.add("sue", "pw-s", []string{"agent", "supervisor"})
	return f
}

func (f *fakeAuth) add(name, pw string, roles []string, colours ...string) {
	a := &Agent{Name: name, Roles: roles, Colours: colours, Supervisor: slices.Contains(roles, "supervisor")}
	a.CanSee = func(q string) bool { return a.Supervisor || slices.Contains(a.Colours, q) }
	f.agents[name], f.pw[name] = a, pw
}

// session starts a session for name and returns its cookie.
func (f *fakeAuth) session(name string) *http.Cookie {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	tok := fmt.Sprintf("tok-%d", f.n)
	f.sessions[tok] = f.agents[name]
	return &http.Cookie{Name: "s", Value: tok}
}

func csrfOf(c *http.Cookie) string { return "csrf-" + c.Value }

func (f *fakeAuth) Login(w http.ResponseWriter, r *http.Request, name, pw string) error {
	if p, ok := f.pw[name]; !ok || p != pw {
		return errors.New("login failed")
	}
	http.SetCookie(w, f.session(name))
	return nil
}

func (f *fakeAuth) Current(r *http.Request) (*Agent, *Session, error) {
	c, err := r.Cookie("s")
	if err != nil {
		return nil, nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.sessions[c.Value]
	if a == nil {
		return nil, nil, errors.New("no session")
	}
	return a, &Session{CSRF: csrfOf(c), Ref: c.Value}, nil
}

func (f *fakeAuth) Logout(w http.ResponseWriter, r *http.Request) error {
	if c, err := r.Cookie("s"); err == nil {
		f.mu.Lock()
		delete(f.sessions, c.Value)
		f.mu.Unlock()
	}
	return nil
}

func (f *fakeAuth) CheckCSRF(r *http.Request, s *Session) error { return nil } // the desk compares

func (f *fakeAuth) ClientAddr(r *http.Request) string { return "203.0.113.9" } // as a proxy would say

func (f *fakeAuth) Agents() []*Agent {
	var out []*Agent
	for _, a := range f.agents {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b *Agent) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// fakeStore is a Store in memory.
type fakeStore struct {
	mu      sync.Mutex
	recs    map[string]*Record // by id
	tickets map[string]*ticket.Ticket
	events  []Event
	counts  []QueueCount
	raw     map[string]string
	calls   []string // Raw and Attachment calls, "raw ID" / "attachment ID N"
}

func newFakeStore() *fakeStore {
	return &fakeStore{recs: map[string]*Record{}, tickets: map[string]*ticket.Ticket{}, raw: map[string]string{}}
}

// put adds a ticket with a record.
func (s *fakeStore) put(rec Record, t *ticket.Ticket, raw string) {
	t.ID = rec.ID
	s.recs[rec.ID], s.tickets[rec.ID], s.raw[rec.ID] = &rec, t, raw
}

func (s *fakeStore) find(key string) (*Record, error) {
	for _, r := range s.recs {
		if r.ID == key || r.Number == key {
			return r, nil
		}
	}
	return nil, fmt.Errorf("get %s: %w", key, ErrNotFound)
}

func (s *fakeStore) event(a Actor, id, kind string, set func(*Event)) {
	e := Event{Ticket: id, Number: s.recs[id].Number, Kind: kind, Agent: a.Agent, Addr: a.Addr, At: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)}
	if set != nil {
		set(&e)
	}
	s.events = append(s.events, e)
}

func (s *fakeStore) TakeNext(ctx context.Context, a Actor, queue string) (*Record, *ticket.Ticket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.recs {
		if r.Queue == queue && r.State == "waiting" {
			r.State, r.Owner = "owned", a.Agent
			s.event(a, r.ID, "taken", nil)
			return r, s.tickets[r.ID], nil
		}
	}
	return nil, nil, ErrNoTicket
}

func (s *fakeStore) Get(ctx context.Context, key string) (*Record, *ticket.Ticket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.find(key)
	if err != nil {
		return nil, nil, err
	}
	c := *r
	return &c, s.tickets[r.ID], nil
}

// owned runs f on an owned ticket of a's, or fails with ErrNotOwner.
func (s *fakeStore) owned(a Actor, id, kind string, set func(*Event), f func(*Record)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.find(id)
	if err != nil {
		return err
	}
	if r.Owner != a.Agent && !(a.Supervisor && r.Queue == "escalated") {
		return ErrNotOwner
	}
	if f != nil {
		f(r)
	}
	s.event(a, r.ID, kind, set)
	return nil
}

func (s *fakeStore) Resolve(ctx context.Context, a Actor, id, outcome, note string) error {
	return s.owned(a, id, "resolved", func(e *Event) { e.Outcome, e.Note = outcome, note }, func(r *Record) { r.State, r.Outcome = "resolved", outcome })
}

func (s *fakeStore) Return(ctx context.Context, a Actor, id string) error {
	return s.owned(a, id, "returned", nil, func(r *Record) { r.State, r.Owner = "waiting", "" })
}

func (s *fakeStore) Escalate(ctx context.Context, a Actor, id, reason string) error {
	return s.owned(a, id, "escalated", func(e *Event) { e.Reason = reason }, func(r *Record) { r.State, r.Queue, r.Owner = "waiting", "escalated", "" })
}

func (s *fakeStore) Transfer(ctx context.Context, a Actor, id, colour string) error {
	return s.owned(a, id, "transferred", func(e *Event) { e.Detail = "to " + colour }, func(r *Record) { r.State, r.Queue, r.Owner = "waiting", colour, "" })
}

func (s *fakeStore) Reassign(ctx context.Context, a Actor, id, to string) error {
	if !a.Supervisor {
		return ErrNotOwner
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.find(id)
	if err != nil {
		return err
	}
	r.State, r.Owner = "owned", to
	s.event(a, r.ID, "reassigned", func(e *Event) { e.Detail = "to " + to })
	return nil
}

func (s *fakeStore) Note(ctx context.Context, a Actor, id, text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.find(id); err != nil {
		return err
	}
	s.event(a, id, "note", func(e *Event) { e.Note = text })
	return nil
}

func (s *fakeStore) History(ctx context.Context, id string) ([]Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Event
	for _, e := range s.events {
		if e.Ticket == id {
			out = append(out, e)
		}
	}
	return out, nil
}

func (s *fakeStore) Board(ctx context.Context) ([]QueueCount, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.counts), nil
}

func (s *fakeStore) records(keep func(*Record) bool) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for _, r := range s.recs {
		if keep(r) {
			out = append(out, *r)
		}
	}
	slices.SortFunc(out, func(a, b Record) int { return strings.Compare(a.Number, b.Number) })
	return out
}

func (s *fakeStore) Mine(ctx context.Context, agent string) ([]Record, error) {
	return s.records(func(r *Record) bool { return r.Owner == agent }), nil
}

func (s *fakeStore) Search(ctx context.Context, q string) ([]Record, error) {
	return s.records(func(r *Record) bool {
		t := s.tickets[r.ID]
		return r.Number == q || t.MessageID == q || strings.EqualFold(t.From.Address, q)
	}), nil
}

func (s *fakeStore) Related(ctx context.Context, id string) ([]Record, error) {
	from := s.tickets[id].From.Address
	return s.records(func(r *Record) bool { return s.tickets[r.ID].From.Address == from }), nil
}

func (s *fakeStore) Reply(ctx context.Context, a Actor, id, detail, text string, send func(context.Context) error) error {
	s.mu.Lock()
	rec, ok := s.recs[id]
	s.mu.Unlock()
	if !ok {
		return ErrNotFound
	}
	if rec.Owner != a.Agent || rec.State != "owned" {
		return ErrNotOwner
	}
	if err := send(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.event(a, id, "replied", func(e *Event) { e.Detail, e.Note = detail, text })
	return nil
}

func (s *fakeStore) Conversation(ctx context.Context, id string) ([]Record, error) {
	root := id
	if c := s.tickets[id].Conversation; c != nil && c.Joined {
		root = c.Root
	}
	// Oldest (lowest number) first.
	return s.records(func(r *Record) bool {
		c := s.tickets[r.ID].Conversation
		return r.ID == root || c != nil && c.Joined && c.Root == root
	}), nil
}

func (s *fakeStore) Raw(ctx context.Context, a Actor, id string) (io.ReadCloser, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "raw "+id)
	s.event(a, id, "raw_viewed", nil)
	return io.NopCloser(strings.NewReader(s.raw[id])), int64(len(s.raw[id])), nil
}

func (s *fakeStore) Attachment(ctx context.Context, a Actor, id string, index int) (string, string, io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, fmt.Sprintf("attachment %s %d", id, index))
	att := s.tickets[id].Attachments[index]
	s.event(a, id, "attachment_downloaded", nil)
	return att.Name, att.ContentType, io.NopCloser(strings.NewReader("<html><script>alert(1)</script></html>")), nil
}

// hostile is what a mail can put in a ticket to attack the page.
const hostile = `<script>alert(1)</script><a href="javascript:alert(2)">click</a><img src=x onerror=alert(3)>`

// fixture returns a store with a blue ticket owned by alice, a red one
// owned by alice, a hostile blue one, and board counts.
func fixture() *fakeStore {
	s := newFakeStore()
	s.put(Record{Number: "TR-100001", ID: "b1", Queue: "blue", Colour: "blue", State: "owned", Owner: "alice"},
		&ticket.Ticket{Colour: "blue", From: ticket.From{Address: "a@cust.test"}, EmailSubject: "Reset please", Body: "please reset",
			Guidance: []string{"Passwords are never given out.", "Refer them to the web host."}, GuidanceNever: []int{0},
			Attachments: []mail.Attachment{{Name: "../../evil<>.html", ContentType: "text/html", Size: 10}}}, "From: a@cust.test\r\n\r\nplease reset\r\n")
	s.put(Record{Number: "TR-100002", ID: "r1", Queue: "red", Colour: "red", State: "owned", Owner: "alice"},
		&ticket.Ticket{Colour: "red", From: ticket.From{Address: "r@resell.test"}, EmailSubject: "Red secret", Body: "red body",
			Attachments: []mail.Attachment{{Name: "order.pdf", ContentType: "application/pdf", Size: 10}}}, "From: r@resell.test\r\n\r\nred body\r\n")
	s.put(Record{Number: "TR-100003", ID: "h1", Queue: "blue", Colour: "blue", State: "owned", Owner: "bob"},
		&ticket.Ticket{Colour: "blue", From: ticket.From{Address: "x@evil.test", Name: hostile}, EmailSubject: hostile, Body: hostile + "\nsee javascript:alert(4)",
			MessageID: hostile, ReplyTo: []string{hostile}, Guidance: []string{hostile}, Candidates: []string{hostile},
			Attachments: []mail.Attachment{{Name: hostile, ContentType: hostile, Size: 1}}}, hostile)
	s.put(Record{Number: "TR-100004", ID: "w1", Queue: "red", Colour: "red", State: "waiting"},
		&ticket.Ticket{Colour: "red"}, "")
	s.counts = []QueueCount{
		{Queue: "blue", Waiting: 3, Owned: 2, OldestWaiting: 30 * time.Minute},
		{Queue: "red", Waiting: 1, Owned: 1, OldestWaiting: 90 * time.Minute},
		{Queue: "pink", Waiting: 2, OldestWaiting: 5 * time.Hour},
		{Queue: "escalated"},
	}
	return s
}
