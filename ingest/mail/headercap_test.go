package mail

import (
	"strings"
	"testing"
)

// TestFromPastHeaderCap: the header byte cap must not hide a From field.
// An attacker puts the admin's From first, fills the header past the cap,
// and adds a second From (or folds the first one past it): the mail must
// read as having an ambiguous From, never as one unambiguous sender.
func TestFromPastHeaderCap(t *testing.T) {
	const capBytes = 4 << 10
	filler := func(n int) string {
		var b strings.Builder
		for i := 0; b.Len() < n; i++ {
			b.WriteString("X-Filler: " + strings.Repeat("x", 70) + "\r\n")
		}
		return b.String()
	}
	const admin = "From: Admin <admin@acmecorp.example>\r\n"
	body := "\r\nplease reset my password\r\n"
	tests := []struct {
		name, raw   string
		problem     string // substring of FromProblem; "" for an unambiguous From
		wantAddress string
	}{
		{"control: one From, header within the cap", admin + filler(capBytes/2) + "Subject: s\r\n" + body, "", "admin@acmecorp.example"},
		{"control: one From, filler past the cap", admin + filler(2*capBytes) + "Subject: s\r\n" + body, "", "admin@acmecorp.example"},
		{"second From past the cap", admin + filler(2*capBytes) + "From: attacker@evil.example\r\n" + body, "2 From headers", ""},
		{"second From, lower case", admin + filler(2*capBytes) + "from: attacker@evil.example\r\n" + body, "2 From headers", ""},
		{"second From, upper case", admin + filler(2*capBytes) + "FROM: attacker@evil.example\r\n" + body, "2 From headers", ""},
		{"second From, white space before the colon", admin + filler(2*capBytes) + "From : attacker@evil.example\r\n" + body, "2 From headers", ""},
		{"second From, folded", admin + filler(2*capBytes) + "From:\r\n attacker@evil.example\r\n" + body, "2 From headers", ""},
		{"second From, LF only", strings.ReplaceAll(admin+filler(2*capBytes)+"From: attacker@evil.example\r\n"+body, "\r\n", "\n"), "2 From headers", ""},
		{"three From, two past the cap", admin + filler(2*capBytes) + "From: a@evil.example\r\n" + filler(capBytes) + "From: b@evil.example\r\n" + body, "3 From headers", ""},
		{"only From past the cap", "Subject: s\r\n" + filler(2*capBytes) + "From: admin@acmecorp.example\r\n" + body, "past the header cap", ""},
		{"From folded past the cap", "From: admin@acmecorp.example,\r\n" + strings.Repeat(" \r\n", 10) + strings.Repeat(" x\r\n", capBytes) + " attacker@evil.example\r\n" + body, "past the header cap", ""},
		{"From line longer than the cap", "From: " + strings.Repeat(" ", 2*capBytes) + "attacker@evil.example, admin@acmecorp.example\r\n" + body, "cut", ""},
		{"From field straddling the cap", filler(capBytes-60) + "From: admin@acmecorp.example,\r\n attacker@evil.example (" + strings.Repeat("x", 200) + ")\r\n" + body, "past the header cap", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := Parse(strings.NewReader(tt.raw), Limits{MaxHeaderBytes: capBytes})
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.problem == "" && req.FromAmbiguous():
				t.Errorf("FromProblem %q, want an unambiguous From", req.FromProblem)
			case tt.problem == "" && req.From.Address != tt.wantAddress:
				t.Errorf("From %q, want %q", req.From.Address, tt.wantAddress)
			case tt.problem != "" && !strings.Contains(req.FromProblem, tt.problem):
				t.Errorf("FromProblem %q, want it to say %q (From %q)", req.FromProblem, tt.problem, req.From.Address)
			}
		})
	}
}
