package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ticketrouter/ticketrouter/router/broker"
	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// claimedJSON is what 'queue next --json' prints.
type claimedJSON struct {
	Ticket json.RawMessage `json:"ticket"`
	Claim  struct {
		ID        string    `json:"id"`
		Queue     string    `json:"queue"`
		Subject   string    `json:"subject"`
		StreamSeq uint64    `json:"stream_seq"`
		Delivery  uint64    `json:"delivery"`
		Expires   time.Time `json:"expires"`
	} `json:"claim"`
}

// nextJSON runs 'queue next QUEUE --json' and returns what it printed.
func nextJSON(t *testing.T, url, q string, args ...string) claimedJSON {
	t.Helper()
	code, out, errOut := runCmd(t, "", append([]string{"queue", "next", q, "--json", "--nats", url}, args...)...)
	if code != exitOK {
		t.Fatalf("next %s: exit %d, stderr %q", q, code, errOut)
	}
	var c claimedJSON
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.Claim.ID == "" {
		t.Fatalf("next %s --json: %v\n%s", q, err, out)
	}
	return c
}

// TestQueueFinishByID: a ticket claimed by one 'queue next' is finished by
// a later command with the claim ID it printed: ack removes it, nak puts
// it back, term drops it; a finished claim cannot be finished twice.
func TestQueueFinishByID(t *testing.T) {
	p := ticket.DefaultPrefix
	qs := startQueueServer(t, broker.NATSConfig{}, p)
	tickets := []*ticket.Ticket{testTicket(1, p, "green", "verified"), testTicket(2, p, "green", "verified"), testTicket(3, p, "green", "verified")}
	qs.publish(t, tickets...)

	// --json: the ticket exactly as published, and the claim.
	c := nextJSON(t, qs.url, "green")
	published, _ := json.Marshal(tickets[0])
	if string(c.Ticket) != string(published) {
		t.Errorf("the ticket is not as published:\n%s\n%s", c.Ticket, published)
	}
	if c.Claim.Queue != "green" || c.Claim.Subject != p+".green.verified" || c.Claim.StreamSeq != 1 || c.Claim.Delivery != 1 ||
		!strings.HasPrefix(c.Claim.ID, "TICKETS.green.1.1.1.") {
		t.Errorf("claim %+v", c.Claim)
	}
	if d := time.Until(c.Claim.Expires); d < 4*time.Minute || d > 5*time.Minute {
		t.Errorf("claim expires in %s, want the 5m ack wait", d)
	}
	waitPending(t, qs.url, "green", 2, 1)

	code, out, errOut := runCmd(t, "", "queue", "ack", c.Claim.ID, "--nats", qs.url)
	if code != exitOK || out != "acknowledged: done, green will not deliver this ticket again.\n" {
		t.Fatalf("ack: exit %d, %q, %q", code, out, errOut)
	}
	waitPending(t, qs.url, "green", 2, 0)
	code, _, errOut = runCmd(t, "", "queue", "ack", c.Claim.ID, "--nats", qs.url)
	if code != exitError || !strings.Contains(errOut, "finished already") {
		t.Errorf("second ack: exit %d, %q", code, errOut)
	}

	// The readable view prints the claim ID; nak by it puts the ticket back.
	code, out, errOut = runCmd(t, "", "queue", "next", "green", "--nats", qs.url)
	m := regexp.MustCompile(`(?m)^claim ID (\S+)$`).FindStringSubmatch(out)
	if code != exitOK || m == nil || !strings.Contains(out, "queue ack|nak|term "+m[1]) {
		t.Fatalf("next: exit %d, %q, no claim ID in\n%s", code, errOut, out)
	}
	if code, out, errOut := runCmd(t, "", "queue", "nak", m[1], "--nats", qs.url); code != exitOK || !strings.HasPrefix(out, "put back") {
		t.Fatalf("nak: exit %d, %q, %q", code, out, errOut)
	}
	again := nextJSON(t, qs.url, "green", "--wait", "5s")
	if again.Claim.StreamSeq != 2 || again.Claim.Delivery != 2 {
		t.Errorf("after nak: %+v, want ticket 2 delivered again", again.Claim)
	}

	// term, with --json: dropped for good.
	code, out, errOut = runCmd(t, "", "queue", "term", again.Claim.ID, "--json", "--nats", qs.url)
	var res struct{ ID, Done string }
	if code != exitOK || json.Unmarshal([]byte(out), &res) != nil || res.ID != again.Claim.ID || res.Done != "term" {
		t.Fatalf("term --json: exit %d, %q, %q", code, out, errOut)
	}
	waitPending(t, qs.url, "green", 1, 0)
	if last := nextJSON(t, qs.url, "green", "--ack"); last.Claim.StreamSeq != 3 {
		t.Errorf("after term: %+v, want ticket 3", last.Claim)
	}

	for _, args := range [][]string{{"queue", "ack"}, {"queue", "nak", "green:2"}, {"queue", "term", "a", "b"}, {"queue", "extend", "TICKETS.green.x.1.1.1.0"}} {
		code, out, errOut := runCmd(t, "", append(args, "--nats", qs.url)...)
		if code != exitUsage || out != "" {
			t.Errorf("%q: exit %d, %q, %q; want a usage error", args, code, out, errOut)
		}
	}
}

// TestQueueExtend: a claim extended before its ack wait runs out stays
// the agent's past it; one not extended comes back once it has.
func TestQueueExtend(t *testing.T) {
	const ackWait = 2 * time.Second
	p := ticket.DefaultPrefix
	qs := startQueueServer(t, broker.NATSConfig{AckWait: ackWait}, p)
	qs.publish(t, testTicket(1, p, "red", "verified"))

	// Not extended: after the ack wait, delivered again.
	first := nextJSON(t, qs.url, "red")
	if d := time.Until(first.Claim.Expires); d > ackWait {
		t.Errorf("claim expires in %s, want the %s ack wait", d, ackWait)
	}
	again := nextJSON(t, qs.url, "red", "--wait", "10s")
	if again.Claim.StreamSeq != first.Claim.StreamSeq || again.Claim.Delivery != 2 {
		t.Fatalf("not extended: %+v, want the ticket back", again.Claim)
	}

	// Extended every quarter of the ack wait, for two and a half ack waits:
	// never delivered to anyone else.
	claimed := time.Now()
	for time.Since(claimed) < 5*ackWait/2 {
		code, out, errOut := runCmd(t, "", "queue", "extend", again.Claim.ID, "--nats", qs.url)
		if code != exitOK || !strings.HasPrefix(out, "extended: this ticket is yours until ") {
			t.Fatalf("extend: exit %d, %q, %q", code, out, errOut)
		}
		if code, out, _ := runCmd(t, "", "queue", "next", "red", "--nats", qs.url, "--wait", "100ms"); out != "no ticket waiting in red\n" {
			t.Fatalf("after %s, extended: exit %d\n%s", time.Since(claimed).Round(time.Millisecond), code, out)
		}
		time.Sleep(ackWait / 4)
	}
	code, out, errOut := runCmd(t, "", "queue", "extend", "--json", again.Claim.ID, "--nats", qs.url)
	var res struct {
		Done    string
		Expires time.Time
	}
	if code != exitOK || json.Unmarshal([]byte(out), &res) != nil || res.Done != "extend" || time.Until(res.Expires) <= ackWait/2 {
		t.Errorf("extend --json: exit %d, %q, %q", code, out, errOut)
	}
	if code, out, errOut := runCmd(t, "", "queue", "ack", again.Claim.ID, "--nats", qs.url); code != exitOK {
		t.Fatalf("ack after %s: exit %d, %q, %q", time.Since(claimed), code, out, errOut)
	}
	st := waitPending(t, qs.url, "red", 0, 0)
	if st.Queue != "red" {
		t.Error(fmt.Sprint(st))
	}
}
