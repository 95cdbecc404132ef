package ingest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"maps"
	"net"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Causes of a connection failure, as ConnectionError.Cause gives them: what
// an operator looks at first, before the error in full.
const (
	CauseAuth        = "authentication failed"
	CauseUnavailable = "server unavailable"
	CauseSecret      = "secret unavailable"
	CauseTLSMismatch = "TLS mismatch (check imap.security against the port)"
	CauseNoGreeting  = "no greeting from the server (a TLS port? check imap.security)"
	CauseStartTLS    = "STARTTLS refused"
	CauseTLS         = "TLS handshake failed"
	CauseCertificate = "TLS certificate not trusted"
	CauseRefused     = "connection refused"
	CauseDNS         = "host not found"
	CauseTimeout     = "connection timed out"
	CauseNoAnswer    = "server stopped answering"
	CauseFolder      = "folder cannot be created"
	CauseSelect      = "mailbox cannot be selected"
	CauseCheckpoint  = "checkpoint store unavailable"
	CauseSettings    = "settings refused by the server"
	CauseLost        = "connection lost"
)

// ConnectionError is why a connection to a mailbox failed or was lost, as
// the watcher reports it (WatcherObserver.Disconnected, Status, its log):
// a cause in a few words, and the error.
type ConnectionError struct {
	Cause string // one of the Cause constants
	Err   error
}

// Error begins with the cause.
func (e *ConnectionError) Error() string { return e.Cause + ": " + e.Err.Error() }

// Unwrap returns the error in full, for errors.Is and errors.As.
func (e *ConnectionError) Unwrap() error { return e.Err }

// Cause returns the cause of a connection failure: the ConnectionError's
// in err, else a guess from the error; "" for nil.
func Cause(err error) string {
	if err == nil {
		return ""
	}
	if ce := (*ConnectionError)(nil); errors.As(err, &ce) {
		return ce.Cause
	}
	return networkCause(err)
}

// failed wraps err, the failure of one step of a session, with its cause.
func failed(cause string, err error) error {
	return &ConnectionError{Cause: cause, Err: err}
}

// errNoAnswer is a command that got no answer within the command timeout.
var errNoAnswer = errors.New("no answer")

// networkCause guesses the cause of a failure below IMAP.
func networkCause(err error) string {
	var (
		record  tls.RecordHeaderError
		verify  *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		alert   tls.AlertError
		dns     *net.DNSError
		netErr  net.Error
	)
	switch {
	case errors.As(err, &record):
		return CauseTLSMismatch // plaintext where a TLS record was expected
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &host), errors.As(err, &invalid):
		return CauseCertificate
	case errors.As(err, &alert):
		return CauseTLS
	case errors.Is(err, syscall.ECONNREFUSED):
		return CauseRefused
	case errors.As(err, &dns):
		return CauseDNS
	case errors.Is(err, errNoAnswer):
		return CauseNoAnswer
	case errors.As(err, &netErr) && netErr.Timeout():
		return CauseTimeout
	}
	return CauseLost
}

// dialCause is the cause of a failure to dial and set up TLS: a server
// that closes the connection during the TLS handshake does not like it,
// and one that closes it on STARTTLS speaks TLS from the start.
func dialCause(security string, err error) string {
	cause := networkCause(err)
	var imapErr *imap.Error
	switch {
	case errors.As(err, &imapErr):
		return CauseStartTLS
	case cause != CauseLost:
		return cause
	case security == SecurityStartTLS && errors.Is(err, io.ErrUnexpectedEOF), security == SecurityStartTLS && errors.Is(err, io.EOF):
		return CauseTLSMismatch
	case security == SecurityTLS:
		return CauseTLS
	}
	return cause
}

// authCause is the cause of a failed login: the server's refusal, unless
// it said it is unavailable for now, or the connection broke meanwhile.
func authCause(err error) string {
	var imapErr *imap.Error
	switch {
	case !errors.As(err, &imapErr):
		return networkCause(err)
	case imapErr.Code == imap.ResponseCodeUnavailable:
		return CauseUnavailable
	}
	return CauseAuth
}

// refusalCause is the cause of a server's NO to a command of a session's
// set-up (cause), or the connection's failure meanwhile.
func refusalCause(cause string, err error) string {
	if isConnectionError(err) {
		return networkCause(err)
	}
	return cause
}

// reconnects counts a mailbox's failed connection attempts in a row: failed
// logins apart, as they back off much longer.
type reconnects struct {
	network, auth int
}

// reconnectDelay counts the failed attempt err in and returns how long to
// wait before the next. An attempt that got past the login (authenticated)
// starts the count of failed logins afresh; one that got the mailbox
// selected, the count of the others.
func (w *Watcher) reconnectDelay(r *reconnects, err error, authenticated, selected bool) time.Duration {
	if authenticated {
		r.auth = 0
	}
	if selected {
		r.network = 0
	}
	if Cause(err) == CauseAuth {
		r.auth++
		return backoffDelay(w.cfg.AuthBackoffMin, w.cfg.AuthBackoffMax, r.auth)
	}
	r.network++
	return w.backoff(r.network)
}

// MailboxStatus is how a watched mailbox's connection stands.
type MailboxStatus struct {
	Connected bool // the mailbox is selected and worked
	// Cause says in a few words why it is not connected (a Cause constant);
	// Err is the last failure in full. Both are kept while connected.
	Cause string
	Err   error
	Retry time.Time // when the next attempt begins, while not connected
}

// Status returns how each mailbox's connection stands; a mailbox not
// connected yet and never failed is not in it.
func (w *Watcher) Status() map[string]MailboxStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.status)
}

// setStatus records how a mailbox's connection stands.
func (w *Watcher) setStatus(mailbox string, update func(*MailboxStatus)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.status == nil {
		w.status = map[string]MailboxStatus{}
	}
	st := w.status[mailbox]
	update(&st)
	w.status[mailbox] = st
}
