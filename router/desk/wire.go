package desk

import (
	"net/http"

	"github.com/ticketrouter/ticketrouter/router/desk/agents"
	"github.com/ticketrouter/ticketrouter/router/desk/state"
)

// *state.Store, the desk's state on JetStream, is the Store.
var _ Store = (*state.Store)(nil)

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
