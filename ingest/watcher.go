package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/rs/zerolog"
)

// Mail is one message of a watched mailbox, handed to the Handler once its
// raw bytes have been read from the server.
type Mail struct {
	Mailbox     string
	UIDValidity uint32
	UID         imap.UID
	Size        int64 // RFC822.SIZE as the server reports it
	// Raw is the message as the server sent it, to be read any number of
	// times (Raw.Reader); valid only until HandleMail returns.
	Raw     *Spool
	Attempt int // 1 on the first try
	// Problems lists what was wrong in reading the mail from the server
	// (its bytes not as many as the size the server gave), in words for
	// the ticket's list of problems; nil when nothing was.
	Problems []string
}

// Quarantined describes a mail about to be moved to the quarantine folder.
type Quarantined struct {
	Mailbox     string
	UIDValidity uint32
	UID         imap.UID
	Size        int64
	Reason      string
	Attempts    int // handler attempts made; 0 for a mail never read
}

// ErrUnavailable marks a handler error that is not the mail's fault: the
// ticket store cannot be reached, a DNS lookup failed for now. Such a mail
// is retried with backoff for as long as it takes, never quarantined for
// it; wrap it: fmt.Errorf("publish: %w: %w", ingest.ErrUnavailable, err).
var ErrUnavailable = errors.New("unavailable")

// WatcherObserver hears what a Watcher does, for metrics and health. Its
// methods are called from the mailboxes' goroutines and must not block.
type WatcherObserver interface {
	Connected(mailbox string)
	// Disconnected reports a failed or lost connection; err is a
	// *ConnectionError, its text beginning with the cause (Cause).
	Disconnected(mailbox string, err error)
	// Backlog reports the mails waiting in a mailbox and the arrival time
	// of the oldest (zero when none).
	Backlog(mailbox string, waiting int, oldest time.Time)
	Fetched(mailbox string)
	Moved(mailbox string)
	Quarantined(mailbox string)
}

// Handler is what the watcher hands mail to. Its methods are called from
// several goroutines at once: up to WatcherConfig.Concurrency mails of each
// mailbox are handled at the same time.
type Handler interface {
	// HandleMail processes one mail. A nil error promises the mail is safe
	// elsewhere (its ticket published and acknowledged): only then is it
	// moved out of the watched mailbox. An error is retried with backoff;
	// after MaxAttempts the mail is quarantined.
	HandleMail(ctx context.Context, m *Mail) error
	// Quarantine records why a mail is quarantined (the dead-letter
	// record); only after it returned nil is the mail moved.
	Quarantine(ctx context.Context, q *Quarantined) error
}

// Security is how the connection to the IMAP server is protected.
const (
	SecurityTLS      = "tls"      // implicit TLS (port 993)
	SecurityStartTLS = "starttls" // plaintext upgraded by STARTTLS (port 143)
	SecurityPlain    = "plain"    // no TLS: loopback only unless AllowInsecure
)

// WatcherConfig says which server and mailboxes to watch and how.
type WatcherConfig struct {
	Addr          string      // host:port
	Security      string      // tls (default), starttls or plain
	AllowInsecure bool        // allow plaintext to a host that is not loopback
	TLSConfig     *tls.Config // nil: the system roots, ServerName from Addr

	Username  string
	Mechanism string  // login (default), plain, xoauth2, oauthbearer
	Secret    *Secret // the password or the access token

	Mailboxes  []string // watched; INBOX when empty
	Processed  string   // where handled mail goes; "Processed"
	Quarantine string   // where mail that cannot be handled goes; "Quarantine"
	// DoneKeyword marks handled mail when it cannot be moved away safely
	// (a server without MOVE and UIDPLUS); "$TicketRouterDone".
	DoneKeyword string

	MaxSize     int64 // larger mail is quarantined unread; 25 MiB
	MaxAttempts int   // handler tries before quarantine; 5
	// Concurrency is how many mails of one mailbox are handled at once:
	// while some wait for their tickets' acknowledgements, others are read
	// and parsed. 128.
	Concurrency  int
	PollInterval time.Duration // without IDLE; 30s
	// NoIdle polls every PollInterval even when the server has IDLE.
	// Dovecot 2.3 holds IDLE notifications back half a second after a
	// change; a poll every 50 ms answers faster, for a command each time.
	NoIdle bool
	// Liveness is how often an idle connection is checked (IDLE stopped,
	// NOOP sent, IDLE again): a dead connection shows within it plus
	// CommandTimeout. 30s.
	Liveness       time.Duration
	CommandTimeout time.Duration // for a command's answer; 20s
	BackoffMin     time.Duration // first reconnect or retry delay; 1s
	BackoffMax     time.Duration // largest delay; 1m
	// AuthBackoffMin and AuthBackoffMax pace reconnects after failed
	// logins, doubling from the first to the second (1m, 30m) until a
	// login succeeds: providers lock out accounts that fail too often.
	AuthBackoffMin time.Duration
	AuthBackoffMax time.Duration
	// CheckpointEvery is how many handled mails may go by between
	// checkpoint writes (a pass over the mailbox always ends with one); 100.
	CheckpointEvery int

	// Observer, when set, hears every state change.
	Observer WatcherObserver
}

func (c WatcherConfig) withDefaults() WatcherConfig {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.Security == "" {
		c.Security = SecurityTLS
	}
	if len(c.Mailboxes) == 0 {
		c.Mailboxes = []string{"INBOX"}
	}
	if c.Processed == "" {
		c.Processed = "Processed"
	}
	if c.Quarantine == "" {
		c.Quarantine = "Quarantine"
	}
	if c.DoneKeyword == "" {
		c.DoneKeyword = "$TicketRouterDone"
	}
	if c.MaxSize <= 0 {
		c.MaxSize = 25 << 20
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 128
	}
	if c.CheckpointEvery <= 0 {
		c.CheckpointEvery = 100
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	def(&c.PollInterval, 30*time.Second)
	def(&c.Liveness, 30*time.Second)
	def(&c.CommandTimeout, 20*time.Second)
	def(&c.BackoffMin, time.Second)
	def(&c.BackoffMax, time.Minute)
	def(&c.AuthBackoffMin, time.Minute)
	def(&c.AuthBackoffMax, 30*time.Minute)
	return c
}

// Problem is one thing wrong with a WatcherConfig: the field, by its key in
// the configuration's imap section ("processed"), and what is wrong; Err,
// when set, is the error behind it.
type Problem struct {
	Field string
	Msg   string
	Err   error
}

func (p Problem) Error() string { return p.Field + ": " + p.Msg }

// Check reports every problem of the settings (Problems), joined; each
// begins with its field ("processed: ...").
func (c WatcherConfig) Check() error {
	var errs []error
	for _, p := range c.Problems() {
		errs = append(errs, p)
	}
	return errors.Join(errs...)
}

// Problems lists what is wrong with the settings, one per problem, each
// with its field, so that a configuration file can point at the line of
// each. Nil when the settings can work.
func (c WatcherConfig) Problems() []Problem {
	var ps []Problem
	bad := func(field string, err error, format string, args ...any) {
		ps = append(ps, Problem{Field: field, Msg: fmt.Sprintf(format, args...), Err: err})
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		bad("addr", err, "%q is not host:port", c.Addr)
	}
	switch c.Security {
	case "", SecurityTLS, SecurityStartTLS:
	case SecurityPlain:
		if err == nil && !isLoopback(host) && !c.AllowInsecure {
			bad("security", nil, "plaintext IMAP to %s, which is not loopback, sends the password in clear; use tls or starttls, or set allow_insecure", host)
		}
	default:
		bad("security", nil, "%q is not tls, starttls or plain", c.Security)
	}
	if c.Username == "" {
		bad("username", nil, "missing")
	}
	if c.Secret == nil {
		bad("secret", nil, "missing (env, file or command)")
	} else if err := c.Secret.Check(); err != nil {
		bad("secret", err, "%v", err)
	}
	if _, err := saslClient(c.Mechanism, "", ""); err != nil {
		bad("mechanism", err, "%v", err)
	}
	return append(ps, c.folderProblems()...)
}

// folderProblems checks that mail is never moved onto itself: the
// processed and quarantine folders are neither a watched mailbox nor each
// other, and no mailbox is watched twice. Each problem names the field
// that was set (a default is not the operator's doing).
func (c WatcherConfig) folderProblems() []Problem {
	var ps []Problem
	d := c.withDefaults()
	field := func(name, set string) string {
		if set == "" {
			return "mailboxes"
		}
		return name
	}
	for i, m := range d.Mailboxes {
		if slices.ContainsFunc(d.Mailboxes[:i], func(o string) bool { return sameMailbox(o, m) }) {
			ps = append(ps, Problem{Field: "mailboxes", Msg: fmt.Sprintf("%q is listed twice (INBOX is one mailbox in any letter case)", m)})
		}
		if sameMailbox(m, d.Processed) {
			ps = append(ps, Problem{Field: field("processed", c.Processed), Msg: fmt.Sprintf("the processed folder %q is the watched mailbox %q: handled mail would be moved onto itself (INBOX is one mailbox in any letter case)", d.Processed, m)})
		}
		if sameMailbox(m, d.Quarantine) {
			ps = append(ps, Problem{Field: field("quarantine", c.Quarantine), Msg: fmt.Sprintf("the quarantine folder %q is the watched mailbox %q: quarantined mail would be moved onto itself (INBOX is one mailbox in any letter case)", d.Quarantine, m)})
		}
	}
	if sameMailbox(d.Processed, d.Quarantine) {
		name := "quarantine"
		if c.Quarantine == "" {
			name = "processed"
		}
		ps = append(ps, Problem{Field: name, Msg: fmt.Sprintf("%q is both the processed and the quarantine folder: quarantined mail would not stand apart", d.Quarantine)})
	}
	return ps
}

// sameMailbox reports whether two mailbox names name one mailbox: INBOX is
// case-insensitive (RFC 3501 section 5.1), every other name is compared as
// it is.
func sameMailbox(a, b string) bool {
	if strings.EqualFold(a, "INBOX") {
		return strings.EqualFold(b, "INBOX")
	}
	return a == b
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Watcher watches mailboxes and hands their mail to a Handler, one
// connection per mailbox, changing a mailbox only after the Handler said
// the mail is safe. It survives lost connections, server restarts and
// poison mail; nothing it does can delete a mail that was not handled.
type Watcher struct {
	cfg         WatcherConfig
	handler     Handler
	checkpoints CheckpointStore
	log         zerolog.Logger
	now         func() time.Time
	buffers     spoolBuffers // shared by the mailboxes' spools

	mu     sync.Mutex
	status map[string]MailboxStatus // by mailbox
}

// NewWatcher checks the settings and returns a Watcher.
func NewWatcher(cfg WatcherConfig, h Handler, cp CheckpointStore, log zerolog.Logger) (*Watcher, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	return &Watcher{cfg: cfg.withDefaults(), handler: h, checkpoints: cp, log: log, now: time.Now}, nil
}

// Run watches every mailbox until ctx is done, then returns nil once no
// mail is in flight. It returns an error only for settings that can never
// work (the server names a processed or quarantine folder as a watched
// mailbox), after stopping every mailbox; connection trouble is retried
// forever.
func (w *Watcher) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(w.cfg.Mailboxes))
	for i, mb := range w.cfg.Mailboxes {
		wg.Go(func() {
			if errs[i] = w.watch(ctx, mb); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// refusal is a session error that no retry can mend: the settings are
// wrong for this server.
type refusal struct{ err error }

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// watch keeps a session open on one mailbox, reconnecting after any loss
// with exponential backoff and jitter (much longer after failed logins),
// until ctx is done (nil) or the server refuses the settings (the
// refusal).
func (w *Watcher) watch(ctx context.Context, mailbox string) error {
	state := &mailboxState{name: mailbox, failures: map[failureKey]*failure{}, handled: map[failureKey]bool{}, unconfirmed: map[failureKey]string{}}
	log := w.log.With().Str("mailbox", mailbox).Logger()
	for r := (reconnects{}); ctx.Err() == nil; {
		s := &session{w: w, state: state, log: log}
		err := s.run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil { // not expected: a session ends with its reason
			err = failed(CauseLost, errors.New("session ended"))
		}
		if rf := (*refusal)(nil); errors.As(err, &rf) {
			w.setStatus(mailbox, func(st *MailboxStatus) { *st = MailboxStatus{Cause: Cause(err), Err: err} })
			w.cfg.Observer.Disconnected(mailbox, err)
			log.Error().Err(err).Str("cause", Cause(err)).Msg("stopped: the settings cannot work on this server")
			return fmt.Errorf("watch %s: %w", mailbox, err)
		}
		delay := w.reconnectDelay(&r, err, s.authenticated, s.selected)
		w.setStatus(mailbox, func(st *MailboxStatus) {
			*st = MailboxStatus{Cause: Cause(err), Err: err, Retry: w.now().Add(delay)}
		})
		w.cfg.Observer.Disconnected(mailbox, err)
		log.Warn().Err(err).Str("cause", Cause(err)).Str("retry_in", delay.Round(time.Millisecond).String()).Msg("reconnecting")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
	return nil
}

// backoff returns the delay before attempt n (n >= 1): doubling from
// BackoffMin up to BackoffMax, with "full jitter" in its upper half.
func (w *Watcher) backoff(n int) time.Duration {
	return backoffDelay(w.cfg.BackoffMin, w.cfg.BackoffMax, n)
}

// backoffDelay returns the delay before attempt n (n >= 1): doubling from
// lo up to hi, with "full jitter" in its upper half.
func backoffDelay(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}

// mailboxState outlives sessions: which mails failed, how often, and when
// they may be tried again; which were handled but not moved yet.
type mailboxState struct {
	name     string
	failures map[failureKey]*failure
	// handled holds mails whose handler succeeded but which are not moved
	// yet: after a lost connection they are moved without a second try.
	handled map[failureKey]bool
	// unconfirmed holds mails of a move whose answer never came, with the
	// folder: some may have a copy there already (skipArrived).
	unconfirmed map[failureKey]string
}

// forgetGone drops what is remembered of mails that someone else removed,
// given the mailbox's UIDs above the checkpoint, sorted.
func (st *mailboxState) forgetGone(uidValidity uint32, uids []imap.UID) {
	gone := func(k failureKey) bool {
		_, found := slices.BinarySearch(uids, k.uid)
		return k.uidValidity != uidValidity || !found
	}
	maps.DeleteFunc(st.failures, func(k failureKey, _ *failure) bool { return gone(k) })
	maps.DeleteFunc(st.handled, func(k failureKey, _ bool) bool { return gone(k) })
	maps.DeleteFunc(st.unconfirmed, func(k failureKey, _ string) bool { return gone(k) })
}

type failureKey struct {
	uidValidity uint32
	uid         imap.UID
}

type failure struct {
	attempts    int // failures counted toward quarantine
	unavailable int // failures that were not the mail's fault, in a row
	next        time.Time
	lastErr     error
	arrived     time.Time // the mail's INTERNALDATE
}

type nopObserver struct{}

func (nopObserver) Connected(string)               {}
func (nopObserver) Disconnected(string, error)     {}
func (nopObserver) Backlog(string, int, time.Time) {}
func (nopObserver) Fetched(string)                 {}
func (nopObserver) Moved(string)                   {}
func (nopObserver) Quarantined(string)             {}
