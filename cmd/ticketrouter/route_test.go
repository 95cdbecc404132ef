package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// runCmd runs the command in-process and returns its exit code and output.
func runCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func decodeTickets(t *testing.T, out string) []ticket.Ticket {
	t.Helper()
	var tickets []ticket.Ticket
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var tk ticket.Ticket
		if err := json.Unmarshal([]byte(line), &tk); err != nil {
			t.Fatalf("not a JSON ticket line: %q: %v", line, err)
		}
		tickets = append(tickets, tk)
	}
	return tickets
}

// TestRouteExamples routes the bundled example mails, one for each row of
// POLICY.md's table, to the row and queue each is named after.
func TestRouteExamples(t *testing.T) {
	want := map[string]struct {
		row   int
		queue string
	}{
		"row00-deadletter.eml":               {0, "helpdesk.tickets.deadletter"},
		"row01-ignored-auto-reply.eml":       {1, "helpdesk.tickets.ignored"},
		"row02-blocked-altaire.eml":          {2, "helpdesk.tickets.red.blocked"},
		"row03-code-signing.eml":             {3, "helpdesk.tickets.green.code-signing"},
		"row04-blue-verified-web-host.eml":   {4, "helpdesk.tickets.blue.verified"},
		"row05-blue-refer-to-web-host.eml":   {5, "helpdesk.tickets.blue.refer-to-web-host"},
		"row06-red-verified-reseller.eml":    {6, "helpdesk.tickets.red.verified"},
		"row07-red-refer-to-reseller.eml":    {7, "helpdesk.tickets.red.refer-to-reseller"},
		"row08-pink-self-service.eml":        {8, "helpdesk.tickets.pink.self-service"},
		"row09-pink-verified.eml":            {9, "helpdesk.tickets.pink.verified"},
		"row10-pink-needs-verification.eml":  {10, "helpdesk.tickets.pink.needs-verification"},
		"row11-green-self-service.eml":       {11, "helpdesk.tickets.green.self-service"},
		"row11-dark-green-self-service.eml":  {11, "helpdesk.tickets.dark-green.self-service"},
		"row12-green-verified.eml":           {12, "helpdesk.tickets.green.verified"},
		"row13-green-needs-verification.eml": {13, "helpdesk.tickets.green.needs-verification"},
		"row14-unmatched.eml":                {14, "helpdesk.tickets.unknown.unmatched"},
	}
	files, err := filepath.Glob("../../deploy/examples/mail/*.eml")
	if err != nil || len(files) != len(want) {
		t.Fatalf("examples: %v %v", files, err)
	}
	args := append([]string{"route", "--accounts", "../../deploy/examples/accounts.yaml"}, files...)
	code, out, errOut := runCmd(t, "", args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	tickets := decodeTickets(t, out)
	if len(tickets) != len(files) {
		t.Fatalf("%d tickets for %d files", len(tickets), len(files))
	}
	for i, f := range files {
		w, ok := want[filepath.Base(f)]
		if !ok {
			t.Errorf("no expectation for %s", f)
			continue
		}
		if tk := tickets[i]; tk.PolicyRow != w.row || tk.Queue != w.queue {
			t.Errorf("%s: row %d queue %s, want row %d queue %s", f, tk.PolicyRow, tk.Queue, w.row, w.queue)
		}
	}
}

func TestRouteStdinAndExplain(t *testing.T) {
	mail := "From: Acme Admin <admin@acmecorp.example>\r\nSubject: Password reset\r\n\r\nplease reset my password\r\n"
	code, out, errOut := runCmd(t, mail, "route", "--explain", "--accounts", "../../deploy/examples/accounts.yaml", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	tickets := decodeTickets(t, out)
	if len(tickets) != 1 || tickets[0].Queue != "helpdesk.tickets.green.verified" {
		t.Fatalf("tickets %+v", tickets)
	}
	for _, want := range []string{"== -", "-> helpdesk.tickets.green.verified", "row 12 verified: yes", "row 1 ignored: no", "guidance:"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("explanation lacks %q:\n%s", want, errOut)
		}
	}
}

// tempWriter returns a function that writes a file into a fresh temporary
// directory and returns its path.
func tempWriter(t *testing.T) func(name, content string) string {
	dir := t.TempDir()
	return func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

func TestRouteErrors(t *testing.T) {
	write := tempWriter(t)
	good := write("good.eml", "From: a@b.example\r\nSubject: x\r\n\r\nhello\r\n")
	badAccounts := write("bad.jsonl", `{"id":"A","colour":"green","admin_email":"a@b.example"}`+"\n"+`{"id":"B","colour":"purple","admin_email":"b@b.example"}`+"\n")
	badPolicy := write("policy.yaml", "version: 2\n")
	dir := filepath.Dir(good)
	missing := filepath.Join(dir, "missing.eml")

	for _, tt := range []struct {
		name     string
		args     []string
		code     int
		tickets  int
		stderrRe string
	}{
		{"no args", []string{"route"}, exitUsage, 0, `ticketrouter route: requires at least 1 arg.*\nRun 'ticketrouter route --help' for usage`},
		{"no accounts", []string{"route", good}, exitUsage, 0, "no account directory: give --accounts FILE, or --config FILE with accounts set"},
		{"unknown flag", []string{"route", "--nope"}, exitUsage, 0, "unknown flag: --nope"},
		{"no command", nil, exitUsage, 0, "ticketrouter: missing command: want one of"},
		{"unknown command", []string{"rout"}, exitUsage, 0, `unknown command "rout"`},
		{"missing accounts file", []string{"route", "--accounts", filepath.Join(dir, "none.yaml"), good}, exitError, 0, `none\.yaml: no such file`},
		{"bad accounts record", []string{"route", "--accounts", badAccounts, good}, exitError, 0, `bad\.jsonl:2: colour: unknown colour "purple"`},
		{"bad policy", []string{"route", "--accounts", "../../deploy/examples/accounts.yaml", "--policy", badPolicy, good}, exitError, 0, `policy\.yaml:1: version: want 1, got 2`},
		{"unreadable mail, others still routed", []string{"route", "--accounts", "../../deploy/examples/accounts.yaml", missing, good}, exitError, 1, `missing\.eml: no such file`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, "", tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, errOut)
			}
			if n := len(decodeTickets(t, out)); n != tt.tickets {
				t.Errorf("%d tickets, want %d", n, tt.tickets)
			}
			if !regexp.MustCompile(tt.stderrRe).MatchString(errOut) {
				t.Errorf("stderr %q does not match %q", errOut, tt.stderrRe)
			}
			for _, l := range strings.Split(strings.TrimSpace(errOut), "\n") {
				if tt.code == exitError && !strings.HasPrefix(l, "ticketrouter: ") {
					t.Errorf("error line without the command's name: %q", l)
				}
			}
		})
	}
}

// TestRouteSenderAuth tries sender authentication on saved mails, from a
// config file and from flags.
func TestRouteSenderAuth(t *testing.T) {
	write := tempWriter(t)
	accounts, err := os.ReadFile("../../deploy/examples/accounts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	write("accounts.yaml", string(accounts))
	cfg := write("config.yaml", "accounts: accounts.yaml\nsender_auth:\n  mode: authentication-results\n  trusted_authserv_ids: [mx.ca.example]\n")
	const mail = "From: Acme Admin <admin@acmecorp.example>\r\nSubject: Password reset\r\n\r\nplease reset my password\r\n"
	trusted := write("trusted.eml", "Authentication-Results: mx.ca.example; dmarc=pass header.from=acmecorp.example\r\n"+mail)
	forged := write("forged.eml", "Authentication-Results: mx.evil.test; dmarc=pass header.from=acmecorp.example\r\n"+mail)

	for _, tt := range []struct {
		name   string
		args   []string
		queues []string
	}{
		{"config, trusted results", []string{"--config", cfg, trusted}, []string{"helpdesk.tickets.green.verified"}},
		{"config, forged results", []string{"--config", cfg, forged}, []string{"helpdesk.tickets.green.needs-verification"}},
		{"flag turns it off", []string{"--config", cfg, "--sender-auth", "off", forged}, []string{"helpdesk.tickets.green.verified"}},
		{"flag trusts another id", []string{"--config", cfg, "--trust-authserv-id", "mx.evil.test", forged, trusted},
			[]string{"helpdesk.tickets.green.verified", "helpdesk.tickets.green.needs-verification"}},
		{"flags without a config", []string{"--accounts", "../../deploy/examples/accounts.yaml", "--sender-auth", "authentication-results",
			"--trust-authserv-id", "mx.ca.example", trusted, forged},
			[]string{"helpdesk.tickets.green.verified", "helpdesk.tickets.green.needs-verification"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, "", append([]string{"route"}, tt.args...)...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var queues []string
			for _, tk := range decodeTickets(t, out) {
				queues = append(queues, tk.Queue)
				if tk.Checks.SenderAuthenticated.Reason == "" {
					t.Error("sender_authenticated without a reason")
				}
			}
			if strings.Join(queues, " ") != strings.Join(tt.queues, " ") {
				t.Errorf("queues %v, want %v", queues, tt.queues)
			}
		})
	}

	for _, tt := range []struct {
		name, config string
		args         []string
		code         int
		stderr       string
	}{
		{"bad mode flag", "", []string{"--sender-auth", "spf"}, exitUsage, `sender_auth.mode: "spf" is not one of`},
		{"results without trusted ids", "", []string{"--sender-auth", "both"}, exitUsage, "trusted_authserv_ids: mode both needs"},
		{"unknown config key", "accounts: accounts.yaml\nsender_auth:\n  mode: dkim\n  trust: [x]\n", nil, exitError, `config.yaml:4: sender_auth.trust: unknown field`},
		{"bad mode in config", "accounts: accounts.yaml\nsender_auth:\n  mode: spf\n", nil, exitError, `config.yaml:3: sender_auth.mode: "spf" is not one of`},
		{"bad prefix", "accounts: accounts.yaml\nsubject_prefix: help desk\n", nil, exitError, `config.yaml:2: subject_prefix: "help desk" is no NATS subject prefix`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"route", "--accounts", "../../deploy/examples/accounts.yaml"}
			if tt.config != "" {
				args = []string{"route", "--config", write("config.yaml", tt.config)}
			}
			code, _, errOut := runCmd(t, "", append(append(args, tt.args...), trusted)...)
			if code != tt.code || !strings.Contains(errOut, tt.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tt.code, tt.stderr)
			}
		})
	}
}

// TestRouteRateLimit: the sixth request of one sender in a run goes to the
// rate-limited queue.
func TestRouteRateLimit(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i := range 6 {
		p := filepath.Join(dir, fmt.Sprintf("m%d.eml", i))
		mail := fmt.Sprintf("From: someone@elsewhere.example\r\nSubject: reset %d\r\n\r\nreset acmecorp.example\r\n", i)
		if err := os.WriteFile(p, []byte(mail), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	code, out, errOut := runCmd(t, "", append([]string{"route", "--accounts", "../../deploy/examples/accounts.yaml"}, files...)...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	tickets := decodeTickets(t, out)
	for i, tk := range tickets {
		want := "helpdesk.tickets.green.needs-verification"
		if i == 5 {
			want = "helpdesk.tickets.rate-limited.green"
		}
		if tk.Queue != want || tk.RateLimited != (i == 5) || tk.Disposition != "needs-verification" {
			t.Errorf("ticket %d: queue %s rate_limited %v disposition %s", i, tk.Queue, tk.RateLimited, tk.Disposition)
		}
	}
}

// TestRouteHostileMails routes every hostile mail of rules/testdata/hostile
// (their own assertions are checked in package rules) through the command,
// with the explanation on, and checks what must hold for all of them: one
// JSON ticket each, exit 0, and no control character a terminal would obey
// in the tickets or the explanation.
func TestRouteHostileMails(t *testing.T) {
	files, err := filepath.Glob("../../rules/testdata/hostile/*/*.eml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no hostile mails: %v", err)
	}
	args := append([]string{"route", "--accounts", "../../deploy/examples/accounts.yaml", "--explain",
		"--sender-auth", "authentication-results", "--trust-authserv-id", "mx.ca.example"}, files...)
	code, out, errOut := runCmd(t, "", args...)
	if code != exitOK {
		t.Fatalf("exit %d; stderr:\n%s", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(files) {
		t.Fatalf("%d ticket lines for %d mails", len(lines), len(files))
	}
	control := func(r rune, multiline bool) bool {
		return (r < 0x20 || r >= 0x7f && r <= 0x9f) && r != '\t' && !(multiline && r == '\n')
	}
	for i, line := range lines {
		var doc any
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			t.Fatalf("%s: not a JSON ticket: %v", files[i], err)
		}
		var walk func(path string, v any)
		walk = func(path string, v any) {
			switch v := v.(type) {
			case map[string]any:
				for k, e := range v {
					walk(path+"."+k, e)
				}
			case []any:
				for _, e := range v {
					walk(path+"[]", e)
				}
			case string:
				if strings.ContainsFunc(v, func(r rune) bool { return control(r, path == ".body") }) {
					t.Errorf("%s: %s holds a control character: %q", files[i], path, v)
				}
			}
		}
		walk("", doc)
	}
	if strings.ContainsFunc(errOut, func(r rune) bool { return control(r, true) }) {
		t.Errorf("the explanation holds a control character")
	}
}
