package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ticketrouter/ticketrouter/ingest/imaptest"

	"github.com/rs/zerolog"
)

// TestReconnectBackoff: network trouble is retried within a minute;
// failed logins back off from AuthBackoffMin, doubling up to
// AuthBackoffMax (a provider locks an account out after a few), whatever
// came between them, until a login succeeds.
func TestReconnectBackoff(t *testing.T) {
	w := &Watcher{cfg: WatcherConfig{BackoffMin: time.Second, BackoffMax: time.Minute}.withDefaults()}
	auth := &ConnectionError{Cause: CauseAuth, Err: errors.New("NO [AUTHENTICATIONFAILED]")}
	network := &ConnectionError{Cause: CauseRefused, Err: errors.New("connection refused")}
	var r reconnects
	for i, step := range []struct {
		err           error
		authenticated bool // the attempt got past the login
		lo, hi        time.Duration
	}{
		{network, false, time.Second / 2, time.Second},
		{network, false, time.Second, 2 * time.Second},
		{auth, false, 30 * time.Second, time.Minute},
		{auth, false, time.Minute, 2 * time.Minute},
		{network, false, 2 * time.Second, 4 * time.Second},
		{auth, false, 2 * time.Minute, 4 * time.Minute},
		{auth, false, 4 * time.Minute, 8 * time.Minute},
		{auth, false, 8 * time.Minute, 16 * time.Minute},
		{auth, false, 15 * time.Minute, 30 * time.Minute},
		{auth, false, 15 * time.Minute, 30 * time.Minute},
		{network, true, 4 * time.Second, 8 * time.Second}, // logged in, then lost
		{auth, false, 30 * time.Second, time.Minute},
	} {
		d := w.reconnectDelay(&r, step.err, step.authenticated, false)
		if d < step.lo || d > step.hi {
			t.Fatalf("step %d (%v): retry in %s, want within [%s, %s]", i, Cause(step.err), d, step.lo, step.hi)
		}
	}
}

// TestCause: what an operator reads first of a connection failure.
func TestCause(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{&ConnectionError{Cause: CauseAuth, Err: errors.New("NO")}, CauseAuth},
		{fmt.Errorf("watch INBOX: %w", &ConnectionError{Cause: CauseFolder, Err: errors.New("NO")}), CauseFolder},
		{errors.New("something else"), CauseLost},
	} {
		if got := Cause(tt.err); got != tt.want {
			t.Errorf("Cause(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestWatcherConnectionCauses: each way a connection to Dovecot fails is
// named: a wrong password (in the watcher's Status and its log, with
// retry_in a duration with its unit, and the long backoff of failed
// logins), TLS spoken to a plaintext port and the reverse, a certificate
// not trusted, a port nobody listens on, a folder that cannot be created.
func TestWatcherConnectionCauses(t *testing.T) {
	srv := imaptest.StartDovecot(t, imaptest.Options{TLS: true}).(*imaptest.Dovecot)
	t.Setenv("TR_TEST_IMAP_PASSWORD", srv.Password())
	t.Setenv("TR_TEST_WRONG_PASSWORD", "not-the-password")
	base := func() WatcherConfig {
		return WatcherConfig{
			Addr: srv.Addr(), Security: SecurityPlain, Username: srv.Username(),
			Secret: &Secret{Env: "TR_TEST_IMAP_PASSWORD"}, CommandTimeout: 2 * time.Second,
			BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
			AuthBackoffMin: 10 * time.Second, AuthBackoffMax: time.Minute,
		}
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	for _, tt := range []struct {
		name   string
		adjust func(*WatcherConfig)
		want   string
	}{
		{"TLS to the plaintext port", func(c *WatcherConfig) { c.Security, c.TLSConfig = SecurityTLS, srv.ClientTLS() }, CauseTLSMismatch},
		{"plaintext to the TLS port", func(c *WatcherConfig) { c.Addr = srv.TLSAddr() }, CauseNoGreeting},
		{"STARTTLS to the TLS port", func(c *WatcherConfig) {
			c.Security, c.Addr, c.TLSConfig = SecurityStartTLS, srv.TLSAddr(), srv.ClientTLS()
		}, CauseTLSMismatch},
		{"untrusted certificate", func(c *WatcherConfig) { c.Security, c.Addr = SecurityTLS, srv.TLSAddr() }, CauseCertificate},
		{"connection refused", func(c *WatcherConfig) { c.Addr = closedAddr }, CauseRefused},
		{"folder cannot be created", func(c *WatcherConfig) { c.Processed = "/Processed" }, CauseFolder},
		{"mailbox cannot be selected", func(c *WatcherConfig) { c.Mailboxes = []string{"Nowhere"} }, CauseSelect},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			tt.adjust(&cfg)
			w, err := NewWatcher(cfg, newRecorder(), FileCheckpoints{Dir: t.TempDir()}, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			s := &session{w: w, state: &mailboxState{name: w.cfg.Mailboxes[0]}, log: zerolog.Nop()}
			err = s.run(context.Background())
			if got := Cause(err); got != tt.want {
				t.Errorf("cause %q (%v), want %q", got, err, tt.want)
			}
		})
	}
	// Last: Dovecot delays every login from an address that failed one.
	t.Run("wrong password", func(t *testing.T) {
		cfg := base()
		// Dovecot answers a failed login after a delay (auth_failure_delay, 2 s).
		cfg.Secret, cfg.CommandTimeout = &Secret{Env: "TR_TEST_WRONG_PASSWORD"}, 10*time.Second
		var logs syncBuffer
		w, err := NewWatcher(cfg, newRecorder(), FileCheckpoints{Dir: t.TempDir()}, zerolog.New(&logs))
		if err != nil {
			t.Fatal(err)
		}
		defer runWatcher(t, w)()
		var st MailboxStatus
		eventually(t, 15*time.Second, "the failed login in the status", func() bool {
			st = w.Status()["INBOX"]
			return st.Err != nil
		})
		if st.Connected || st.Cause != CauseAuth || !strings.Contains(st.Err.Error(), "authentication failed") {
			t.Errorf("status %+v, want not connected, cause %q", st, CauseAuth)
		}
		if wait := time.Until(st.Retry); wait < 4*time.Second {
			t.Errorf("next try in %s, want the failed-login backoff (5 s at least)", wait)
		}
		var line struct {
			Cause   string `json:"cause"`
			RetryIn string `json:"retry_in"`
		}
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, `"reconnecting"`) {
				if err := json.Unmarshal([]byte(l), &line); err != nil {
					t.Fatalf("log line %s: %v", l, err)
				}
				break
			}
		}
		if d, err := time.ParseDuration(line.RetryIn); err != nil || d < 4*time.Second || line.Cause != CauseAuth {
			t.Errorf("reconnecting log: cause %q, retry_in %q (%v); want %q and a duration with its unit:\n%s", line.Cause, line.RetryIn, err, CauseAuth, logs.String())
		}
	})
}
