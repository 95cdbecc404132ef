package agents

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const alicePassword = "alice's long password"

// writeAgents writes an agents file with alice (agent of blue and red),
// sam (supervisor) and off (disabled), all with alicePassword.
func writeAgents(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agents.yaml")
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []Agent{
		{Name: "alice", Display: "Alice Example", Roles: []string{RoleAgent}, Colours: []string{"blue", "red"}},
		{Name: "sam", Roles: []string{RoleSupervisor}},
		{Name: "off", Roles: []string{RoleAgent}, Colours: []string{"green"}, Disabled: true},
	} {
		if err := f.Add(a, alicePassword); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestFileRoundTrip: agents added and saved load into a Directory that
// authenticates them; the file is private and keeps its comments
// through an edit; a new password replaces the old; a disabled agent
// cannot log in.
func TestFileRoundTrip(t *testing.T) {
	path := writeAgents(t)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode: %v, %v; want 0600", fi.Mode(), err)
	}
	d, err := LoadDirectory(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := d.Authenticate(context.Background(), " Alice ", alicePassword)
	if err != nil || a.Name != "alice" || a.DisplayName() != "Alice Example" || !a.CanSee("red") || a.CanSee("green") {
		t.Fatalf("Authenticate(alice) = %+v, %v", a, err)
	}
	if all := d.Agents(); len(all) != 3 || all[0].Name != "alice" || all[1].Name != "off" || !all[1].Disabled || all[2].Name != "sam" {
		t.Errorf("Agents() = %+v, want alice, off (disabled), sam", all)
	}

	// An edit keeps a comment someone wrote.
	data, _ := os.ReadFile(path)
	data = []byte(strings.Replace(string(data), "  - name: sam", "  # sam leads the night shift\n  - name: sam", 1))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.SetPassword("alice", "a brand new password"); err != nil {
		t.Fatal(err)
	}
	if err := f.Disable("sam"); err != nil {
		t.Fatal(err)
	}
	if err := f.Disable("nobody"); !errors.Is(err, ErrNoAgent) {
		t.Errorf("Disable(nobody) = %v, want ErrNoAgent", err)
	}
	if err := f.Add(Agent{Name: "alice", Roles: []string{RoleAgent}, Colours: []string{"blue"}}, alicePassword); err == nil {
		t.Error("a second alice was added")
	}
	if err := f.SetPassword("alice", "short"); err == nil || strings.Contains(err.Error(), "short") {
		t.Errorf("short password: %v; want an error without it", err)
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(path)
	if !strings.Contains(string(data), "# sam leads the night shift") || !strings.Contains(string(data), "# ticketrouter agents") {
		t.Errorf("comments lost:\n%s", data)
	}
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Authenticate(context.Background(), "alice", alicePassword); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("old password after passwd: %v", err)
	}
	if _, err := d.Authenticate(context.Background(), "alice", "a brand new password"); err != nil {
		t.Errorf("new password: %v", err)
	}
	if _, err := d.Authenticate(context.Background(), "sam", alicePassword); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("disabled sam: %v", err)
	}
	if got := f.Agents(); len(got) != 3 || !got[1].Disabled {
		t.Errorf("Agents() = %+v", got)
	}

	// Two edits at once: the second to save would lose the first's.
	first, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	second, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Enable("sam"); err != nil {
		t.Fatal(err)
	}
	if err := first.Save(); err != nil {
		t.Fatal(err)
	}
	if err := second.Disable("alice"); err != nil {
		t.Fatal(err)
	}
	if err := second.Save(); !errors.Is(err, ErrChanged) {
		t.Errorf("second Save = %v, want ErrChanged", err)
	}
	if err := first.Disable("alice"); err != nil {
		t.Fatal(err)
	}
	if err := first.Save(); err != nil {
		t.Errorf("saving again after its own save: %v", err)
	}
}

// TestAuthenticateSameError: an unknown name, a wrong password, a
// disabled agent and an overlong password all get the one error.
func TestAuthenticateSameError(t *testing.T) {
	d, err := LoadDirectory(writeAgents(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, password string }{
		{"mallory", alicePassword},
		{"alice", "wrong password!"},
		{"off", alicePassword},
		{"alice", alicePassword + strings.Repeat("x", MaxPasswordLength)},
		{"", ""},
	} {
		a, err := d.Authenticate(context.Background(), tt.name, tt.password)
		if a != nil || err != ErrBadCredentials {
			t.Errorf("Authenticate(%q) = %v, %v; want ErrBadCredentials itself", tt.name, a, err)
		}
	}
}

// TestDirectoryBadFile: a tampered hash, an unknown role or colour, a
// duplicate or an unknown field make the file invalid with an error that
// names the agent and never holds a hash; Reload keeps the agents in use.
func TestDirectoryBadFile(t *testing.T) {
	path := writeAgents(t)
	d, err := LoadDirectory(path)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(path)
	hash := strings.TrimSpace(strings.SplitN(strings.SplitN(string(good), "password: ", 2)[1], "\n", 2)[0])
	hash = strings.Trim(hash, `'"`)
	tampered := strings.Replace(hash, "m=19456", "m=19456x", 1)
	for _, tt := range []struct{ name, file, want string }{
		{"tampered hash", strings.Replace(string(good), hash, tampered, 1), `agent "alice": password: not a valid argon2id password hash`},
		{"unknown role", strings.Replace(string(good), "roles: [supervisor]", "roles: [boss]", 1), `unknown role "boss"`},
		{"unknown colour", strings.Replace(string(good), "colours: [green]", "colours: [purple]", 1), `unknown colour "purple"`},
		{"duplicate", strings.Replace(string(good), "name: sam", "name: alice", 1), `"alice" is listed twice`},
		{"unknown field", strings.Replace(string(good), "name: sam", "name: sam\n    passwd: "+hash, 1), "field passwd not found"},
		{"hash as a flag", strings.Replace(string(good), "disabled: true", "disabled: "+hash, 1), "cannot unmarshal"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			err := d.Reload()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Reload = %v, want an error saying %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "$argon2id$v=19$m=19456") {
				t.Errorf("error %q holds a hash", err)
			}
			if _, err := LoadDirectory(path); err == nil {
				t.Error("LoadDirectory accepted it")
			}
			if _, err := d.Authenticate(context.Background(), "alice", alicePassword); err != nil {
				t.Errorf("the agents in use were dropped: %v", err)
			}
		})
	}
}

// TestDirectoryWatch: Watch picks up an agent added to the file, and
// reports a bad file once.
func TestDirectoryWatch(t *testing.T) {
	path := writeAgents(t)
	d, err := LoadDirectory(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 10)
	done := make(chan struct{})
	go func() { d.Watch(ctx, 10*time.Millisecond, func(err error) { errs <- err }); close(done) }()
	defer func() { cancel(); <-done }()

	if err := os.WriteFile(path, []byte("agents: [{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; !strings.Contains(err.Error(), path) {
		t.Errorf("reported %v", err)
	}
	f, err := OpenFile(filepath.Join(t.TempDir(), "new.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Add(Agent{Name: "bob", Roles: []string{RoleAgent}, Colours: []string{"pink"}}, alicePassword); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(f.Path(), path); err != nil {
		t.Fatal(err)
	}
	for range 500 { // bounded: 500 × 10 ms
		if _, ok := d.Lookup("bob"); ok {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, ok := d.Lookup("bob"); !ok || d.Len() != 1 {
		t.Errorf("bob not loaded; %d agents", d.Len())
	}
	select {
	case err := <-errs:
		t.Errorf("reported again: %v", err)
	default:
	}
}

// TestAuthenticateBounded: when every verification slot is taken, a
// login waits for one, and gives up when its context ends.
func TestAuthenticateBounded(t *testing.T) {
	d, err := LoadDirectory(writeAgents(t))
	if err != nil {
		t.Fatal(err)
	}
	for range cap(d.verifying) {
		d.verifying <- struct{}{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if a, err := d.Authenticate(ctx, "alice", alicePassword); a != nil || !errors.Is(err, context.Canceled) {
		t.Errorf("Authenticate with every slot taken = %v, %v; want context.Canceled", a, err)
	}
	<-d.verifying
	if _, err := d.Authenticate(context.Background(), "alice", alicePassword); err != nil {
		t.Errorf("with a slot free: %v", err)
	}
}
