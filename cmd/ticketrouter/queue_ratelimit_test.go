package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ticketrouter/ticketrouter/router/broker"
	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// TestQueueRateLimitedOwnQueue: a flood's rate-limited tickets do not bury
// a colour's real work. Eight requests of one sender (the last three over
// the policy's limit) arrive before one of another sender; the green queue
// serves the six real ones, in order, and the rate-limited queue the three
// others.
func TestQueueRateLimitedOwnQueue(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i, from := range []string{"flood", "flood", "flood", "flood", "flood", "flood", "flood", "flood", "someone"} {
		p := filepath.Join(dir, fmt.Sprintf("m%d.eml", i))
		mail := fmt.Sprintf("From: %s@elsewhere.example\r\nSubject: reset %d\r\n\r\nreset acmecorp.example\r\n", from, i)
		if err := os.WriteFile(p, []byte(mail), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	code, out, errOut := runCmd(t, "", append([]string{"route", "--accounts", "../../deploy/examples/accounts.yaml"}, files...)...)
	if code != exitOK {
		t.Fatalf("route: exit %d: %s", code, errOut)
	}
	tickets := decodeTickets(t, out)
	var limited []string
	for _, tk := range tickets {
		if tk.RateLimited {
			limited = append(limited, tk.ID)
		}
	}
	if len(tickets) != 9 || len(limited) != 3 || tickets[8].RateLimited {
		t.Fatalf("%d tickets, %d rate-limited; want the 6th to 8th of 9 rate-limited", len(tickets), len(limited))
	}

	p := ticket.DefaultPrefix
	qs := startQueueServer(t, broker.NATSConfig{}, p)
	for i := range tickets {
		qs.publish(t, &tickets[i]) // in arrival order, where the service publishes them
	}

	for i, want := range []int{0, 1, 2, 3, 4, 8} {
		c := nextJSON(t, qs.url, "green", "--ack")
		if id := ticketID(t, c); id != tickets[want].ID {
			t.Fatalf("green claim %d: ticket %s (rate-limited: %v), want mail %d's", i+1, id, slices.Contains(limited, id), want)
		}
	}
	if code, out, _ := runCmd(t, "", "queue", "next", "green", "--nats", qs.url, "--wait", "200ms"); out != "no ticket waiting in green\n" {
		t.Errorf("green after its real work: exit %d, %q", code, out)
	}
	for i, want := range limited {
		c := nextJSON(t, qs.url, ticket.RateLimited, "--ack")
		if id := ticketID(t, c); id != want {
			t.Errorf("rate-limited claim %d: ticket %s, want %s", i+1, id, want)
		}
	}
	waitPending(t, qs.url, ticket.RateLimited, 0, 0)
}

// ticketID reads the id of a claimed ticket.
func ticketID(t *testing.T, c claimedJSON) string {
	t.Helper()
	var tk ticket.Ticket
	if err := json.Unmarshal(c.Ticket, &tk); err != nil {
		t.Fatal(err)
	}
	return tk.ID
}
