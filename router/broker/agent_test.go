package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// startAgentServer starts a provisioned server and returns it with a
// Target to reach it.
func startAgentServer(t *testing.T, cfg NATSConfig, prefix string) (jetstream.JetStream, Target) {
	t.Helper()
	s := startServer(t)
	_, js := connect(t, s, "publisher")
	provision(t, js, cfg, prefix, 10*time.Second)
	return js, Target{URL: s.ClientURL(), From: "test"}
}

// connectAgent connects an Agent, closed when the test ends.
func connectAgent(t *testing.T, target Target, prefix string) *Agent {
	t.Helper()
	a, err := ConnectAgent(testContext(t), target, "TICKETS", prefix, "agent")
	if err != nil {
		t.Fatalf("ConnectAgent: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

// publishN publishes n messages on subject, numbered from 1.
func publishN(t *testing.T, js jetstream.JetStream, subject string, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		if _, err := js.Publish(testContext(t), subject, fmt.Appendf(nil, `{"n":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
}

// waitStatus polls queue q until it shows waiting and claimed (the server
// applies acknowledgements a moment after it confirms them), for at most
// 5 s.
func waitStatus(t *testing.T, a *Agent, q string, waiting, claimed uint64) QueueStatus {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, err := a.Status(testContext(t), q)
		if err != nil {
			t.Fatalf("Status(%s): %v", q, err)
		}
		if st.Waiting == waiting && st.Claimed == claimed {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue %s: %+v, want %d waiting and %d claimed", q, st, waiting, claimed)
		}
	}
}

// TestAgentClaimAndFinishByID: a ticket claimed on one connection is
// finished by its claim ID on another (as 'queue next' and a later
// 'queue ack' are two processes): ack removes it, nak puts it back, term
// drops it, and a finished claim cannot be finished again.
func TestAgentClaimAndFinishByID(t *testing.T) {
	t.Parallel()
	const p = "p.q"
	js, target := startAgentServer(t, NATSConfig{}, p)
	publishN(t, js, p+".green.verified", 3)
	claimer, finisher := connectAgent(t, target, p), connectAgent(t, target, p)
	ctx := testContext(t)

	c, err := claimer.Next(ctx, "green", 2*time.Second)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	if string(c.Data) != `{"n":1}` || c.Queue != "green" || c.Subject != p+".green.verified" || c.StreamSeq != 1 ||
		c.Delivery != 1 || c.Waiting != 2 || c.AckWait != 5*time.Minute || !strings.HasPrefix(c.ID, "TICKETS.green.1.1.1.") {
		t.Errorf("claim %+v", c)
	}
	if d := time.Until(c.Expires); d < 4*time.Minute || d > 5*time.Minute {
		t.Errorf("claim expires in %s, want the ack wait", d)
	}
	waitStatus(t, finisher, "green", 2, 1)
	if err := finisher.Ack(ctx, c.ID); err != nil {
		t.Fatalf("Ack by ID on another connection: %v", err)
	}
	waitStatus(t, finisher, "green", 2, 0)
	if err := finisher.Ack(ctx, c.ID); !errors.Is(err, ErrClaimFinished) {
		t.Errorf("second Ack: %v, want ErrClaimFinished", err)
	}
	if err := finisher.Nak(ctx, "$JS.ACK."+c.ID); !errors.Is(err, ErrClaimFinished) {
		t.Errorf("Nak of an acknowledged ticket, by its whole subject: %v, want ErrClaimFinished", err)
	}

	// Nak: the same ticket again, as a second delivery.
	c2, err := claimer.Next(ctx, "green", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := finisher.Nak(ctx, c2.ID); err != nil {
		t.Fatalf("Nak: %v", err)
	}
	again, err := claimer.Next(ctx, "green", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if again.StreamSeq != c2.StreamSeq || again.Delivery != 2 || again.ID == c2.ID {
		t.Errorf("after a nak: %+v, want stream seq %d delivered a second time", again, c2.StreamSeq)
	}

	// Term: gone for good, like an ack.
	if err := finisher.Term(ctx, again.ID); err != nil {
		t.Fatalf("Term: %v", err)
	}
	waitStatus(t, finisher, "green", 1, 0)
	last, err := claimer.Next(ctx, "green", 2*time.Second)
	if err != nil || last.StreamSeq != 3 {
		t.Fatalf("after a term: %+v, %v; want the third ticket", last, err)
	}
	if _, err := finisher.InProgress(ctx, last.ID); err != nil {
		t.Errorf("InProgress: %v", err)
	}
	if err := finisher.Ack(ctx, last.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := claimer.Next(ctx, "green", 200*time.Millisecond); !errors.Is(err, ErrNoTicket) {
		t.Errorf("empty queue: %v, want ErrNoTicket", err)
	}

	// A claim of a consumer that does not exist, or never delivered.
	if err := finisher.Ack(ctx, "TICKETS.purple.1.1.1.1.0"); err == nil || !strings.Contains(err.Error(), "consumer purple not found") {
		t.Errorf("unknown consumer: %v", err)
	}
	if err := finisher.Ack(ctx, "TICKETS.blue.1.1.1.1.0"); err == nil || !strings.Contains(err.Error(), "never delivered") {
		t.Errorf("never delivered: %v", err)
	}
}

// TestParseClaimID: claim IDs as 'queue next' prints them, whole
// acknowledgement subjects of either format, and what is not a claim.
func TestParseClaimID(t *testing.T) {
	for _, tt := range []struct {
		id   string
		want ClaimRef // zero: an error
	}{
		{"TICKETS.green.1.42.40.1767225600000000000.3", ClaimRef{Stream: "TICKETS", Consumer: "green", Delivery: 1, StreamSeq: 42, ConsumerSeq: 40}},
		{"$JS.ACK.TICKETS.dark-green.2.7.9.1767225600000000000.0", ClaimRef{Stream: "TICKETS", Consumer: "dark-green", Delivery: 2, StreamSeq: 7, ConsumerSeq: 9}},
		{"$JS.ACK.hub.ACCHASH.ACME.red.1.5.5.1767225600000000000.0.rAnD0m", ClaimRef{Stream: "ACME", Consumer: "red", Delivery: 1, StreamSeq: 5, ConsumerSeq: 5}},
		{"", ClaimRef{}},
		{"green:42", ClaimRef{}},
		{"TICKETS.green.1.x.40.1767225600000000000.3", ClaimRef{}},
		{"TICKETS.*.1.42.40.1767225600000000000.3", ClaimRef{}},
		{"TICKETS.green.0.0.0.0.0", ClaimRef{}},
		{"TICKETS.gr een.1.42.40.1.3", ClaimRef{}},
	} {
		got, err := ParseClaimID(tt.id)
		got.subject = ""
		switch {
		case tt.want == (ClaimRef{}) && err == nil:
			t.Errorf("ParseClaimID(%q) = %+v, want an error", tt.id, got)
		case tt.want != (ClaimRef{}) && (err != nil || got != tt.want):
			t.Errorf("ParseClaimID(%q) = %+v, %v; want %+v", tt.id, got, err, tt.want)
		}
	}
}

// TestAgentStatus: a missing stream is an error, a missing consumer is
// the queue's own problem.
func TestAgentStatus(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	a := connectAgent(t, Target{URL: s.ClientURL(), From: "test"}, "p")
	if _, err := a.Status(testContext(t), "green"); err == nil || !strings.HasPrefix(err.Error(), "stream TICKETS not found at nats://127.0.0.1:") {
		t.Errorf("no stream: %v", err)
	}
	_, js := connect(t, s, "admin")
	if _, err := js.CreateStream(testContext(t), jetstream.StreamConfig{Name: "TICKETS", Subjects: []string{"p.>"}}); err != nil {
		t.Fatal(err)
	}
	st, err := a.Status(testContext(t), "green")
	if err != nil || !strings.HasPrefix(st.Error, "consumer not found") || st.Subject != "p.green.>" {
		t.Errorf("no consumer: %+v, %v", st, err)
	}
	if _, err := ConnectAgent(context.Background(), Target{URL: "nats://127.0.0.1:1", From: "test"}, "TICKETS", "p", "agent"); err == nil ||
		!strings.HasPrefix(err.Error(), "connect to NATS at nats://127.0.0.1:1 (from test): ") {
		t.Errorf("no server: %v", err)
	}
}

// TestProvisionAckWait: nats.ack_wait is every queue's ack wait, and a
// changed one is applied to the existing consumers.
func TestProvisionAckWait(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	_, js := connect(t, s, "admin")
	for _, want := range []time.Duration{5 * time.Minute, 2 * time.Second} {
		provision(t, js, NATSConfig{AckWait: want}.WithDefaults(), "p", 10*time.Second)
		for _, q := range Queues() {
			c, err := js.Consumer(testContext(t), "TICKETS", q)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.CachedInfo().Config.AckWait; got != want {
				t.Errorf("%s: ack wait %s, want %s", q, got, want)
			}
		}
	}
}

// TestProvisionRateLimitedQueue: provisioning a deployment made before the
// rate-limited queue existed adds it, leaves the colour queues as they are
// (a rate-limited ticket already in one stays there, reachable), and new
// rate-limited tickets go to it alone.
func TestProvisionRateLimitedQueue(t *testing.T) {
	t.Parallel()
	const p = "p.q"
	s := startServer(t)
	_, js := connect(t, s, "admin")
	out := provision(t, js, NATSConfig{}, p, 10*time.Second)
	ctx := testContext(t)
	if err := out.Stream.DeleteConsumer(ctx, "rate-limited"); err != nil { // as before the queue existed
		t.Fatal(err)
	}
	publishN(t, js, p+".green.rate-limited", 1) // where rate-limited tickets went then
	before, err := out.Stream.Consumer(ctx, "green")
	if err != nil {
		t.Fatal(err)
	}

	out = provision(t, js, NATSConfig{}, p, 10*time.Second)
	rl, err := out.Stream.Consumer(ctx, "rate-limited")
	if err != nil {
		t.Fatalf("no rate-limited queue after provisioning: %v", err)
	}
	if f := rl.CachedInfo().Config.FilterSubject; f != p+".rate-limited.>" {
		t.Errorf("rate-limited filter %q", f)
	}
	after, err := out.Stream.Consumer(ctx, "green")
	if err != nil {
		t.Fatal(err)
	}
	if a, b := after.CachedInfo(), before.CachedInfo(); a.Config.FilterSubject != p+".green.>" || !a.Created.Equal(b.Created) {
		t.Errorf("green consumer changed: %+v", a.Config)
	}

	publishN(t, js, p+".rate-limited.green", 2)
	a := connectAgent(t, Target{URL: s.ClientURL(), From: "test"}, p)
	waitStatus(t, a, "green", 1, 0)
	waitStatus(t, a, "rate-limited", 2, 0)
}
