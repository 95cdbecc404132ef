package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
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

	c        *imapclient.Client
	caps     imap.CapSet
	newMail  chan struct{} // signalled by the reader goroutine on EXISTS
	selected bool          // the mailbox was selected: the connection worked

	cp        Checkpoint
	unsaved   int // mails done since the checkpoint was saved
	handledOK int
}

// run connects, selects the mailbox and works it until the connection is
// lost (it returns why) or ctx is done.
func (s *session) run(ctx context.Context) error {
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
		return fmt.Errorf("connect to %s: %w", cfg.Addr, err)
	}
	if err := s.within(ctx, s.c.WaitGreeting); err != nil {
		s.c.Close()
		return fmt.Errorf("greeting of %s: %w", cfg.Addr, err)
	}
	secret, err := cfg.Secret.Get(ctx)
	if err != nil {
		s.c.Close()
		return err
	}
	sc, err := saslClient(cfg.Mechanism, cfg.Username, secret)
	if err != nil {
		s.c.Close()
		return err
	}
	if sc == nil {
		err = s.within(ctx, s.c.Login(cfg.Username, secret).Wait)
	} else {
		err = s.within(ctx, func() error { return s.c.Authenticate(sc) })
	}
	if err != nil {
		cfg.Secret.Invalidate() // an expired token: fetch a new one next time
		s.c.Close()
		return fmt.Errorf("authenticate as %s on %s: %w", cfg.Username, cfg.Addr, err)
	}
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
	for _, folder := range []string{cfg.Processed, cfg.Quarantine} {
		if err := s.ensureFolder(ctx, folder); err != nil {
			return err
		}
	}
	var sel *imap.SelectData
	err := s.within(ctx, func() (err error) {
		sel, err = s.c.Select(s.state.name, nil).Wait()
		return err
	})
	if err != nil {
		return fmt.Errorf("select %s: %w", s.state.name, err)
	}
	cp, err := s.w.checkpoints.Load(ctx, s.state.name)
	if err != nil {
		return err
	}
	if cp.UIDValidity != sel.UIDValidity {
		if cp.UIDValidity != 0 {
			s.log.Warn().Uint32("old", cp.UIDValidity).Uint32("new", sel.UIDValidity).
				Msg("uidvalidity changed: the mailbox is scanned again from its first message")
		}
		cp = Checkpoint{UIDValidity: sel.UIDValidity}
		if err := s.w.checkpoints.Save(ctx, s.state.name, cp); err != nil {
			return err
		}
	}
	s.cp = cp
	s.selected = true
	s.w.cfg.Observer.Connected(s.state.name)
	s.log.Info().Uint32("uidvalidity", sel.UIDValidity).Uint32("messages", sel.NumMessages).
		Uint32("last_uid", uint32(cp.LastUID)).Msg("selected")
	return nil
}

// ensureFolder creates folder unless it exists.
func (s *session) ensureFolder(ctx context.Context, folder string) error {
	var found []*imap.ListData
	err := s.within(ctx, func() (err error) {
		found, err = s.c.List("", folder, nil).Collect()
		return err
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", folder, err)
	}
	if len(found) > 0 {
		return nil
	}
	err = s.within(ctx, s.c.Create(folder, nil).Wait)
	var imapErr *imap.Error
	if errors.As(err, &imapErr) && imapErr.Code == imap.ResponseCodeAlreadyExists {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", folder, err)
	}
	s.log.Info().Str("folder", folder).Msg("folder created")
	return nil
}

// meta is what a scan learns of a message before reading it.
type meta struct {
	uid     imap.UID
	size    int64
	flags   []imap.Flag
	arrived time.Time // INTERNALDATE
}

// scan works every message above the checkpoint, oldest first. worked
// reports whether it tried to work any (rather than finding none, or only
// mails waiting for their next try).
func (s *session) scan(ctx context.Context) (worked bool, err error) {
	var uids []imap.UID
	err = s.within(ctx, func() error {
		criteria := &imap.SearchCriteria{UID: []imap.UIDSet{{imap.UIDRange{Start: s.cp.LastUID + 1, Stop: 0}}}}
		data, err := s.c.UIDSearch(criteria, nil).Wait() // nil options: RETURN breaks servers without ESEARCH
		if err == nil {
			uids = data.AllUIDs()
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("search %s: %w", s.state.name, err)
	}
	// "n:*" always matches the last message, even below n: drop what is done.
	uids = slices.DeleteFunc(uids, func(u imap.UID) bool { return u <= s.cp.LastUID })
	slices.Sort(uids)
	for k := range s.state.failures { // forget failed mail that someone else removed
		if k.uidValidity != s.cp.UIDValidity || !slices.Contains(uids, k.uid) {
			delete(s.state.failures, k)
		}
	}
	if len(uids) == 0 {
		return false, nil
	}
	const batch = 256
	blocked := false // a message below is not done: the checkpoint stays
	for len(uids) > 0 {
		n := min(batch, len(uids))
		metas, err := s.fetchMeta(ctx, uids[:n])
		if err != nil {
			return worked, err
		}
		if len(metas) > 0 {
			s.w.cfg.Observer.Backlog(s.state.name, len(uids), metas[0].arrived)
		}
		for _, m := range metas {
			if ctx.Err() != nil {
				return worked, nil
			}
			if s.waiting(m.uid) {
				blocked = true
				continue
			}
			if !worked {
				s.log.Info().Int("messages", len(uids)).Msg("fetched")
				worked = true
			}
			done, err := s.process(ctx, m)
			if err != nil {
				return worked, err
			}
			if done && !blocked {
				s.cp.LastUID = m.uid
				if s.unsaved++; s.unsaved >= s.w.cfg.CheckpointEvery {
					s.saveCheckpoint(ctx)
				}
			}
			blocked = blocked || !done
		}
		uids = uids[n:]
	}
	s.saveCheckpoint(ctx)
	waiting, oldest := 0, time.Time{}
	for k, f := range s.state.failures {
		if k.uidValidity == s.cp.UIDValidity {
			waiting++
			if oldest.IsZero() || f.arrived.Before(oldest) {
				oldest = f.arrived
			}
		}
	}
	s.w.cfg.Observer.Backlog(s.state.name, waiting, oldest)
	return worked, nil
}

// waiting reports whether a failed mail is waiting for its next try.
func (s *session) waiting(uid imap.UID) bool {
	f := s.state.failures[failureKey{s.cp.UIDValidity, uid}]
	return f != nil && s.w.now().Before(f.next)
}

// checkpointTimeout bounds one checkpoint save.
const checkpointTimeout = 2 * time.Second

func (s *session) saveCheckpoint(ctx context.Context) {
	if s.unsaved == 0 {
		return
	}
	// Bounded: a checkpoint not saved only costs a rescan, and a store
	// that does not answer must not hold up a stop.
	ctx, cancel := context.WithTimeout(ctx, checkpointTimeout)
	defer cancel()
	if err := s.w.checkpoints.Save(ctx, s.state.name, s.cp); err != nil {
		s.log.Error().Err(err).Msg("checkpoint not saved") // costs a rescan, nothing else
		return
	}
	s.unsaved = 0
}

// fetchMeta reads the UID, size and flags of the messages, in UID order.
// A message that vanished meanwhile is not in the result.
func (s *session) fetchMeta(ctx context.Context, uids []imap.UID) ([]meta, error) {
	var bufs []*imapclient.FetchMessageBuffer
	err := s.within(ctx, func() (err error) {
		bufs, err = s.c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, RFC822Size: true, Flags: true, InternalDate: true}).Collect()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fetch sizes: %w", err)
	}
	metas := make([]meta, 0, len(bufs))
	for _, b := range bufs {
		if b.UID != 0 && slices.Contains(uids, b.UID) {
			metas = append(metas, meta{uid: b.UID, size: b.RFC822Size, flags: b.Flags, arrived: b.InternalDate})
		}
	}
	slices.SortFunc(metas, func(a, b meta) int { return int(a.uid) - int(b.uid) })
	return metas, nil
}

// process works one message. done reports that it has left the mailbox's
// to-do list (handled, quarantined, gone); err is a lost connection.
func (s *session) process(ctx context.Context, m meta) (done bool, err error) {
	key := failureKey{s.cp.UIDValidity, m.uid}
	f := s.state.failures[key]
	log := s.log.With().Uint32("uid", uint32(m.uid)).Logger()
	if slices.ContainsFunc(m.flags, func(f imap.Flag) bool { return strings.EqualFold(string(f), s.w.cfg.DoneKeyword) }) {
		return true, nil // handled before, on a server where it could not be moved
	}
	if m.size > s.w.cfg.MaxSize {
		return s.quarantine(ctx, m, 0, fmt.Sprintf("%d bytes, over the %d-byte limit: not read", m.size, s.w.cfg.MaxSize))
	}
	attempt := 1
	if f != nil {
		attempt = f.attempts + 1
	}
	s.w.cfg.Observer.Fetched(s.state.name)
	vanished, herr, err := s.handle(ctx, m, attempt)
	switch {
	case err != nil:
		return false, err
	case vanished:
		log.Info().Msg("message gone before it was read")
		delete(s.state.failures, key)
		return true, nil
	case herr != nil && ctx.Err() != nil:
		return false, nil // shutting down: abandoned, not failed; it stays for the next run
	case herr != nil:
		return s.failed(ctx, m, key, fmt.Errorf("handler: %w", herr))
	}
	if err := s.moveAway(ctx, m.uid, s.w.cfg.Processed); err != nil {
		if isConnectionError(err) {
			return false, err
		}
		return s.failed(ctx, m, key, fmt.Errorf("move to %s: %w", s.w.cfg.Processed, err))
	}
	delete(s.state.failures, key)
	s.handledOK++
	s.w.cfg.Observer.Moved(s.state.name)
	log.Info().Str("to", s.w.cfg.Processed).Msg("moved")
	return true, nil
}

// failed records a failed attempt: the mail is tried again after a backoff,
// and quarantined after MaxAttempts. One poison mail never holds up the
// others: they are worked meanwhile.
func (s *session) failed(ctx context.Context, m meta, key failureKey, cause error) (bool, error) {
	f := s.state.failures[key]
	if f == nil {
		f = &failure{arrived: m.arrived}
		s.state.failures[key] = f
	}
	f.lastErr = cause
	if errors.Is(cause, ErrUnavailable) { // not the mail's fault: wait it out
		f.unavailable++
		f.next = s.w.now().Add(s.w.backoff(f.unavailable))
		s.log.Warn().Uint32("uid", uint32(m.uid)).Err(cause).Time("next_try", f.next).Msg("mail not handled: waiting for what is unavailable")
		return false, nil
	}
	f.unavailable = 0
	f.attempts++
	if f.attempts >= s.w.cfg.MaxAttempts {
		return s.quarantine(ctx, m, f.attempts, fmt.Sprintf("failed %d times, last: %v", f.attempts, cause))
	}
	f.next = s.w.now().Add(s.w.backoff(f.attempts))
	s.log.Warn().Uint32("uid", uint32(m.uid)).Int("attempt", f.attempts).Err(cause).
		Time("next_try", f.next).Msg("mail not handled; will retry")
	return false, nil
}

// quarantine records why, then moves the mail to the quarantine folder.
// If either step fails the mail stays where it is, to be tried again.
func (s *session) quarantine(ctx context.Context, m meta, attempts int, reason string) (bool, error) {
	key := failureKey{s.cp.UIDValidity, m.uid}
	q := &Quarantined{Mailbox: s.state.name, UIDValidity: s.cp.UIDValidity, UID: m.uid, Size: m.size, Reason: reason, Attempts: attempts}
	err := s.w.handler.Quarantine(ctx, q)
	if err == nil {
		if err = s.moveAway(ctx, m.uid, s.w.cfg.Quarantine); err != nil && isConnectionError(err) {
			return false, err
		}
	}
	if err != nil {
		f := s.state.failures[key]
		if f == nil {
			f = &failure{attempts: attempts, arrived: m.arrived}
			s.state.failures[key] = f
		}
		f.next = s.w.now().Add(s.w.cfg.BackoffMax)
		s.log.Error().Uint32("uid", uint32(m.uid)).Err(err).Str("reason", reason).Msg("quarantine failed; the mail stays and is tried again")
		return false, nil
	}
	delete(s.state.failures, key)
	s.w.cfg.Observer.Quarantined(s.state.name)
	s.log.Warn().Uint32("uid", uint32(m.uid)).Str("reason", reason).Str("to", s.w.cfg.Quarantine).Msg("quarantined")
	return true, nil
}

// handle streams one message's raw bytes into the handler. vanished
// reports a message deleted by someone else meanwhile; herr is the
// handler's failure; err a lost connection (not the mail's fault).
func (s *session) handle(ctx context.Context, m meta, attempt int) (vanished bool, herr, err error) {
	cmd := s.c.Fetch(imap.UIDSetNum(m.uid), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	msg := cmd.Next()
	if msg == nil {
		if err := cmd.Close(); err != nil {
			return false, nil, fmt.Errorf("fetch %d: %w", m.uid, err)
		}
		return true, nil, nil
	}
	body := &literalBody{r: strings.NewReader("")}
	for item := msg.Next(); item != nil; item = msg.Next() {
		if b, ok := item.(imapclient.FetchItemDataBodySection); ok && b.Literal != nil {
			body = &literalBody{r: b.Literal, left: b.Literal.Size()}
			break
		}
	}
	herr = s.w.handler.HandleMail(ctx, &Mail{
		Mailbox: s.state.name, UIDValidity: s.cp.UIDValidity, UID: m.uid, Size: m.size, Body: body, Attempt: attempt,
	})
	if ctx.Err() != nil {
		s.c.Close() // shutting down: the rest of the literal is not read
		return false, herr, ctx.Err()
	}
	// Read what the handler left, so the connection stays in step.
	io.Copy(io.Discard, body)
	if body.err != nil && !errors.Is(body.err, io.EOF) {
		// The connection broke mid-literal. go-imap must not be asked to
		// read that literal again (FetchCommand.Close would): drop the
		// connection instead.
		s.c.Close()
		return false, herr, fmt.Errorf("read message %d: %w", m.uid, body.err)
	}
	if err := cmd.Close(); err != nil {
		return false, herr, fmt.Errorf("fetch %d: %w", m.uid, err)
	}
	return false, herr, nil
}

// literalBody hands an IMAP literal to the handler. Once it has reported
// the end or an error it never reads the literal again: from then on
// go-imap's reader goroutine owns the connection. An end before the size
// the server announced means the connection broke.
type literalBody struct {
	r    io.Reader
	left int64
	err  error
}

func (b *literalBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if errors.Is(err, io.EOF) && b.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

// moveAway moves a message to folder without ever losing it: MOVE when
// the server has it; else COPY and, only once the copy succeeded and with
// UIDPLUS, \Deleted and UID EXPUNGE of that one message; else a keyword
// that marks it done (a plain EXPUNGE would also remove other people's
// \Deleted mail). go-imap's own fallback is not used: it expunges even
// when COPY failed.
func (s *session) moveAway(ctx context.Context, uid imap.UID, folder string) error {
	set := imap.UIDSetNum(uid)
	if s.caps.Has(imap.CapMove) {
		return s.within(ctx, func() error {
			_, err := s.c.Move(set, folder).Wait()
			return err
		})
	}
	err := s.within(ctx, func() error {
		_, err := s.c.Copy(set, folder).Wait()
		return err
	})
	if err != nil {
		return fmt.Errorf("copy: %w", err) // nothing was deleted
	}
	if !s.caps.Has(imap.CapUIDPlus) {
		done := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.Flag(s.w.cfg.DoneKeyword)}}
		return s.within(ctx, s.c.Store(set, done, nil).Close)
	}
	deleted := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}
	if err := s.within(ctx, s.c.Store(set, deleted, nil).Close); err != nil {
		return fmt.Errorf("store \\Deleted: %w", err)
	}
	if err := s.within(ctx, s.c.UIDExpunge(set).Close); err != nil {
		return fmt.Errorf("uid expunge: %w", err)
	}
	return nil
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
	if !s.caps.Has(imap.CapIdle) {
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
		return fmt.Errorf("no answer within %s", s.w.cfg.CommandTimeout)
	}
}

// isConnectionError tells a lost connection from a server's refusal (NO,
// BAD), after which the connection is still good.
func isConnectionError(err error) bool {
	var imapErr *imap.Error
	return err != nil && !errors.As(err, &imapErr)
}
