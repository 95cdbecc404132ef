// Package desk is the HTTP side of the agents' desk: the login, the board
// of queues, the ticket page with its guidance, checks and history, the
// actions on a ticket, search, downloads of attachments and raw mail, and
// live counts by server-sent events. Pages are rendered on the server with
// html/template from files embedded in the binary; there is no front-end
// build step.
//
// The desk's state and its agents live elsewhere (router/desk/state and
// router/desk/agents); this package reaches them through the Store and Auth
// interfaces it declares, so that its tests can use fakes; *state.Store is
// a Store, and FromSessions adapts the agents' sessions to Auth. Every
// request is checked on the server: an agent sees only the queues, tickets
// and downloads of the queues it may see, and every state change carries
// the session's CSRF token.
package desk

import (
	"context"
	"io"
	"net/http"

	"github.com/ticketrouter/ticketrouter/router/desk/state"
	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// The desk speaks the state package's language: its records, events,
// board counts and errors (the desk answers each error with its status).
type (
	// Actor is who acts, and from where, for the audit.
	Actor = state.Actor
	// Record is the desk's record of a ticket it has taken.
	Record = state.Record
	// Event is one entry of a ticket's history, never edited.
	Event = state.Event
	// QueueCount is what the board shows of one queue.
	QueueCount = state.QueueCount
)

// Errors a Store returns (wrapped or not).
var (
	ErrNoTicket = state.ErrNoTicket
	ErrNotOwner = state.ErrNotOwner
	ErrNotFound = state.ErrNotFound
	ErrConflict = state.ErrConflict
	ErrInvalid  = state.ErrInvalid
	// ErrWithheld: an attachment holding key material is not handed out.
	ErrWithheld = state.ErrWithheld
)

// Store is the desk's state: tickets taken from the queues, their owners
// and their history. Its errors are, or wrap, ErrNoTicket, ErrNotOwner,
// ErrNotFound and ErrConflict where those apply. Raw and Attachment
// record the view in the history themselves.
type Store interface {
	TakeNext(ctx context.Context, a Actor, queue string) (*Record, *ticket.Ticket, error)
	Get(ctx context.Context, numberOrID string) (*Record, *ticket.Ticket, error)
	Resolve(ctx context.Context, a Actor, id, outcome, note string) error
	Return(ctx context.Context, a Actor, id string) error
	Escalate(ctx context.Context, a Actor, id, reason string) error
	Transfer(ctx context.Context, a Actor, id, colour string) error
	Note(ctx context.Context, a Actor, id, text string) error
	// Reply runs send when a may act on the ticket, and records the reply
	// (detail, text) in its history once send succeeded.
	Reply(ctx context.Context, a Actor, id, detail, text string, send func(context.Context) error) error
	// Reassign makes agent to the ticket's owner; supervisors only.
	Reassign(ctx context.Context, a Actor, id, to string) error
	History(ctx context.Context, id string) ([]Event, error)
	// Board counts every queue; the desk shows each agent its own.
	Board(ctx context.Context) ([]QueueCount, error)
	Mine(ctx context.Context, agent string) ([]Record, error)
	// Search finds tickets by number, Message-ID, sender address, account
	// id or order number.
	Search(ctx context.Context, q string) ([]Record, error)
	// Related finds the other tickets of the same sender or account.
	Related(ctx context.Context, id string) ([]Record, error)
	// Conversation lists the tickets of the ticket's conversation, oldest
	// first, the ticket among them.
	Conversation(ctx context.Context, id string) ([]Record, error)
	Raw(ctx context.Context, a Actor, id string) (io.ReadCloser, int64, error)
	Attachment(ctx context.Context, a Actor, id string, index int) (name, contentType string, body io.ReadCloser, err error)
}

// Agent is the signed-in agent as the desk sees it.
type Agent struct {
	Name, Display  string
	Roles, Colours []string
	// Supervisor is set for supervisors and admins: they act on escalated
	// tickets (the agents package's Is("supervisor")).
	Supervisor bool
	// CanSee reports whether the agent may see a queue (a colour, or the
	// supervisors' queue): the agents package decides; nil sees nothing.
	CanSee func(queue string) bool
}

// sees reports whether the agent may see a queue.
func (a *Agent) sees(queue string) bool { return a.CanSee != nil && a.CanSee(queue) }

// seesRecord reports whether the agent may see a ticket: one of a queue it
// may see, or one it owns now (a supervisor may reassign a ticket to an
// agent of another colour, or from the supervisors' queue); the last
// owner of a ticket that has moved on does not count.
func (a *Agent) seesRecord(rec *Record) bool {
	return a.sees(rec.Queue) || rec.State == "owned" && rec.Owner == a.Name
}

// Session is the agent's session as the desk needs it: the token its
// forms carry. Ref is the Auth's own session, handed back to CheckCSRF.
type Session struct {
	CSRF string
	Ref  any
}

// Auth signs agents in and out and knows who sends a request.
type Auth interface {
	// Login checks the name and password (throttled), and on success
	// starts a session, setting its cookie on w.
	Login(w http.ResponseWriter, r *http.Request, name, password string) error
	// Current returns the request's agent and session (from the session
	// cookie, or a trusted proxy's user header); an error when there is
	// none or it expired.
	Current(r *http.Request) (*Agent, *Session, error)
	// Logout ends the request's session and clears its cookie.
	Logout(w http.ResponseWriter, r *http.Request) error
	// CheckCSRF checks the request's CSRF token (form field CSRFField, or the
	// X-CSRF-Token header) against the session's.
	CheckCSRF(r *http.Request, s *Session) error
	// ClientAddr is the request's client for the audit: the remote
	// address, or what a trusted proxy says it forwards for.
	ClientAddr(r *http.Request) string
	// Agents lists the enabled agents by name, for a supervisor's choice
	// of whom to reassign a ticket to.
	Agents() []*Agent
}
