package state

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// TestFollowUp: a ticket that joined a conversation goes to the agent who
// owns (or resolved) its first ticket, whether a take meets it in the
// queue or the indexer does first; one that did not join, or whose
// conversation nobody owns, stays in the queue for anyone; the
// conversation lists its tickets in order.
func TestFollowUp(t *testing.T) {
	d, s, ctx := startOne(t)
	n := 0
	reply := func(root *Record, joined bool) *ticket.Ticket {
		n++
		raw := fmt.Sprintf("From: <jane@acme.example>\r\nSubject: Re: Reset\r\nMessage-ID: <f%d@test.example>\r\n\r\nHere it is.\r\n", n)
		return d.publishRaw("blue", raw, func(tk *ticket.Ticket) {
			tk.Conversation = &ticket.Conversation{Root: root.ID, RootNumber: root.Number, Via: "in-reply-to", Joined: joined, Reason: "the same sender"}
		})
	}
	d.publish("blue", "jane@acme.example", "A1")
	root, _ := take(t, s, alice, "blue")

	// A take meets the follow-up first: alice gets it, bob gets nothing.
	f1 := reply(root, true)
	d.waitQueued("blue")
	noTicket(t, s, bob, "blue")
	// The indexer meets the next one first.
	f2 := reply(root, true)
	if _, err := s.Index(ctx); err != nil {
		t.Fatal(err)
	}
	// Not joined: anyone's.
	other := reply(root, false)
	if rec, tk := take(t, s, bob, "blue"); tk == nil || tk.ID != other.ID || rec.Owner != "bob" {
		t.Fatalf("bob took %+v, want the mail that did not join", rec)
	}
	noTicket(t, s, bob, "blue")

	mine, err := s.Mine(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range mine {
		ids = append(ids, r.ID)
	}
	if !slices.Contains(ids, f1.ID) || !slices.Contains(ids, f2.ID) || len(ids) != 3 {
		t.Errorf("alice's tickets %q, want the first and both follow-ups", ids)
	}
	for _, f := range []*ticket.Ticket{f1, f2} {
		hist, err := s.History(ctx, f.ID)
		if err != nil || len(hist) != 1 || hist[0].Kind != KindFollowUp || hist[0].Detail != "joined "+root.Number+" (the same sender): given to its owner alice" {
			t.Errorf("history of a follow-up: %+v, %v", hist, err)
		}
	}
	conv, err := s.Conversation(ctx, f1.ID)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, r := range conv {
		order = append(order, r.ID)
	}
	// f1 joined the index only when Index ran over it, as did f2.
	if want := []string{root.ID, f1.ID, f2.ID}; !slices.Equal(order, want) {
		t.Errorf("conversation %q, want %q", order, want)
	}

	// A resolved conversation still goes to who resolved it.
	if err := s.Resolve(ctx, alice, root.ID, "reset-done", ""); err != nil {
		t.Fatal(err)
	}
	f3 := reply(root, true)
	d.waitQueued("blue")
	noTicket(t, s, bob, "blue")
	if rec, _, err := s.Get(ctx, f3.ID); err != nil || rec.Owner != "alice" {
		t.Errorf("a follow-up of a resolved conversation: %+v, %v; want alice's", rec, err)
	}
}

// TestFollowUpOwnerInactive: a follow-up whose conversation's owner is no
// longer an active agent (disabled, or gone from the agents file) stays
// in the queue for anyone.
func TestFollowUpOwnerInactive(t *testing.T) {
	t.Parallel()
	d := startDesk(t)
	s, err := Open(testContext(t), d.connect("desk"), ticket.DefaultPrefix, Options{Active: func(agent string) bool { return agent != "alice" }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	d.publish("blue", "jane@acme.example", "A1")
	root, _ := take(t, s, alice, "blue")
	f := d.publishRaw("blue", "From: <jane@acme.example>\r\nSubject: Re: Reset\r\nMessage-ID: <f@test.example>\r\n\r\nHere it is.\r\n", func(tk *ticket.Ticket) {
		tk.Conversation = &ticket.Conversation{Root: root.ID, RootNumber: root.Number, Via: "in-reply-to", Joined: true, Reason: "the same sender"}
	})
	if _, err := s.Index(testContext(t)); err != nil {
		t.Fatal(err)
	}
	if rec, tk := take(t, s, bob, "blue"); tk == nil || tk.ID != f.ID || rec.Owner != "bob" {
		t.Errorf("bob took %+v, want the follow-up of a disabled owner", rec)
	}
}

// waitQueued waits, ten seconds at most, until queue's consumer holds a
// message: one just published may reach it a moment later on a loaded
// machine, and a take before that finds the queue empty.
func (d *desk) waitQueued(queue string) {
	d.t.Helper()
	ctx := testContext(d.t)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := d.js.Stream.Consumer(ctx, queue)
		if err != nil {
			d.t.Fatal(err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			d.t.Fatal(err)
		}
		if info.NumPending+uint64(info.NumAckPending) > 0 {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s's consumer holds no message after 10 s", queue)
		}
	}
}
