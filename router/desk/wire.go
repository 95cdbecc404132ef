package desk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/ticketrouter/ticketrouter/router/desk/agents"
	"github.com/ticketrouter/ticketrouter/router/desk/state"
	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// FromState adapts the desk's state on JetStream to Store.
func FromState(s *state.Store) Store { return stateStore{s} }

type stateStore struct{ s *state.Store }

func stateActor(a Actor) state.Actor {
	return state.Actor{Agent: a.Agent, Addr: a.Addr, Supervisor: a.Supervisor}
}

func fromRecord(r state.Record) Record {
	return Record{Number: r.Number, ID: r.ID, Queue: r.Queue, Colour: r.Colour, State: r.State, Owner: r.Owner,
		Outcome: r.Outcome, TakenAt: r.TakenAt, UpdatedAt: r.UpdatedAt}
}

func fromRecords(rs []state.Record, err error) ([]Record, error) {
	if err != nil {
		return nil, stateErr(err)
	}
	out := make([]Record, len(rs))
	for i, r := range rs {
		out[i] = fromRecord(r)
	}
	return out, nil
}

// stateErr makes the state's errors the desk's, keeping the original.
func stateErr(err error) error {
	for _, m := range []struct{ from, to error }{
		{state.ErrNoTicket, ErrNoTicket}, {state.ErrNotOwner, ErrNotOwner}, {state.ErrNotFound, ErrNotFound},
		{state.ErrConflict, ErrConflict}, {state.ErrInvalid, ErrInvalid}, {state.ErrWithheld, ErrInvalid},
	} {
		if errors.Is(err, m.from) {
			return fmt.Errorf("%w: %w", m.to, err)
		}
	}
	return err
}

func withTicket(r *state.Record, t *ticket.Ticket, err error) (*Record, *ticket.Ticket, error) {
	if err != nil {
		return nil, nil, stateErr(err)
	}
	rec := fromRecord(*r)
	return &rec, t, nil
}

func (s stateStore) TakeNext(ctx context.Context, a Actor, queue string) (*Record, *ticket.Ticket, error) {
	return withTicket(s.s.TakeNext(ctx, stateActor(a), queue))
}
func (s stateStore) Get(ctx context.Context, key string) (*Record, *ticket.Ticket, error) {
	return withTicket(s.s.Get(ctx, key))
}
func (s stateStore) Resolve(ctx context.Context, a Actor, id, outcome, note string) error {
	return stateErr(s.s.Resolve(ctx, stateActor(a), id, outcome, note))
}
func (s stateStore) Return(ctx context.Context, a Actor, id string) error {
	return stateErr(s.s.Return(ctx, stateActor(a), id))
}
func (s stateStore) Escalate(ctx context.Context, a Actor, id, reason string) error {
	return stateErr(s.s.Escalate(ctx, stateActor(a), id, reason))
}
func (s stateStore) Transfer(ctx context.Context, a Actor, id, colour string) error {
	return stateErr(s.s.Transfer(ctx, stateActor(a), id, colour))
}
func (s stateStore) Reassign(ctx context.Context, a Actor, id, to string) error {
	return stateErr(s.s.Reassign(ctx, stateActor(a), id, to))
}
func (s stateStore) Note(ctx context.Context, a Actor, id, text string) error {
	return stateErr(s.s.Note(ctx, stateActor(a), id, text))
}
func (s stateStore) History(ctx context.Context, id string) ([]Event, error) {
	evs, err := s.s.History(ctx, id)
	if err != nil {
		return nil, stateErr(err)
	}
	out := make([]Event, len(evs))
	for i, e := range evs {
		out[i] = Event{Ticket: e.Ticket, Number: e.Number, Kind: e.Kind, Agent: e.Agent, Addr: e.Addr, At: e.At,
			Outcome: e.Outcome, Reason: e.Reason, Note: e.Note, Detail: e.Detail}
	}
	return out, nil
}
func (s stateStore) Board(ctx context.Context) ([]QueueCount, error) {
	cs, err := s.s.Board(ctx)
	if err != nil {
		return nil, stateErr(err)
	}
	out := make([]QueueCount, len(cs))
	for i, c := range cs {
		out[i] = QueueCount{Queue: c.Queue, Waiting: c.Waiting, Owned: c.Owned, OldestWaiting: c.OldestWaiting}
	}
	return out, nil
}
func (s stateStore) Mine(ctx context.Context, agent string) ([]Record, error) {
	return fromRecords(s.s.Mine(ctx, agent))
}
func (s stateStore) Search(ctx context.Context, q string) ([]Record, error) {
	return fromRecords(s.s.Search(ctx, q))
}
func (s stateStore) Related(ctx context.Context, id string) ([]Record, error) {
	return fromRecords(s.s.Related(ctx, id))
}
func (s stateStore) Raw(ctx context.Context, a Actor, id string) (io.ReadCloser, int64, error) {
	rc, n, err := s.s.Raw(ctx, stateActor(a), id)
	return rc, n, stateErr(err)
}
func (s stateStore) Attachment(ctx context.Context, a Actor, id string, index int) (string, string, io.ReadCloser, error) {
	name, ct, rc, err := s.s.Attachment(ctx, stateActor(a), id, index)
	return name, ct, rc, stateErr(err)
}

// FromSessions adapts the agents package's sessions, and the directory
// they check logins against, to Auth.
func FromSessions(s *agents.Sessions, dir *agents.Directory) Auth { return sessionsAuth{s, dir} }

type sessionsAuth struct {
	s   *agents.Sessions
	dir *agents.Directory
}

func (s sessionsAuth) Agents() []*Agent {
	var out []*Agent
	for _, a := range s.dir.Agents() {
		if !a.Disabled {
			out = append(out, deskAgent(&a))
		}
	}
	return out
}

func deskAgent(a *agents.Agent) *Agent {
	return &Agent{Name: a.Name, Display: a.DisplayName(), Roles: a.Roles, Colours: a.Colours,
		Supervisor: a.Is(agents.RoleSupervisor), CanSee: a.CanSee}
}

func (s sessionsAuth) Login(w http.ResponseWriter, r *http.Request, name, pw string) error {
	_, _, err := s.s.Login(w, r, name, pw)
	return err
}
func (s sessionsAuth) Current(r *http.Request) (*Agent, *Session, error) {
	a, sess, err := s.s.Current(r)
	if err != nil {
		return nil, nil, err
	}
	return deskAgent(a), &Session{CSRF: sess.CSRFToken(), Ref: sess}, nil
}
func (s sessionsAuth) Logout(w http.ResponseWriter, r *http.Request) error { return s.s.Logout(w, r) }
func (s sessionsAuth) CheckCSRF(r *http.Request, sess *Session) error {
	real, ok := sess.Ref.(*agents.Session)
	if !ok {
		return agents.ErrCSRF
	}
	return s.s.CheckCSRF(r, real)
}
func (s sessionsAuth) ClientAddr(r *http.Request) string { return s.s.ClientAddr(r) }
