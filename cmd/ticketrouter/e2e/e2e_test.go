package e2e

// End-to-end tests: the real `ticketrouter run` binary in child processes,
// against a real Dovecot and real nats-server processes, all on
// 127.0.0.1. SIGKILL here is a real crash: no deferred function runs, no
// lease is released, nothing is flushed. Skipped in -short mode.
//
// Each test ends with checkExactlyOnce: every mail of the backlog in
// Processed, INBOX and Quarantine empty, and the stream exactly one ticket
// per mail with its raw mail in the object store. Throughout, progress
// checks that the stream never holds fewer tickets than Processed held
// mails before: no mail leaves INBOX without its ticket.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ticketrouter/ticketrouter/router/broker"
)

// killPoint is when a worker incarnation is killed: after a delay from its
// start, or once it published a number of tickets (and then after a delay,
// so that the kill falls anywhere within a mail's handling, a batch's move
// or between them: handled mails are moved in batches, every second).
type killPoint struct {
	after     time.Duration
	published int
}

func (k killPoint) String() string {
	if k.published > 0 {
		return fmt.Sprintf("after %d tickets published, +%v", k.published, k.after)
	}
	return fmt.Sprintf("%v after start", k.after)
}

// TestE2ECrashRestart: a 3,000-mail backlog (large enough for the kills
// to fall mid-drain), the worker SIGKILLed eight
// times at random points (three while provisioning, waiting for the dead
// incarnation's lease or working its first mails; five mid-drain) and
// restarted each time. Nothing is lost and nothing is doubled: each mail
// is in Processed once and has exactly one ticket, with its raw mail.
func TestE2ECrashRestart(t *testing.T) {
	const mails = 3000
	e := newEnv(t, mails, 1)
	rng := rand.New(rand.NewPCG(e2eSeed(t), 0))
	plan := []killPoint{
		{after: jitter(rng, 20*time.Millisecond, 500*time.Millisecond)},  // provisioning, first mails
		{after: jitter(rng, 50*time.Millisecond, 1500*time.Millisecond)}, // provisioning, waiting for the lease
		{after: jitter(rng, 2*time.Second, 4*time.Second)},               // around taking the dead one's lease
	}
	for range 5 { // mid-drain
		plan = append(plan, killPoint{published: 20 + rng.IntN(1500), after: jitter(rng, 0, 150*time.Millisecond)})
	}
	t.Logf("kill plan: %v", plan)

	config := e.workerConfig(workerOpts{replica: "e2e-crash"})
	var logs []string
	began := time.Now()
	for i, k := range plan {
		w := e.startWorker(fmt.Sprintf("worker-%d", i+1), config)
		logs = append(logs, w.log)
		if k.published > 0 {
			for countLog(w.log, "ticket published", nil) < k.published && e.progress() < mails {
				if time.Since(w.started) > 60*time.Second {
					t.Fatalf("worker %d published fewer than %d tickets in 60 s; last log line %q", i+1, k.published, lastLog(w.log))
				}
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(k.after)
		} else {
			time.Sleep(time.Until(w.started.Add(k.after)))
		}
		if !w.alive() {
			t.Fatalf("worker %d exited by itself before its kill (%v); last log line %q", i+1, w.Err(), lastLog(w.log))
		}
		w.kill(t)
		t.Logf("kill %d (%v): %v after start, %d mails in Processed; its last log line: %q",
			i+1, k, time.Since(w.started).Round(time.Millisecond), e.progress(), lastLog(w.log))
	}
	w := e.startWorker("worker-final", config)
	logs = append(logs, w.log)
	e.waitProcessed(mails, 120*time.Second, w)
	t.Logf("backlog drained %v after the first start", time.Since(began).Round(100*time.Millisecond))
	for countLog(w.log, "running", nil) == 0 { // a SIGTERM before main runs kills it
		if time.Since(w.started) > 30*time.Second {
			t.Fatalf("the last worker did not log \"running\" within 30 s; last log line %q", lastLog(w.log))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := w.stop(t, 20*time.Second); code != 0 {
		t.Errorf("the last worker exited with status %d after SIGTERM, want 0", code)
	}
	published, duplicates := 0, 0
	for _, l := range logs {
		published += countLog(l, "ticket published", nil)
		duplicates += countLog(l, "ticket published", func(e logEntry) bool { return e["duplicate"] == true })
	}
	t.Logf("the incarnations logged %d publications, %d of them found already published", published, duplicates)
	e.checkExactlyOnce()
}

// TestE2ENATSOutage: nats-server is SIGKILLed mid-backlog, stays down for
// 30 s and is restarted on the same port and store. Meanwhile the worker
// stays up, /readyz says it is not ready, and no mail leaves INBOX
// without its ticket; afterwards the same worker process resumes by
// itself and finishes, every mail with exactly one ticket.
func TestE2ENATSOutage(t *testing.T) {
	const mails, outage = 3000, 30 * time.Second
	e := newEnv(t, mails, 1)
	port := freePorts(t, 1)[0]
	w := e.startWorker("worker", e.workerConfig(workerOpts{replica: "e2e-outage", httpPort: port}))
	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", port)

	e.waitProcessed(mails/4, 60*time.Second, w)
	if code, body, err := httpGet(readyz); code != http.StatusOK {
		t.Errorf("/readyz while working: %d %q %v, want 200", code, body, err)
	}
	node := e.nodes[0]
	node.proc.kill(t)
	down := time.Now()
	atKill := e.count("Processed")
	t.Logf("nats-server killed with %d mails in Processed", atKill)

	// The outage: sample the worker, /readyz and Processed.
	var notReady, samples int
	var firstNotReady time.Duration = -1
	var why string // /readyz's first answer in the outage
	for time.Since(down) < outage {
		time.Sleep(500 * time.Millisecond)
		if !w.alive() {
			t.Fatalf("the worker exited during the NATS outage (%v); last log line %q", w.Err(), lastLog(w.log))
		}
		code, body, err := httpGet(readyz)
		switch {
		case code == http.StatusServiceUnavailable && strings.Contains(body, "NATS not connected"):
			notReady++
			if firstNotReady < 0 {
				firstNotReady, why = time.Since(down), body
			}
		case time.Since(down) > 3*time.Second:
			t.Errorf("/readyz %v into the NATS outage: %d %q %v; want 503 naming NATS", time.Since(down).Round(time.Millisecond), code, body, err)
		}
		samples++
		e.progress()
	}
	atRestart := e.srv.Bodies(t, "Processed")
	if len(atRestart) > atKill+1 {
		t.Errorf("%d mails moved to Processed during the NATS outage (%d at the kill, %d now); at most the one whose ticket was acknowledged before the kill may be",
			len(atRestart)-atKill, atKill, len(atRestart))
	}
	t.Logf("outage %v: /readyz said not ready in %d of %d samples, first after %v (%q); %d mails in Processed",
		time.Since(down).Round(time.Millisecond), notReady, samples, firstNotReady.Round(time.Millisecond), why, len(atRestart))

	node.start(t)
	node.waitReady(t, 30*time.Second)
	up := time.Now()
	// Every mail in Processed before the restart has its ticket in the
	// restarted stream: acknowledged tickets survived the crash.
	inStream := map[string]bool{}
	for _, r := range e.readStream() {
		if r.ticket != nil {
			inStream[r.ticket.ID] = true
		}
	}
	lost := 0
	for _, b := range atRestart {
		if m := e.byID[idOf(b)]; m == nil || !inStream[m.id] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of the %d mails in Processed at the restart have no ticket in the stream", lost, len(atRestart))
	}

	e.waitProcessed(mails, 120*time.Second, w)
	t.Logf("backlog drained %v after nats-server came back", time.Since(up).Round(100*time.Millisecond))
	if code, body, err := httpGet(readyz); code != http.StatusOK {
		t.Errorf("/readyz after the outage: %d %q %v, want 200", code, body, err)
	}
	if !w.alive() {
		t.Fatalf("the worker exited (%v)", w.Err())
	}
	t.Logf("worker log: %d \"NATS disconnected\", %d \"NATS reconnected\", %d \"lease lost\", %d \"lease taken\"",
		countLog(w.log, "NATS disconnected", nil), countLog(w.log, "NATS reconnected", nil),
		countLog(w.log, "lease lost: stopping work on the mailbox", nil), countLog(w.log, "lease taken", nil))
	if code := w.stop(t, 20*time.Second); code != 0 {
		t.Errorf("the worker exited with status %d after SIGTERM, want 0", code)
	}
	e.checkExactlyOnce()
}

// TestE2EClusterNodeLoss: a three-node nats-server cluster, the stream,
// object store and buckets with three replicas. Mid-backlog the node the
// worker is connected to, made leader of the TICKETS stream first, is
// SIGKILLed: the worker must fail over to another URL of nats.url while
// the stream elects a new leader. Every mail has exactly one ticket.
func TestE2EClusterNodeLoss(t *testing.T) {
	const mails = 3000
	e := newEnv(t, mails, 3)
	w := e.startWorker("worker", e.workerConfig(workerOpts{replica: "e2e-cluster", replicas: 3}))
	e.waitProcessed(mails/4, 60*time.Second, w)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, name := range []string{"TICKETS", "OBJ_TICKETS-raw", "KV_TICKETS-threads", "KV_TICKETS-leases", "KV_TICKETS-checkpoints"} {
		s, err := e.js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if n := s.CachedInfo().Config.Replicas; n != 3 {
			t.Errorf("stream %s has %d replicas, want 3 (nats.replicas)", name, n)
		}
	}
	victim := e.clientServer("ticketrouter e2e-cluster")
	leader := e.moveStreamLeader(ctx, "TICKETS", victim.name)
	victim.proc.kill(t)
	killed := time.Now()
	t.Logf("killed %s, the worker's server and the TICKETS stream's leader (which was %s before), with %d mails in Processed",
		victim.name, leader, e.count("Processed"))

	e.waitProcessed(mails, 120*time.Second, w)
	t.Logf("backlog drained %v after the kill; Processed stood still for %v at most; worker log: %d \"NATS disconnected\", %d \"NATS reconnected\", %d \"mail not handled: waiting for what is unavailable\"",
		time.Since(killed).Round(100*time.Millisecond), e.stall.Round(100*time.Millisecond), countLog(w.log, "NATS disconnected", nil),
		countLog(w.log, "NATS reconnected", nil), countLog(w.log, "mail not handled: waiting for what is unavailable", nil))
	warnings := map[string]int{}
	for _, l := range logEntries(w.log) {
		if l.str("level") == "warn" || l.str("level") == "error" {
			warnings[l.str("level")+": "+l.str("message")]++
		}
	}
	for w, n := range warnings {
		t.Logf("worker %s (%d times)", w, n)
	}
	if n := countLog(w.log, "NATS reconnected", nil); n == 0 {
		t.Errorf("the worker never logged \"NATS reconnected\" though its server was killed")
	}
	if code := w.stop(t, 20*time.Second); code != 0 {
		t.Errorf("the worker exited with status %d after SIGTERM, want 0", code)
	}
	e.checkExactlyOnce()
}

// TestE2EReplicaTakeover: two worker processes, replicas e2e-a and e2e-b,
// on one mailbox and one NATS; e2e-b starts first and works alone, then
// e2e-a joins. Only one works the mailbox at a time: never more than one
// IMAP connection, one lease holder, and no mail moved by both (the lease
// may pass from one live replica to the other when they rebalance, but
// never overlaps). The holder is SIGKILLed mid-backlog; the other takes
// over within 15 s (the lease TTL is 5 s) and finishes, every mail with
// exactly one ticket.
func TestE2EReplicaTakeover(t *testing.T) {
	const mails, ttl, within = 3000, 5 * time.Second, 15 * time.Second
	e := newEnv(t, mails, 1)
	start := func(id string) *proc {
		return e.startWorker("worker-"+id, e.workerConfig(workerOpts{replica: id, leaseTTL: ttl}))
	}
	workers := map[string]*proc{"e2e-b": start("e2e-b")}
	e.waitProcessed(50, 60*time.Second, workers["e2e-b"])
	workers["e2e-a"] = start("e2e-a")
	t.Logf("e2e-a started with %d mails processed by e2e-b", e.count("Processed"))
	leases := func() *broker.Leases {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for {
			kv, err := e.js.KeyValue(ctx, "TICKETS-leases")
			if err == nil {
				return &broker.Leases{JS: &broker.JetStream{Leases: kv}}
			}
			if ctx.Err() != nil {
				t.Fatalf("the workers did not provision the leases bucket within 30 s: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	holder := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return leases.Holder(ctx, "INBOX")
	}

	// Until a third of the backlog is done: at most one IMAP connection,
	// and the lease held by one of them (or, while it passes, by none).
	var holders []string
	deadline := time.Now().Add(60 * time.Second)
	for p := e.progress(); p < mails/3; p = e.progress() {
		if n := e.srv.Connections(); n > 1 {
			t.Errorf("%d IMAP connections of the workers with %d mails processed, want at most 1: both replicas work the mailbox", n, p)
		}
		if h := holder(); h != "" && (len(holders) == 0 || holders[len(holders)-1] != h) {
			if workers[h] == nil {
				t.Fatalf("the lease is held by %q, neither e2e-a nor e2e-b", h)
			}
			holders = append(holders, h)
			t.Logf("%s holds the lease (%d mails processed)", h, p)
		}
		for id, w := range workers {
			if !w.alive() {
				t.Fatalf("%s exited (%v); last log line %q", id, w.Err(), lastLog(w.log))
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d mails processed after 60 s", p, mails/3)
		}
		time.Sleep(100 * time.Millisecond)
	}
	first := holder()
	if workers[first] == nil {
		t.Fatalf("lease holder %q, want e2e-a or e2e-b", first)
	}
	standbyID := map[string]string{"e2e-a": "e2e-b", "e2e-b": "e2e-a"}[first]
	active, standby := workers[first], workers[standbyID]
	// The standby's own log agrees that it holds nothing now.
	if last := lastLeaseLog(standby.log); last == "lease taken" {
		t.Errorf("%s holds the lease, but the last lease event of %s is %q", first, standbyID, last)
	}

	active.kill(t)
	killed := time.Now()
	atKill := e.count("Processed")
	taken := countLog(standby.log, "lease taken", nil)
	t.Logf("killed %s with %d mails in Processed", first, atKill)
	for countLog(standby.log, "lease taken", nil) == taken {
		if time.Since(killed) > within {
			t.Fatalf("%s did not take the lease within %v of %s's death (lease TTL %v); holder now %q", standbyID, within, first, ttl, holder())
		}
		if !standby.alive() {
			t.Fatalf("%s exited (%v)", standbyID, standby.Err())
		}
		time.Sleep(50 * time.Millisecond)
	}
	takeover := time.Since(killed)
	resumed := e.waitProcessed(atKill+1, within, standby)
	t.Logf("%s took the lease %v after the kill, and Processed grew %v after the kill (%d mails)",
		standbyID, takeover.Round(10*time.Millisecond), time.Since(killed).Round(10*time.Millisecond), resumed)

	e.waitProcessed(mails, 120*time.Second, standby)
	if h := holder(); h != standbyID {
		t.Errorf("lease holder at the end: %q, want %s", h, standbyID)
	}
	if code := standby.stop(t, 20*time.Second); code != 0 {
		t.Errorf("%s exited with status %d after SIGTERM, want 0", standbyID, code)
	}
	// No mail was moved by both replicas.
	movedBy := map[uint32]string{}
	for id, w := range workers {
		for _, l := range logEntries(w.log) {
			if l.str("message") != "moved" {
				continue
			}
			for _, uid := range movedUIDs(t, l) {
				if other, ok := movedBy[uid]; ok && other != id {
					t.Errorf("UID %v was moved by %s and by %s", uid, other, id)
				}
				movedBy[uid] = id
			}
		}
	}
	e.checkExactlyOnce()
}

// lastLeaseLog returns the last log message of a worker about taking or
// leaving a lease, "" if none.
func lastLeaseLog(path string) string {
	last := ""
	for _, l := range logEntries(path) {
		if m := l.str("message"); strings.HasPrefix(m, "lease ") || strings.HasPrefix(m, "work on the mailbox ended") {
			last = m
		}
	}
	return last
}
