package agents

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/ticketrouter/ticketrouter/router/broker"
)

// Roles. Each includes the ones before it: a supervisor is also an agent,
// an admin also a supervisor.
const (
	// RoleAgent works the queues of the agent's colours.
	RoleAgent = "agent"
	// RoleSupervisor sees every queue, including the supervisors' queue of
	// escalated tickets, and reassigns tickets.
	RoleSupervisor = "supervisor"
	// RoleAdmin is a supervisor who may also administer the desk.
	RoleAdmin = "admin"
)

// rank orders the roles: a role includes those of lower rank; 0 is not a
// role.
func rank(role string) int {
	switch role {
	case RoleAgent:
		return 1
	case RoleSupervisor:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Roles lists the roles, lowest first.
func Roles() []string { return []string{RoleAgent, RoleSupervisor, RoleAdmin} }

// Agent is a person who may use the desk. It carries no password: the
// hash stays in the Directory.
type Agent struct {
	Name     string   // login name: lower case, [a-z0-9._-]
	Display  string   // how the desk shows the agent; Name when empty
	Roles    []string // RoleAgent, RoleSupervisor, RoleAdmin
	Colours  []string // the queues the agent works (see CanSee)
	Disabled bool     // a disabled agent cannot log in, and its sessions end
}

// Is reports whether a has role or a role that includes it.
func (a *Agent) Is(role string) bool {
	want := rank(role)
	if a == nil || want == 0 {
		return false
	}
	for _, r := range a.Roles {
		if rank(r) >= want {
			return true
		}
	}
	return false
}

// CanSee reports whether a may see and work queue. Supervisors and admins
// see every queue, including the supervisors' queue of escalated tickets.
// An agent sees exactly the queues listed in its colours, which are
// queue names of broker.Queues (so the "unknown" colour, or the
// rate-limited queue, only when listed); a disabled agent sees nothing.
func (a *Agent) CanSee(queue string) bool {
	switch {
	case a == nil || a.Disabled || queue == "":
		return false
	case a.Is(RoleSupervisor):
		return true
	}
	return a.Is(RoleAgent) && slices.Contains(a.Colours, queue)
}

// DisplayName is Display, or Name when Display is empty.
func (a *Agent) DisplayName() string {
	if a.Display != "" {
		return a.Display
	}
	return a.Name
}

// clone returns a deep copy, so that callers cannot change the
// Directory's agents.
func (a *Agent) clone() *Agent {
	c := *a
	c.Roles = slices.Clone(a.Roles)
	c.Colours = slices.Clone(a.Colours)
	return &c
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// Limits of what an agent's fields may hold.
const (
	maxDisplay = 100
	// MinPasswordLength is the shortest password accepted for an agent.
	MinPasswordLength = 12
	// MaxPasswordLength bounds a password, in bytes.
	MaxPasswordLength = 1024
)

// CheckName returns an error when name is not a valid agent name: 1 to 64
// of lower-case letters, digits, '.', '_' and '-', starting with a letter
// or digit.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("agent name %q: want 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit", name)
	}
	return nil
}

// CheckPassword returns an error when password is too short or too long
// for an agent. The error never holds the password.
func CheckPassword(password string) error {
	switch n := len([]rune(password)); {
	case n < MinPasswordLength:
		return fmt.Errorf("the password has %d characters: want at least %d", n, MinPasswordLength)
	case len(password) > MaxPasswordLength:
		return fmt.Errorf("the password is over %d bytes", MaxPasswordLength)
	}
	return nil
}

// Check returns an error when a's fields are not valid: its name, display,
// roles and colours (an agent needs one; supervisors see every queue).
func (a *Agent) Check() error {
	if err := CheckName(a.Name); err != nil {
		return err
	}
	if len(a.Display) > maxDisplay || strings.IndexFunc(a.Display, unicode.IsControl) >= 0 {
		return fmt.Errorf("agent %q: display: want at most %d characters, no control characters", a.Name, maxDisplay)
	}
	if len(a.Roles) == 0 {
		return fmt.Errorf("agent %q: roles: want at least one of %s", a.Name, strings.Join(Roles(), ", "))
	}
	for _, r := range a.Roles {
		if rank(r) == 0 {
			return fmt.Errorf("agent %q: unknown role %q: want one of %s", a.Name, r, strings.Join(Roles(), ", "))
		}
	}
	queues := broker.Queues()
	for _, c := range a.Colours {
		if !slices.Contains(queues, c) {
			return fmt.Errorf("agent %q: unknown colour %q: want one of %s", a.Name, c, strings.Join(queues, ", "))
		}
	}
	if len(a.Colours) == 0 && !a.Is(RoleSupervisor) {
		return fmt.Errorf("agent %q: colours: an agent needs at least one (supervisors and admins see every queue)", a.Name)
	}
	return nil
}
