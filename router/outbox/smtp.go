package outbox

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/ticketrouter/ticketrouter/ingest"
	"github.com/ticketrouter/ticketrouter/router/config"
)

// Sender submits one composed message to a mail server. Run calls it for
// each mail; the error says whether to try again (Permanent).
type Sender interface {
	// Send submits msg from the envelope sender from to the one recipient
	// to, returning once the server accepted it (nil) or refused it, or
	// ctx ended.
	Send(ctx context.Context, from, to string, msg []byte) error
}

// SendError is a failed submission: at which stage, and whether trying
// again could help.
type SendError struct {
	// Stage is where it failed: connect, tls, greeting, hello, auth, mail,
	// rcpt, data.
	Stage string
	// Permanent: the server refused this mail for good (a 5xx answer to
	// MAIL, RCPT or the data). Failures before MAIL (the connection, TLS,
	// authentication) are never permanent: they are not the mail's fault,
	// and are tried again until the retry age runs out.
	Permanent bool
	Err       error
}

func (e *SendError) Error() string { return "smtp " + e.Stage + ": " + e.Err.Error() }

// Unwrap returns the underlying error (a *smtp.SMTPError for an answer
// of the server).
func (e *SendError) Unwrap() error { return e.Err }

// Permanent reports whether a Sender's error means the mail will never be
// accepted: a *SendError that says so, or a server's 5xx answer
// (*smtp.SMTPError) that no SendError qualifies. Everything else
// (network errors, timeouts, 4xx answers) is transient.
func Permanent(err error) bool {
	var se *SendError
	if errors.As(err, &se) {
		return se.Permanent
	}
	var smtpErr *smtp.SMTPError
	return errors.As(err, &smtpErr) && smtpErr.Code >= 500 && smtpErr.Code < 600
}

// SMTPSender submits mail to the server of the smtp section, one
// connection a mail (acknowledgements and replies are few; a connection
// held open would only go stale).
type SMTPSender struct {
	cfg config.SMTP
	tls *tls.Config
}

// NewSMTPSender returns the Sender of the smtp section: implicit TLS or
// STARTTLS (with the CA file's roots when set), AUTH with the mechanism
// and secret when a username is set, and cfg.Timeout for each exchange.
// It fails for a CA file that does not load.
func NewSMTPSender(cfg config.SMTP) (*SMTPSender, error) {
	cfg = cfg.WithDefaults()
	tc, err := cfg.TLSConfig()
	if err != nil {
		return nil, fmt.Errorf("smtp sender: %w", err)
	}
	return &SMTPSender{cfg: cfg, tls: tc}, nil
}

// Send submits one mail. A secret never appears in its errors: they hold
// the server's answers and the network's errors only.
func (s *SMTPSender) Send(ctx context.Context, from, to string, msg []byte) (err error) {
	fail := func(stage string, permanentIf5xx bool, err error) error {
		var smtpErr *smtp.SMTPError
		perm := permanentIf5xx && errors.As(err, &smtpErr) && smtpErr.Code >= 500 && smtpErr.Code < 600
		return &SendError{Stage: stage, Permanent: perm, Err: err}
	}
	d := net.Dialer{Timeout: s.cfg.Timeout}
	conn, err := d.DialContext(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fail("connect", false, err)
	}
	// Closing the connection ends whatever exchange ctx interrupts.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var c *smtp.Client
	switch s.cfg.Security {
	case ingest.SecurityTLS:
		tc := tls.Client(conn, s.tls)
		hctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		err = tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			conn.Close()
			return fail("tls", false, err)
		}
		c = smtp.NewClient(tc)
	case ingest.SecurityStartTLS:
		c, err = smtp.NewClientStartTLS(conn, s.tls)
		if err != nil {
			conn.Close()
			return fail("tls", false, err)
		}
	default:
		c = smtp.NewClient(conn)
	}
	defer c.Close()
	c.CommandTimeout, c.SubmissionTimeout = s.cfg.Timeout, 2*s.cfg.Timeout
	if s.cfg.Helo != "" {
		if err := c.Hello(s.cfg.Helo); err != nil {
			return fail("hello", false, err)
		}
	}
	if s.cfg.Username != "" {
		if err := s.auth(ctx, c); err != nil {
			return err
		}
	}
	if err := c.Mail(from, nil); err != nil {
		return fail("mail", true, err)
	}
	if err := c.Rcpt(to, nil); err != nil {
		return fail("rcpt", true, err)
	}
	w, err := c.Data()
	if err != nil {
		return fail("data", true, err)
	}
	if _, err := w.Write(msg); err != nil {
		w.Close()
		return fail("data", true, err)
	}
	if err := w.Close(); err != nil {
		return fail("data", true, err)
	}
	// Accepted: what follows cannot make it unsent.
	_ = c.Quit()
	return nil
}

// auth authenticates with the configured mechanism, only where a secret
// may go (TLS, loopback, or allow_insecure).
func (s *SMTPSender) auth(ctx context.Context, c *smtp.Client) error {
	if !s.cfg.MayAuthenticate() {
		return &SendError{Stage: "auth", Err: errors.New("refusing to send the secret over plain text to a server that is not loopback (set smtp.security, or allow_insecure)")}
	}
	if ok, _ := c.Extension("AUTH"); !ok {
		return &SendError{Stage: "auth", Err: errors.New("the server offers no AUTH")}
	}
	if s.cfg.Secret == nil {
		return &SendError{Stage: "auth", Err: errors.New("smtp.secret is not set")}
	}
	secret, err := s.cfg.Secret.Get(ctx)
	if err != nil {
		return &SendError{Stage: "auth", Err: err} // names the source only
	}
	var sc sasl.Client
	switch s.cfg.Mechanism {
	case config.SMTPAuthLogin:
		sc = sasl.NewLoginClient(s.cfg.Username, secret)
	case config.SMTPAuthXOAuth2:
		sc = ingest.NewXOAuth2Client(s.cfg.Username, secret)
	default:
		sc = sasl.NewPlainClient("", s.cfg.Username, secret)
	}
	if err := c.Auth(sc); err != nil {
		s.cfg.Secret.Invalidate() // an expired token is fetched again
		return &SendError{Stage: "auth", Err: redact(err, secret)}
	}
	return nil
}

// redact returns err, or, should its text hold the secret, an error that
// does not.
func redact(err error, secret string) error {
	if secret != "" && bytes.Contains([]byte(err.Error()), []byte(secret)) {
		return errors.New("authentication failed (the error held the secret and is withheld)")
	}
	return err
}
