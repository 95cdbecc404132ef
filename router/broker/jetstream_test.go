package broker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/ticketrouter/ticketrouter/ingest"
	"github.com/ticketrouter/ticketrouter/ingest/mail"
	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// startServer starts an embedded nats-server with JetStream on a free
// loopback port; it is shut down when the test ends.
func startServer(t *testing.T) *Embedded {
	t.Helper()
	s, err := StartEmbedded(EmbeddedConfig{
		StoreDir: t.TempDir(), Host: "127.0.0.1", Port: -1, MaxStore: 256 << 20, MaxMemory: 16 << 20,
	}, zerolog.Nop())
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// connect connects to s as the service does, closed when the test ends.
func connect(t *testing.T, s *Embedded, name string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := Connect(ctx, NATSConfig{}, s, name, zerolog.Nop())
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	return nc, js
}

// provision provisions cfg on js, failing the test on an error.
func provision(t *testing.T, js jetstream.JetStream, cfg NATSConfig, prefix string, leaseTTL time.Duration) *JetStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := Provision(ctx, js, cfg, prefix, leaseTTL)
	if err != nil {
		t.Fatalf("Provision(%+v, %q): %v", cfg, prefix, err)
	}
	return out
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestQueues pins the queues and their subject filters that README's
// "What lives in NATS" documents.
func TestQueues(t *testing.T) {
	want := []string{"blue", "red", "pink", "dark-green", "green", "unknown", "rate-limited", "ignored", "deadletter"}
	if got := Queues(); !slices.Equal(got, want) {
		t.Fatalf("Queues() = %q, want %q", got, want)
	}
	for _, tt := range []struct{ queue, want string }{
		{"blue", "p.q.blue.>"},
		{"dark-green", "p.q.dark-green.>"},
		{"unknown", "p.q.unknown.>"},
		{"rate-limited", "p.q.rate-limited.>"},
		{"ignored", "p.q.ignored"},
		{"deadletter", "p.q.deadletter"},
	} {
		if got := QueueSubject("p.q", tt.queue); got != tt.want {
			t.Errorf("QueueSubject(%q, %q) = %q, want %q", "p.q", tt.queue, got, tt.want)
		}
	}
}

// TestProvision shows that Provision creates the stream, a consumer per
// queue with its filter, the object store and the buckets under the
// documented names (following the stream name and prefix), that calling it
// again changes nothing, and that a changed MaxAge updates the stream, the
// object store and the buckets with a TTL of their own.
func TestProvision(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		cfg    NATSConfig
		prefix string
		stream string
	}{
		{"defaults", NATSConfig{}, ticket.DefaultPrefix, "TICKETS"},
		{"custom", NATSConfig{Stream: "SUPPORT_EU", DuplicateWindow: 10 * time.Minute, MaxAge: 7 * 24 * time.Hour}, "acme.support.eu", "SUPPORT_EU"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t)
			_, js := connect(t, s, "provision")
			ctx := testContext(t)
			const leaseTTL = 3 * time.Second
			want := tt.cfg.WithDefaults()

			first := provision(t, js, tt.cfg, tt.prefix, leaseTTL)
			checkProvisioned(t, js, first, tt.stream, tt.prefix, want.MaxAge, want.DuplicateWindow, leaseTTL)
			// A ticket waiting in the blue queue must outlive provisioning again.
			if _, err := js.Publish(ctx, tt.prefix+".blue.verified", []byte("{}")); err != nil {
				t.Fatal(err)
			}
			created := first.Stream.CachedInfo().Created
			again := provision(t, js, tt.cfg, tt.prefix, leaseTTL)
			checkProvisioned(t, js, again, tt.stream, tt.prefix, want.MaxAge, want.DuplicateWindow, leaseTTL)
			checkWaiting(t, again, created)

			names := map[string]bool{}
			for name := range js.StreamNames(ctx).Name() {
				names[name] = true
			}
			wantNames := map[string]bool{
				tt.stream: true, "OBJ_" + tt.stream + "-raw": true,
				"KV_" + tt.stream + "-checkpoints": true, "KV_" + tt.stream + "-leases": true,
				"KV_" + tt.stream + "-replicas": true,
				"KV_" + tt.stream + "-threads":  true, "KV_" + tt.stream + "-answered": true,
			}
			if !maps.Equal(names, wantNames) {
				t.Fatalf("after provisioning twice, streams are %v, want %v", names, wantNames)
			}

			changed := tt.cfg
			changed.MaxAge = want.MaxAge + 24*time.Hour
			updated := provision(t, js, changed, tt.prefix, leaseTTL)
			checkProvisioned(t, js, updated, tt.stream, tt.prefix, changed.MaxAge, want.DuplicateWindow, leaseTTL)
			checkWaiting(t, updated, created)
		})
	}
}

// checkWaiting checks that the stream made at created still holds the one
// ticket published to the blue queue, and the queue still offers it.
func checkWaiting(t *testing.T, js *JetStream, created time.Time) {
	t.Helper()
	ctx := testContext(t)
	info, err := js.Stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Created.Equal(created) || info.State.Msgs != 1 {
		t.Fatalf("after provisioning again, the stream was created %v and holds %d messages; want %v, 1",
			info.Created, info.State.Msgs, created)
	}
	if n := pending(t, js, "blue", 1); n != 1 {
		t.Fatalf("after provisioning again, the blue queue has %d pending, want 1", n)
	}
}

// pending is the number of messages queue offers, polled for up to five
// seconds until it is want: the consumer counts new messages a moment after
// the stream stored them.
func pending(t *testing.T, js *JetStream, queue string, want uint64) uint64 {
	t.Helper()
	ctx := testContext(t)
	c, err := js.Stream.Consumer(ctx, queue)
	if err != nil {
		t.Fatalf("consumer %s: %v", queue, err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		ci, err := c.Info(ctx)
		if err != nil {
			t.Fatalf("consumer %s: %v", queue, err)
		}
		if ci.NumPending == want || time.Now().After(deadline) {
			return ci.NumPending
		}
	}
}

// checkProvisioned checks everything Provision sets up against the
// expected settings, in the server's view.
func checkProvisioned(t *testing.T, js jetstream.JetStream, out *JetStream, stream, prefix string, maxAge, dupWindow, leaseTTL time.Duration) {
	t.Helper()
	ctx := testContext(t)
	info, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	cfg := info.CachedInfo().Config
	if !slices.Equal(cfg.Subjects, []string{prefix + ".>"}) || cfg.MaxAge != maxAge || cfg.Duplicates != dupWindow ||
		cfg.Storage != jetstream.FileStorage || cfg.Retention != jetstream.LimitsPolicy || cfg.Replicas != 1 {
		t.Fatalf("stream %s: subjects %q, max age %v, duplicate window %v, storage %v, retention %v, replicas %d; "+
			"want [%s.>], %v, %v, file, limits, 1",
			stream, cfg.Subjects, cfg.MaxAge, cfg.Duplicates, cfg.Storage, cfg.Retention, cfg.Replicas, prefix, maxAge, dupWindow)
	}
	if out.Stream == nil || out.Stream.CachedInfo().Config.Name != stream {
		t.Fatalf("Provision returned stream %v, want %s", out.Stream, stream)
	}

	var consumers []string
	for name := range info.ConsumerNames(ctx).Name() {
		consumers = append(consumers, name)
	}
	slices.Sort(consumers)
	wantConsumers := slices.Sorted(slices.Values(Queues()))
	if !slices.Equal(consumers, wantConsumers) {
		t.Fatalf("stream %s has consumers %q, want %q", stream, consumers, wantConsumers)
	}
	for _, q := range Queues() {
		c, err := info.Consumer(ctx, q)
		if err != nil {
			t.Fatalf("consumer %s: %v", q, err)
		}
		cc := c.CachedInfo().Config
		if cc.Durable != q || cc.FilterSubject != QueueSubject(prefix, q) || cc.AckPolicy != jetstream.AckExplicitPolicy || cc.AckWait != 5*time.Minute {
			t.Fatalf("consumer %s: durable %q, filter %q, ack %v, ack wait %v; want durable %q, filter %q, explicit ack, 5m0s",
				q, cc.Durable, cc.FilterSubject, cc.AckPolicy, cc.AckWait, q, QueueSubject(prefix, q))
		}
	}

	obs, err := js.ObjectStore(ctx, stream+"-raw")
	if err != nil {
		t.Fatalf("object store %s-raw: %v", stream, err)
	}
	st, err := obs.Status(ctx)
	if err != nil {
		t.Fatalf("object store %s-raw status: %v", stream, err)
	}
	if st.TTL() != maxAge || st.Storage() != jetstream.FileStorage {
		t.Fatalf("object store %s-raw: TTL %v, storage %v; want %v, file", stream, st.TTL(), st.Storage(), maxAge)
	}
	if out.Raw == nil {
		t.Fatal("Provision returned no object store")
	} else if st, err := out.Raw.Status(ctx); err != nil {
		t.Fatalf("status of Provision's object store: %v", err)
	} else if st.Bucket() != stream+"-raw" {
		t.Fatalf("Provision's object store is %s, want %s-raw", st.Bucket(), stream)
	}

	for _, b := range []struct {
		name string
		kv   jetstream.KeyValue
		ttl  time.Duration
	}{
		{stream + "-checkpoints", out.Checkpoints, 0},
		{stream + "-leases", out.Leases, leaseTTL},
		{stream + "-replicas", out.Replicas, leaseTTL},
		{stream + "-threads", out.Threads, maxAge},
	} {
		kv, err := js.KeyValue(ctx, b.name)
		if err != nil {
			t.Fatalf("bucket %s: %v", b.name, err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatalf("bucket %s status: %v", b.name, err)
		}
		if st.TTL() != b.ttl || st.History() != 1 {
			t.Fatalf("bucket %s: TTL %v, history %d; want %v, 1", b.name, st.TTL(), st.History(), b.ttl)
		}
		if b.kv == nil || b.kv.Bucket() != b.name {
			t.Fatalf("Provision returned bucket %v for %s", b.kv, b.name)
		}
	}
}

// TestProvisionConcurrent shows that replicas starting together, each on
// its own connection, all provision successfully within a bound, on a
// fresh server and again on the provisioned one, and that the result is
// the documented layout.
func TestProvisionConcurrent(t *testing.T) {
	s := startServer(t)
	const n = 4
	var jss []jetstream.JetStream
	for i := range n {
		_, js := connect(t, s, fmt.Sprintf("replica-%d", i))
		jss = append(jss, js)
	}
	for _, wave := range []string{"fresh server", "provisioned server"} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		start := time.Now()
		outs := make([]*JetStream, n)
		errs := make([]error, n)
		took := make([]time.Duration, n)
		var wg sync.WaitGroup
		for i, js := range jss {
			wg.Go(func() {
				outs[i], errs[i] = Provision(ctx, js, NATSConfig{}, ticket.DefaultPrefix, 10*time.Second)
				took[i] = time.Since(start)
			})
		}
		wg.Wait()
		cancel()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("%s: replica %d: Provision failed after %v: %v; want all %d to succeed within 20s", wave, i, took[i], err, n)
			}
		}
		t.Logf("%s: %d concurrent Provision calls took %v", wave, n, took)
		checkProvisioned(t, jss[0], outs[0], "TICKETS", ticket.DefaultPrefix, 90*24*time.Hour, 2*time.Hour, 10*time.Second)
	}
}

// testTicket is a ticket of the blue queue for raw.
func testTicket(prefix string, raw []byte) *ticket.Ticket {
	sum := sha256.Sum256(raw)
	return &ticket.Ticket{
		Version: ticket.Version, ID: hex.EncodeToString(sum[:]), MessageID: "m1@acme.example",
		From: ticket.From{Address: "admin@acme.example"}, EmailSubject: "Password reset", Size: int64(len(raw)),
		Intent: "password-reset", Colour: "blue", Disposition: "verified",
		Queue: ticket.Subject(prefix, "blue", "verified"), PolicyRow: 3,
		ReplyTo: []string{}, Candidates: []string{}, Guidance: []string{}, Attachments: []mail.Attachment{}, ParseProblems: []string{},
	}
}

const testRaw = "From: Admin <admin@acme.example>\r\nSubject: Password reset\r\nMessage-ID: <m1@acme.example>\r\n\r\nPlease reset it.\r\n"

// subjectCount is the number of messages on subject in stream.
func subjectCount(t *testing.T, js *JetStream, subject string) uint64 {
	t.Helper()
	info, err := js.Stream.Info(testContext(t), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return info.State.Subjects[subject]
}

// startPublisher starts a server, provisions the default layout and
// returns a Publisher on it.
func startPublisher(t *testing.T) (*Embedded, *JetStream, *Publisher) {
	t.Helper()
	s := startServer(t)
	_, js := connect(t, s, "publish")
	out := provision(t, js, NATSConfig{}, ticket.DefaultPrefix, 3*time.Second)
	return s, out, &Publisher{JS: out, Prefix: ticket.DefaultPrefix}
}

// TestPublish shows that a ticket lands on its queue subject with its id as
// message id, that its raw mail is in the object store under the id and
// named by the ticket, and that publishing it again returns false and adds
// nothing.
func TestPublish(t *testing.T) {
	t.Parallel()
	_, out, p := startPublisher(t)
	ctx := testContext(t)

	tk := testTicket(ticket.DefaultPrefix, []byte(testRaw))
	seq, published, err := p.Publish(ctx, tk, rawOf(testRaw))
	if err != nil || !published || seq == 0 {
		t.Fatalf("first Publish = %d, %v, %v; want a sequence, true, nil", seq, published, err)
	}
	wantRaw := ticket.RawRef{Bucket: "TICKETS-raw", Name: tk.ID}
	if tk.Raw != nil {
		t.Fatalf("after Publish, tk.Raw = %+v: Publish changed its argument", tk.Raw)
	}

	msg, err := out.Stream.GetLastMsgForSubject(ctx, tk.Queue)
	if err != nil {
		t.Fatalf("no message on %s: %v", tk.Queue, err)
	}
	if msg.Sequence != seq {
		t.Fatalf("Publish gave sequence %d, the stream holds the ticket at %d", seq, msg.Sequence)
	}
	if id := msg.Header.Get(jetstream.MsgIDHeader); id != tk.ID {
		t.Fatalf("message on %s has %s %q, want the ticket id %q", tk.Queue, jetstream.MsgIDHeader, id, tk.ID)
	}
	var got ticket.Ticket
	if err := json.Unmarshal(msg.Data, &got); err != nil {
		t.Fatalf("message on %s is not a ticket: %v", tk.Queue, err)
	}
	if got.ID != tk.ID || got.Raw == nil || *got.Raw != wantRaw {
		t.Fatalf("stored ticket has id %q, raw %+v; want %q, %+v", got.ID, got.Raw, tk.ID, wantRaw)
	}
	raw, err := out.Raw.GetBytes(ctx, got.Raw.Name)
	if err != nil || string(raw) != testRaw {
		t.Fatalf("object %s in %s = %q, %v; want the raw mail %q", got.Raw.Name, got.Raw.Bucket, raw, err, testRaw)
	}
	if n := subjectCount(t, out, tk.Queue); n != 1 {
		t.Fatalf("%d messages on %s after one publish, want 1", n, tk.Queue)
	}

	again := testTicket(ticket.DefaultPrefix, []byte(testRaw))
	again1, published, err := p.Publish(ctx, again, rawOf(testRaw))
	if err != nil || published || again1 != seq {
		t.Fatalf("second Publish of the same ticket = %d, %v, %v; want %d, false, nil", again1, published, err, seq)
	}
	if n := subjectCount(t, out, tk.Queue); n != 1 {
		t.Fatalf("%d messages on %s after publishing the same ticket twice, want 1", n, tk.Queue)
	}
	if info, err := out.Raw.GetInfo(ctx, tk.ID); err != nil || info.Metadata[TicketSeqKey] != strconv.FormatUint(seq, 10) {
		t.Fatalf("raw mail's %s = %q (%v), want the ticket's sequence %d", TicketSeqKey, info.Metadata[TicketSeqKey], err, seq)
	}
	// Without the raw mail's meta message, which marks the ticket
	// published (a crash right after the stream's ack), the stream's
	// duplicate window still drops the copy, and the mark is written.
	obj, err := out.JS.Stream(ctx, "OBJ_"+out.RawBucket)
	if err != nil {
		t.Fatal(err)
	}
	metaSubject := "$O." + out.RawBucket + ".M." + base64.URLEncoding.EncodeToString([]byte(tk.ID))
	if err := obj.Purge(ctx, jetstream.WithPurgeSubject(metaSubject)); err != nil {
		t.Fatal(err)
	}
	again2, published, err := p.Publish(ctx, testTicket(ticket.DefaultPrefix, []byte(testRaw)), rawOf(testRaw))
	if err != nil || published || again2 != seq {
		t.Fatalf("Publish within the duplicate window, without the mark = %d, %v, %v; want %d, false, nil", again2, published, err, seq)
	}
	if info, err := out.Raw.GetInfo(ctx, tk.ID); err != nil || info.Metadata[TicketSeqKey] != strconv.FormatUint(seq, 10) {
		t.Fatalf("raw mail's %s after publishing again = %q (%v), want %d", TicketSeqKey, info.Metadata[TicketSeqKey], err, seq)
	}
	if raw, err := out.Raw.GetBytes(ctx, tk.ID); err != nil || string(raw) != testRaw {
		t.Fatalf("raw mail after publishing again = %q, %v; want %q", raw, err, testRaw)
	}
	info, err := out.Stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages after three publishes of one ticket, want 1", info.State.Msgs)
	}
}

// TestPublishLegacyMark: a raw mail stored by a version that marked
// tickets in the published bucket (its meta without the sequence) is
// not published again while that bucket marks it, with the sequence
// recorded there, or none (0) for a mark that was a bare time.
func TestPublishLegacyMark(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	_, js := connect(t, s, "publish")
	ctx := testContext(t)
	const bucket = "TICKETS-published"
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	out := provision(t, js, NATSConfig{}, ticket.DefaultPrefix, 3*time.Second)
	if out.Published == nil {
		t.Fatalf("Provision did not bind the existing %s bucket", bucket)
	}
	p := &Publisher{JS: out, Prefix: ticket.DefaultPrefix}
	for _, tc := range []struct {
		mark    string
		wantSeq uint64
	}{
		{`{"seq":41,"at":"2026-11-20T10:00:00Z"}`, 41},
		{`"2026-11-01T10:00:00Z"`, 0},
	} {
		raw := "Subject: " + tc.mark + "\r\n\r\nbody\r\n"
		tk := testTicket(ticket.DefaultPrefix, []byte(raw))
		if _, err := out.Raw.PutBytes(ctx, tk.ID, []byte(raw)); err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, tk.ID, []byte(tc.mark)); err != nil {
			t.Fatal(err)
		}
		if seq, published, err := p.Publish(ctx, tk, rawOf(raw)); err != nil || published || seq != tc.wantSeq {
			t.Errorf("Publish with the mark %s = %d, %v, %v; want %d, false, nil", tc.mark, seq, published, err, tc.wantSeq)
		}
	}
	if n := subjectCount(t, out, testTicket(ticket.DefaultPrefix, []byte(testRaw)).Queue); n != 0 {
		t.Errorf("%d tickets published for marked mails, want 0", n)
	}
}

// TestPublishReusesStoredRaw: a raw mail stored by an attempt that crashed
// before publishing is not stored again (its name is its SHA-256), while
// the ticket is published; a deleted one is stored again.
func TestPublishReusesStoredRaw(t *testing.T) {
	t.Parallel()
	_, out, p := startPublisher(t)
	ctx := testContext(t)
	tk := testTicket(ticket.DefaultPrefix, []byte(testRaw))
	before, err := out.Raw.PutBytes(ctx, tk.ID, []byte(testRaw)) // the crashed attempt
	if err != nil {
		t.Fatal(err)
	}
	if _, published, err := p.Publish(ctx, tk, rawOf(testRaw)); err != nil || !published {
		t.Fatalf("Publish with the raw mail already stored = %v, %v; want true, nil", published, err)
	}
	after, err := out.Raw.GetInfo(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.NUID != before.NUID {
		t.Errorf("the raw mail was stored again (chunks %s, were %s)", after.NUID, before.NUID)
	}

	other := "Subject: another\r\n\r\nbody\r\n"
	tk2 := testTicket(ticket.DefaultPrefix, []byte(other))
	if _, err := out.Raw.PutBytes(ctx, tk2.ID, []byte(other)); err != nil {
		t.Fatal(err)
	}
	if err := out.Raw.Delete(ctx, tk2.ID); err != nil {
		t.Fatal(err)
	}
	if _, published, err := p.Publish(ctx, tk2, rawOf(other)); err != nil || !published {
		t.Fatalf("Publish with the raw mail deleted = %v, %v; want true, nil", published, err)
	}
	if raw, err := out.Raw.GetBytes(ctx, tk2.ID); err != nil || string(raw) != other {
		t.Errorf("raw mail after publishing again = %q, %v; want %q", raw, err, other)
	}
}

// TestPublishAfterDuplicateWindow shows that the mark kept with the raw
// mail, not only the stream's duplicate window, keeps a ticket from being published
// twice: once the window has passed (a probe message id is accepted again),
// publishing the ticket again still returns false and adds nothing.
func TestPublishAfterDuplicateWindow(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	_, js := connect(t, s, "publish")
	// JetStream accepts duplicate windows down to 100ms.
	const window = time.Second
	out := provision(t, js, NATSConfig{DuplicateWindow: window}, ticket.DefaultPrefix, 3*time.Second)
	if got := out.Stream.CachedInfo().Config.Duplicates; got != window {
		t.Fatalf("stream duplicate window %v, want %v", got, window)
	}
	p := &Publisher{JS: out, Prefix: ticket.DefaultPrefix}
	ctx := testContext(t)

	tk := testTicket(ticket.DefaultPrefix, []byte(testRaw))
	if _, published, err := p.Publish(ctx, tk, rawOf(testRaw)); err != nil || !published {
		t.Fatalf("first Publish = %v, %v; want true, nil", published, err)
	}
	probe := ticket.DefaultPrefix + ".probe"
	if _, err := js.Publish(ctx, probe, nil, jetstream.WithMsgID("probe")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * window)
	for {
		ack, err := js.Publish(ctx, probe, nil, jetstream.WithMsgID("probe"))
		if err != nil {
			t.Fatal(err)
		}
		if !ack.Duplicate {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stream still drops a repeated message id %v after the first, with a %v duplicate window", 10*window, window)
		}
		time.Sleep(window / 10)
	}

	again := testTicket(ticket.DefaultPrefix, []byte(testRaw))
	seq, published, err := p.Publish(ctx, again, rawOf(testRaw))
	if err != nil || published || seq != 1 {
		t.Fatalf("Publish after the duplicate window = %d, %v, %v; want 1 (the first's), false, nil", seq, published, err)
	}
	if n := subjectCount(t, out, tk.Queue); n != 1 {
		t.Fatalf("%d messages on %s after publishing the same ticket after the duplicate window, want 1", n, tk.Queue)
	}
}

// TestPublishLargeRaw shows that a 5 MiB raw mail, read from a reader,
// comes back byte for byte from the object store.
func TestPublishLargeRaw(t *testing.T) {
	t.Parallel()
	_, out, p := startPublisher(t)
	ctx := testContext(t)

	const size = 5 << 20
	raw := make([]byte, size)
	rand.NewChaCha8([32]byte{1}).Read(raw)
	for _, tc := range []struct {
		name string
		raw  func([]byte) RawMail
	}{
		{"a reader only", func(b []byte) RawMail { return RawMail{Reader: bytes.NewReader(b), Size: -1} }},
		{"a reader with the size", func(b []byte) RawMail { return RawMail{Reader: bytes.NewReader(b), Size: int64(len(b))} }},
		{"the bytes (a spool in memory)", func(b []byte) RawMail { return RawMail{Reader: bytes.NewReader(b), Size: int64(len(b)), Bytes: b} }},
		{"with its digest", func(b []byte) RawMail {
			sum := sha256.Sum256(b)
			return RawMail{Reader: bytes.NewReader(b), Size: int64(len(b)), Digest: sum[:]}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := bytes.Clone(raw)
			raw[0] ^= byte(len(tc.name)) // a mail of its own, so that each is stored
			checkPublishRaw(t, ctx, out, p, raw, tc.raw(raw))
		})
	}
}

// rawOf is a raw mail held in a string.
func rawOf(s string) RawMail { return RawMail{Reader: strings.NewReader(s), Size: int64(len(s))} }

// checkPublishRaw publishes a ticket of raw, read from r, and reads the
// raw mail back from the object store.
func checkPublishRaw(t *testing.T, ctx context.Context, out *JetStream, p *Publisher, raw []byte, r RawMail) {
	t.Helper()
	size := int64(len(raw))
	tk := testTicket(ticket.DefaultPrefix, raw)
	if _, published, err := p.Publish(ctx, tk, r); err != nil || !published {
		t.Fatalf("Publish of a %d-byte mail = %v, %v; want true, nil", size, published, err)
	}
	obj, err := out.Raw.Get(ctx, tk.ID)
	if err != nil {
		t.Fatalf("raw mail %s: %v", tk.ID, err)
	}
	defer obj.Close()
	h := sha256.New()
	n, err := io.Copy(h, obj)
	if err != nil {
		t.Fatalf("reading raw mail %s: %v after %d bytes", tk.ID, err, n)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != size || got != tk.ID {
		t.Fatalf("raw mail read back: %d bytes, SHA-256 %s; want %d bytes, %s", n, got, size, tk.ID)
	}
}

// TestPublishServerDown shows that Publish with NATS gone fails by the
// context's deadline instead of hanging.
func TestPublishServerDown(t *testing.T) {
	t.Parallel()
	s, _, p := startPublisher(t)
	s.Shutdown()
	s.WaitForShutdown()

	const timeout = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	type result struct {
		published bool
		err       error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		_, published, err := p.Publish(ctx, testTicket(ticket.DefaultPrefix, []byte(testRaw)), rawOf(testRaw))
		done <- result{published, err}
	}()
	select {
	case r := <-done:
		if r.err == nil || r.published {
			t.Fatalf("Publish with the server down = %v, %v; want false and an error", r.published, r.err)
		}
		t.Logf("Publish with the server down failed after %v: %v", time.Since(start).Round(time.Millisecond), r.err)
	case <-time.After(timeout + 3*time.Second):
		t.Fatalf("Publish with the server down still running %v after its %v deadline", 3*time.Second, timeout)
	}
}

// TestPublishDeadLetter shows that a dead-letter record goes to
// <prefix>.deadletter with kind "quarantined" and its fields, reaches the
// deadletter queue, and is published once per mailbox, UIDVALIDITY and UID.
func TestPublishDeadLetter(t *testing.T) {
	t.Parallel()
	const prefix = "acme.support"
	s := startServer(t)
	_, js := connect(t, s, "publish")
	out := provision(t, js, NATSConfig{}, prefix, 3*time.Second)
	p := &Publisher{JS: out, Prefix: prefix}
	ctx := testContext(t)
	subject := prefix + ".deadletter"

	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	d := DeadLetter{Kind: "something else", Mailbox: "INBOX/Sub folder", UIDValidity: 1764230400, UID: 812, Size: 73400320,
		Reason: "too large", Attempts: 0, At: at}
	if err := p.PublishDeadLetter(ctx, d); err != nil {
		t.Fatalf("PublishDeadLetter: %v", err)
	}
	msg, err := out.Stream.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		t.Fatalf("no message on %s: %v", subject, err)
	}
	var got DeadLetter
	if err := json.Unmarshal(msg.Data, &got); err != nil {
		t.Fatalf("message on %s: %v", subject, err)
	}
	want := d
	want.Kind = "quarantined"
	if got != want {
		t.Fatalf("dead letter on %s = %+v, want %+v", subject, got, want)
	}
	var doc map[string]any
	if err := json.Unmarshal(msg.Data, &doc); err != nil || doc["kind"] != "quarantined" {
		t.Fatalf("dead letter document %s: kind %v (%v), want \"quarantined\"", msg.Data, doc["kind"], err)
	}

	// The same mail again, say after another failed attempt: not published.
	d.Attempts, d.Reason, d.At = 1, "still too large", at.Add(time.Minute)
	if err := p.PublishDeadLetter(ctx, d); err != nil {
		t.Fatalf("PublishDeadLetter again: %v", err)
	}
	if n := subjectCount(t, out, subject); n != 1 {
		t.Fatalf("%d messages on %s after the same dead letter twice, want 1", n, subject)
	}
	// Another UID, another UIDVALIDITY, another mailbox: each published.
	for i, other := range []DeadLetter{
		{Mailbox: d.Mailbox, UIDValidity: d.UIDValidity, UID: d.UID + 1},
		{Mailbox: d.Mailbox, UIDValidity: d.UIDValidity + 1, UID: d.UID},
		{Mailbox: "INBOX", UIDValidity: d.UIDValidity, UID: d.UID},
	} {
		if err := p.PublishDeadLetter(ctx, other); err != nil {
			t.Fatalf("PublishDeadLetter(%+v): %v", other, err)
		}
		if n := subjectCount(t, out, subject); n != uint64(i+2) {
			t.Fatalf("%d messages on %s after dead letter %+v, want %d", n, subject, other, i+2)
		}
	}

	if n := pending(t, out, "deadletter", 4); n != 4 {
		t.Fatalf("deadletter queue has %d pending, want 4", n)
	}
}

// TestKVCheckpoints shows that checkpoints round-trip per mailbox, that
// mailbox names with characters keys may not hold work and do not collide,
// and that a mailbox without a checkpoint loads as the zero checkpoint.
func TestKVCheckpoints(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	_, js := connect(t, s, "checkpoints")
	out := provision(t, js, NATSConfig{}, ticket.DefaultPrefix, 3*time.Second)
	var store ingest.CheckpointStore = KVCheckpoints{KV: out.Checkpoints}
	ctx := testContext(t)

	mailboxes := []string{"INBOX", "INBOX/Sub folder", "INBOX.Sub", "Données", "a.b*c>", " ", "support@acme", "Ünïcødé/日本語"}
	for _, m := range mailboxes {
		cp, err := store.Load(ctx, m)
		if err != nil || cp != (ingest.Checkpoint{}) {
			t.Fatalf("Load(%q) before any Save = %+v, %v; want the zero checkpoint, nil", m, cp, err)
		}
	}
	want := map[string]ingest.Checkpoint{}
	for i, m := range mailboxes {
		cp := ingest.Checkpoint{UIDValidity: uint32(1000 + i), LastUID: imap.UID(100 + i)}
		if err := store.Save(ctx, m, cp); err != nil {
			t.Fatalf("Save(%q): %v", m, err)
		}
		want[m] = cp
	}
	for _, m := range mailboxes {
		if cp, err := store.Load(ctx, m); err != nil || cp != want[m] {
			t.Fatalf("Load(%q) = %+v, %v; want %+v, nil", m, cp, err, want[m])
		}
	}
	// Saving again replaces the checkpoint of that mailbox only.
	next := ingest.Checkpoint{UIDValidity: 7, LastUID: 4294967295}
	if err := store.Save(ctx, "a.b*c>", next); err != nil {
		t.Fatalf("Save again: %v", err)
	}
	want["a.b*c>"] = next
	for _, m := range mailboxes {
		if cp, err := store.Load(ctx, m); err != nil || cp != want[m] {
			t.Fatalf("after saving %q again, Load(%q) = %+v, %v; want %+v, nil", "a.b*c>", m, cp, err, want[m])
		}
	}
	// A checkpoint that is not JSON is an error, not a silent zero.
	if _, err := out.Checkpoints.Put(ctx, mailboxKey("INBOX"), []byte("{")); err != nil {
		t.Fatal(err)
	}
	if cp, err := store.Load(ctx, "INBOX"); err == nil {
		t.Fatalf("Load of a damaged checkpoint = %+v, nil; want an error", cp)
	}
}
