package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/rs/zerolog"
)

// session is one connection to one mailbox, from login to its loss.
type session struct {
	w     *Watcher
	state *mailboxState
	log   zerolog.Logger

	c             *imapclient.Client
	caps          imap.CapSet
	newMail       chan struct{} // signalled by the reader goroutine on EXISTS
	authenticated bool          // the login succeeded
	selected      bool          // the mailbox was selected: the connection worked

	cp      Checkpoint
	unsaved int // mails done since the checkpoint was saved
}

// run connects, selects the mailbox and works it until the connection is
// lost (it returns why, a *ConnectionError) or ctx is done.
func (s *session) run(ctx context.Context) (err error) {
	defer func() {
		if ce := (*ConnectionError)(nil); err != nil && !errors.As(err, &ce) {
			err = failed(networkCause(err), err)
		}
	}()
	if err := s.connect(ctx); err != nil {
		return err
	}
	defer s.close(ctx)
	if err := s.prepare(ctx); err != nil {
		return err
	}
	for {
		// Scan until a pass finds nothing to do: mail that came while the
		// last pass worked is found by searching, whether or not the
		// server reports it (some only report at their next command).
		for {
			worked, err := s.scan(ctx)
			if err != nil {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !worked {
				break
			}
		}
		if err := s.wait(ctx); err != nil {
			return err
		}
	}
}

// connect dials, waits for the greeting and authenticates.
func (s *session) connect(ctx context.Context) error {
	cfg := &s.w.cfg
	s.newMail = make(chan struct{}, 1)
	host, _, _ := net.SplitHostPort(cfg.Addr)
	tlsConfig := cfg.TLSConfig
	if tlsConfig == nil {
		tlsConfig = &tls.Config{}
	}
	if tlsConfig.ServerName == "" {
		tlsConfig = tlsConfig.Clone()
		tlsConfig.ServerName = host
	}
	opts := &imapclient.Options{
		TLSConfig: tlsConfig,
		Dialer:    &net.Dialer{Timeout: cfg.CommandTimeout},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			// On the reader goroutine: only signal, never send a command.
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					select {
					case s.newMail <- struct{}{}:
					default:
					}
				}
			},
		},
	}
	var err error
	switch cfg.Security {
	case SecurityTLS:
		s.c, err = imapclient.DialTLS(cfg.Addr, opts)
	case SecurityStartTLS:
		s.c, err = imapclient.DialStartTLS(cfg.Addr, opts)
	default:
		s.c, err = imapclient.DialInsecure(cfg.Addr, opts)
	}
	if err != nil {
		return failed(dialCause(cfg.Security, err), fmt.Errorf("connect to %s: %w", cfg.Addr, err))
	}
	if err := s.within(ctx, s.c.WaitGreeting); err != nil {
		s.c.Close()
		cause := networkCause(err)
		if cause == CauseNoAnswer {
			cause = CauseNoGreeting
		}
		return failed(cause, fmt.Errorf("greeting of %s: %w", cfg.Addr, err))
	}
	secret, err := cfg.Secret.Get(ctx)
	if err != nil {
		s.c.Close()
		return failed(CauseSecret, err)
	}
	sc, err := saslClient(cfg.Mechanism, cfg.Username, secret)
	if err != nil {
		s.c.Close()
		return failed(CauseAuth, err)
	}
	if sc == nil {
		err = s.within(ctx, s.c.Login(cfg.Username, secret).Wait)
	} else {
		err = s.within(ctx, func() error { return s.c.Authenticate(sc) })
	}
	if err != nil {
		cfg.Secret.Invalidate() // an expired token: fetch a new one next time
		s.c.Close()
		return failed(authCause(err), fmt.Errorf("authenticate as %s on %s: %w", cfg.Username, cfg.Addr, err))
	}
	s.authenticated = true
	var caps imap.CapSet
	err = s.within(ctx, func() (err error) {
		caps, err = s.c.Capability().Wait()
		return err
	})
	if err != nil {
		s.c.Close()
		return fmt.Errorf("capabilities of %s: %w", cfg.Addr, err)
	}
	s.caps = caps
	s.log.Info().Str("addr", cfg.Addr).Str("security", cfg.Security).
		Bool("idle", caps.Has(imap.CapIdle)).Bool("move", caps.Has(imap.CapMove)).Bool("uidplus", caps.Has(imap.CapUIDPlus)).
		Msg("connected")
	return nil
}

// close logs out politely when it can, and closes the connection.
func (s *session) close(ctx context.Context) {
	if ctx.Err() == nil || s.unsaved > 0 {
		s.saveCheckpoint(context.WithoutCancel(ctx))
	}
	done := make(chan struct{})
	go func() {
		s.c.Logout().Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	s.c.Close()
}

// prepare creates the folders mail is moved to, selects the mailbox and
// checks its UIDVALIDITY against the checkpoint.
func (s *session) prepare(ctx context.Context) error {
	cfg := &s.w.cfg
	// The server's own names, compared: a server may call one mailbox by
	// several names (INBOX in any case; some servers every name), and
	// moving a mail to the mailbox it is in makes a new mail, for ever.
	watched, _, err := s.serverName(ctx, s.state.name)
	if err != nil {
		return failed(refusalCause(CauseSelect, err), err)
	}
	processed := ""
	for _, f := range []struct{ field, folder string }{{"processed", cfg.Processed}, {"quarantine", cfg.Quarantine}} {
		name, err := s.ensureFolder(ctx, f.folder)
		if err != nil {
			return err
		}
		if sameMailbox(name, watched) {
			return failed(CauseSettings, &refusal{fmt.Errorf("%s: the server lists %q as %q, the watched mailbox: mail moved there would be moved onto itself", f.field, f.folder, name)})
		}
		if f.field == "quarantine" && sameMailbox(name, processed) {
			return failed(CauseSettings, &refusal{fmt.Errorf("%s: the server lists %q as %q, the processed folder", f.field, f.folder, name)})
		}
		processed = name
	}
	var sel *imap.SelectData
	err = s.within(ctx, func() (err error) {
		sel, err = s.c.Select(s.state.name, nil).Wait()
		return err
	})
	if err != nil {
		return failed(refusalCause(CauseSelect, err), fmt.Errorf("select %s: %w", s.state.name, err))
	}
	cp, err := s.w.checkpoints.Load(ctx, s.state.name)
	if err != nil {
		return failed(CauseCheckpoint, err)
	}
	if cp.UIDValidity != sel.UIDValidity {
		if cp.UIDValidity != 0 {
			s.log.Warn().Uint32("old", cp.UIDValidity).Uint32("new", sel.UIDValidity).
				Msg("uidvalidity changed: the mailbox is scanned again from its first message")
		}
		cp = Checkpoint{UIDValidity: sel.UIDValidity}
		if err := s.w.checkpoints.Save(ctx, s.state.name, cp); err != nil {
			return failed(CauseCheckpoint, err)
		}
	}
	s.cp = cp
	s.selected = true
	s.w.setStatus(s.state.name, func(st *MailboxStatus) { st.Connected, st.Retry = true, time.Time{} })
	s.w.cfg.Observer.Connected(s.state.name)
	s.log.Info().Uint32("uidvalidity", sel.UIDValidity).Uint32("messages", sel.NumMessages).
		Uint32("last_uid", uint32(cp.LastUID)).Msg("selected")
	return nil
}

// serverName returns the name the server lists for mailbox (the same
// name, but for servers that take other spellings of it: INBOX in any
// letter case), and whether it exists.
func (s *session) serverName(ctx context.Context, mailbox string) (string, bool, error) {
	var found []*imap.ListData
	err := s.within(ctx, func() (err error) {
		found, err = s.c.List("", mailbox, nil).Collect()
		return err
	})
	if err != nil {
		return "", false, fmt.Errorf("list %s: %w", mailbox, err)
	}
	if len(found) != 1 {
		return mailbox, len(found) > 1, nil
	}
	return found[0].Mailbox, true, nil
}

// ensureFolder creates folder unless it exists, and returns the server's
// name for it.
func (s *session) ensureFolder(ctx context.Context, folder string) (string, error) {
	name, exists, err := s.serverName(ctx, folder)
	if err != nil {
		return "", failed(refusalCause(CauseFolder, err), err)
	}
	if exists {
		return name, nil
	}
	err = s.within(ctx, s.c.Create(folder, nil).Wait)
	var imapErr *imap.Error
	if errors.As(err, &imapErr) && imapErr.Code == imap.ResponseCodeAlreadyExists {
		err = nil
	}
	if err != nil {
		return "", failed(refusalCause(CauseFolder, err), fmt.Errorf("create %s: %w", folder, err))
	}
	s.log.Info().Str("folder", folder).Msg("folder created")
	return folder, nil
}

// wait returns when there may be work: new mail, a retry due, or (without
// IDLE) the next poll. It checks that the connection is alive meanwhile.
func (s *session) wait(ctx context.Context) error {
	select {
	case <-s.newMail:
		return nil // mail came during the scan
	default:
	}
	retry := s.nextRetry()
	if !s.caps.Has(imap.CapIdle) || s.w.cfg.NoIdle {
		t := time.NewTimer(min(s.w.cfg.PollInterval, retry))
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-s.newMail:
		case <-s.c.Closed():
			return errors.New("connection closed by the server")
		}
		return nil
	}
	// Beginning IDLE waits for the server's continuation: a server that
	// stopped answering just now would keep it waiting for ever.
	var idle *imapclient.IdleCommand
	if err := s.within(ctx, func() (err error) {
		idle, err = s.c.Idle()
		return err
	}); err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	s.log.Debug().Msg("idle")
	live := time.NewTimer(s.w.cfg.Liveness)
	defer live.Stop()
	due := time.NewTimer(retry)
	defer due.Stop()
	check := false
	select {
	case <-ctx.Done():
	case <-s.newMail:
	case <-due.C:
	case <-live.C:
		check = true
	case <-s.c.Closed():
		return errors.New("connection closed by the server")
	}
	// End IDLE: DONE, then its tagged answer. A dead connection gives
	// neither; the command timeout notices.
	if err := s.within(ctx, func() error {
		if err := idle.Close(); err != nil {
			return err
		}
		return idle.Wait()
	}); err != nil {
		return fmt.Errorf("end idle: %w", err)
	}
	if check {
		if err := s.within(ctx, s.c.Noop().Wait); err != nil {
			return fmt.Errorf("liveness check: %w", err)
		}
	}
	return nil
}

// nextRetry returns how long until the next failed mail may be tried.
func (s *session) nextRetry() time.Duration {
	next := time.Duration(1<<63 - 1)
	now := s.w.now()
	for k, f := range s.state.failures {
		if k.uidValidity == s.cp.UIDValidity {
			next = min(next, max(f.next.Sub(now), 0))
		}
	}
	return next
}

// within runs an IMAP exchange and gives up after the command timeout,
// closing the connection (which unblocks it): a server that stopped
// answering is a dead connection.
func (s *session) within(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	t := time.NewTimer(s.w.cfg.CommandTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		s.c.Close()
		<-done
		return fmt.Errorf("%w within %s", errNoAnswer, s.w.cfg.CommandTimeout)
	}
}

// isConnectionError tells a lost connection from a server's refusal (NO,
// BAD), after which the connection is still good.
func isConnectionError(err error) bool {
	var imapErr *imap.Error
	return err != nil && !errors.As(err, &imapErr)
}
