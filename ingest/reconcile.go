package ingest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// A MOVE (or the COPY that stands in for it) whose answer never came may
// have copied some of its mails: Dovecot's Maildir MOVE copies every mail,
// then expunges them, and a server killed in between leaves copies in the
// folder and every original in the mailbox. Repeating the MOVE would put
// those mails in the folder twice. So a move is recorded as unconfirmed
// until its answer comes, and before the same mails are moved to the same
// folder again, the folder is searched for copies of them: a mail whose
// copy is there is only removed from the mailbox; the others are moved.
//
// A copy is recognised by its bytes (SHA-256), size and INTERNALDATE, which
// COPY and MOVE keep: mails without a Message-ID, mails sharing one and
// identical mails are all told apart, and identical mails are counted, so
// that two in the mailbox and one copy in the folder leave one to move.

// sizeChunk is how many sizes one SEARCH for candidate copies asks for.
const sizeChunk = 64

// digest identifies a message's content, as a copy of it keeps it.
type digest struct {
	size int64
	date int64 // INTERNALDATE, Unix seconds
	sum  [sha256.Size]byte
}

// expectMove records that uids are being moved to folder, until
// confirmMove says the server answered.
func (s *session) expectMove(uids []imap.UID, folder string) {
	for _, u := range uids {
		s.state.unconfirmed[failureKey{s.cp.UIDValidity, u}] = folder
	}
}

// confirmMove forgets the unconfirmed moves of uids.
func (s *session) confirmMove(uids []imap.UID) {
	for _, u := range uids {
		delete(s.state.unconfirmed, failureKey{s.cp.UIDValidity, u})
	}
}

// skipArrived returns the mails of uids still to be moved to folder:
// those of an unconfirmed move to folder that already have a copy there
// are removed from the mailbox instead (and left out). A server that
// refuses the search has the move repeated as it is: a mail may then be
// in the folder twice, but none stays stuck.
func (s *session) skipArrived(ctx context.Context, uids []imap.UID, folder string) ([]imap.UID, error) {
	var pending []imap.UID
	for _, u := range uids {
		if s.state.unconfirmed[failureKey{s.cp.UIDValidity, u}] == folder {
			pending = append(pending, u)
		}
	}
	if len(pending) == 0 {
		return uids, nil
	}
	arrived, err := s.arrived(ctx, pending, folder)
	if isConnectionError(err) {
		return nil, err
	}
	if err != nil {
		s.log.Warn().Err(err).Str("folder", folder).Int("messages", len(pending)).
			Msg("cannot look for the copies an unanswered move left: moving again, some may be in the folder twice")
		s.confirmMove(pending)
		return uids, nil
	}
	if len(arrived) > 0 {
		if err := s.removeCopied(ctx, imap.UIDSetNum(arrived...)); err != nil {
			return nil, err
		}
		s.log.Info().Int("messages", len(arrived)).Int("unanswered", len(pending)).Stringer("uids", imap.UIDSetNum(arrived...)).
			Str("folder", folder).Msg("already copied by a move whose answer was lost: removed, not moved again")
	}
	s.confirmMove(pending)
	rest := make([]imap.UID, 0, len(uids)-len(arrived))
	for _, u := range uids {
		if !slices.Contains(arrived, u) {
			rest = append(rest, u)
		}
	}
	return rest, nil
}

// arrived returns which of uids (in the selected mailbox) have a copy in
// folder, each copy counted once. It examines folder and selects the
// mailbox again after, checking its UIDVALIDITY; a failure to do so is a
// connection error.
func (s *session) arrived(ctx context.Context, uids []imap.UID, folder string) (found []imap.UID, err error) {
	src, err := s.digests(ctx, uids)
	if err != nil || len(src) == 0 {
		return nil, err // none left: the move finished
	}
	defer func() {
		if rerr := s.reselect(ctx); rerr != nil {
			found, err = nil, rerr
		}
	}()
	if err := s.within(ctx, func() error {
		_, err := s.c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
		return err
	}); err != nil {
		return nil, fmt.Errorf("examine %s: %w", folder, err)
	}
	// Candidates: the folder's mails of the same size and INTERNALDATE.
	wanted := map[[2]int64]bool{}
	var sizes []int64
	for _, d := range src {
		if !slices.Contains(sizes, d.size) {
			sizes = append(sizes, d.size)
		}
		wanted[[2]int64{d.size, d.date}] = true
	}
	var candidates []imap.UID
	for chunk := range slices.Chunk(sizes, sizeChunk) {
		criteria := sizeCriteria(chunk)
		err := s.within(ctx, func() error {
			data, err := s.c.UIDSearch(&criteria, nil).Wait()
			if err == nil {
				candidates = append(candidates, data.AllUIDs()...)
			}
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("search %s: %w", folder, err)
		}
	}
	var likely []imap.UID
	if len(candidates) > 0 {
		var bufs []*imapclient.FetchMessageBuffer
		if err := s.within(ctx, func() (err error) {
			bufs, err = s.c.Fetch(imap.UIDSetNum(candidates...), &imap.FetchOptions{UID: true, RFC822Size: true, InternalDate: true}).Collect()
			return err
		}); err != nil {
			return nil, fmt.Errorf("fetch sizes in %s: %w", folder, err)
		}
		for _, b := range bufs {
			if wanted[[2]int64{b.RFC822Size, b.InternalDate.Unix()}] {
				likely = append(likely, b.UID)
			}
		}
	}
	if len(likely) == 0 {
		return nil, nil
	}
	dst, err := s.digests(ctx, likely)
	if err != nil {
		return nil, err
	}
	copies := map[digest]int{}
	for _, d := range dst {
		copies[d]++
	}
	for _, u := range uids {
		if d, ok := src[u]; ok && copies[d] > 0 {
			copies[d]--
			found = append(found, u)
		}
	}
	return found, nil
}

// sizeCriteria matches the messages of any of the sizes (at least one).
func sizeCriteria(sizes []int64) imap.SearchCriteria {
	if len(sizes) == 1 {
		// LARGER n-1 SMALLER n+1 is size n; LARGER 0 is left out by
		// go-imap, so sizes 0 and 1 come together (the fetch tells them apart).
		return imap.SearchCriteria{Larger: sizes[0] - 1, Smaller: sizes[0] + 1}
	}
	half := len(sizes) / 2
	return imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{sizeCriteria(sizes[:half]), sizeCriteria(sizes[half:])}}}
}

// reselect selects the watched mailbox again after another was examined,
// and checks that its UIDs still mean what they meant.
func (s *session) reselect(ctx context.Context) error {
	var sel *imap.SelectData
	err := s.within(ctx, func() (err error) {
		sel, err = s.c.Select(s.state.name, nil).Wait()
		return err
	})
	if err != nil {
		return fmt.Errorf("select %s again: %v", s.state.name, err) // %v: a refusal here ends the session too
	}
	if sel.UIDValidity != s.cp.UIDValidity {
		return fmt.Errorf("select %s again: uidvalidity changed from %d to %d", s.state.name, s.cp.UIDValidity, sel.UIDValidity)
	}
	return nil
}

// digests reads the messages of uids in the selected mailbox, streaming
// each one's bytes through SHA-256, and returns their digests by UID; a
// message that is gone is not in the result. Like fetch, it bounds the
// silence, not the whole FETCH.
func (s *session) digests(ctx context.Context, uids []imap.UID) (map[imap.UID]digest, error) {
	timeout := s.w.cfg.CommandTimeout
	watchdog := time.AfterFunc(timeout, func() { s.c.Close() })
	defer watchdog.Stop()
	progress := func() { watchdog.Reset(timeout) }
	set := imap.UIDSetNum(uids...)
	cmd := s.c.Fetch(set, &imap.FetchOptions{UID: true, RFC822Size: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	out := make(map[imap.UID]digest, len(uids))
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		progress()
		var uid imap.UID
		var d digest
		h := sha256.New()
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = it.UID
			case imapclient.FetchItemDataRFC822Size:
				d.size = it.Size
			case imapclient.FetchItemDataInternalDate:
				d.date = it.Time.Unix()
			case imapclient.FetchItemDataBodySection:
				if it.Literal == nil {
					continue
				}
				body := &literalBody{r: it.Literal, left: it.Literal.Size(), progress: progress}
				if _, err := io.Copy(h, body); err != nil {
					s.c.Close() // mid-literal: the connection cannot go on
					return nil, fmt.Errorf("fetch %s: %w", set, err)
				}
			}
		}
		h.Sum(d.sum[:0])
		if slices.Contains(uids, uid) {
			out[uid] = d
		}
	}
	if err := cmd.Close(); err != nil {
		return nil, fmt.Errorf("fetch %s: %w", set, err)
	}
	return out, nil
}
