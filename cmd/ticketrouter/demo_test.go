package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemo: with nothing set up, the demo routes every sample mail through
// the real worker and prints each queue with its tickets, then exits 0
// leaving no files behind.
func TestDemo(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"demo"}, nil, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, errOut.String())
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("the demo left %v in its temporary directory", left)
	}
	got := out.String()
	for _, want := range []string{
		"== queue blue: 2 (helpdesk.tickets.blue.>)",
		"== queue red: 3 (helpdesk.tickets.red.>)",
		"== queue pink: 3 (helpdesk.tickets.pink.>)",
		"== queue dark-green: 1 (helpdesk.tickets.dark-green.>)",
		"helpdesk.tickets.dark-green.self-service  row 11  colour dark-green  disposition self-service",
		"== queue green: 4 (helpdesk.tickets.green.>)",
		"== queue unknown: 1 (helpdesk.tickets.unknown.>)",
		"== queue ignored: 1 (helpdesk.tickets.ignored)",
		"== queue deadletter: 1 (helpdesk.tickets.deadletter)",
		// The in-process server sends no bytes of the mail it cannot
		// parse: quarantined, its dead-letter record says so.
		"quarantined: INBOX UID 1 (31 bytes): the server sent no bytes of this mail (its size given as 31)",
		"helpdesk.tickets.red.blocked  row 2  colour red  disposition blocked",
		"Never reset the password of an account marked do-not-reset",
		"helpdesk.tickets.green.needs-verification  row 13  colour green  disposition needs-verification",
		"treat as a likely spoof",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// One line per ticket: each policy row but row 0 (the dead letter,
	// quarantined above), and row 11 for green and for dark green, so that
	// every colour's queue has a ticket.
	rows := regexp.MustCompile(`(?m)^  helpdesk\.tickets\.(\S+)  row (\d+) `).FindAllStringSubmatch(got, -1)
	seen := map[string]int{}
	for _, r := range rows {
		seen[r[2]]++
	}
	if len(rows) != 15 || len(seen) != 14 || seen["11"] != 2 {
		t.Errorf("%d tickets of %d policy rows (row 11: %d), want 15 of 14 (row 11: 2):\n%s", len(rows), len(seen), seen["11"], got)
	}
	// The one warning is the sample dead letter's quarantine.
	for _, line := range strings.Split(errOut.String(), "\n") {
		if (strings.Contains(line, "WRN") || strings.Contains(line, "ERR")) && !strings.Contains(line, "WRN quarantined mailbox=INBOX") {
			t.Errorf("warning on stderr: %s", line)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", got)
	}
}

// TestDemoKeep: --keep leaves NATS running after the tickets are printed,
// says how to connect, and the printed queue command works against it;
// it prints the desk's URL and a login, and the desk signs that login in;
// an interrupt then stops it cleanly.
func TestDemoKeep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var errOut bytes.Buffer
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"demo", "--keep", "--dir", t.TempDir()}, nil, pw, &errOut)
		pw.Close()
	}()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	listCmd := regexp.MustCompile(`ticketrouter (queue list --nats nats://127\.0\.0\.1:\d+)$`)
	deskLine := regexp.MustCompile(`^  desk +(http://127\.0\.0\.1:\d+/) +sign in as demo, password (\S+) `)
	var args []string
	var deskURL, password string
	timeout := time.After(time.Minute)
	for args == nil {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the demo ended (exit %d) before saying how to connect; stderr:\n%s", <-code, errOut.String())
			}
			if m := listCmd.FindStringSubmatch(line); m != nil {
				args = strings.Fields(m[1])
			}
			if m := deskLine.FindStringSubmatch(line); m != nil {
				deskURL, password = m[1], m[2]
			}
		case <-timeout:
			t.Fatal("the demo did not say how to connect within a minute")
		}
	}
	go func() { // keep the pipe flowing
		for range lines {
		}
	}()
	if deskURL == "" {
		t.Error("the demo printed no desk line")
	} else {
		checkDemoDesk(t, deskURL, password)
	}
	var out, qErr bytes.Buffer
	if c := run(ctx, args, nil, &out, &qErr); c != exitOK {
		t.Fatalf("%v: exit %d: %s", args, c, qErr.String())
	}
	if !regexp.MustCompile(`(?m)^\s*green\s+4\s`).MatchString(out.String()) {
		t.Errorf("queue list against the demo's NATS:\n%s", out.String())
	}
	cancel()
	select {
	case c := <-code:
		if c != exitOK {
			t.Errorf("exit %d after the interrupt; stderr:\n%s", c, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the demo did not stop within 30 s of the interrupt")
	}
}

// checkDemoDesk checks the demo's desk: its login page answers, and the
// printed login signs in (303 to the board, with a session cookie).
func checkDemoDesk(t *testing.T, base, password string) {
	t.Helper()
	resp, err := http.Get(base + "login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `name="password"`) {
		t.Errorf("GET %slogin: %d\n%.300s", base, resp.StatusCode, body)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noRedirect.PostForm(base+"login", url.Values{"name": {"demo"}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) == 0 {
		t.Errorf("signing in as demo: %d, %d cookies; want 303 and a session", resp.StatusCode, len(resp.Cookies()))
	}
}
