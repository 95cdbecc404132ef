// Package browsertest drives a headless Chromium for the desk's browser
// tests (router/desk and the end-to-end tests of the binary): it finds
// the browser or skips the test, counts the JavaScript dialogs a page
// opens, and saves screenshots when DESK_SCREENSHOTS names a directory.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// Browser is a headless Chromium tab for one test.
type Browser struct {
	// Ctx is the tab's context, for chromedp.Run and chromedp.Do; it ends
	// at the test's timeout.
	Ctx     context.Context
	t       testing.TB
	dialogs atomic.Int32
}

// Chromium returns the path of a Chromium to drive, or skips the test.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium installed (Debian: apt-get install chromium): the browser test does not run")
	return ""
}

// Start starts a headless Chromium (or skips the test without one) with
// a fresh profile and a 1100x900 window, for at most timeout; it stops
// when the test ends. Every JavaScript dialog is dismissed and counted
// (Dialogs).
func Start(t testing.TB, timeout time.Duration) *Browser {
	t.Helper()
	exe := Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1100, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(cancelCtx)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	t.Cleanup(cancel)
	b := &Browser{Ctx: ctx, t: t}
	opened := chromedp.Events(ctx, cdppage.JavascriptDialogOpening)
	go func() {
		for _, err := range opened {
			if err != nil {
				return
			}
			b.dialogs.Add(1)
			_, _ = chromedp.Call(ctx, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	return b
}

// Dialogs is the number of JavaScript dialogs (alert, confirm, prompt)
// pages have opened so far.
func (b *Browser) Dialogs() int { return int(b.dialogs.Load()) }

// Shot saves the whole page as DIR/name.png when DESK_SCREENSHOTS=DIR is
// set, and does nothing otherwise.
func (b *Browser) Shot(name string) {
	b.t.Helper()
	dir := os.Getenv("DESK_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100)) // 100: PNG, not JPEG
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
	}
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
	}
}
