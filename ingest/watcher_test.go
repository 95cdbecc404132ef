package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ticketrouter/ticketrouter/ingest/imaptest"
	"github.com/ticketrouter/ticketrouter/ingest/mail"

	"github.com/emersion/go-imap/v2"
	"github.com/rs/zerolog"
)

// recorder is a Handler for tests: it parses each mail (as the service
// does), remembers which mails it completed, and fails on command.
type recorder struct {
	mu          sync.Mutex
	completed   map[string]int // Message-ID -> completions
	calls       map[string]int // Message-ID -> calls
	quarantined []*Quarantined
	fail        func(m *Mail, id string) error // nil: never fails
	onStart     func(m *Mail)                  // called before the mail is parsed
	arrived     chan string                    // Message-IDs as they complete, when not nil
}

func newRecorder() *recorder {
	return &recorder{completed: map[string]int{}, calls: map[string]int{}}
}

func (r *recorder) HandleMail(ctx context.Context, m *Mail) error {
	if r.onStart != nil {
		r.onStart(m)
	}
	req, err := mail.Parse(m.Raw.Reader(), mail.Limits{})
	if err != nil {
		return err
	}
	id := req.MessageID
	r.mu.Lock()
	r.calls[id]++
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		if err := fail(m, id); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.completed[id]++
	r.mu.Unlock()
	if r.arrived != nil {
		r.arrived <- id
	}
	return nil
}

func (r *recorder) Quarantine(ctx context.Context, q *Quarantined) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.quarantined = append(r.quarantined, q)
	return nil
}

func (r *recorder) completedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.completed)
}

func (r *recorder) quarantinedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.quarantined)
}

// testMail returns a small support mail with the given Message-ID.
func testMail(id string) []byte {
	return fmt.Appendf(nil, "From: customer@example.com\r\nTo: support@ca.example\r\nSubject: reset %s\r\nMessage-ID: <%s>\r\n\r\nPlease reset my password. %s\r\n", id, id, id)
}

// startWatcher runs a watcher against srv until the test ends (or the
// returned stop is called), with fast timings for tests.
func startWatcher(t *testing.T, srv imaptest.Server, h Handler, cp CheckpointStore, adjust func(*WatcherConfig)) (stop func()) {
	t.Helper()
	t.Setenv("TICKETROUTER_TEST_IMAP_PASSWORD", srv.Password())
	cfg := WatcherConfig{
		Addr: srv.Addr(), Security: SecurityPlain, Username: srv.Username(),
		Secret:       &Secret{Env: "TICKETROUTER_TEST_IMAP_PASSWORD"},
		PollInterval: time.Minute, Liveness: 5 * time.Second, CommandTimeout: 5 * time.Second,
		BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond, MaxAttempts: 3,
	}
	if adjust != nil {
		adjust(&cfg)
	}
	level := zerolog.InfoLevel
	if os.Getenv("TICKETROUTER_TEST_DEBUG") != "" {
		level = zerolog.DebugLevel
	}
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(level)
	w, err := NewWatcher(cfg, h, cp, log)
	if err != nil {
		t.Fatal(err)
	}
	return runWatcher(t, w)
}

// runWatcher runs w until the test ends or the returned stop is called.
func runWatcher(t *testing.T, w *Watcher) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		w.Run(ctx)
		close(done)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("the watcher did not stop within 10 s")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// servers are the IMAP servers every scenario runs against.
var servers = []struct {
	name  string
	start func(*testing.T, imaptest.Options) imaptest.Server
}{
	{"memserver", imaptest.StartMemServer},
	{"dovecot", imaptest.StartDovecot},
}

func forEachServer(t *testing.T, f func(t *testing.T, start func(*testing.T, imaptest.Options) imaptest.Server)) {
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) { f(t, s.start) })
	}
}

func TestWatcherDrainsBacklog(t *testing.T) {
	forEachServer(t, func(t *testing.T, start func(*testing.T, imaptest.Options) imaptest.Server) {
		srv := start(t, imaptest.Options{})
		const n = 2000
		began := time.Now()
		raws := make([][]byte, n)
		for i := range raws {
			raws[i] = testMail(fmt.Sprintf("backlog-%d@test", i))
		}
		srv.AppendAll(t, "INBOX", raws)
		appended := time.Now()
		rec := newRecorder()
		startWatcher(t, srv, rec, FileCheckpoints{Dir: t.TempDir()}, nil)
		eventually(t, 2*time.Minute, "the backlog drained", func() bool { return rec.completedCount() == n })
		t.Logf("%d mails appended in %s, drained in %s", n, appended.Sub(began).Round(time.Millisecond), time.Since(appended).Round(time.Millisecond))
		eventually(t, 10*time.Second, "INBOX emptied", func() bool { return len(srv.UIDs(t, "INBOX")) == 0 })
		if got := len(srv.UIDs(t, "Processed")); got != n {
			t.Errorf("Processed holds %d mails, want %d", got, n)
		}
		for id, c := range rec.completed {
			if c != 1 {
				t.Errorf("%s handled %d times", id, c)
			}
		}
	})
}

func TestWatcherIdlePicksUpNewMail(t *testing.T) {
	forEachServer(t, func(t *testing.T, start func(*testing.T, imaptest.Options) imaptest.Server) {
		srv := start(t, imaptest.Options{})
		rec := newRecorder()
		rec.arrived = make(chan string, 10)
		// Polling every minute: only IDLE can bring mail in a second.
		startWatcher(t, srv, rec, FileCheckpoints{Dir: t.TempDir()}, nil)
		srv.Append(t, "INBOX", testMail("warmup@test"))
		select {
		case <-rec.arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("the first mail did not arrive")
		}
		time.Sleep(300 * time.Millisecond) // let the watcher go idle again
		for i := range 3 {
			sent := time.Now()
			srv.Append(t, "INBOX", testMail(fmt.Sprintf("idle-%d@test", i)))
			select {
			case <-rec.arrived:
				if d := time.Since(sent); d > time.Second {
					t.Errorf("mail %d picked up after %s, want under a second", i, d)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("mail %d not picked up", i)
			}
		}
	})
}

func TestWatcherWithoutMove(t *testing.T) {
	forEachServer(t, func(t *testing.T, start func(*testing.T, imaptest.Options) imaptest.Server) {
		t.Run("uidplus", func(t *testing.T) {
			srv := start(t, imaptest.Options{NoMove: true})
			if srv.Caps().Has(imap.CapMove) {
				t.Fatal("the server still advertises MOVE")
			}
			srv.Append(t, "INBOX", testMail("keep@test")) // someone else's \Deleted mail must survive
			rec := newRecorder()
			for i := range 5 {
				srv.Append(t, "INBOX", testMail(fmt.Sprintf("nomove-%d@test", i)))
			}
			startWatcher(t, srv, rec, FileCheckpoints{Dir: t.TempDir()}, nil)
			eventually(t, 30*time.Second, "all handled and moved", func() bool { return len(srv.UIDs(t, "Processed")) == 6 })
			eventually(t, 10*time.Second, "INBOX emptied", func() bool { return len(srv.UIDs(t, "INBOX")) == 0 })
		})
		t.Run("no uidplus: keyword", func(t *testing.T) {
			srv := start(t, imaptest.Options{NoMove: true, NoUIDPlus: true})
			rec := newRecorder()
			for i := range 5 {
				srv.Append(t, "INBOX", testMail(fmt.Sprintf("keyword-%d@test", i)))
			}
			cp := FileCheckpoints{Dir: t.TempDir()}
			stop := startWatcher(t, srv, rec, cp, nil)
			eventually(t, 30*time.Second, "all copied", func() bool { return len(srv.UIDs(t, "Processed")) == 5 })
			stop()
			uids := srv.UIDs(t, "INBOX")
			if len(uids) != 5 {
				t.Fatalf("INBOX holds %d mails: without UIDPLUS nothing may be expunged", len(uids))
			}
			for _, uid := range uids {
				// Keywords are case-insensitive; imapmemserver lower-cases them.
				if !slices.ContainsFunc(srv.Flags(t, "INBOX", uid), func(f imap.Flag) bool { return strings.EqualFold(string(f), "$TicketRouterDone") }) {
					t.Errorf("uid %d is not marked done", uid)
				}
			}
			// A restart without a checkpoint handles none of them again.
			rec2 := newRecorder()
			startWatcher(t, srv, rec2, FileCheckpoints{Dir: t.TempDir()}, nil)
			srv.Append(t, "INBOX", testMail("after@test"))
			eventually(t, 30*time.Second, "the new mail handled", func() bool { return rec2.completedCount() == 1 })
			if rec2.completed["after@test"] != 1 {
				t.Errorf("after a restart: %v", rec2.completed)
			}
		})
		t.Run("failing copy deletes nothing", func(t *testing.T) {
			srv := start(t, imaptest.Options{NoMove: true, ReadOnly: []string{"Processed"}})
			rec := newRecorder()
			srv.Append(t, "INBOX", testMail("stuck@test"))
			startWatcher(t, srv, rec, FileCheckpoints{Dir: t.TempDir()}, nil)
			eventually(t, 30*time.Second, "the mail handled", func() bool { return rec.completedCount() == 1 })
			// Every COPY fails: the mail is retried, then quarantined, never lost.
			eventually(t, 30*time.Second, "the mail quarantined", func() bool { return len(srv.UIDs(t, "Quarantine")) == 1 })
			if got := srv.UIDs(t, "INBOX"); len(got) != 0 {
				t.Errorf("INBOX still holds %v after the quarantine", got)
			}
			if n := len(srv.UIDs(t, "Processed")); n != 0 {
				t.Errorf("Processed holds %d mails", n)
			}
			if rec.quarantinedCount() != 1 || !strings.Contains(rec.quarantined[0].Reason, "copy") {
				t.Errorf("quarantine records: %+v", rec.quarantined)
			}
		})
	})
}

// TestWatcherFailingCopyKeepsMail checks the first step of the story above:
// after a failed COPY the mail is still in INBOX and not \Deleted.
func TestWatcherFailingCopyKeepsMail(t *testing.T) {
	forEachServer(t, func(t *testing.T, start func(*testing.T, imaptest.Options) imaptest.Server) {
		srv := start(t, imaptest.Options{NoMove: true, ReadOnly: []string{"Processed", "Quarantine"}})
		rec := newRecorder()
		uid := srv.Append(t, "INBOX", testMail("kept@test"))
		startWatcher(t, srv, rec, FileCheckpoints{Dir: t.TempDir()}, nil)
		// The move is tried MaxAttempts times (the mail handled once: it
		// is remembered as handled), then quarantine is tried, and fails too.
		eventually(t, 30*time.Second, "the move retried until quarantine was tried", func() bool { return rec.quarantinedCount() > 0 })
		rec.mu.Lock()
		calls := rec.calls["kept@test"]
		rec.mu.Unlock()
		if calls != 1 {
			t.Errorf("handled %d times, want once: a failed move is retried without handling the mail again", calls)
		}
		if got := srv.UIDs(t, "INBOX"); !slices.Equal(got, []imap.UID{uid}) {
			t.Fatalf("INBOX holds %v, want [%d]", got, uid)
		}
		if slices.Contains(srv.Flags(t, "INBOX", uid), imap.FlagDeleted) {
			t.Fatal("the mail was flagged \\Deleted although COPY failed")
		}
	})
}

func TestWatcherPoisonMail(t *testing.T) {
	forEachServer(t, func(t *testing.T, start func(*testing.T, imaptest.Options) imaptest.Server) {
		srv := start(t, imaptest.Options{})
		rec := newRecorder()
		rec.fail = func(m *Mail, id string) error {
			if id == "poison@test" {
				return errors.New("cannot publish")
			}
			return nil
		}
		srv.Append(t, "INBOX", testMail("poison@test"))
		for i := range 10 {
			srv.Append(t, "INBOX", testMail(fmt.Sprintf("good-%d@test", i)))
		}
		startWatcher(t, srv, rec, FileCheckpoints{Dir: t.TempDir()}, nil)
		eventually(t, 30*time.Second, "the good mails handled", func() bool { return rec.completedCount() == 10 })
		eventually(t, 30*time.Second, "the poison mail quarantined", func() bool { return len(srv.UIDs(t, "Quarantine")) == 1 })
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if rec.calls["poison@test"] != 3 || len(rec.quarantined) != 1 || rec.quarantined[0].Attempts != 3 ||
			!strings.Contains(rec.quarantined[0].Reason, "cannot publish") {
			t.Errorf("poison: %d calls, records %+v", rec.calls["poison@test"], rec.quarantined)
		}
		if n := len(srv.UIDs(t, "Processed")); n != 10 {
			t.Errorf("Processed holds %d", n)
		}
	})
}

// TestWatcherHandlesConcurrently: while a mail is handled (its ticket
// waiting for an ack), the next ones are fetched and handled too, up to
// Concurrency at once; and all end moved.
func TestWatcherHandlesConcurrently(t *testing.T) {
	forEachServer(t, func(t *testing.T, start func(*testing.T, imaptest.Options) imaptest.Server) {
		srv := start(t, imaptest.Options{})
		const n, concurrency = 40, 8
		raws := make([][]byte, n)
		for i := range raws {
			raws[i] = testMail(fmt.Sprintf("conc-%d@test", i))
		}
		srv.AppendAll(t, "INBOX", raws)
		var mu sync.Mutex
		inFlight, most, started := 0, 0, 0
		full := make(chan struct{})
		rec := newRecorder()
		rec.onStart = func(m *Mail) {
			mu.Lock()
			inFlight++
			most = max(most, inFlight)
			if started++; started == concurrency {
				close(full)
			}
			first := started <= concurrency
			mu.Unlock()
			if first { // the first ones wait for each other: they must be in flight together
				select {
				case <-full:
				case <-time.After(5 * time.Second):
				}
			}
			mu.Lock()
			inFlight--
			mu.Unlock()
		}
		startWatcher(t, srv, rec, FileCheckpoints{Dir: t.TempDir()}, func(c *WatcherConfig) { c.Concurrency = concurrency })
		eventually(t, 30*time.Second, "all moved", func() bool { return len(srv.UIDs(t, "Processed")) == n })
		mu.Lock()
		defer mu.Unlock()
		if most != concurrency {
			t.Errorf("at most %d mails were handled at once, want %d", most, concurrency)
		}
		if c := rec.completedCount(); c != n {
			t.Errorf("%d mails completed, want %d", c, n)
		}
	})
}

// TestWatcherCheckpointStopsAtWaitingMail: mail above one that waits for
// a retry is handled and moved, but the checkpoint stays below the waiting
// one, so that a restart finds it.
func TestWatcherCheckpointStopsAtWaitingMail(t *testing.T) {
	forEachServer(t, func(t *testing.T, start func(*testing.T, imaptest.Options) imaptest.Server) {
		srv := start(t, imaptest.Options{})
		var uids []imap.UID
		for i := range 10 {
			uids = append(uids, srv.Append(t, "INBOX", testMail(fmt.Sprintf("cp-%d@test", i))))
		}
		rec := newRecorder()
		rec.fail = func(m *Mail, id string) error {
			if id == "cp-3@test" {
				return fmt.Errorf("publish: %w", ErrUnavailable) // never counted: never quarantined
			}
			return nil
		}
		cp := FileCheckpoints{Dir: t.TempDir()}
		stop := startWatcher(t, srv, rec, cp, nil)
		eventually(t, 30*time.Second, "the nine others moved", func() bool { return len(srv.UIDs(t, "Processed")) == 9 })
		stop()
		saved, err := cp.Load(context.Background(), "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		if saved.LastUID != uids[2] {
			t.Errorf("checkpoint at uid %d, want %d (below the waiting mail %d)", saved.LastUID, uids[2], uids[3])
		}
		rec2 := newRecorder()
		startWatcher(t, srv, rec2, cp, nil)
		eventually(t, 30*time.Second, "the waiting mail handled after the restart", func() bool { return len(srv.UIDs(t, "Processed")) == 10 })
		rec2.mu.Lock()
		defer rec2.mu.Unlock()
		if len(rec2.completed) != 1 || rec2.completed["cp-3@test"] != 1 {
			t.Errorf("after the restart completed %v, want only cp-3@test", rec2.completed)
		}
	})
}

func TestWatcherOversizeMailQuarantinedUnread(t *testing.T) {
	forEachServer(t, func(t *testing.T, start func(*testing.T, imaptest.Options) imaptest.Server) {
		srv := start(t, imaptest.Options{})
		rec := newRecorder()
		big := append(testMail("big@test"), bytes.Repeat([]byte("x"), 20000)...)
		srv.Append(t, "INBOX", big)
		srv.Append(t, "INBOX", testMail("small@test"))
		startWatcher(t, srv, rec, FileCheckpoints{Dir: t.TempDir()}, func(c *WatcherConfig) { c.MaxSize = 10000 })
		eventually(t, 30*time.Second, "both dealt with", func() bool {
			return rec.completedCount() == 1 && len(srv.UIDs(t, "Quarantine")) == 1
		})
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if rec.calls["big@test"] != 0 {
			t.Error("the oversize mail was read")
		}
		if len(rec.quarantined) != 1 || rec.quarantined[0].Attempts != 0 || !strings.Contains(rec.quarantined[0].Reason, "over the 10000-byte limit") {
			t.Errorf("quarantine records: %+v", rec.quarantined)
		}
	})
}

func TestWatcherReconnectsMidFetch(t *testing.T) {
	forEachServer(t, func(t *testing.T, start func(*testing.T, imaptest.Options) imaptest.Server) {
		srv := start(t, imaptest.Options{})
		const n = 30
		for i := range n {
			pad := 20000
			if i == 9 { // uid 10: too big to sit in socket buffers when the connection dies
				pad = 2 << 20
			}
			srv.Append(t, "INBOX", append(testMail(fmt.Sprintf("kill-%d@test", i)), bytes.Repeat([]byte("y\r\n"), pad)...))
		}
		rec := newRecorder()
		var once sync.Once
		kicked := make(chan struct{})
		rec.onStart = func(m *Mail) {
			if m.UID == 10 {
				once.Do(func() {
					srv.KickConnections(t) // the handler has begun: mid-fetch
					close(kicked)
				})
			}
		}
		startWatcher(t, srv, rec, FileCheckpoints{Dir: t.TempDir()}, nil)
		select { // the test's own connections must not be in the way of the kick
		case <-kicked:
		case <-time.After(time.Minute):
			t.Fatal("the fetch of uid 10 never started")
		}
		eventually(t, time.Minute, "all moved after the reconnect", func() bool { return len(srv.UIDs(t, "Processed")) == n })
		eventually(t, 10*time.Second, "INBOX emptied", func() bool { return len(srv.UIDs(t, "INBOX")) == 0 })
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for i := range n {
			id := fmt.Sprintf("kill-%d@test", i)
			c := rec.completed[id]
			// The interrupted mail may have been completed once before the
			// connection broke and once after: the retry that ticket ids
			// de-duplicate. Any other mail exactly once.
			if c < 1 || c > 1 && id != "kill-9@test" || c > 2 {
				t.Errorf("%s completed %d times", id, c)
			}
		}
		if len(rec.completed) != n {
			t.Errorf("completions: %v", rec.completed)
		}
	})
}

func TestWatcherUIDValidityChange(t *testing.T) {
	forEachServer(t, func(t *testing.T, start func(*testing.T, imaptest.Options) imaptest.Server) {
		srv := start(t, imaptest.Options{})
		cp := FileCheckpoints{Dir: t.TempDir()}
		rec := newRecorder()
		for i := range 5 {
			srv.Append(t, "INBOX", testMail(fmt.Sprintf("before-%d@test", i)))
		}
		stop := startWatcher(t, srv, rec, cp, nil)
		eventually(t, 30*time.Second, "the first mails handled", func() bool { return rec.completedCount() == 5 })
		stop()
		saved, err := cp.Load(context.Background(), "INBOX")
		if err != nil || saved.LastUID < 5 {
			t.Fatalf("checkpoint %+v, %v", saved, err)
		}
		for i := range 3 {
			srv.Append(t, "INBOX", testMail(fmt.Sprintf("after-%d@test", i)))
		}
		srv.ResetUIDValidity(t, "INBOX") // the three new mails get new, low UIDs
		rec2 := newRecorder()
		startWatcher(t, srv, rec2, cp, nil)
		eventually(t, 30*time.Second, "the mails after the reset handled", func() bool { return rec2.completedCount() == 3 })
		if now, _ := cp.Load(context.Background(), "INBOX"); now.UIDValidity == saved.UIDValidity {
			t.Errorf("the checkpoint kept the old UIDVALIDITY %d", now.UIDValidity)
		}
	})
}

// TestWatcherStreamsLargeMail: a 50 MB mail streams through the handler
// (which parses it, as the service does) with the process's memory staying
// within 64 MiB of what it was before.
func TestWatcherStreamsLargeMail(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.Options{}) // imapmemserver would hold the mail in this process
	const size = 50 << 20
	head := "From: customer@example.com\r\nSubject: big\r\nMessage-ID: <huge@test>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	tail := "\r\n--b--\r\n"
	line := strings.Repeat("QUJD", 19) + "\r\n" // 78 bytes of base64 a line
	lines := (size - len(head) - len(tail)) / len(line)
	total := int64(len(head) + lines*len(line) + len(tail))
	r := io.MultiReader(strings.NewReader(head), &repeatReader{line: line, n: lines}, strings.NewReader(tail))
	srv.AppendStream(t, "INBOX", total, r)

	runtime.GC()
	base := processMemory()
	var peak uint64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			peak = max(peak, processMemory())
			select {
			case <-stopSampling:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	rec := newRecorder()
	startWatcher(t, srv, rec, FileCheckpoints{Dir: t.TempDir()}, func(c *WatcherConfig) { c.MaxSize = 100 << 20 })
	eventually(t, 2*time.Minute, "the large mail handled", func() bool { return rec.completedCount() == 1 })
	close(stopSampling)
	<-sampled
	growth := int64(peak) - int64(base)
	t.Logf("memory: baseline %d MiB, peak %d MiB, growth %d MiB for a %d MiB mail", base>>20, peak>>20, growth>>20, total>>20)
	if growth > 64<<20 {
		t.Errorf("memory grew by %d MiB while streaming a %d MiB mail, want under 64 MiB", growth>>20, total>>20)
	}
}

// processMemory is the memory the Go runtime holds from the OS.
func processMemory() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Sys - m.HeapReleased
}

// repeatReader yields line n times.
type repeatReader struct {
	line string
	n    int
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	w := 0
	for w < len(p) && r.n > 0 {
		c := copy(p[w:], r.line[r.off:])
		w += c
		if r.off += c; r.off == len(r.line) {
			r.off = 0
			r.n--
		}
	}
	if w == 0 {
		return 0, io.EOF
	}
	return w, nil
}

func TestWatcherConfigCheck(t *testing.T) {
	secret := &Secret{Env: "X"}
	for _, tt := range []struct {
		cfg  WatcherConfig
		want string
	}{
		{WatcherConfig{Addr: "imap.example.com:993", Username: "u", Secret: secret}, ""},
		{WatcherConfig{Addr: "127.0.0.1:143", Security: SecurityPlain, Username: "u", Secret: secret}, ""},
		{WatcherConfig{Addr: "imap.example.com:143", Security: SecurityPlain, Username: "u", Secret: secret}, "security: plaintext IMAP to imap.example.com"},
		{WatcherConfig{Addr: "imap.example.com:143", Security: SecurityPlain, AllowInsecure: true, Username: "u", Secret: secret}, ""},
		{WatcherConfig{Addr: "imap.example.com", Username: "u", Secret: secret}, "addr:"},
		{WatcherConfig{Addr: "h:1", Security: "ssl", Username: "u", Secret: secret}, "security:"},
		{WatcherConfig{Addr: "h:1", Secret: secret}, "username: missing"},
		{WatcherConfig{Addr: "h:1", Username: "u"}, "secret: missing"},
		{WatcherConfig{Addr: "h:1", Username: "u", Secret: &Secret{Env: "X", File: "f"}}, "secret: want exactly one"},
		{WatcherConfig{Addr: "h:1", Username: "u", Secret: secret, Mechanism: "cram-md5"}, "mechanism:"},
		{WatcherConfig{Addr: "h:1", Username: "u", Secret: secret, Mailboxes: []string{"Processed"}}, "mailboxes:"},
		// INBOX is one mailbox in any letter case (RFC 3501 section 5.1);
		// other names are case-sensitive.
		{WatcherConfig{Addr: "h:1", Username: "u", Secret: secret, Processed: "inbox"}, "processed:"},
		{WatcherConfig{Addr: "h:1", Username: "u", Secret: secret, Processed: "Inbox"}, "processed:"},
		{WatcherConfig{Addr: "h:1", Username: "u", Secret: secret, Mailboxes: []string{"inbox"}, Processed: "INBOX"}, "processed:"},
		{WatcherConfig{Addr: "h:1", Username: "u", Secret: secret, Quarantine: "iNbOx"}, "quarantine:"},
		{WatcherConfig{Addr: "h:1", Username: "u", Secret: secret, Mailboxes: []string{"Support"}, Processed: "Support"}, "processed:"},
		{WatcherConfig{Addr: "h:1", Username: "u", Secret: secret, Processed: "Done", Quarantine: "Done"}, "quarantine:"},
		{WatcherConfig{Addr: "h:1", Username: "u", Secret: secret, Quarantine: "Processed"}, "quarantine:"},
		{WatcherConfig{Addr: "h:1", Username: "u", Secret: secret, Mailboxes: []string{"INBOX", "inbox"}}, "mailboxes:"},
		{WatcherConfig{Addr: "h:1", Username: "u", Secret: secret, Mailboxes: []string{"Support"}, Processed: "support", Quarantine: "SUPPORT"}, ""},
		{WatcherConfig{Addr: "h:1", Username: "u", Secret: secret, Mailboxes: []string{"INBOX", "Support"}, Processed: "INBOX/Processed"}, ""},
	} {
		err := tt.cfg.Check()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%+v: Check() = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

// TestWatcherConfigProblems: every problem is reported, each beginning
// with the prefix and its field, so that a configuration file can point
// at the line of each.
func TestWatcherConfigProblems(t *testing.T) {
	cfg := WatcherConfig{Addr: "nowhere", Username: "u", Secret: &Secret{Env: "X"}, Processed: "inbox", Quarantine: "inbox"}
	var got []string
	for _, p := range cfg.Problems() {
		got = append(got, p.Error())
	}
	want := []string{"addr: ", "processed: ", "quarantine: the quarantine folder", "quarantine: \"inbox\" is both"}
	if len(got) != len(want) {
		t.Fatalf("Problems = %q, want one each for %q", got, want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d: %q, want it to begin with %q", i, got[i], want[i])
		}
	}
	if err := cfg.Check(); err == nil || strings.Count(err.Error(), "\n") != len(want)-1 {
		t.Errorf("Check() = %v, want the %d problems", err, len(want))
	}
}

func TestBackoff(t *testing.T) {
	w := &Watcher{cfg: WatcherConfig{BackoffMin: time.Second, BackoffMax: time.Minute}}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 10: time.Minute, 100: time.Minute} {
		for range 50 {
			if d := w.backoff(n); d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", n, d, want/2, want)
			}
		}
	}
}

func TestSecret(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/secret"
	os.WriteFile(file, []byte("s3cret\n"), 0o600)
	t.Setenv("TR_TEST_SECRET", "from-env")
	counter := dir + "/count"
	cmd := []string{"sh", "-c", "echo x >> " + counter + "; echo token-$(wc -l < " + counter + ")"}
	ctx := context.Background()
	for _, tt := range []struct {
		s    *Secret
		want string
	}{
		{&Secret{Env: "TR_TEST_SECRET"}, "from-env"},
		{&Secret{File: file}, "s3cret"},
		{&Secret{Command: cmd}, "token-1"},
	} {
		if got, err := tt.s.Get(ctx); err != nil || got != tt.want {
			t.Errorf("%+v: Get = %q, %v; want %q", tt.s, got, err, tt.want)
		}
	}
	// A command's value is reused until it is invalidated (a rejected token).
	s := &Secret{Command: cmd}
	first, _ := s.Get(ctx)
	again, _ := s.Get(ctx)
	s.Invalidate()
	fresh, _ := s.Get(ctx)
	if first != again || fresh == first {
		t.Errorf("cache: %q %q %q", first, again, fresh)
	}
	// Errors name the source, never the value.
	if _, err := (&Secret{Env: "TR_TEST_UNSET_VARIABLE"}).Get(ctx); err == nil || !strings.Contains(err.Error(), "TR_TEST_UNSET_VARIABLE") {
		t.Errorf("unset env: %v", err)
	}
}

func TestSASLClients(t *testing.T) {
	c, err := saslClient(AuthXOAuth2, "user@example.com", "ya29.token")
	if err != nil {
		t.Fatal(err)
	}
	mech, ir, err := c.Start()
	if mech != "XOAUTH2" || string(ir) != "user=user@example.com\x01auth=Bearer ya29.token\x01\x01" || err != nil {
		t.Errorf("XOAUTH2 start = %q %q %v", mech, ir, err)
	}
	if resp, err := c.Next([]byte(`{"status":"401"}`)); len(resp) != 0 || err != nil {
		t.Errorf("XOAUTH2 error challenge answered %q, %v", resp, err)
	}
	c, _ = saslClient(AuthOAuthBearer, "user@example.com", "tok")
	if mech, ir, _ := c.Start(); mech != "OAUTHBEARER" || !strings.Contains(string(ir), "auth=Bearer tok") {
		t.Errorf("OAUTHBEARER start = %q %q", mech, ir)
	}
	if c, err := saslClient(AuthLogin, "u", "p"); c != nil || err != nil {
		t.Errorf("login: %v %v", c, err)
	}
}

func TestFileCheckpoints(t *testing.T) {
	ctx := context.Background()
	cp := FileCheckpoints{Dir: t.TempDir() + "/state"}
	if got, err := cp.Load(ctx, "INBOX/Support desk"); err != nil || got != (Checkpoint{}) {
		t.Fatalf("empty store: %+v %v", got, err)
	}
	want := Checkpoint{UIDValidity: 42, LastUID: 1000}
	if err := cp.Save(ctx, "INBOX/Support desk", want); err != nil {
		t.Fatal(err)
	}
	if got, err := cp.Load(ctx, "INBOX/Support desk"); err != nil || got != want {
		t.Fatalf("Load = %+v %v", got, err)
	}
	if got, _ := cp.Load(ctx, "INBOX"); got != (Checkpoint{}) {
		t.Errorf("another mailbox shares the checkpoint: %+v", got)
	}
	entries, _ := os.ReadDir(cp.Dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

// TestWatcherTLS: implicit TLS and STARTTLS against Dovecot with a
// certificate made for the test; a certificate the client does not trust
// is refused.
func TestWatcherTLS(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.Options{TLS: true}).(*imaptest.Dovecot)
	for _, tt := range []struct {
		security, addr string
	}{
		{SecurityTLS, srv.TLSAddr()},
		{SecurityStartTLS, srv.Addr()},
	} {
		t.Run(tt.security, func(t *testing.T) {
			rec := newRecorder()
			id := tt.security + "@test"
			srv.Append(t, "INBOX", testMail(id))
			stop := startWatcher(t, srv, rec, FileCheckpoints{Dir: t.TempDir()}, func(c *WatcherConfig) {
				c.Security, c.Addr, c.TLSConfig = tt.security, tt.addr, srv.ClientTLS()
			})
			eventually(t, 30*time.Second, "the mail handled over "+tt.security, func() bool { return rec.completedCount() == 1 })
			stop()
		})
	}
	t.Run("untrusted certificate", func(t *testing.T) {
		w, err := NewWatcher(WatcherConfig{
			Addr: srv.TLSAddr(), Username: srv.Username(), Secret: &Secret{Env: "TR_UNUSED"},
		}, newRecorder(), FileCheckpoints{Dir: t.TempDir()}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		s := &session{w: w, state: &mailboxState{name: "INBOX"}, log: zerolog.Nop()}
		err = s.connect(context.Background())
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("connect with an untrusted certificate: %v", err)
		}
	})
}

// TestWatcherNoticesDeadConnection: a connection whose server stops
// answering (its sockets stay open) is noticed by the liveness check and
// replaced; mail keeps flowing.
func TestWatcherNoticesDeadConnection(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.Options{}).(*imaptest.Dovecot)
	rec := newRecorder()
	startWatcher(t, srv, rec, FileCheckpoints{Dir: t.TempDir()}, func(c *WatcherConfig) {
		c.Liveness, c.CommandTimeout = 500*time.Millisecond, time.Second
	})
	srv.Append(t, "INBOX", testMail("before@test"))
	eventually(t, 10*time.Second, "the first mail handled", func() bool { return rec.completedCount() == 1 })
	// Frozen in the middle of its MOVE, Dovecot would hold INBOX's lock
	// for good, and no new connection could select it.
	eventually(t, 10*time.Second, "the first mail moved", func() bool { return len(srv.UIDs(t, "Processed")) == 1 })
	srv.FreezeConnections(t)
	frozen := time.Now()
	srv.Append(t, "INBOX", testMail("after@test"))
	eventually(t, 30*time.Second, "the mail after the freeze handled", func() bool { return rec.completedCount() == 2 })
	t.Logf("handled %s after the connection froze (liveness 0.5 s, command timeout 1 s)", time.Since(frozen).Round(10*time.Millisecond))
}

// TestWatcherPollsWithoutIdle: a server without IDLE is polled.
func TestWatcherPollsWithoutIdle(t *testing.T) {
	forEachServer(t, func(t *testing.T, start func(*testing.T, imaptest.Options) imaptest.Server) {
		srv := start(t, imaptest.Options{NoIdle: true})
		if srv.Caps().Has(imap.CapIdle) {
			t.Fatal("the server still advertises IDLE")
		}
		rec := newRecorder()
		startWatcher(t, srv, rec, FileCheckpoints{Dir: t.TempDir()}, func(c *WatcherConfig) { c.PollInterval = 200 * time.Millisecond })
		time.Sleep(300 * time.Millisecond) // past the first scan
		srv.Append(t, "INBOX", testMail("polled@test"))
		eventually(t, 10*time.Second, "the mail found by polling", func() bool { return rec.completedCount() == 1 })
	})
}

// TestWatcherNoIdlePolls: with NoIdle the watcher polls though the
// server has IDLE, and so sees new mail sooner than Dovecot 2.3's IDLE
// tells of it (half a second after the change, a constant in Dovecot).
func TestWatcherNoIdlePolls(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.Options{})
	rec := newRecorder()
	rec.arrived = make(chan string, 10)
	startWatcher(t, srv, rec, FileCheckpoints{Dir: t.TempDir()}, func(c *WatcherConfig) {
		c.NoIdle, c.PollInterval = true, 50*time.Millisecond
	})
	for i := range 5 {
		time.Sleep(100 * time.Millisecond)
		sent := time.Now()
		srv.Append(t, "INBOX", testMail(fmt.Sprintf("poll-%d@test", i)))
		select {
		case <-rec.arrived:
			if d := time.Since(sent); d > 400*time.Millisecond {
				t.Errorf("mail %d handled %v after its APPEND, want under 400 ms with a 50 ms poll (IDLE takes 500 ms)", i, d.Round(time.Millisecond))
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("mail %d not picked up", i)
		}
	}
}

// TestWatcherSeveralMailboxes: each mailbox is watched on its own.
func TestWatcherSeveralMailboxes(t *testing.T) {
	srv := imaptest.StartMemServer(t, imaptest.Options{})
	rec := newRecorder()
	srv.Append(t, "INBOX", testMail("inbox@test"))
	srv.Append(t, "Support", testMail("support@test"))
	cp := FileCheckpoints{Dir: t.TempDir()}
	startWatcher(t, srv, rec, cp, func(c *WatcherConfig) { c.Mailboxes = []string{"INBOX", "Support"} })
	eventually(t, 10*time.Second, "both handled", func() bool { return rec.completedCount() == 2 })
	eventually(t, 10*time.Second, "both moved", func() bool { return len(srv.UIDs(t, "Processed")) == 2 })
	for _, mb := range []string{"INBOX", "Support"} {
		// Saved once the scan that moved the mail ends: just after the move.
		eventually(t, 10*time.Second, "the checkpoint of "+mb+" saved", func() bool {
			c, err := cp.Load(context.Background(), mb)
			return err == nil && c.LastUID != 0
		})
	}
}

// TestWatcherShutdownAbandonsSafely: cancelled while a handler is busy,
// the watcher returns, the mail stays in the mailbox (neither moved nor
// deleted), and the next run handles it.
func TestWatcherShutdownAbandonsSafely(t *testing.T) {
	forEachServer(t, func(t *testing.T, start func(*testing.T, imaptest.Options) imaptest.Server) {
		srv := start(t, imaptest.Options{})
		uid := srv.Append(t, "INBOX", testMail("slow@test"))
		rec := newRecorder()
		busy := make(chan struct{})
		rec.onStart = func(m *Mail) {
			close(busy)
			time.Sleep(200 * time.Millisecond) // still handling when the stop comes
		}
		cp := FileCheckpoints{Dir: t.TempDir()}
		stop := startWatcher(t, srv, rec, cp, nil)
		<-busy
		stop()
		if got := srv.UIDs(t, "INBOX"); !slices.Equal(got, []imap.UID{uid}) {
			t.Fatalf("after the stop INBOX holds %v, want [%d]", got, uid)
		}
		rec2 := newRecorder()
		startWatcher(t, srv, rec2, cp, nil)
		eventually(t, 10*time.Second, "handled by the next run", func() bool { return rec2.completedCount() == 1 })
	})
}

// TestWatcherStopsMidFetch: a stop while a FETCH of many bodies streams in
// returns promptly and leaves every unfinished mail in the mailbox (a
// Close from inside the FETCH once hung go-imap for good).
func TestWatcherStopsMidFetch(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.Options{})
	raws := make([][]byte, 400)
	for i := range raws {
		raws[i] = append(testMail(fmt.Sprintf("mid-%d@test", i)), bytes.Repeat([]byte("z\r\n"), 10000)...)
	}
	srv.AppendAll(t, "INBOX", raws)
	rec := newRecorder()
	started := make(chan struct{})
	var once sync.Once
	rec.onStart = func(m *Mail) { once.Do(func() { close(started) }) }
	stop := startWatcher(t, srv, rec, FileCheckpoints{Dir: t.TempDir()}, nil)
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("no mail handled within 30 s")
	}
	began := time.Now()
	stop() // fails the test if the watcher does not stop within 10 s
	t.Logf("stopped %v after the stop, %d mails completed", time.Since(began).Round(time.Millisecond), rec.completedCount())
	if in, done := len(srv.UIDs(t, "INBOX")), len(srv.UIDs(t, "Processed")); in+done != len(raws) {
		t.Errorf("INBOX %d + Processed %d mails, want %d", in, done, len(raws))
	}
}

// TestWatcherLogsNoSecret: the password appears in no log line, even when
// it is wrong.
func TestWatcherLogsNoSecret(t *testing.T) {
	srv := imaptest.StartMemServer(t, imaptest.Options{})
	var logs syncBuffer
	t.Setenv("TR_TEST_WRONG_PASSWORD", "wrong-Pa55word-xyz")
	w, err := NewWatcher(WatcherConfig{
		Addr: srv.Addr(), Security: SecurityPlain, Username: srv.Username(), Secret: &Secret{Env: "TR_TEST_WRONG_PASSWORD"},
		BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond,
	}, newRecorder(), FileCheckpoints{Dir: t.TempDir()}, zerolog.New(&logs).Level(zerolog.DebugLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	w.Run(ctx)
	out := logs.String()
	if !strings.Contains(out, "reconnecting") || !strings.Contains(out, "authenticate as "+srv.Username()) {
		t.Fatalf("no failed login logged:\n%s", out)
	}
	if strings.Contains(out, "wrong-Pa55word-xyz") {
		t.Fatalf("the password is in the logs:\n%s", out)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestWatcherRefusesMovingIntoWatchedMailbox: a processed or quarantine
// folder that names the watched mailbox (INBOX in another letter case) is
// refused, at the configuration and again by the server's own names when
// a watcher starts past it: it never moves a mail onto itself (Dovecot
// did, thousands of times a second).
func TestWatcherRefusesMovingIntoWatchedMailbox(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.Options{})
	uid := srv.Append(t, "INBOX", testMail("loop@test"))
	t.Setenv("TICKETROUTER_TEST_IMAP_PASSWORD", srv.Password())
	for _, tt := range []struct {
		name                          string
		mailboxes                     []string
		processed, quarantine, reason string
	}{
		{"processed inbox", nil, "inbox", "", "processed: "},
		{"processed Inbox", nil, "Inbox", "", "processed: "},
		{"watched inbox, processed INBOX", []string{"inbox"}, "INBOX", "", "processed: "},
		{"quarantine InBox", nil, "", "InBox", "quarantine: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := WatcherConfig{
				Addr: srv.Addr(), Security: SecurityPlain, Username: srv.Username(),
				Secret:    &Secret{Env: "TICKETROUTER_TEST_IMAP_PASSWORD"},
				Mailboxes: tt.mailboxes, Processed: tt.processed, Quarantine: tt.quarantine,
				CommandTimeout: 5 * time.Second, BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
			}
			rec := newRecorder()
			log := zerolog.New(zerolog.NewTestWriter(t))
			if _, err := NewWatcher(cfg, rec, FileCheckpoints{Dir: t.TempDir()}, log); err == nil || !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("NewWatcher: %v, want an error naming %q", err, tt.reason)
			}
			// Past the check, as on a server whose names are all
			// case-insensitive: the server's LIST names the folder as
			// the watched mailbox, and the watcher stops.
			w := &Watcher{cfg: cfg.withDefaults(), handler: rec, checkpoints: FileCheckpoints{Dir: t.TempDir()}, log: log, now: time.Now}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := w.Run(ctx)
			if ctx.Err() != nil || err == nil || !strings.Contains(err.Error(), "INBOX") {
				t.Errorf("Run = %v after %v; want it to refuse at once, naming INBOX", err, ctx.Err())
			}
			if got := srv.UIDs(t, "INBOX"); !slices.Equal(got, []imap.UID{uid}) {
				t.Errorf("INBOX holds %v, want [%d]: the mail was moved onto itself", got, uid)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if n := rec.calls["loop@test"]; n != 0 {
				t.Errorf("the mail was handled %d times", n)
			}
		})
	}
}

// TestWatcherEmptyMailQuarantined: mails the server sends no bytes of
// (imapmemserver sends nothing of a mail it cannot parse, and gives its
// size) are quarantined with the reason, each on its own: as tickets they
// would share one id (the hash of no bytes) and the second would pass as
// the first's duplicate. The mail sent whole is handled.
func TestWatcherEmptyMailQuarantined(t *testing.T) {
	srv := imaptest.StartMemServer(t, imaptest.Options{})
	raw := []byte("\x00\x01\x02 this is not an email at all")
	srv.Append(t, "INBOX", raw)
	srv.Append(t, "INBOX", []byte("\x00\x01 nor is this one"))
	srv.Append(t, "INBOX", testMail("fine@test"))
	rec := newRecorder()
	startWatcher(t, srv, rec, FileCheckpoints{Dir: t.TempDir()}, nil)
	eventually(t, 10*time.Second, "the fine mail handled, the empty ones quarantined", func() bool {
		return len(srv.UIDs(t, "Processed")) == 1 && len(srv.UIDs(t, "Quarantine")) == 2
	})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	want := fmt.Sprintf("the server sent no bytes of this mail (its size given as %d)", len(raw))
	if len(rec.quarantined) != 2 || rec.quarantined[0].Reason != want || rec.quarantined[0].UID == rec.quarantined[1].UID {
		t.Errorf("quarantined %+v; want both, the first because %q", rec.quarantined, want)
	}
	if len(rec.calls) != 1 || rec.calls["fine@test"] != 1 {
		t.Errorf("handled %v, want only fine@test", rec.calls)
	}
}

func TestSizeProblem(t *testing.T) {
	for _, tt := range []struct {
		announced, got int64
		want           string
	}{
		{31, 31, ""},
		{0, 0, ""},
		{31, 0, "IMAP: the server sent 0 bytes of this mail but gave its size as 31 (RFC822.SIZE): the raw mail may be cut short"},
		{100, 120, "IMAP: the server sent 120 bytes of this mail but gave its size as 100 (RFC822.SIZE): the raw mail holds 20 bytes the server did not count"},
	} {
		if got := sizeProblem(tt.announced, tt.got); got != tt.want {
			t.Errorf("sizeProblem(%d, %d) = %q, want %q", tt.announced, tt.got, got, tt.want)
		}
	}
}
