package desk

import (
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ticketrouter/ticketrouter/internal/browsertest"
)

// TestBrowser drives a headless Chromium against the desk over the
// fakes: sign in, see the board and its live counts change, open a
// hostile ticket, whose script and javascript: link show as text and no
// JavaScript dialog opens. With DESK_SCREENSHOTS=DIR it saves the board
// and the ticket page there as PNG.
func TestBrowser(t *testing.T) {
	b := browsertest.Start(t, 90*time.Second)
	ctx, shot := b.Ctx, b.Shot
	h := newHarness(t)
	srv, err := New(h.store, h.auth, Options{Logger: slog.New(slog.DiscardHandler), EventInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()

	err = chromedp.Do(ctx,
		chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitVisible(`input[name=name]`),
		chromedp.SendKeys(`input[name=name]`, "bob"),
		chromedp.SendKeys(`input[name=password]`, "pw-b"),
		chromedp.Submit(`form.login`),
		chromedp.WaitVisible(`#board`),
	)
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	boardText, err := chromedp.Run(ctx, chromedp.Text(`#board`))
	if err != nil || !strings.Contains(boardText, "blue") || strings.Contains(boardText, "red") {
		t.Errorf("bob's board: %q %v", boardText, err)
	}
	shot("board")

	h.store.mu.Lock()
	h.store.counts[0].Waiting = 7
	h.store.mu.Unlock()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`document.querySelector('tr[data-queue="blue"] .waiting').textContent === "7"`,
		chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Errorf("the live count did not change: %v", err)
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/t/TR-100003"), chromedp.WaitVisible(`pre.body`)); err != nil {
		t.Fatalf("ticket page: %v", err)
	}
	subject, err1 := chromedp.Run(ctx, chromedp.Text(`dd.subject`))
	body, err2 := chromedp.Run(ctx, chromedp.Text(`pre.body`))
	imgs, err3 := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('img').length`))
	links, err4 := chromedp.Run(ctx, chromedp.Evaluate[int](`Array.from(document.querySelectorAll('a')).filter(a => a.protocol === 'javascript:').length`))
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		t.Fatalf("reading the ticket page: %v", err)
	}
	shot("ticket")
	if subject != hostile || !strings.HasPrefix(body, hostile) {
		t.Errorf("the hostile text is not shown as text: subject %q body %q", subject, body)
	}
	if imgs != 0 || links != 0 {
		t.Errorf("%d images and %d javascript: links from the mail", imgs, links)
	}
	if n := b.Dialogs(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened", n)
	}
}

// TestBrowserReply: in Chromium, the owner opens the reset-done draft,
// sees its fixed recipient, rewrites the text and sends it; the mail goes
// to the admin address on file with the agent's text, and a text with a
// password is refused with the reason shown.
func TestBrowserReply(t *testing.T) {
	b := browsertest.Start(t, 90*time.Second)
	ctx := b.Ctx
	h, ob := replyHarness(t)
	ts := httptest.NewServer(h.srv)
	defer ts.Close()
	const draft = `details.draft:first-of-type`
	open := func() error {
		return chromedp.Do(ctx,
			chromedp.Navigate(ts.URL+"/t/TR-100007"),
			chromedp.WaitVisible(draft+` summary`),
			chromedp.Click(draft+` summary`),
			chromedp.WaitVisible(draft+` textarea`),
		)
	}
	err := chromedp.Do(ctx,
		chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitVisible(`input[name=name]`),
		chromedp.SendKeys(`input[name=name]`, "alice"),
		chromedp.SendKeys(`input[name=password]`, "pw-a"),
		chromedp.Submit(`form.login`),
		chromedp.WaitVisible(`#board`),
	)
	if err == nil {
		err = open()
	}
	if err != nil {
		t.Fatalf("open the reply: %v", err)
	}
	to, err := chromedp.Run(ctx, chromedp.Text(draft+` p.to`))
	if err != nil || !strings.Contains(to, "admin@acme.test") || !strings.Contains(to, "cannot be changed") {
		t.Errorf("recipient shown: %q, %v", to, err)
	}
	b.Shot("reply")
	send := func(text string) error {
		return chromedp.Do(ctx,
			chromedp.SetValue(draft+` textarea`, text),
			chromedp.Click(draft+` button`),
			chromedp.WaitVisible(`body`),
		)
	}
	if err := send("Your new password: Winter2026!x"); err != nil {
		t.Fatal(err)
	}
	msg, err := chromedp.Run(ctx, chromedp.Text(`main`))
	if err != nil || !strings.Contains(msg, "The reply was not sent") || strings.Contains(msg, "Winter2026") {
		t.Errorf("a reply with a password: page %q, %v; want it refused without the secret", msg, err)
	}
	if err := open(); err != nil {
		t.Fatal(err)
	}
	if err := send("Done: the reset link is on its way to you."); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(`ul.sent`)); err != nil {
		t.Fatalf("no mail sent listed: %v", err)
	}
	ob.mu.Lock()
	defer ob.mu.Unlock()
	if len(ob.sent) != 1 {
		t.Fatalf("%d mails enqueued, want 1", len(ob.sent))
	}
	for _, m := range ob.sent {
		if m.To != "admin@acme.test" || m.Text != "Done: the reset link is on its way to you." {
			t.Errorf("enqueued to %s: %q", m.To, m.Text)
		}
	}
	if n := b.Dialogs(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened", n)
	}
}
