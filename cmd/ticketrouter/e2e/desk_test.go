package e2e

// The desk in a real browser against the real binary: `ticketrouter run`
// with desk.listen set, Dovecot, the embedded NATS, headless Chromium.

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ticketrouter/ticketrouter/ingest/imaptest"
	"github.com/ticketrouter/ticketrouter/internal/browsertest"
	"github.com/ticketrouter/ticketrouter/router/desk/agents"
)

// The desk test's mails besides the examples: a red account's mail with
// an attachment, and a hostile one from a stranger (queue unknown).
const (
	attachmentMail = "From: Redwood Admin <admin@redwood-shop.example>\r\nTo: support@ca.example\r\n" +
		"Subject: Password reset, order form attached\r\nDate: Fri, 27 Nov 2026 08:00:00 +0000\r\n" +
		"Message-ID: <desk-attachment@mail.example>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=b1\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlease reset the password of redwood-shop.example; the order form is attached.\r\n" +
		"--b1\r\nContent-Type: text/plain; name=order.txt\r\nContent-Disposition: attachment; filename=order.txt\r\n\r\n" +
		attachmentBody + "\r\n--b1--\r\n"
	attachmentBody = "order 4200001, signed by the customer"
	hostileSubject = `<script>alert(1)</script> reset`
	hostileMail    = "From: Mallory <mallory@stranger.example>\r\nTo: support@ca.example\r\n" +
		"Subject: " + hostileSubject + "\r\nDate: Fri, 27 Nov 2026 08:01:00 +0000\r\n" +
		"Message-ID: <desk-hostile@mail.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		hostileBody + "\r\n"
	hostileBody = `<script>alert(1)</script><a href="javascript:alert(2)">click</a><img src=x onerror=alert(3)>`
)

// deskClient is an agent signed in to the desk over plain HTTP.
type deskClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

// signIn signs name in over plain HTTP, keeping the session cookie.
func signIn(t *testing.T, base, name, password string) *deskClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	d := &deskClient{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	if code, _, _ := d.post("login", url.Values{"name": {name}, "password": {password}}); code != http.StatusSeeOther {
		t.Fatalf("signing in %s: %d, want 303", name, code)
	}
	return d
}

// get fetches path: the status, the body and the headers.
func (d *deskClient) get(path string) (int, string, http.Header) {
	d.t.Helper()
	resp, err := d.c.Get(d.base + path)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// post posts form to path: the status, the body and the redirect.
func (d *deskClient) post(path string, form url.Values) (int, string, string) {
	d.t.Helper()
	resp, err := d.c.PostForm(d.base+path, form)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Location")
}

var csrfInput = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// csrf returns the session's CSRF token, from the board.
func (d *deskClient) csrf() string {
	d.t.Helper()
	_, body, _ := d.get("")
	m := csrfInput.FindStringSubmatch(body)
	if m == nil {
		d.t.Fatalf("no CSRF token on the board:\n%.500s", body)
	}
	return m[1]
}

// TestDeskBrowser: `ticketrouter run` with desk.listen serves the desk
// over the tickets it routes, and agents work it in a real browser: sign
// in, the counts, take next, guidance, an attachment downloaded, a note,
// resolve; another escalated; a hostile mail shown as text with no
// script run; a green-only agent refused a red ticket and its raw mail;
// a post without the CSRF token refused; two agents taking at once get
// two tickets. With DESK_SCREENSHOTS=DIR the board and a ticket page are
// saved there as board.png and ticket.png.
func TestDeskBrowser(t *testing.T) {
	browsertest.Chromium(t)
	srv := imaptest.StartDovecot(t, imaptest.Options{})
	srv.Append(t, "INBOX", []byte(attachmentMail))
	srv.Append(t, "INBOX", []byte(hostileMail))
	files, _ := filepath.Glob("../../../deploy/examples/mail/*.eml")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		srv.Append(t, "INBOX", raw)
	}
	total := len(files) + 2

	dir := t.TempDir()
	const pw = "a long test password"
	af, err := agents.OpenFile(filepath.Join(dir, "agents.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []agents.Agent{
		{Name: "alice", Display: "Alice", Roles: []string{agents.RoleAgent}, Colours: []string{"green", "red"}},
		{Name: "bob", Display: "Bob", Roles: []string{agents.RoleAgent}, Colours: []string{"green"}},
		{Name: "sue", Display: "Sue", Roles: []string{agents.RoleSupervisor}},
	} {
		if err := af.Add(a, pw); err != nil {
			t.Fatal(err)
		}
	}
	if err := af.Save(); err != nil {
		t.Fatal(err)
	}
	cfg := serviceConfig(t, dir, serviceOpts{imapAddr: srv.Addr(), imapUser: srv.Username()})
	port := freePorts(t, 1)[0]
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = fmt.Fprintf(f, "desk:\n  listen: 127.0.0.1:%d\n  agents: agents.yaml\n", port)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"OPS_TEST_IMAP_SECRET=" + srv.Password()}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "TICKETROUTER_") {
			env = append(env, k+"=")
		}
	}
	p := startProc(t, dir, "run", env, ticketrouterBinary(t), "run", "--config", cfg)
	base := fmt.Sprintf("http://127.0.0.1:%d/", port)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if code, _, _ := httpGet(base + "readyz"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) || !p.alive() {
			t.Fatal("the desk was not ready within a minute")
		}
	}
	for deadline := time.Now().Add(time.Minute); len(srv.UIDs(t, "Processed")) < total; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d mails processed within a minute", len(srv.UIDs(t, "Processed")), total)
		}
	}

	b := browsertest.Start(t, 2*time.Minute)
	ctx, shot := b.Ctx, b.Shot
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	// number is the ticket number of the page shown.
	number := func() string {
		t.Helper()
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil || !strings.Contains(loc, "/t/TR-") {
			t.Fatalf("not on a ticket page: %q %v", loc, err)
		}
		return loc[strings.LastIndex(loc, "/")+1:]
	}
	// waitFor waits up to 30 s for the page (maybe still loading) to make
	// expression true.
	waitFor := func(expression string) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expression)); err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the page did not make %s true within 30 s", expression)
			}
		}
	}
	take := func(queue string) string {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(base), chromedp.WaitVisible(`#board`),
			chromedp.Click(`tr[data-queue="`+queue+`"] button`), chromedp.WaitVisible(`pre.body`)); err != nil {
			t.Fatalf("take next %s: %v", queue, err)
		}
		return number()
	}
	// takeSubject takes next from queue until the ticket of subject (the
	// service publishes a mailbox's mails concurrently, so their order in
	// a queue is not the mailbox's): that one, and the others taken.
	takeSubject := func(queue, subject string) (string, []string) {
		t.Helper()
		var others []string
		for range 6 {
			n := take(queue)
			if text(`dd.subject`) == subject {
				return n, others
			}
			others = append(others, n)
		}
		t.Fatalf("no ticket %q in queue %s (took %v)", subject, queue, others)
		return "", nil
	}
	signInBrowser := func(name string) {
		t.Helper()
		err := chromedp.Do(ctx, chromedp.Navigate(base+"login"), chromedp.WaitVisible(`input[name=name]`),
			chromedp.SendKeys(`input[name=name]`, name), chromedp.SendKeys(`input[name=password]`, pw),
			chromedp.Submit(`form.login`), chromedp.WaitVisible(`#board`))
		if err != nil {
			t.Fatalf("sign in %s: %v", name, err)
		}
	}

	// Sign in; the counts of alice's queues, and only those.
	signInBrowser("alice")
	if red, green := text(`tr[data-queue="red"] .waiting`), text(`tr[data-queue="green"] .waiting`); red != "4" || green != "4" {
		t.Errorf("waiting: red %q green %q, want 4 and 4", red, green)
	}
	if board := text(`#board`); strings.Contains(board, "blue") || strings.Contains(board, "escalated") {
		t.Errorf("alice sees queues not hers:\n%s", board)
	}
	shot("board")

	// Take next red: the mail with the attachment, its guidance.
	first, spare := takeSubject("red", "Password reset, order form attached")
	if g := text(`section.guidance`); !strings.Contains(g, "Disposition") || len(g) < 40 {
		t.Errorf("guidance: %q", g)
	}
	shot("ticket")
	// The attachment, by the page's link, with the page's session.
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(async () => {
		const r = await fetch(document.querySelector('ul.attachments a').href);
		return r.status + '|' + r.headers.get('Content-Disposition') + '|' + await r.text();
	})()`, chromedp.EvalAwaitPromise))
	if err != nil || !strings.HasPrefix(got, "200|attachment") || !strings.Contains(got, "order.txt") || !strings.HasSuffix(got, attachmentBody) {
		t.Errorf("the attachment: %q %v", got, err)
	}
	// A note, then resolve.
	const note = "called the reseller back"
	if err := chromedp.Do(ctx, chromedp.SendKeys(`section.note textarea`, note), chromedp.Click(`section.note button`)); err != nil {
		t.Fatalf("note: %v", err)
	}
	waitFor(`document.querySelector('ol.history')?.textContent.includes("` + note + `")`)
	if h := text(`ol.history`); !strings.Contains(h, note) || !strings.Contains(h, "attachment_downloaded") {
		t.Errorf("history after the note: %q", h)
	}
	err = chromedp.Do(ctx, chromedp.SetValue(`select[name=outcome]`, "reset-done"),
		chromedp.Click(`form[action$="/resolve"] button`), chromedp.WaitVisible(`#board`),
		chromedp.Navigate(base+"t/"+first), chromedp.WaitVisible(`ol.history`))
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if st, h := text(`h1 .state`), text(`ol.history`); !strings.Contains(st, "resolved") || !strings.Contains(h, "reset-done") {
		t.Errorf("after resolving: state %q, history %q", st, h)
	}

	// Another red one, escalated: the supervisor's queue has it.
	var second string
	if len(spare) > 0 {
		second = spare[0]
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"t/"+second), chromedp.WaitVisible(`pre.body`)); err != nil {
			t.Fatal(err)
		}
	} else {
		second = take("red")
	}
	err = chromedp.Do(ctx, chromedp.SendKeys(`form[action$="/escalate"] input[name=reason]`, "reseller unknown to us"),
		chromedp.Click(`form[action$="/escalate"] button`), chromedp.WaitVisible(`#board`))
	if err != nil {
		t.Fatalf("escalate: %v", err)
	}
	sue := signIn(t, base, "sue", pw)
	if code, body, _ := sue.get("t/" + second); code != http.StatusOK || !strings.Contains(body, "escalated") || !strings.Contains(body, "reseller unknown to us") {
		t.Errorf("the supervisor's view of the escalated %s: %d\n%.400s", second, code, body)
	}

	// The hostile mail, which the supervisor takes: text, no script.
	if err := chromedp.Do(ctx, chromedp.Navigate(base), chromedp.WaitVisible(`#board`), chromedp.Click(`form[action="/logout"] button`),
		chromedp.WaitVisible(`input[name=name]`)); err != nil {
		t.Fatalf("sign out: %v", err)
	}
	signInBrowser("sue")
	takeSubject("unknown", hostileSubject)
	if s, b := text(`dd.subject`), text(`pre.body`); s != hostileSubject || !strings.HasPrefix(b, hostileBody) {
		t.Errorf("the hostile mail is not shown as text: subject %q body %q", s, b)
	}
	active, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('img, script:not([src]), a[href^="javascript:"]').length`))
	if err != nil || active != 0 {
		t.Errorf("%d images, inline scripts or javascript: links from the mail (%v)", active, err)
	}
	if n := b.Dialogs(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened", n)
	}

	// A green-only agent may not see a red ticket nor its raw mail.
	bob := signIn(t, base, "bob", pw)
	for _, path := range []string{"t/" + first, "t/" + first + "/raw", "t/" + first + "/attachment/0"} {
		if code, _, _ := bob.get(path); code != http.StatusForbidden {
			t.Errorf("bob GET /%s: %d, want 403", path, code)
		}
	}
	code, _, hdr := bob.get("")
	if code != http.StatusOK || !strings.Contains(hdr.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("the board: %d, CSP %q", code, hdr.Get("Content-Security-Policy"))
	}
	// A post without the CSRF token is refused, with it taken.
	alice := signIn(t, base, "alice", pw)
	if code, _, _ := alice.post("take/green", nil); code != http.StatusForbidden {
		t.Errorf("take without the CSRF token: %d, want 403", code)
	}
	// Two agents taking next at once get two tickets.
	var wg sync.WaitGroup
	took := make([]string, 2)
	for i, d := range []*deskClient{alice, bob} {
		token := d.csrf()
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := d.c.PostForm(d.base+"take/green", url.Values{"csrf_token": {token}})
			if err != nil {
				return
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusSeeOther {
				took[i] = resp.Header.Get("Location")
			}
		}()
	}
	wg.Wait()
	if !strings.HasPrefix(took[0], "/t/TR-") || !strings.HasPrefix(took[1], "/t/TR-") || took[0] == took[1] {
		t.Errorf("alice and bob taking at once: %q and %q, want two tickets", took[0], took[1])
	}

	if code := p.stop(t, 30*time.Second); code != exitOK {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
}
