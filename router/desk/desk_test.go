package desk

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// harness is a desk over the fakes.
type harness struct {
	t     *testing.T
	store *fakeStore
	auth  *fakeAuth
	srv   *Server
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, store: fixture(), auth: newFakeAuth()}
	srv, err := New(h.store, h.auth, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	return h
}

// do sends a request as agent (none when ""); form, when not nil, is
// posted, with the session's CSRF token unless noCSRF.
func (h *harness) do(agent, method, target string, form url.Values, noCSRF bool) *httptest.ResponseRecorder {
	h.t.Helper()
	var body io.Reader
	var c *http.Cookie
	if agent != "" {
		c = h.auth.session(agent)
	}
	if form != nil {
		if c != nil && !noCSRF {
			form.Set(CSRFField, csrfOf(c))
		}
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c != nil {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	h.srv.ServeHTTP(w, r)
	return w
}

func (h *harness) get(agent, target string) *httptest.ResponseRecorder {
	return h.do(agent, http.MethodGet, target, nil, false)
}

// TestRoleChecks: an agent without the red colour gets 403 for a red
// ticket's page, its raw mail, its attachments and its actions, and the
// store is not even asked for the raw mail; an agent with red gets them.
func TestRoleChecks(t *testing.T) {
	h := newHarness(t)
	for _, target := range []string{"/t/TR-100002", "/t/r1", "/t/TR-100002/raw", "/t/r1/raw", "/t/TR-100002/attachment/0"} {
		if w := h.get("bob", target); w.Code != http.StatusForbidden {
			t.Errorf("bob GET %s: %d, want 403", target, w.Code)
		}
	}
	for _, action := range []string{"note", "resolve", "return", "escalate", "transfer"} {
		f := url.Values{"note": {"x"}, "outcome": {"other"}, "reason": {"x"}, "colour": {"blue"}}
		if w := h.do("bob", http.MethodPost, "/t/TR-100002/"+action, f, false); w.Code != http.StatusForbidden {
			t.Errorf("bob POST %s: %d, want 403", action, w.Code)
		}
	}
	if w := h.do("bob", http.MethodPost, "/take/red", url.Values{}, false); w.Code != http.StatusForbidden {
		t.Errorf("bob take next red: %d, want 403", w.Code)
	}
	if len(h.store.calls) != 0 || len(h.store.events) != 0 {
		t.Errorf("the store acted for bob: %v %v", h.store.calls, h.store.events)
	}
	if w := h.get("alice", "/t/TR-100002"); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Red secret") {
		t.Errorf("alice GET red ticket: %d", w.Code)
	}
	w := h.get("alice", "/t/TR-100002/raw")
	if w.Code != http.StatusOK || w.Body.String() != h.store.raw["r1"] {
		t.Errorf("alice raw: %d %q", w.Code, w.Body.String())
	}
	if ct, cd := w.Header().Get("Content-Type"), w.Header().Get("Content-Disposition"); ct != "application/octet-stream" || cd != `attachment; filename=TR-100002.eml` {
		t.Errorf("raw headers: %q %q", ct, cd)
	}
	if !slices.Equal(h.store.calls, []string{"raw r1"}) {
		t.Errorf("store calls %v", h.store.calls)
	}
	if w := h.get("sue", "/t/TR-100002"); w.Code != http.StatusOK {
		t.Errorf("supervisor GET red ticket: %d", w.Code)
	}
	if w := h.get("alice", "/t/TR-999999"); w.Code != http.StatusNotFound {
		t.Errorf("missing ticket: %d", w.Code)
	}
}

// TestCSRF: a state change without the session's token, or with another
// session's, is refused and changes nothing; with it, it is done.
func TestCSRF(t *testing.T) {
	h := newHarness(t)
	note := url.Values{"note": {"called the customer"}}
	if w := h.do("alice", http.MethodPost, "/t/TR-100001/note", note, true); w.Code != http.StatusForbidden {
		t.Errorf("note without token: %d, want 403", w.Code)
	}
	wrong := url.Values{"note": {"x"}, CSRFField: {"csrf-tok-999"}}
	if w := h.do("alice", http.MethodPost, "/t/TR-100001/note", wrong, true); w.Code != http.StatusForbidden {
		t.Errorf("note with another token: %d, want 403", w.Code)
	}
	if w := h.do("alice", http.MethodPost, "/take/blue", url.Values{}, true); w.Code != http.StatusForbidden {
		t.Errorf("take without token: %d, want 403", w.Code)
	}
	if w := h.do("alice", http.MethodPost, "/logout", url.Values{}, true); w.Code != http.StatusForbidden {
		t.Errorf("logout without token: %d, want 403", w.Code)
	}
	if len(h.store.events) != 0 {
		t.Fatalf("events without a token: %v", h.store.events)
	}
	w := h.do("alice", http.MethodPost, "/t/TR-100001/note", note, false)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/t/TR-100001" {
		t.Errorf("note: %d %q", w.Code, w.Header().Get("Location"))
	}
	if len(h.store.events) != 1 || h.store.events[0].Note != "called the customer" || h.store.events[0].Agent != "alice" || h.store.events[0].Addr != "203.0.113.9" {
		t.Errorf("events %+v", h.store.events)
	}
	if w := h.do("", http.MethodPost, "/t/TR-100001/note", note, false); w.Code != http.StatusUnauthorized {
		t.Errorf("note signed out: %d, want 401", w.Code)
	}
}

// TestHostileTicketEscaped: what a mail carries (subject, body, names,
// Message-ID, attachment names) is shown as text: no script, no
// javascript: link, no element of the mail's.
func TestHostileTicketEscaped(t *testing.T) {
	h := newHarness(t)
	w := h.get("bob", "/t/TR-100003")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	page := w.Body.String()
	if n := strings.Count(page, "<script"); n != 1 || !strings.Contains(page, `<script src="/static/desk.js" defer></script>`) {
		t.Errorf("%d script elements; want only the desk's own", n)
	}
	// Every element is one of the templates'; every link the desk's own.
	ours := "html head meta title link script body header a form input span button main h1 h2 h3 section ul li strong p b select option textarea dl dt dd table tbody thead tr th td pre ol time blockquote"
	for _, m := range regexp.MustCompile(`<([a-zA-Z][a-zA-Z0-9]*)`).FindAllStringSubmatch(page, -1) {
		if !slices.Contains(strings.Fields(ours), m[1]) {
			t.Errorf("an element <%s> the templates do not have", m[1])
		}
	}
	attr := regexp.MustCompile(`(?i)\s(href|src|action)=["']?([^"' >]*)`)
	for _, tag := range regexp.MustCompile(`<[a-zA-Z][^>]*>`).FindAllString(page, -1) {
		for _, m := range attr.FindAllStringSubmatch(tag, -1) {
			if !strings.HasPrefix(m[2], "/") {
				t.Errorf("%s=%q is not the desk's own", m[1], m[2])
			}
		}
		if strings.Contains(strings.ToLower(tag), " on") {
			t.Errorf("an event handler in %s", tag)
		}
	}
	if strings.Contains(page, "<img") || strings.Contains(page, "javascript:alert(2)\"") {
		t.Error("the mail's markup is in the page")
	}
	if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the hostile subject is not shown as text")
	}
	if !strings.Contains(page, `<pre class="body">&lt;script&gt;`) {
		t.Error("the body is not shown escaped in its <pre>")
	}
}

// TestSecurityHeaders: every response, whatever it is (a page, a
// redirect, an error, a download, an asset, a refusal), carries the CSP
// and the other headers.
func TestSecurityHeaders(t *testing.T) {
	h := newHarness(t)
	for _, c := range []struct {
		name  string
		agent string
		path  string
		post  bool
	}{
		{"login page", "", "/login", false},
		{"signed out", "", "/", false},
		{"board", "alice", "/", false},
		{"ticket", "alice", "/t/TR-100001", false},
		{"download", "alice", "/t/TR-100001/attachment/0", false},
		{"forbidden", "bob", "/t/TR-100002", false},
		{"not found", "alice", "/nope", false},
		{"asset", "", "/static/desk.css", false},
		{"search", "alice", "/search?q=TR-100001", false},
		{"refused post", "alice", "/t/TR-100001/note", true},
		{"failed login", "", "/login", true},
	} {
		var w *httptest.ResponseRecorder
		if c.post {
			w = h.do(c.agent, http.MethodPost, c.path, url.Values{}, true)
		} else {
			w = h.get(c.agent, c.path)
		}
		hd := w.Header()
		if hd.Get("Content-Security-Policy") != CSP || hd.Get("X-Content-Type-Options") != "nosniff" || hd.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s (%d): headers %v", c.name, w.Code, hd)
		}
	}
	for _, d := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(CSP, d+";") && !strings.HasSuffix(CSP, d) {
			t.Errorf("CSP lacks %q", d)
		}
	}
}

// TestDownloadSafe: an attachment is sent as a download of
// application/octet-stream under a safe name, whatever the mail said its
// name and type were.
func TestDownloadSafe(t *testing.T) {
	h := newHarness(t)
	w := h.get("alice", "/t/TR-100001/attachment/0")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	if ct, cd := w.Header().Get("Content-Type"), w.Header().Get("Content-Disposition"); ct != "application/octet-stream" || cd != "attachment; filename=evil__.html" {
		t.Errorf("headers %q %q", ct, cd)
	}
	if w := h.get("alice", "/t/TR-100001/attachment/7"); w.Code != http.StatusNotFound {
		t.Errorf("attachment 7: %d", w.Code)
	}
	for _, c := range []struct{ in, want string }{
		{"report.pdf", "report.pdf"},
		{"../../etc/passwd", "passwd"},
		{`C:\Users\x\evil.exe`, "evil.exe"},
		{".htaccess", "htaccess"},
		{"a\"b;\r\nc.txt", "a_b___c.txt"},
		{"", "fallback"},
		{"..", "fallback"},
		{"Prüfung.pdf", "Pr_fung.pdf"},
		{strings.Repeat("a", 300) + ".pdf", strings.Repeat("a", 96) + ".pdf"},
	} {
		if got := safeFilename(c.in, "fallback"); got != c.want {
			t.Errorf("safeFilename(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestBoard: each agent sees the queues it may see, the oldest age
// coloured past the SLA ages, and its own tickets.
func TestBoard(t *testing.T) {
	h := newHarness(t)
	page := h.get("bob", "/").Body.String()
	if !strings.Contains(page, `data-queue="blue"`) || strings.Contains(page, `data-queue="red"`) || strings.Contains(page, `data-queue="escalated"`) {
		t.Errorf("bob's board shows the wrong queues:\n%s", page)
	}
	if !strings.Contains(page, "TR-100003") || strings.Contains(page, "TR-100001") {
		t.Error("bob's tickets wrong")
	}
	page = h.get("sue", "/").Body.String()
	for _, want := range []string{`data-queue="red" class="sla-amber"`, `data-queue="pink" class="sla-red"`, `data-queue="blue" class="sla-ok"`, `data-queue="escalated"`} {
		if !strings.Contains(page, want) {
			t.Errorf("supervisor's board lacks %s", want)
		}
	}
	if w := h.get("", "/"); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login" {
		t.Errorf("signed out: %d %q", w.Code, w.Header().Get("Location"))
	}
}

// TestTicketPage: the guidance comes first, never rules apart; then
// the checks, the mail and the history.
func TestTicketPage(t *testing.T) {
	h := newHarness(t)
	page := h.get("alice", "/t/TR-100001").Body.String()
	g, never, checks, mail := strings.Index(page, "Guidance"), strings.Index(page, `<ul class="never"><li><strong>⚠</strong> Passwords are never given out.</li></ul>`),
		strings.Index(page, "<h2>Checks"), strings.Index(page, "<h2>Mail")
	if g < 0 || never < g || checks < never || mail < checks {
		t.Errorf("order guidance %d never %d checks %d mail %d", g, never, checks, mail)
	}
	if !strings.Contains(page, `action="/t/b1/resolve"`) {
		t.Error("the owner sees no resolve form")
	}
	if page := h.get("sue", "/t/TR-100001").Body.String(); strings.Contains(page, `action="/t/b1/resolve"`) {
		t.Error("a supervisor sees the resolve form of another's owned ticket")
	}
}

// TestActions: take next, resolve with an outcome, return, escalate with
// a reason, transfer; a wrong outcome or no reason is 400, another's
// ticket 403.
func TestActions(t *testing.T) {
	h := newHarness(t)
	w := h.do("alice", http.MethodPost, "/take/red", url.Values{}, false)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/t/TR-100004" {
		t.Fatalf("take next: %d %q", w.Code, w.Header().Get("Location"))
	}
	if w := h.do("alice", http.MethodPost, "/take/red", url.Values{}, false); w.Header().Get("Location") != "/?empty=red" {
		t.Errorf("empty queue: %d %q", w.Code, w.Header().Get("Location"))
	}
	for _, c := range []struct {
		agent, target string
		form          url.Values
		code          int
	}{
		{"alice", "/t/TR-100004/resolve", url.Values{"outcome": {"made-up"}}, http.StatusBadRequest},
		{"alice", "/t/TR-100004/escalate", url.Values{"reason": {" "}}, http.StatusBadRequest},
		{"alice", "/t/TR-100004/transfer", url.Values{"colour": {"escalated"}}, http.StatusBadRequest},
		{"alice", "/t/TR-100004/transfer", url.Values{"colour": {"rate-limited"}}, http.StatusBadRequest},
		{"alice", "/t/TR-100004/frobnicate", url.Values{}, http.StatusNotFound},
		{"bob", "/t/TR-100001/resolve", url.Values{"outcome": {"spam"}}, http.StatusForbidden}, // alice's
		{"alice", "/t/TR-100004/resolve", url.Values{"outcome": {"reset-done"}, "note": {"done"}}, http.StatusSeeOther},
		{"alice", "/t/TR-100002/escalate", url.Values{"reason": {"looks forged"}}, http.StatusSeeOther},
		{"alice", "/t/TR-100001/transfer", url.Values{"colour": {"red"}}, http.StatusSeeOther},
	} {
		if w := h.do(c.agent, http.MethodPost, c.target, c.form, false); w.Code != c.code {
			t.Errorf("%s %s %v: %d, want %d", c.agent, c.target, c.form, w.Code, c.code)
		}
	}
	kinds := make([]string, len(h.store.events))
	for i, e := range h.store.events {
		kinds[i] = e.Kind + ":" + e.Outcome + e.Reason + e.Detail
	}
	if want := []string{"taken:", "resolved:reset-done", "escalated:looks forged", "transferred:to red"}; !slices.Equal(kinds, want) {
		t.Errorf("events %q, want %q", kinds, want)
	}

	// The escalated ticket is the supervisors': sue may act on it, bob
	// may not even see it.
	if w := h.get("bob", "/t/TR-100002"); w.Code != http.StatusForbidden {
		t.Errorf("bob GET escalated: %d", w.Code)
	}
	if page := h.get("sue", "/t/TR-100002").Body.String(); !strings.Contains(page, `action="/t/r1/resolve"`) {
		t.Error("the supervisor sees no resolve form on an escalated ticket")
	}
	if w := h.do("sue", http.MethodPost, "/t/TR-100002/resolve", url.Values{"outcome": {"refused"}}, false); w.Code != http.StatusSeeOther {
		t.Errorf("supervisor resolves escalated: %d", w.Code)
	}
	if e := h.store.events[len(h.store.events)-1]; e.Kind != "resolved" || e.Agent != "sue" {
		t.Errorf("last event %+v", e)
	}
}

// TestLogin: a wrong password says only that it failed; a right one
// starts a session and goes to the board; search finds only what the
// agent may see.
func TestLogin(t *testing.T) {
	h := newHarness(t)
	w := h.do("", http.MethodPost, "/login", url.Values{"name": {"alice"}, "password": {"wrong"}}, false)
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "Sign-in failed.") || strings.Contains(w.Body.String(), "wrong") {
		t.Errorf("failed login: %d", w.Code)
	}
	w = h.do("", http.MethodPost, "/login", url.Values{"name": {"alice"}, "password": {"pw-a"}}, false)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" || len(w.Result().Cookies()) != 1 {
		t.Errorf("login: %d %q %v", w.Code, w.Header().Get("Location"), w.Result().Cookies())
	}
	page := h.get("bob", "/search?q=r@resell.test").Body.String()
	if strings.Contains(page, "TR-100002") || !strings.Contains(page, "1 more in queues you may not see") {
		t.Errorf("bob's search shows a red ticket")
	}
	if page := h.get("alice", "/search?q=r@resell.test").Body.String(); !strings.Contains(page, "TR-100002") {
		t.Errorf("alice's search misses her ticket")
	}
}

// TestEvents: the live counts come at once as a server-sent event, only
// of the agent's queues.
func TestEvents(t *testing.T) {
	h := newHarness(t)
	ts := httptest.NewServer(h.srv)
	defer ts.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/events", nil)
	req.AddCookie(h.auth.session("bob"))
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Content-Security-Policy") != CSP {
		t.Errorf("headers %v", resp.Header)
	}
	sc := bufio.NewScanner(resp.Body)
	var lines []string
	for len(lines) < 2 && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	want := []string{"event: counts", `data: [{"queue":"blue","waiting":3,"owned":2,"oldest":"30m","sla":""}]`}
	if !slices.Equal(lines, want) {
		t.Errorf("event %q, want %q", lines, want)
	}
	cancel()
	req, _ = http.NewRequest(http.MethodGet, ts.URL+"/events", nil)
	if resp, err := ts.Client().Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("events signed out: %v %v", resp, err)
	}
}

// TestServe: Serve answers on its listener, with the headers, and
// returns nil once its context ends, ending the live counts too.
func TestServe(t *testing.T) {
	h := newHarness(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, h.srv, "", "") }()
	base := "http://" + ln.Addr().String()
	resp, err := http.Get(base + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") != CSP {
		t.Errorf("GET /login: %d %v", resp.StatusCode, resp.Header)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/events", nil)
	req.AddCookie(h.auth.session("bob"))
	events, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer events.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// TestHealthAndMetrics: /healthz and /readyz answer without a login,
// /readyz says 503 when the store does not answer, and /metrics counts
// requests by the route that served them.
func TestHealthAndMetrics(t *testing.T) {
	h := newHarness(t)
	if w := h.get("", "/healthz"); w.Code != http.StatusOK || w.Body.String() != "ok\n" {
		t.Errorf("healthz %d %q", w.Code, w.Body.String())
	}
	if w := h.get("", "/readyz"); w.Code != http.StatusOK {
		t.Errorf("readyz %d", w.Code)
	}
	h.get("bob", "/t/TR-100002")
	h.get("alice", "/t/TR-100001")
	w := h.get("", "/metrics")
	for _, want := range []string{
		`ticketrouter_desk_requests_total{code="403",route="GET /t/{id}"} 1`,
		`ticketrouter_desk_requests_total{code="200",route="GET /t/{id}"} 1`,
		`ticketrouter_desk_request_seconds_count{route="GET /t/{id}"} 2`,
	} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(w.Body.String(), "tok-") || strings.Contains(w.Body.String(), "TR-1") {
		t.Error("metrics show a session or a ticket")
	}
	h.store.mu.Lock()
	h.store.counts = nil
	h.store.mu.Unlock()
	srv, _ := New(brokenStore{h.store}, h.auth, Options{Logger: h.srv.opts.Logger})
	w = httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("readyz with a broken store: %d", w.Code)
	}
}

// brokenStore is a store whose board fails.
type brokenStore struct{ *fakeStore }

func (brokenStore) Board(context.Context) ([]QueueCount, error) { return nil, io.ErrUnexpectedEOF }

// TestReassign: only a supervisor reassigns, and only to an agent; the
// new owner sees and works the ticket though it is of a colour not its
// own, and its last owner no longer sees it.
func TestReassign(t *testing.T) {
	h := newHarness(t)
	if w := h.do("bob", http.MethodPost, "/t/TR-100003/reassign", url.Values{"to": {"alice"}}, false); w.Code != http.StatusForbidden {
		t.Errorf("an agent reassigns: %d, want 403", w.Code)
	}
	if page := h.get("alice", "/t/TR-100002").Body.String(); strings.Contains(page, "/reassign") {
		t.Error("an agent is offered reassign")
	}
	if page := h.get("sue", "/t/TR-100002").Body.String(); !strings.Contains(page, `action="/t/r1/reassign"`) || !strings.Contains(page, "<option>bob</option>") {
		t.Error("the supervisor is not offered reassign to bob")
	}
	if w := h.do("sue", http.MethodPost, "/t/TR-100002/reassign", url.Values{"to": {"mallory"}}, false); w.Code != http.StatusBadRequest {
		t.Errorf("reassign to a stranger: %d, want 400", w.Code)
	}
	if w := h.get("bob", "/t/TR-100002"); w.Code != http.StatusForbidden {
		t.Fatalf("bob sees red TR-100002 before: %d", w.Code)
	}
	if w := h.do("sue", http.MethodPost, "/t/TR-100002/reassign", url.Values{"to": {"bob"}}, false); w.Code != http.StatusSeeOther {
		t.Fatalf("reassign: %d", w.Code)
	}
	if page := h.get("bob", "/t/TR-100002").Body.String(); !strings.Contains(page, `action="/t/r1/resolve"`) {
		t.Error("the new owner cannot work the ticket")
	}
	if page := h.get("bob", "/").Body.String(); !strings.Contains(page, `href="/t/TR-100002"`) {
		t.Error("the ticket is not among bob's")
	}
	h.auth.agents["alice"].Colours = []string{"blue"} // so that only ownership could show it
	if w := h.get("alice", "/t/TR-100002"); w.Code != http.StatusForbidden {
		t.Errorf("the last owner still sees it: %d", w.Code)
	}
}

// TestConversationOnPage: a ticket that joined a conversation shows it,
// oldest first, and says its checks are its own; one that named a
// conversation it could not join shows the signal and no conversation.
func TestConversationOnPage(t *testing.T) {
	h := newHarness(t)
	h.store.put(Record{Number: "TR-100005", ID: "b2", Queue: "blue", Colour: "blue", State: "owned", Owner: "alice"},
		&ticket.Ticket{Colour: "blue", From: ticket.From{Address: "a@cust.test"}, EmailSubject: "Re: Reset please",
			Conversation: &ticket.Conversation{Root: "b1", RootNumber: "TR-100001", Via: "in-reply-to", Joined: true, Reason: "the same sender"}}, "")
	h.store.put(Record{Number: "TR-100006", ID: "b3", Queue: "blue", Colour: "blue", State: "owned", Owner: "alice"},
		&ticket.Ticket{Colour: "blue", From: ticket.From{Address: "eve@evil.test"}, EmailSubject: "Re: Reset please",
			Conversation: &ticket.Conversation{Root: "b1", RootNumber: "TR-100001", Via: "in-reply-to", Reason: "names TR-100001 (in-reply-to), a conversation of another sender: not joined"}}, "")
	page := h.get("alice", "/t/TR-100005").Body.String()
	sec := strings.Index(page, `<section aria-label="Conversation">`)
	first, second := strings.Index(page, `href="/t/TR-100001"`), strings.Index(page, `href="/t/TR-100005"`)
	if sec < 0 || first < sec || second < first {
		t.Errorf("conversation section at %d, TR-100001 at %d, TR-100005 at %d; want the section listing both, oldest first", sec, first, second)
	}
	if !strings.Contains(page, "This mail continues TR-100001 (in-reply-to; the same sender). It was decided on its own evidence") {
		t.Error("the joined ticket does not say what it continues")
	}
	page = h.get("alice", "/t/TR-100006").Body.String()
	if strings.Contains(page, `aria-label="Conversation"`) {
		t.Error("a ticket that did not join shows a conversation")
	}
	if !strings.Contains(page, "<li>Threading: names TR-100001 (in-reply-to), a conversation of another sender: not joined.</li>") {
		t.Error("the ticket that did not join shows no threading signal")
	}
}
