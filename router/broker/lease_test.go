package broker

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// worklog records which replica works which mailbox, as Leases.Run's work
// calls come and go, and every moment two replicas worked one mailbox.
type worklog struct {
	mu      sync.Mutex
	active  map[string][]string // mailbox → replicas in work for it now
	calls   map[string]int      // mailbox → work calls so far
	overlap []string
	// returnAt, if set, makes the work call number n (from 1) for mailbox
	// return at once instead of waiting for its context.
	returnAt func(mailbox string, n int) bool
}

func newWorklog(t *testing.T) *worklog {
	w := &worklog{active: map[string][]string{}, calls: map[string]int{}}
	// Registered before any replica starts, so it runs after they stopped.
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if len(w.overlap) > 0 {
			t.Errorf("a mailbox was worked by more than one replica at once: %s", strings.Join(w.overlap, "; "))
		}
	})
	return w
}

// work is replica's work function for Leases.Run.
func (w *worklog) work(replica string) func(ctx context.Context, mailbox string) {
	return func(ctx context.Context, mailbox string) {
		w.mu.Lock()
		w.calls[mailbox]++
		n := w.calls[mailbox]
		w.active[mailbox] = append(w.active[mailbox], replica)
		if len(w.active[mailbox]) > 1 {
			w.overlap = append(w.overlap, fmt.Sprintf("%s by %q at %s", mailbox, w.active[mailbox], time.Now().Format("15:04:05.000")))
		}
		w.mu.Unlock()
		defer func() {
			w.mu.Lock()
			w.active[mailbox] = slices.DeleteFunc(w.active[mailbox], func(r string) bool { return r == replica })
			w.mu.Unlock()
		}()
		if w.returnAt != nil && w.returnAt(mailbox, n) {
			return
		}
		<-ctx.Done()
	}
}

// workers lists the replicas working mailbox now.
func (w *worklog) workers(mailbox string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.active[mailbox])
}

// shares counts the mailboxes each replica works now.
func (w *worklog) shares() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]int{}
	for _, rs := range w.active {
		for _, r := range rs {
			out[r]++
		}
	}
	return out
}

func (w *worklog) callsOf(mailbox string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls[mailbox]
}

// replica is one Leases.Run on its own connection, as one service process.
type replica struct {
	id     string
	nc     *nats.Conn
	js     *JetStream
	leases *Leases
	cancel context.CancelFunc
	done   chan struct{}
}

// startReplica connects, provisions with ttl as every replica does, and
// runs leases for mailboxes until stopped or the test ends.
func startReplica(t *testing.T, s *Embedded, id string, ttl time.Duration, mailboxes []string, w *worklog) *replica {
	t.Helper()
	nc, js := connect(t, s, id)
	r := &replica{id: id, nc: nc, js: provision(t, js, NATSConfig{}, ticket.DefaultPrefix, ttl), done: make(chan struct{})}
	r.leases = &Leases{JS: r.js, Replica: id, TTL: ttl, Log: zerolog.Nop()}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		r.leases.Run(ctx, mailboxes, w.work(id))
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the replica's Run and waits for it to return.
func (r *replica) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("replica %s: Run still running 10s after its context was cancelled", r.id)
	}
}

// waitFor polls cond until it holds, failing the test with what (and the
// worklog's shares, when given) after timeout; it returns how long it took.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool, w ...*worklog) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("not within %v: %s%s", timeout, what, sharesNow(w))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// holds polls cond for d, failing the test the first time it does not hold.
func holds(t *testing.T, d time.Duration, what string, cond func() bool, w ...*worklog) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if !cond() {
			t.Fatalf("%s stopped holding%s", what, sharesNow(w))
		}
	}
}

func sharesNow(w []*worklog) string {
	if len(w) == 0 {
		return ""
	}
	return fmt.Sprintf(" (mailboxes worked per replica: %v)", w[0].shares())
}

// single returns the one replica working mailbox, or "".
func single(w *worklog, mailbox string) string {
	if ws := w.workers(mailbox); len(ws) == 1 {
		return ws[0]
	}
	return ""
}

// TestLeaseOneHolder shows that of two replicas exactly one works a
// mailbox, steadily, that Holder names it, and that when its Run ends the
// lease is released at once and the other replica takes over within a
// renewal period instead of waiting for the TTL.
func TestLeaseOneHolder(t *testing.T) {
	t.Parallel()
	const ttl = 2 * time.Second
	s := startServer(t)
	w := newWorklog(t)
	mailbox := "INBOX/Sub folder"
	rs := map[string]*replica{}
	for _, id := range []string{"replica-a", "replica b/ü"} {
		rs[id] = startReplica(t, s, id, ttl, []string{mailbox}, w)
	}
	waitFor(t, 3*ttl, "one replica working "+mailbox, func() bool { return single(w, mailbox) != "" })
	holder := single(w, mailbox)
	holds(t, 2*ttl, "exactly one replica, "+holder+", working "+mailbox, func() bool {
		ws := w.workers(mailbox)
		return len(ws) == 1 && ws[0] == holder
	})
	ctx := testContext(t)
	for _, r := range rs {
		if got := r.leases.Holder(ctx, mailbox); got != holder {
			t.Fatalf("replica %s: Holder(%q) = %q, want %q, the replica working it", r.id, mailbox, got, holder)
		}
		if got := r.leases.Holder(ctx, "Nobody's"); got != "" {
			t.Fatalf("replica %s: Holder of a mailbox nobody holds = %q, want \"\"", r.id, got)
		}
	}

	rs[holder].stop(t)
	stopped := time.Now()
	if got := rs[holder].leases.Holder(ctx, mailbox); got == holder {
		t.Fatalf("after %s's Run returned, Holder(%q) = %q, want the lease released", holder, mailbox, got)
	}
	var other string
	for id := range rs {
		if id != holder {
			other = id
		}
	}
	waitFor(t, ttl, other+" taking "+mailbox+" over", func() bool { return single(w, mailbox) == other })
	// The other replica's next round is at most ttl/3 away; an expired
	// lease would take at least 2/3 ttl.
	took := time.Since(stopped)
	t.Logf("%s took %s over %v after %s stopped (TTL %v)", other, mailbox, took, holder, ttl)
	if took > ttl/2 {
		t.Fatalf("%s took %s over %v after %s released it, want under %v (a renewal period is %v)", other, mailbox, took, holder, ttl/2, ttl/3)
	}
	if got := rs[other].leases.Holder(ctx, mailbox); got != other {
		t.Fatalf("Holder(%q) = %q after the take-over, want %q", mailbox, got, other)
	}
}

// TestLeaseCrashedHolder shows that when the replica working a mailbox can
// neither renew nor release its lease (its connection is gone), the other
// replica takes the mailbox over once the lease expired: not before it
// could have, and within TTL plus a renewal period.
func TestLeaseCrashedHolder(t *testing.T) {
	t.Parallel()
	const ttl = 1500 * time.Millisecond
	s := startServer(t)
	w := newWorklog(t)
	mailbox := "INBOX"
	rs := map[string]*replica{}
	for _, id := range []string{"replica-a", "replica-b"} {
		rs[id] = startReplica(t, s, id, ttl, []string{mailbox}, w)
	}
	waitFor(t, 3*ttl, "one replica working "+mailbox, func() bool { return single(w, mailbox) != "" })
	holder := single(w, mailbox)
	var other string
	for id := range rs {
		if id != holder {
			other = id
		}
	}

	rs[holder].nc.Close()
	took := waitFor(t, 3*ttl, other+" taking "+mailbox+" over from crashed "+holder, func() bool { return single(w, mailbox) == other })
	t.Logf("%s took %s over %v after %s crashed (TTL %v)", other, mailbox, took, holder, ttl)
	if took < ttl/2 || took > 2*ttl {
		t.Fatalf("%s took %s over %v after %s crashed, want between %v (its lease still valid) and %v (twice the TTL)",
			other, mailbox, took, holder, ttl/2, 2*ttl)
	}
}

// TestLeaseFairShare shows mailboxes spread over the replicas: one replica
// alone works all four; a second joining gets two of them; a third joining
// gets one (2, 1, 1); and after one stops, the other two share all four
// again.
func TestLeaseFairShare(t *testing.T) {
	t.Parallel()
	const ttl = 1500 * time.Millisecond
	s := startServer(t)
	w := newWorklog(t)
	mailboxes := []string{"INBOX", "Support", "Billing", "Données"}
	allWorked := func() bool {
		for _, m := range mailboxes {
			if len(w.workers(m)) != 1 {
				return false
			}
		}
		return true
	}
	balanced := func(want map[string]int) func() bool {
		return func() bool { return allWorked() && maps.Equal(w.shares(), want) }
	}

	a := startReplica(t, s, "replica-a", ttl, mailboxes, w)
	waitFor(t, 3*ttl, "replica-a alone working all four mailboxes", balanced(map[string]int{"replica-a": 4}), w)

	startReplica(t, s, "replica-b", ttl, mailboxes, w)
	took := waitFor(t, 4*ttl, "two replicas working two mailboxes each", balanced(map[string]int{"replica-a": 2, "replica-b": 2}), w)
	t.Logf("replica-b joined: two each after %v", took)
	holds(t, ttl, "two replicas working two mailboxes each", balanced(map[string]int{"replica-a": 2, "replica-b": 2}), w)

	// A third replica gets a mailbox too: shares are 4/3 rounded down,
	// one more for the first replicas by id.
	startReplica(t, s, "replica-c", ttl, mailboxes, w)
	three := map[string]int{"replica-a": 2, "replica-b": 1, "replica-c": 1}
	took = waitFor(t, 4*ttl, "three replicas working 2, 1 and 1 mailboxes", balanced(three), w)
	t.Logf("replica-c joined: balanced after %v", took)
	holds(t, ttl, "three replicas working 2, 1 and 1 mailboxes", balanced(three), w)

	a.stop(t)
	rest := map[string]int{"replica-b": 2, "replica-c": 2}
	took = waitFor(t, 4*ttl, "replica-b and replica-c working two mailboxes each after replica-a stopped", balanced(rest), w)
	t.Logf("replica-a stopped: two each after %v", took)
}

// TestLeaseCleanStopHandsOverAll shows that a replica stopping cleanly
// hands all its mailboxes over at once: the replica left takes every one
// within a renewal period, without waiting for the stopped replica's
// heartbeat to expire.
func TestLeaseCleanStopHandsOverAll(t *testing.T) {
	t.Parallel()
	const ttl = 3 * time.Second
	s := startServer(t)
	w := newWorklog(t)
	mailboxes := []string{"INBOX", "Support", "Billing", "Données"}
	a := startReplica(t, s, "replica-a", ttl, mailboxes, w)
	startReplica(t, s, "replica-b", ttl, mailboxes, w)
	waitFor(t, 4*ttl, "two replicas working two mailboxes each", func() bool {
		return maps.Equal(w.shares(), map[string]int{"replica-a": 2, "replica-b": 2})
	}, w)

	a.stop(t)
	took := waitFor(t, 2*ttl, "replica-b working all four mailboxes after replica-a stopped", func() bool {
		return maps.Equal(w.shares(), map[string]int{"replica-b": 4})
	}, w)
	// replica-b's next round is at most ttl/3 away; a heartbeat of
	// replica-a left to expire would take at least 2/3 ttl.
	t.Logf("replica-b took all four mailboxes over %v after replica-a stopped (TTL %v)", took, ttl)
	if took > ttl/2 {
		t.Fatalf("replica-b took all four mailboxes over %v after replica-a stopped, want under %v (a renewal period is %v)", took, ttl/2, ttl/3)
	}
}

// TestLeaseWorkReturns shows that when work returns by itself while its
// lease is held, the lease is released (deleted, not left to expire) and
// the mailbox is worked again later.
func TestLeaseWorkReturns(t *testing.T) {
	t.Parallel()
	const ttl = 1500 * time.Millisecond
	s := startServer(t)
	w := newWorklog(t)
	w.returnAt = func(_ string, n int) bool { return n == 1 }
	mailbox := "INBOX"

	_, js := connect(t, s, "watcher")
	out := provision(t, js, NATSConfig{}, ticket.DefaultPrefix, ttl)
	ctx := testContext(t)
	watch, err := out.Leases.Watch(ctx, mailboxKey(mailbox))
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Stop()

	startReplica(t, s, "replica-a", ttl, []string{mailbox}, w)
	timeout := time.After(3 * ttl)
	var ops []string
	for released := false; !released; {
		select {
		case e, ok := <-watch.Updates():
			if !ok {
				t.Fatalf("watch of the lease of %s ended; saw %q", mailbox, ops)
			}
			if e == nil {
				continue // the initial values are in
			}
			ops = append(ops, fmt.Sprintf("%v %q", e.Operation(), e.Value()))
			released = e.Operation() == jetstream.KeyValueDelete
		case <-timeout:
			t.Fatalf("lease of %s not released within %v after work returned; saw %q", mailbox, 3*ttl, ops)
		}
	}
	waitFor(t, 3*ttl, mailbox+" worked again (a second work call) after work returned", func() bool {
		return w.callsOf(mailbox) == 2 && single(w, mailbox) == "replica-a"
	}, w)
	if got := (&Leases{JS: out}).Holder(ctx, mailbox); got != "replica-a" {
		t.Fatalf("Holder(%q) = %q after it was taken again, want replica-a", mailbox, got)
	}
}
