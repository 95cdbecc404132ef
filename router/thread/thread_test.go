package thread

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/ticketrouter/ticketrouter/internal/natstest"
	"github.com/ticketrouter/ticketrouter/router/ticket"
	"github.com/ticketrouter/ticketrouter/rules"
)

// mailFrom is a ticket from addr, with an account when account is set.
func mailFrom(id, addr, account string, admin bool) *ticket.Ticket {
	t := &ticket.Ticket{ID: id, MessageID: id + "@mail.example", From: ticket.From{Address: addr}}
	if account != "" {
		t.Account = &ticket.Account{ID: account}
		t.Checks.SenderIsAdmin = rules.Check{OK: admin}
	}
	return t
}

func TestRefs(t *testing.T) {
	tk := &ticket.Ticket{
		InReplyTo:    []string{"irt@x.example"},
		References:   []string{"old@x.example", "new@x.example"},
		EmailSubject: "Re: [TR-104233] reset [tr-100002] [TR-99] [TR-100003] [TR-100004]",
	}
	ids, vias, tags := Refs(tk)
	if want := []string{"irt@x.example", "new@x.example", "old@x.example"}; !slices.Equal(ids, want) {
		t.Errorf("ids %q, want %q (In-Reply-To, then References newest first)", ids, want)
	}
	if want := []string{ViaInReplyTo, ViaReferences, ViaReferences}; !slices.Equal(vias, want) {
		t.Errorf("vias %q, want %q", vias, want)
	}
	// [TR-99] is no ticket number, and at most maxTags tags are read.
	if want := []uint64{4233, 2, 3}; !slices.Equal(tags, want) {
		t.Errorf("tags %v, want %v", tags, want)
	}
	// Look-alikes are no tags: fullwidth brackets, letters or digits,
	// Arabic-Indic digits.
	for _, subject := range []string{"［TR-104233］", "[ＴＲ-104233]", "[TR-１０４２３３]", "[TR-١٠٤٢٣٣]"} {
		if _, _, tags := Refs(&ticket.Ticket{EmailSubject: subject}); len(tags) != 0 {
			t.Errorf("Refs(%q) read tags %v", subject, tags)
		}
	}
}

// TestDecide: who joins a conversation, and what a ticket records when it
// does not.
func TestDecide(t *testing.T) {
	root := Entry{Ticket: "r", Seq: 1, Root: "r", RootSeq: 1, Senders: []string{"jane@acme.example"}, Domain: "acme.example", Account: "A1"}
	shared := Entry{Ticket: "g", Seq: 2, Root: "g", RootSeq: 2, Senders: []string{"jane@gmail.example"}, Account: "A2"}
	tests := []struct {
		name   string
		t      *ticket.Ticket
		e      *Entry
		joined bool
		reason string
	}{
		{"same sender", mailFrom("m", "Jane@ACME.example", "", false), &root, true, "the same sender"},
		{"colleague at the account's domain", mailFrom("m", "bob@mail.acme.example", "", false), &root, true, "an address at the account's domain acme.example"},
		{"another domain", mailFrom("m", "eve@evil.example", "", false), &root, false, "names TR-100001 (in-reply-to), a conversation of another sender: not joined"},
		{"look-alike domain", mailFrom("m", "jane@acme.example.evil.example", "", false), &root, false, "names TR-100001 (in-reply-to), a conversation of another sender: not joined"},
		{"another user of a shared provider", mailFrom("m", "eve@gmail.example", "", false), &shared, false, "names TR-100002 (in-reply-to), a conversation of another sender: not joined"},
		{"the account's admin", mailFrom("m", "admin@elsewhere.example", "A2", true), &shared, true, "the account's admin"},
		{"the account named, sender not its admin", mailFrom("m", "eve@elsewhere.example", "A2", false), &shared, false, "names TR-100002 (in-reply-to), a conversation of another sender: not joined"},
		{"the admin of another account", mailFrom("m", "admin@elsewhere.example", "A9", true), &shared, false, "names TR-100002 (in-reply-to), a conversation of another sender: not joined"},
		{"unclear sender", &ticket.Ticket{ID: "m", From: ticket.From{Address: "jane@acme.example", Problem: "several From fields"}}, &root, false, "names TR-100001 (in-reply-to), but the sender is unclear: not joined"},
		{"tag of no ticket", mailFrom("m", "jane@acme.example", "", false), nil, false, "the subject names TR-104233, which does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &Named{Entry: tt.e, Via: ViaInReplyTo, Number: "TR-104233"}
			if tt.e == nil {
				n.Via = ViaSubjectTag
			}
			c := Decide(tt.t, n)
			if c.Joined != tt.joined || c.Reason != tt.reason {
				t.Errorf("Decide = joined %v, %q; want %v, %q", c.Joined, c.Reason, tt.joined, tt.reason)
			}
			if tt.e != nil && (c.Root != tt.e.Root || c.RootNumber != ticket.Number(tt.e.RootSeq)) {
				t.Errorf("Decide root %q %q, want %q %q", c.Root, c.RootNumber, tt.e.Root, ticket.Number(tt.e.RootSeq))
			}
		})
	}
}

// TestStart: a mail that starts a conversation gives it its sender, and
// its domain only when that is one of the account's own; a mail that
// joined inherits the conversation and adds its sender.
func TestStart(t *testing.T) {
	own := Start(mailFrom("a", "jane@mail.acme.example", "A1", true), 5, nil, "www.acme.example", "other.example")
	if own.Root != "a" || own.RootSeq != 5 || own.Domain != "acme.example" || own.Account != "A1" || !slices.Equal(own.Senders, []string{"jane@mail.acme.example"}) {
		t.Errorf("Start at the account's domain = %+v", own)
	}
	free := Start(mailFrom("b", "jane@gmail.example", "A1", false), 6, nil, "acme.example")
	if free.Domain != "" {
		t.Errorf("Start from a domain not the account's: Domain %q, want none", free.Domain)
	}
	reply := mailFrom("c", "admin@acme.example", "A1", true)
	reply.Conversation = &ticket.Conversation{Joined: true}
	joined := Start(reply, 9, &free)
	if joined.Ticket != "c" || joined.Seq != 9 || joined.Root != "b" || joined.RootSeq != 6 || !slices.Equal(joined.Senders, []string{"jane@gmail.example", "admin@acme.example"}) {
		t.Errorf("Start of a joined reply = %+v", joined)
	}
	if len(free.Senders) != 1 {
		t.Errorf("Start changed the parent's senders: %q", free.Senders)
	}
	reply.Conversation.Joined = false
	if alone := Start(reply, 9, &free); alone.Root != "c" {
		t.Errorf("Start of a reply that did not join = %+v, want its own root", alone)
	}
	if s := Sent(free, "Admin@ACME.example"); !slices.Contains(s.Senders, "admin@acme.example") {
		t.Errorf("Sent: senders %q, want the recipient among them", s.Senders)
	}
}

// TestFind runs against a real JetStream: a reply to a ticket's
// Message-ID, to a mail the service sent, and by subject tag finds the
// conversation; unknown ids are passed over; a tag of no ticket is named
// with no entry.
func TestFind(t *testing.T) {
	t.Parallel()
	out := natstest.Connect(t, natstest.Start(t), "test")
	js := out.JS
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	store := New(out.Threads, out.Stream)

	publish := func(tk *ticket.Ticket) uint64 {
		t.Helper()
		data, _ := json.Marshal(tk)
		ack, err := js.Publish(ctx, ticket.DefaultPrefix+".blue.verified", data)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	first := mailFrom("first", "jane@acme.example", "A1", true)
	seq := publish(first)
	root := Start(first, seq, nil, "acme.example")
	if err := store.Register(ctx, first.MessageID, root); err != nil {
		t.Fatal(err)
	}
	if err := store.Register(ctx, "<ack.first@support.example>", Sent(root, "jane@acme.example")); err != nil {
		t.Fatal(err)
	}
	// A ticket nobody registered (written before threads were kept).
	unregistered := mailFrom("old", "old@old.example", "", false)
	oldSeq := publish(unregistered)

	tests := []struct {
		name     string
		t        *ticket.Ticket
		via      string
		number   string
		wantRoot string // "" for no entry
		none     bool
	}{
		{"nothing named", &ticket.Ticket{ID: "x"}, "", "", "", true},
		{"unknown ids only", &ticket.Ticket{ID: "x", InReplyTo: []string{"nobody@x.example"}}, "", "", "", true},
		{"reply to the ticket", &ticket.Ticket{ID: "x", InReplyTo: []string{first.MessageID}}, ViaInReplyTo, ticket.Number(seq), "first", false},
		{"reply to our acknowledgement", &ticket.Ticket{ID: "x", References: []string{"zzz@x.example", "ack.first@support.example"}}, ViaReferences, ticket.Number(seq), "first", false},
		{"tag", &ticket.Ticket{ID: "x", EmailSubject: "Re: help " + Tag(ticket.Number(seq))}, ViaSubjectTag, ticket.Number(seq), "first", false},
		{"tag of an unregistered ticket", &ticket.Ticket{ID: "x", EmailSubject: Tag(ticket.Number(oldSeq))}, ViaSubjectTag, ticket.Number(oldSeq), "old", false},
		{"tag of no ticket", &ticket.Ticket{ID: "x", EmailSubject: "[TR-999999]"}, ViaSubjectTag, "TR-999999", "", false},
		{"itself", &ticket.Ticket{ID: "first", MessageID: first.MessageID, InReplyTo: []string{first.MessageID}}, "", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := store.Find(ctx, tt.t)
			if err != nil {
				t.Fatal(err)
			}
			if tt.none {
				if n != nil {
					t.Fatalf("Find = %+v, want none", n)
				}
				return
			}
			if n == nil || n.Via != tt.via || n.Number != tt.number {
				t.Fatalf("Find = %+v, want via %s, number %s", n, tt.via, tt.number)
			}
			if got := ""; n.Entry != nil {
				got = n.Entry.Root
				if got != tt.wantRoot {
					t.Errorf("root %q, want %q", got, tt.wantRoot)
				}
			} else if tt.wantRoot != "" {
				t.Errorf("no entry, want root %q", tt.wantRoot)
			}
		})
	}
}
