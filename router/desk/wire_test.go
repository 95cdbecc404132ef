package desk

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ticketrouter/ticketrouter/ingest/mail"
	"github.com/ticketrouter/ticketrouter/internal/natstest"
	"github.com/ticketrouter/ticketrouter/router/broker"
	"github.com/ticketrouter/ticketrouter/router/desk/agents"
	"github.com/ticketrouter/ticketrouter/router/desk/state"
	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// TestWired: the desk over the real state (on an embedded NATS, tickets
// published as the service does) and the real agents and sessions: sign
// in, take next, a hostile subject escaped and the never rule apart, 403
// for another colour's ticket and its raw mail, CSRF enforced, raw mail
// and attachment downloads recorded in the history, escalate, search,
// resolve.
func TestWired(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bjs := natstest.Connect(t, natstest.Start(t), "desk")
	pub := &broker.Publisher{JS: bjs, Prefix: ticket.DefaultPrefix}
	for i, colour := range []string{"blue", "red"} {
		raw := "From: <c" + colour + "@cust.test>\r\nSubject: <script>alert(1)</script> " + colour + "\r\nMessage-ID: <m" + colour + "@t>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nplease reset " + colour + "\r\n--b\r\nContent-Type: text/html; name=\"x.html\"\r\nContent-Disposition: attachment; filename=\"../x.html\"\r\n\r\n<script>alert(2)</script>\r\n--b--\r\n"
		req, err := mail.Parse(strings.NewReader(raw), mail.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		tk := &ticket.Ticket{Version: 1, ID: req.ID, MessageID: req.MessageID, From: ticket.From{Address: req.From.Address}, EmailSubject: req.Subject,
			Colour: colour, Disposition: "verified", Queue: ticket.Subject(ticket.DefaultPrefix, colour, "verified"), Body: req.Text,
			Guidance: []string{"Never do X.", "Do Y."}, GuidanceNever: []int{0}, Attachments: req.Attachments}
		if _, ok, err := pub.Publish(ctx, tk, broker.RawMail{Reader: strings.NewReader(raw), Size: int64(len(raw))}); err != nil || !ok {
			t.Fatal(i, ok, err)
		}
	}
	st, err := state.Open(ctx, bjs, ticket.DefaultPrefix, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	path := filepath.Join(t.TempDir(), "agents.yaml")
	f, _ := agents.OpenFile(path)
	for _, a := range []agents.Agent{{Name: "alice", Roles: []string{"agent"}, Colours: []string{"blue", "red"}}, {Name: "bob", Roles: []string{"agent"}, Colours: []string{"blue"}}} {
		if err := f.Add(a, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	dir, err := agents.LoadDirectory(path)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := agents.OpenSessions(ctx, bjs.JS, dir, agents.Options{InsecureCookie: true})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(st, FromSessions(sess, dir), Options{Logger: slog.Default()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(h)
	defer ts.Close()
	client := func(name string) *http.Client {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar}
		resp, err := c.PostForm(ts.URL+"/login", url.Values{"name": {name}, "password": {"correct horse battery"}})
		if err != nil || resp.StatusCode != 200 || resp.Request.URL.Path != "/" {
			t.Fatalf("login %s: %v %v", name, resp.StatusCode, err)
		}
		resp.Body.Close()
		return c
	}
	read := func(resp *http.Response, err error) (int, string) {
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	alice, bob := client("alice"), client("bob")
	code, board := read(alice.Get(ts.URL + "/"))
	m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(board)
	if code != http.StatusOK || m == nil || !strings.Contains(board, `data-queue="red"`) {
		t.Fatalf("board %d:\n%s", code, board)
	}
	csrf := m[1]
	code, page := read(alice.PostForm(ts.URL+"/take/red", url.Values{"csrf_token": {csrf}}))
	if code != http.StatusOK || !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt; red") || !strings.Contains(page, `class="never"`) {
		t.Fatalf("take red: %d\n%s", code, page)
	}
	num := regexp.MustCompile(`<h1>(TR-\d+)`).FindStringSubmatch(page)[1]
	id := regexp.MustCompile(`action="/t/([0-9a-f]+)/note"`).FindStringSubmatch(page)[1]
	if code, _ := read(bob.Get(ts.URL + "/t/" + num)); code != http.StatusForbidden {
		t.Errorf("bob red page %d", code)
	}
	if code, _ := read(bob.Get(ts.URL + "/t/" + id + "/raw")); code != http.StatusForbidden {
		t.Errorf("bob red raw %d", code)
	}
	if code, _ := read(alice.PostForm(ts.URL+"/t/"+id+"/note", url.Values{"note": {"x"}})); code != http.StatusForbidden {
		t.Errorf("note without csrf %d", code)
	}
	if code, _ := read(alice.PostForm(ts.URL+"/t/"+id+"/note", url.Values{"note": {"called"}, "csrf_token": {csrf}})); code != http.StatusOK {
		t.Errorf("note %d", code)
	}
	resp, err := alice.Get(ts.URL + "/t/" + id + "/raw")
	code, raw := read(resp, err)
	if code != http.StatusOK || !strings.Contains(raw, "please reset red") || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("raw %d %q", code, resp.Header)
	}
	resp, err = alice.Get(ts.URL + "/t/" + id + "/attachment/0")
	code, att := read(resp, err)
	if code != http.StatusOK || att != "<script>alert(2)</script>" || resp.Header.Get("Content-Disposition") != "attachment; filename=x.html" ||
		resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("attachment %d %q %q", code, resp.Header, att)
	}
	_, page = read(alice.Get(ts.URL + "/t/" + num))
	for _, k := range []string{"taken", "note", "raw_viewed", "attachment_downloaded"} {
		if !strings.Contains(page, "<b>"+k+"</b>") {
			t.Errorf("history lacks %s", k)
		}
	}
	if code, page := read(alice.Get(ts.URL + "/search?q=" + num)); code != http.StatusOK || !strings.Contains(page, `href="/t/`+num+`"`) {
		t.Errorf("search %s: %d", num, code)
	}
	if code, _ := read(alice.PostForm(ts.URL+"/t/"+id+"/escalate", url.Values{"reason": {"odd"}, "csrf_token": {csrf}})); code != http.StatusOK {
		t.Errorf("escalate %d", code)
	}
	if _, page := read(alice.Get(ts.URL + "/search?q=" + num)); strings.Contains(page, `href="/t/`+num+`"`) || !strings.Contains(page, "1 more in queues you may not see") {
		t.Errorf("alice's search shows the escalated ticket:\n%s", page)
	}
	code, page = read(alice.PostForm(ts.URL+"/take/blue", url.Values{"csrf_token": {csrf}}))
	if code != http.StatusOK {
		t.Errorf("take blue %d", code)
	}
	code, _ = read(alice.PostForm(ts.URL+"/t/"+regexp.MustCompile(`action="/t/([0-9a-f]+)/note"`).FindStringSubmatch(page)[1]+"/resolve", url.Values{"outcome": {"reset-done"}, "csrf_token": {csrf}}))
	if code != http.StatusOK {
		t.Errorf("resolve %d", code)
	}
	if _, board = read(alice.Get(ts.URL + "/")); strings.Contains(board, `href="/t/`) {
		t.Errorf("alice still has tickets after escalating and resolving:\n%s", board)
	}
}
