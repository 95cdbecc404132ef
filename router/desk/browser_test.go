package desk

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// chromium returns the path of a Chromium to drive, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium installed (Debian: apt-get install chromium): the browser test does not run")
	return ""
}

// TestBrowser drives a headless Chromium against the desk over the
// fakes: sign in, see the board and its live counts change, open a
// hostile ticket, whose script and javascript: link show as text and no
// JavaScript dialog opens. With DESK_SCREENSHOTS=DIR it saves the board
// and the ticket page there as PNG.
func TestBrowser(t *testing.T) {
	exe := chromium(t)
	h := newHarness(t)
	srv, err := New(h.store, h.auth, Options{Logger: slog.New(slog.DiscardHandler), EventInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	var dialogs atomic.Int32
	opened := chromedp.Events(ctx, cdppage.JavascriptDialogOpening)
	go func() {
		for _, err := range opened {
			if err != nil {
				return
			}
			dialogs.Add(1)
			_, _ = chromedp.Call(ctx, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	shot := func(name string) {
		dir := os.Getenv("DESK_SCREENSHOTS")
		if dir == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
		}
		if err != nil {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}

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
	if n := dialogs.Load(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened", n)
	}
}
