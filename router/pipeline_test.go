package router

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ticketrouter/ticketrouter/internal/corpus"
	"github.com/ticketrouter/ticketrouter/router/config"
	"github.com/ticketrouter/ticketrouter/router/ticket"
	"github.com/ticketrouter/ticketrouter/rules/senderauth"
)

// TestRouteRealworldCorpus sends every file of the corpus through route:
// each must yield exactly one ticket, without a panic or a hang.
func TestRouteRealworldCorpus(t *testing.T) {
	_, files := corpus.Files(t)
	m, err := NewPipeline(&config.Config{Accounts: "../deploy/examples/accounts.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	queues := map[string]int{}
	for _, f := range files {
		done := make(chan *ticket.Ticket, 1)
		go func() {
			tk, _, err := m.File(context.Background(), f, nil)
			if err != nil {
				t.Errorf("%s: %v", f, err)
			}
			done <- tk
		}()
		select {
		case tk := <-done:
			if tk == nil {
				continue
			}
			if _, err := json.Marshal(tk); err != nil {
				t.Errorf("%s: ticket does not serialise: %v", f, err)
			}
			queues[tk.Queue]++
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: route did not finish in 10 s", f)
		}
	}
	t.Logf("%d files routed: %v", len(files), queues)
}

// FuzzRoute feeds arbitrary bytes through the whole route (parse, decide,
// ticket) against the example directory: it must never fail, never panic,
// and always yield a ticket that serialises, on a queue under the prefix,
// with a body that is valid UTF-8.
func FuzzRoute(f *testing.F) {
	files, _ := filepath.Glob("../deploy/examples/mail/*.eml")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("From: admin@acmecorp.example\r\nSubject: password: x\r\n\r\norder 4400001 -----BEGIN PRIVATE KEY-----"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: message/rfc822\r\n\r\nFrom: x\r\n\r\n--a--"))
	m, err := NewPipeline(&config.Config{Accounts: "../deploy/examples/accounts.yaml",
		SenderAuth: senderauth.Config{Mode: senderauth.ModeResults, TrustedAuthservIDs: []string{"mx.ca.example"}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		tk, _, err := m.Read(context.Background(), bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("route failed on a byte slice: %v", err)
		}
		if !strings.HasPrefix(tk.Queue, ticket.DefaultPrefix+".") || tk.Disposition == "" || len(tk.ID) != 64 {
			t.Fatalf("bad ticket: queue %q disposition %q id %q", tk.Queue, tk.Disposition, tk.ID)
		}
		if !utf8.ValidString(tk.Body) || !utf8.ValidString(tk.EmailSubject) {
			t.Fatalf("invalid UTF-8 in the ticket")
		}
		if _, err := json.Marshal(tk); err != nil {
			t.Fatalf("ticket does not serialise: %v", err)
		}
	})
}

// TestPipelineAnswer: with mail out configured, each example mail's
// ticket says which automatic answer it gets: self-service on the rows
// that offer it, an acknowledgement on the others, none for automatic mail
// or a dead letter, in the language the mail was written in; without mail
// out, no answer at all.
func TestPipelineAnswer(t *testing.T) {
	on, err := NewPipeline(&config.Config{Accounts: "../deploy/examples/accounts.yaml", SMTP: config.SMTP{Addr: "127.0.0.1:587", From: "support@ca.example"}})
	if err != nil {
		t.Fatal(err)
	}
	off, err := NewPipeline(&config.Config{Accounts: "../deploy/examples/accounts.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file, kind, reason, lang string
	}{
		{"row08-pink-self-service.eml", ticket.AnswerSelfService, "", "en"},
		{"row11-green-self-service.eml", ticket.AnswerSelfService, "", "es"}, // "Hola, olvidé mi contraseña"
		{"row12-green-verified.eml", ticket.AnswerAcknowledgement, "", "en"},
		{"row14-unmatched.eml", ticket.AnswerAcknowledgement, "", "nl"}, // "Hallo, ik ben mijn wachtwoord vergeten"
		{"row01-ignored-auto-reply.eml", ticket.AnswerNone, "Auto-Submitted", "en"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("../deploy/examples/mail", tt.file)
			tk, _, err := on.File(context.Background(), path, nil)
			if err != nil {
				t.Fatal(err)
			}
			a := tk.Answer
			if a == nil || a.Kind != tt.kind || !strings.Contains(a.Reason, tt.reason) || a.Lang != tt.lang {
				t.Fatalf("answer %+v; want %s (%q), %s", a, tt.kind, tt.reason, tt.lang)
			}
			if tt.kind != ticket.AnswerNone && a.To != tk.From.Address {
				t.Errorf("answer to %q, want the sender %q", a.To, tk.From.Address)
			}
			if tk, _, _ := off.File(context.Background(), path, nil); tk.Answer != nil {
				t.Errorf("without mail out: answer %+v", tk.Answer)
			}
		})
	}
	// A German mail is answered in German.
	de := "From: a@acmecorp.example\r\nSubject: Passwort\r\nMessage-ID: <de@x.example>\r\n\r\nHallo, ich habe mein Passwort vergessen. Bitte helfen Sie mir. Danke\r\n"
	tk, _, err := on.Read(context.Background(), strings.NewReader(de))
	if err != nil || tk.Answer == nil || tk.Answer.Lang != "de" {
		t.Errorf("a German mail's answer: %+v, %v; want de", tk.Answer, err)
	}
}
