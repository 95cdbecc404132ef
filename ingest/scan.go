package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// A scan works the mails above the checkpoint as a pipeline: one UID
// FETCH reads the bodies of many mails, each spooled as it arrives and
// handed to its own handler goroutine; while those run, the session reads
// more bodies and moves the handled mails away with one UID MOVE per
// batch. Only the session goroutine talks to the server, and only it
// touches the mailbox's state; handlers report back on a channel.
const (
	metaBatch = 256 // UIDs whose sizes and flags one FETCH asks for
	// While more mail is to come, handled mails are moved once moveBatch
	// of them are ready or the first has waited moveDelay.
	moveBatch = 1024
	moveDelay = time.Second
	// memoryBudget bounds the memory held by the spools of the mails in
	// flight (each counted up to SpoolMemory).
	memoryBudget = 32 << 20
)

// meta is what a scan learns of a message before reading it.
type meta struct {
	uid     imap.UID
	size    int64
	flags   []imap.Flag
	arrived time.Time // INTERNALDATE
}

// memoryCost is what a mail's spool may hold in memory.
func (m meta) memoryCost() int64 { return min(m.size, SpoolMemory) }

// progress is where a mail of the scan stands, for the checkpoint.
type progress int

const (
	working  progress = iota // not settled yet
	finished                 // off the to-do list: moved, quarantined, gone, done before
	stays                    // still to do: it failed, waits for a retry or was abandoned
)

// outcome is a handler's report on one mail.
type outcome struct {
	m   meta
	err error
}

// scanner is the state of one scan.
type scanner struct {
	s      *session
	window int // mails in flight at most

	todo     []meta            // to fetch, in UID order
	alone    map[imap.UID]bool // fetched on their own: a FETCH of several was refused
	inFlight int               // handlers running
	memory   int64             // memory the spools of the mails in flight may hold
	results  chan outcome      // from the handlers; never blocks a handler
	handlers sync.WaitGroup
	toMove   []meta // handled, to be moved to the processed folder
	// waitingSince is when the first of toMove was handled.
	waitingSince time.Time

	// The checkpoint advances over the mails settled as finished, in UID
	// order, and stops at the first that stays.
	ledger []imap.UID
	state  map[imap.UID]progress
	next   int // ledger index of the first mail not finished
}

// scan works every message above the checkpoint, oldest first. worked
// reports whether it tried to work any (rather than finding none, or only
// mails waiting for their next try or done before).
func (s *session) scan(ctx context.Context) (worked bool, err error) {
	uids, err := s.search(ctx)
	if err != nil {
		return false, err
	}
	s.state.forgetGone(s.cp.UIDValidity, uids)
	if len(uids) == 0 {
		return false, nil
	}
	window := s.w.cfg.Concurrency
	sc := &scanner{
		s: s, window: window, alone: map[imap.UID]bool{},
		results: make(chan outcome, window), state: map[imap.UID]progress{},
	}
	defer sc.abandon()
	logged := false
	for ctx.Err() == nil {
		// Know a window's worth of mail ahead, so fetching never waits.
		for len(sc.todo) < window && len(uids) > 0 {
			n := min(metaBatch, len(uids))
			metas, err := s.fetchMeta(ctx, uids[:n])
			if err != nil {
				return worked, err
			}
			if len(metas) > 0 {
				s.w.cfg.Observer.Backlog(s.state.name, len(uids), metas[0].arrived)
			}
			uids = uids[n:]
			for _, m := range metas {
				w, err := sc.classify(ctx, m)
				if err != nil {
					return worked, err
				}
				if w && !logged {
					s.log.Info().Int("messages", len(metas)+len(uids)).Msg("fetched")
					logged = true
				}
				worked = worked || w
			}
		}
		if len(sc.todo) > 0 && sc.inFlight <= window/2 {
			if err := sc.fetch(ctx); err != nil {
				return worked, err
			}
		}
		if sc.inFlight == 0 && len(sc.toMove) == 0 {
			if len(sc.todo) == 0 && len(uids) == 0 {
				break
			}
			continue
		}
		// While there is more to fetch, wait until half the window is
		// free (at least one mail), so fetches and moves come in batches
		// while the other half is handled; at the end, wait for all.
		until := 0
		if len(sc.todo) > 0 {
			until = min(window/2, sc.inFlight-1)
		}
		if err := sc.collect(ctx, until); err != nil {
			return worked, err
		}
		// A move costs the server much more per command than per mail
		// (Dovecot rewrites a Maildir's index: 60 ms a MOVE at 20,000
		// mails), so handled mails wait for a large batch, a second, or
		// the end.
		more := len(sc.todo) > 0 || len(uids) > 0 || sc.inFlight > 0
		if more && len(sc.toMove) < moveBatch && time.Since(sc.waitingSince) < moveDelay {
			continue
		}
		// The move holds the connection for a while: first give the
		// handlers a full window to work on meanwhile.
		if len(sc.todo) > 0 && sc.inFlight < window {
			if err := sc.fetch(ctx); err != nil {
				return worked, err
			}
		}
		if err := sc.move(ctx); err != nil {
			return worked, err
		}
	}
	if ctx.Err() != nil {
		return worked, nil // shutting down: what is not settled stays for the next run
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

// search returns the UIDs above the checkpoint, in order.
func (s *session) search(ctx context.Context) ([]imap.UID, error) {
	var uids []imap.UID
	err := s.within(ctx, func() error {
		criteria := &imap.SearchCriteria{UID: []imap.UIDSet{{imap.UIDRange{Start: s.cp.LastUID + 1, Stop: 0}}}}
		data, err := s.c.UIDSearch(criteria, nil).Wait() // nil options: RETURN breaks servers without ESEARCH
		if err == nil {
			uids = data.AllUIDs()
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("search %s: %w", s.state.name, err)
	}
	// "n:*" always matches the last message, even below n: drop what is done.
	uids = slices.DeleteFunc(uids, func(u imap.UID) bool { return u <= s.cp.LastUID })
	slices.Sort(uids)
	return uids, nil
}

// classify decides what to do with a mail and starts it, except for
// fetching its body. worked reports that it will be, or was, worked.
func (sc *scanner) classify(ctx context.Context, m meta) (worked bool, err error) {
	s := sc.s
	key := failureKey{s.cp.UIDValidity, m.uid}
	sc.ledger = append(sc.ledger, m.uid)
	switch {
	case slices.ContainsFunc(m.flags, func(f imap.Flag) bool { return strings.EqualFold(string(f), s.w.cfg.DoneKeyword) }):
		sc.settle(m.uid, true) // handled before, on a server where it could not be moved
		return false, nil
	case s.waiting(m.uid):
		sc.settle(m.uid, false)
		return false, nil
	case s.state.handled[key]:
		sc.handled(m) // before the connection was lost
	case m.size > s.w.cfg.MaxSize:
		done, err := s.quarantine(ctx, m, 0, fmt.Sprintf("%d bytes, over the %d-byte limit: not read", m.size, s.w.cfg.MaxSize))
		if err != nil {
			return true, err
		}
		sc.settle(m.uid, done)
	default:
		sc.todo = append(sc.todo, m)
	}
	return true, nil
}

// settle records that a mail is finished (done) or stays, and advances
// the checkpoint over the finished mails at the front.
func (sc *scanner) settle(uid imap.UID, done bool) {
	sc.state[uid] = stays
	if done {
		sc.state[uid] = finished
	}
	s := sc.s
	for sc.next < len(sc.ledger) && sc.state[sc.ledger[sc.next]] == finished {
		s.cp.LastUID = sc.ledger[sc.next]
		sc.next++
		if s.unsaved++; s.unsaved >= s.w.cfg.CheckpointEvery {
			s.saveCheckpoint(context.Background())
		}
	}
}

// fetch reads the bodies of the next mails to do with one UID FETCH, as
// many as the window and the memory budget allow, spools each as it
// arrives and starts its handler.
func (sc *scanner) fetch(ctx context.Context) error {
	s := sc.s
	var chunk []meta
	memory := sc.memory
	for _, m := range sc.todo {
		if sc.inFlight+len(chunk) >= sc.window ||
			sc.inFlight+len(chunk) > 0 && memory+m.memoryCost() > memoryBudget ||
			sc.alone[m.uid] && len(chunk) > 0 {
			break
		}
		chunk = append(chunk, m)
		memory += m.memoryCost()
		if sc.alone[m.uid] {
			break
		}
	}
	if len(chunk) == 0 {
		return nil
	}
	sc.todo = sc.todo[len(chunk):]
	want := make(map[imap.UID]meta, len(chunk))
	uids := make([]imap.UID, len(chunk))
	for i, m := range chunk {
		want[m.uid], uids[i] = m, m.uid
	}
	// The command timeout applies to a silence, not to the whole FETCH,
	// which may carry a large mail: each byte read pushes it back.
	timeout := s.w.cfg.CommandTimeout
	watchdog := time.AfterFunc(timeout, func() { s.c.Close() })
	defer watchdog.Stop()
	// Not closed when ctx is done: Close waits for go-imap's reader, which
	// may be waiting to hand this goroutine the next message. The FETCH is
	// read to its end (the watchdog bounds a silence).
	progress := func() { watchdog.Reset(timeout) }
	cmd := s.c.Fetch(imap.UIDSetNum(uids...), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	var unspooled []meta
	var lastSpoolErr error
	var empty []meta // mails the server sent no bytes of
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		progress()
		uid, sp, spoolErr, err := readMessage(msg, &s.w.buffers, progress)
		if err != nil {
			// The connection broke mid-literal. go-imap must not be asked
			// to read that literal again (FetchCommand.Close would): drop
			// the connection instead.
			s.c.Close()
			return err
		}
		m, ok := want[uid]
		if !ok { // not asked for, or twice
			if sp != nil {
				sp.Close()
			}
			continue
		}
		delete(want, uid)
		s.w.cfg.Observer.Fetched(s.state.name)
		if spoolErr != nil {
			unspooled = append(unspooled, m)
			lastSpoolErr = spoolErr
			continue
		}
		if sp.Size() == 0 {
			// No bytes: nothing to route, and every empty mail would get
			// the same ticket id (its raw mail's hash), so the second would
			// pass as the first's duplicate. Quarantined, after the FETCH.
			sp.Close()
			empty = append(empty, m)
			continue
		}
		sc.start(ctx, m, sp, sizeProblem(m.size, sp.Size()))
	}
	fetchErr := cmd.Close()
	// Only now, with the FETCH over, may other commands be sent.
	for _, m := range empty {
		done, err := s.quarantine(ctx, m, 0, fmt.Sprintf("the server sent no bytes of this mail (its size given as %d)", m.size))
		if err != nil {
			return err
		}
		sc.settle(m.uid, done)
	}
	for _, m := range unspooled { // this machine's trouble (a full disk), not the mail's
		done, err := s.failed(ctx, m, failureKey{s.cp.UIDValidity, m.uid}, fmt.Errorf("%w: %w", ErrUnavailable, lastSpoolErr))
		if err != nil {
			return err
		}
		sc.settle(m.uid, done)
	}
	if err := fetchErr; err != nil {
		if isConnectionError(err) {
			return fmt.Errorf("fetch %s: %w", imap.UIDSetNum(uids...), err)
		}
		// Refused: find which mail it is by fetching each on its own.
		var again []meta
		for _, m := range chunk {
			if _, missing := want[m.uid]; !missing {
				continue
			}
			delete(want, m.uid)
			if len(chunk) > 1 {
				sc.alone[m.uid] = true
				again = append(again, m)
				continue
			}
			done, err := s.failed(ctx, m, failureKey{s.cp.UIDValidity, m.uid}, fmt.Errorf("fetch: %w", err))
			if err != nil {
				return err
			}
			sc.settle(m.uid, done)
		}
		sc.todo = append(again, sc.todo...)
	}
	for uid := range want {
		s.log.Info().Uint32("uid", uint32(uid)).Msg("message gone before it was read")
		delete(s.state.failures, failureKey{s.cp.UIDValidity, uid})
		sc.settle(uid, true)
	}
	return nil
}

// readMessage reads one message of a FETCH: its UID and its body, spooled
// in full. spoolErr is a failure to spool it here (the body was still read
// to its end); err is a connection that broke mid-literal.
func readMessage(msg *imapclient.FetchMessageData, buffers *spoolBuffers, progress func()) (uid imap.UID, sp *Spool, spoolErr, err error) {
	for item := msg.Next(); item != nil; item = msg.Next() {
		switch it := item.(type) {
		case imapclient.FetchItemDataUID:
			uid = it.UID
		case imapclient.FetchItemDataBodySection:
			if it.Literal == nil || sp != nil || spoolErr != nil {
				continue
			}
			body := &literalBody{r: it.Literal, left: it.Literal.Size(), progress: progress}
			sp, spoolErr = newSpool(body, it.Literal.Size(), SpoolMemory, "", buffers)
			if spoolErr != nil {
				io.Copy(io.Discard, body) // keep the connection in step
			}
			if body.err != nil && !errors.Is(body.err, io.EOF) {
				if sp != nil {
					sp.Close()
				}
				return 0, nil, nil, fmt.Errorf("read message %d: %w", uid, body.err)
			}
		}
	}
	if sp == nil && spoolErr == nil { // BODY[] NIL: an empty message
		sp = &Spool{}
	}
	return uid, sp, spoolErr, nil
}

// sizeProblem says, for the ticket, that the server sent got bytes of a
// mail whose size it gave as announced (RFC822.SIZE); "" when they agree.
// A server that cannot parse a mail may send an empty or partial body.
func sizeProblem(announced, got int64) string {
	switch {
	case got < announced:
		return fmt.Sprintf("IMAP: the server sent %d bytes of this mail but gave its size as %d (RFC822.SIZE): the raw mail may be cut short", got, announced)
	case got > announced:
		return fmt.Sprintf("IMAP: the server sent %d bytes of this mail but gave its size as %d (RFC822.SIZE): the raw mail holds %d bytes the server did not count", got, announced, got-announced)
	}
	return ""
}

// start runs the handler of a fetched mail in its own goroutine; problem,
// when not empty, is what was wrong in reading it.
func (sc *scanner) start(ctx context.Context, m meta, sp *Spool, problem string) {
	s := sc.s
	attempt := 1
	if f := s.state.failures[failureKey{s.cp.UIDValidity, m.uid}]; f != nil {
		attempt = f.attempts + 1
	}
	mail := &Mail{Mailbox: s.state.name, UIDValidity: s.cp.UIDValidity, UID: m.uid, Size: m.size, Raw: sp, Attempt: attempt}
	if problem != "" {
		mail.Problems = []string{problem}
		s.log.Info().Uint32("uid", uint32(m.uid)).Str("problem", problem).Msg("mail read with a problem")
	}
	sc.inFlight++
	sc.memory += m.memoryCost()
	sc.handlers.Go(func() {
		defer sp.Close()
		sc.results <- outcome{m: m, err: s.w.handler.HandleMail(ctx, mail)}
	})
}

// collect takes the handlers' reports, waiting until no more than until
// mails are in flight, then taking whatever else is ready.
func (sc *scanner) collect(ctx context.Context, until int) error {
	for sc.inFlight > 0 {
		var o outcome
		if sc.inFlight > until {
			o = <-sc.results
		} else {
			select {
			case o = <-sc.results:
			default:
				return nil
			}
		}
		if err := sc.record(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

// record acts on one handler's report.
func (sc *scanner) record(ctx context.Context, o outcome) error {
	s := sc.s
	sc.inFlight--
	sc.memory -= o.m.memoryCost()
	key := failureKey{s.cp.UIDValidity, o.m.uid}
	switch {
	case o.err == nil:
		s.state.handled[key] = true
		sc.handled(o.m)
	case ctx.Err() != nil:
		sc.settle(o.m.uid, false) // shutting down: abandoned, not failed
	default:
		done, err := s.failed(ctx, o.m, key, fmt.Errorf("handler: %w", o.err))
		if err != nil {
			return err
		}
		sc.settle(o.m.uid, done)
	}
	return nil
}

// handled queues a handled mail to be moved.
func (sc *scanner) handled(m meta) {
	if len(sc.toMove) == 0 {
		sc.waitingSince = time.Now()
	}
	sc.toMove = append(sc.toMove, m)
}

// move moves the handled mails to the processed folder: all in one
// command, and each on its own if that is refused, so that one mail the
// server will not move does not hold up the others.
func (sc *scanner) move(ctx context.Context) error {
	if len(sc.toMove) == 0 || ctx.Err() != nil {
		return nil // shutting down: they are handled again by the next run
	}
	s := sc.s
	batch := sc.toMove
	sc.toMove = nil
	uids := make([]imap.UID, len(batch))
	for i, m := range batch {
		uids[i] = m.uid
	}
	err := s.moveAway(ctx, uids, s.w.cfg.Processed)
	if err == nil {
		for _, m := range batch {
			sc.moved(m)
		}
		s.log.Info().Int("messages", len(batch)).Stringer("uids", imap.UIDSetNum(uids...)).Str("to", s.w.cfg.Processed).Msg("moved")
		return nil
	}
	if isConnectionError(err) {
		return err // the next session moves them (state.handled) without handling them again
	}
	for _, m := range batch {
		err := err
		if len(batch) > 1 {
			err = s.moveAway(ctx, []imap.UID{m.uid}, s.w.cfg.Processed)
		}
		if err == nil {
			sc.moved(m)
			s.log.Info().Uint32("uid", uint32(m.uid)).Str("to", s.w.cfg.Processed).Msg("moved")
			continue
		}
		if isConnectionError(err) {
			return err
		}
		done, err := s.failed(ctx, m, failureKey{s.cp.UIDValidity, m.uid}, fmt.Errorf("move to %s: %w", s.w.cfg.Processed, err))
		if err != nil {
			return err
		}
		sc.settle(m.uid, done)
	}
	return nil
}

// moved records a mail moved to the processed folder.
func (sc *scanner) moved(m meta) {
	s := sc.s
	key := failureKey{s.cp.UIDValidity, m.uid}
	delete(s.state.failures, key)
	delete(s.state.handled, key)
	s.w.cfg.Observer.Moved(s.state.name)
	sc.settle(m.uid, true)
}

// abandon waits for the handlers still running when a scan ends early.
// A mail handled meanwhile is remembered, so that the next session moves
// it without handling it again; a failure is not counted against it.
func (sc *scanner) abandon() {
	sc.handlers.Wait()
	for sc.inFlight > 0 {
		o := <-sc.results
		sc.inFlight--
		if o.err == nil {
			sc.s.state.handled[failureKey{sc.s.cp.UIDValidity, o.m.uid}] = true
		}
	}
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
		if err = s.moveAway(ctx, []imap.UID{m.uid}, s.w.cfg.Quarantine); err != nil && isConnectionError(err) {
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
	delete(s.state.handled, key)
	s.w.cfg.Observer.Quarantined(s.state.name)
	s.log.Warn().Uint32("uid", uint32(m.uid)).Str("reason", reason).Str("to", s.w.cfg.Quarantine).Msg("quarantined")
	return true, nil
}

// literalBody reads an IMAP literal into a spool. Once it has reported
// the end or an error it never reads the literal again: from then on
// go-imap's reader goroutine owns the connection. An end before the size
// the server announced means the connection broke.
type literalBody struct {
	r        io.Reader
	left     int64
	err      error
	progress func() // called for each read that brought bytes
}

func (b *literalBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if n > 0 {
		b.progress()
	}
	if errors.Is(err, io.EOF) && b.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

// moveAway moves messages to folder without ever losing one: MOVE when
// the server has it; else COPY and, only once the copy succeeded and with
// UIDPLUS, \Deleted and UID EXPUNGE of those messages only; else a keyword
// that marks them done (a plain EXPUNGE would also remove other people's
// \Deleted mail). go-imap's own fallback is not used: it expunges even
// when COPY failed. Until the server answered, the move is unconfirmed:
// moved again, the mails that already reached folder are not copied twice
// (skipArrived).
func (s *session) moveAway(ctx context.Context, uids []imap.UID, folder string) error {
	uids, err := s.skipArrived(ctx, uids, folder)
	if err != nil || len(uids) == 0 {
		return err
	}
	set := imap.UIDSetNum(uids...)
	s.expectMove(uids, folder)
	if s.caps.Has(imap.CapMove) {
		err := s.within(ctx, func() error {
			_, err := s.c.Move(set, folder).Wait()
			return err
		})
		if !isConnectionError(err) { // answered: moved, or refused with nothing moved
			s.confirmMove(uids)
		}
		return err
	}
	err = s.within(ctx, func() error {
		_, err := s.c.Copy(set, folder).Wait()
		return err
	})
	if err != nil {
		if !isConnectionError(err) {
			s.confirmMove(uids)
		}
		return fmt.Errorf("copy: %w", err) // nothing was deleted
	}
	// Copied: until the originals are gone (or marked done), a new try
	// must not copy them again.
	if err := s.removeCopied(ctx, set); err != nil {
		return err
	}
	s.confirmMove(uids)
	return nil
}

// removeCopied removes messages whose copies are safe in another folder:
// \Deleted and UID EXPUNGE of those messages only, with UIDPLUS; else the
// done keyword.
func (s *session) removeCopied(ctx context.Context, set imap.UIDSet) error {
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
