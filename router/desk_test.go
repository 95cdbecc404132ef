package router

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ticketrouter/ticketrouter/ingest/imaptest"
	"github.com/ticketrouter/ticketrouter/router/config"
	"github.com/ticketrouter/ticketrouter/router/desk/agents"
)

// password is the password of the agent alice in the tests' agents files.
const password = "a long test password"

// agentsFile writes an agents file with alice, an agent of the green
// queue, and returns its path.
func agentsFile(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "agents.yaml")
	f, err := agents.OpenFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Add(agents.Agent{Name: "alice", Roles: []string{agents.RoleAgent}, Colours: []string{"green"}}, password); err != nil {
		t.Fatal(err)
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestRunServesDesk: with desk.listen set the service serves the desk too,
// over its own JetStream, on a listener of its own: /readyz answers ready,
// the login page is served with the desk's CSP, and an agent signs in.
func TestRunServesDesk(t *testing.T) {
	srv := imaptest.StartMemServer(t, imaptest.Options{})
	file := agentsFile(t)
	s, _ := startService(t, srv, "", func(c *config.Config) {
		c.Desk = config.Desk{Listen: "127.0.0.1:0", Agents: file}
	})
	base := s.DeskURL()
	if !strings.HasPrefix(base, "http://127.0.0.1:") || base == "http://"+s.HTTPAddr()+"/" {
		t.Fatalf("DeskURL %q (probes on %s)", base, s.HTTPAddr())
	}
	if code, body := httpGet(t, base+"readyz"); code != http.StatusOK || body != "ready\n" {
		t.Errorf("desk /readyz: %d %q, want 200 ready", code, body)
	}
	resp, err := http.Get(base + "login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("desk /login: %d, CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	// The probes' listener is not the desk.
	if code, _ := httpGet(t, "http://"+s.HTTPAddr()+"/login"); code != http.StatusNotFound {
		t.Errorf("/login on the probes' listener: %d, want 404", code)
	}
	// Signing in sets the session and leads to the board.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noRedirect.PostForm(base+"login", url.Values{"name": {"alice"}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) == 0 {
		t.Errorf("POST /login: %d, cookies %d; want 303 and a session", resp.StatusCode, len(resp.Cookies()))
	}
}
