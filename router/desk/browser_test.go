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
