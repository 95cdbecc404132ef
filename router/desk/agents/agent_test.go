package agents

import "testing"

// TestCanSee: agents see their colours only; supervisors and admins see
// every queue, the escalated one too; disabled agents see nothing.
func TestCanSee(t *testing.T) {
	blueRed := &Agent{Name: "a", Roles: []string{RoleAgent}, Colours: []string{"blue", "red"}}
	sup := &Agent{Name: "s", Roles: []string{RoleSupervisor}}
	admin := &Agent{Name: "x", Roles: []string{RoleAdmin}}
	off := &Agent{Name: "o", Roles: []string{RoleSupervisor}, Disabled: true}
	for _, tt := range []struct {
		agent *Agent
		queue string
		want  bool
	}{
		{blueRed, "blue", true},
		{blueRed, "red", true},
		{blueRed, "green", false},
		{blueRed, "unknown", false},
		{blueRed, "escalated", false},
		{blueRed, "", false},
		{sup, "green", true},
		{sup, "escalated", true},
		{admin, "deadletter", true},
		{off, "blue", false},
		{nil, "blue", false},
	} {
		if got := tt.agent.CanSee(tt.queue); got != tt.want {
			t.Errorf("%v.CanSee(%q) = %v, want %v", tt.agent, tt.queue, got, tt.want)
		}
	}
}

// TestIs: each role includes the ones below it.
func TestIs(t *testing.T) {
	for _, tt := range []struct {
		roles []string
		role  string
		want  bool
	}{
		{[]string{RoleAgent}, RoleAgent, true},
		{[]string{RoleAgent}, RoleSupervisor, false},
		{[]string{RoleSupervisor}, RoleAgent, true},
		{[]string{RoleSupervisor}, RoleAdmin, false},
		{[]string{RoleAdmin}, RoleSupervisor, true},
		{[]string{RoleAdmin}, "root", false},
		{nil, RoleAgent, false},
	} {
		a := &Agent{Roles: tt.roles}
		if got := a.Is(tt.role); got != tt.want {
			t.Errorf("%v.Is(%q) = %v, want %v", tt.roles, tt.role, got, tt.want)
		}
	}
}
