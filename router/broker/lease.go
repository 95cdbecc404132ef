package broker

import (
	"context"
	"encoding/base64"
	"errors"
	"hash/fnv"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Leases spreads mailboxes across the replicas that share one NATS: each
// mailbox is worked by one replica at a time, under a lease kept in a
// key-value bucket whose entries expire after TTL unless renewed. A
// replica that dies stops renewing, and the others take its mailboxes
// over within TTL plus one renewal period; as replicas come and go, each
// holds about its fair share of the mailboxes.
type Leases struct {
	JS      *JetStream
	Replica string        // this replica's id
	TTL     time.Duration // the buckets' entry TTL (Provision's leaseTTL)
	Log     zerolog.Logger
}

// lease is a mailbox this replica holds.
type lease struct {
	revision uint64
	cancel   context.CancelFunc
	done     chan struct{} // closed when work returned
	// release says, of a lease whose work is stopping, that it is given
	// up: kept and renewed until the work returned, then deleted.
	release bool
}

// Run holds leases and runs work for each mailbox it holds, until ctx is
// done. work's context ends when the lease is lost or given up, and work
// must then return; should work return before, the lease is released and
// taken again at a later round. A lease given up is released only once
// its work returned, so that two replicas never work a mailbox while both
// hold a lease; waiting for work never delays the renewal of the others.
// On return every lease is released at once, so that another replica
// takes over without waiting for the TTL.
func (l *Leases) Run(ctx context.Context, mailboxes []string, work func(ctx context.Context, mailbox string)) {
	held := map[string]*lease{}     // working
	stopping := map[string]*lease{} // work cancelled, not yet returned
	defer func() {
		// Leave the live replicas first: the others' shares grow at once
		// to take over every mailbox released below.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := l.JS.Replicas.Delete(rctx, replicaKey(l.Replica)); err != nil {
			l.Log.Warn().Err(err).Msg("replica heartbeat not removed; it expires by itself")
		}
		for mailbox, h := range held {
			h.cancel()
			h.release = true
			stopping[mailbox] = h
		}
		for mailbox, h := range stopping {
			<-h.done
			if h.release {
				l.release(ctx, mailbox, h)
			}
		}
	}()

	tick := time.NewTicker(l.TTL / 3)
	defer tick.Stop()
	for {
		l.round(ctx, mailboxes, held, stopping, work)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// release deletes a lease this replica holds.
func (l *Leases) release(ctx context.Context, mailbox string, h *lease) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := l.JS.Leases.Delete(rctx, mailboxKey(mailbox), jetstream.LastRevision(h.revision)); err != nil {
		l.Log.Warn().Err(err).Str("mailbox", mailbox).Msg("lease not released; it expires by itself")
	}
}

// renew renews a lease, reporting whether it is still this replica's.
func (l *Leases) renew(ctx context.Context, mailbox string, h *lease) bool {
	rev, err := l.JS.Leases.Update(ctx, mailboxKey(mailbox), []byte(l.Replica), h.revision)
	if err != nil {
		l.Log.Warn().Err(err).Str("mailbox", mailbox).Msg("lease lost: stopping work on the mailbox")
		return false
	}
	h.revision = rev
	return true
}

// round renews the leases held, gives up those beyond the fair share, and
// takes free mailboxes up to it. It never waits for work to return.
func (l *Leases) round(ctx context.Context, mailboxes []string, held, stopping map[string]*lease, work func(context.Context, string)) {
	rctx, cancel := context.WithTimeout(ctx, l.TTL/3)
	defer cancel()
	if _, err := l.JS.Replicas.Put(rctx, replicaKey(l.Replica), []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
		l.Log.Warn().Err(err).Msg("replica heartbeat failed")
	}
	stop := func(mailbox string, release bool) {
		h := held[mailbox]
		h.cancel()
		h.release = release
		delete(held, mailbox)
		stopping[mailbox] = h
	}
	for mailbox, h := range held {
		select {
		case <-h.done: // work ended by itself: let the mailbox be taken again
			l.Log.Warn().Str("mailbox", mailbox).Msg("work on the mailbox ended while its lease was held: lease released")
			stop(mailbox, true)
		default:
		}
	}
	for mailbox, h := range stopping {
		select {
		case <-h.done:
			if h.release {
				l.release(ctx, mailbox, h)
			}
			delete(stopping, mailbox)
			continue
		default:
		}
		if h.release && !l.renew(rctx, mailbox, h) {
			h.release = false
		}
	}
	for mailbox, h := range held {
		if !l.renew(rctx, mailbox, h) {
			stop(mailbox, false)
		}
	}
	share := l.share(rctx, len(mailboxes))
	for len(held) > share { // others joined: hand back the surplus
		mailbox := slices.Max(keysOf(held))
		l.Log.Info().Str("mailbox", mailbox).Int("share", share).Msg("lease given up for another replica")
		stop(mailbox, true)
	}
	for _, mailbox := range l.order(mailboxes) {
		if len(held) >= share {
			break
		}
		if held[mailbox] != nil || stopping[mailbox] != nil {
			continue
		}
		rev, err := l.JS.Leases.Create(rctx, mailboxKey(mailbox), []byte(l.Replica))
		if err != nil {
			if !errors.Is(err, jetstream.ErrKeyExists) {
				l.Log.Warn().Err(err).Str("mailbox", mailbox).Msg("lease not taken")
			}
			continue
		}
		wctx, wcancel := context.WithCancel(ctx)
		h := &lease{revision: rev, cancel: wcancel, done: make(chan struct{})}
		held[mailbox] = h
		l.Log.Info().Str("mailbox", mailbox).Msg("lease taken")
		go func() {
			defer close(h.done)
			work(wctx, mailbox)
		}()
	}
}

// share is this replica's fair share of n mailboxes among the live
// replicas: n divided by their number, one more for the first n mod live
// of them in the order of their ids, so that the shares add up to n and
// every replica works when there are mailboxes enough. When the live
// replicas cannot be listed, every replica may take all.
func (l *Leases) share(ctx context.Context, n int) int {
	// Keys can wait until its deadline when an entry expires while it
	// lists them: bound it well within the round.
	kctx, cancel := context.WithTimeout(ctx, min(time.Second, l.TTL/6))
	defer cancel()
	keys, err := l.JS.Replicas.Keys(kctx)
	if err != nil {
		if !errors.Is(err, jetstream.ErrNoKeysFound) {
			l.Log.Debug().Err(err).Msg("live replicas not listed")
		}
		return n
	}
	me := replicaKey(l.Replica)
	if !slices.Contains(keys, me) { // our heartbeat is not visible yet
		keys = append(keys, me)
	}
	slices.Sort(keys)
	live, rank := len(keys), slices.Index(keys, me)
	share := n / live
	if rank < n%live {
		share++
	}
	return share
}

// order lists the mailboxes starting at a place that depends on the
// replica, so that replicas starting together reach for different ones.
func (l *Leases) order(mailboxes []string) []string {
	if len(mailboxes) == 0 {
		return nil
	}
	h := fnv.New32a()
	h.Write([]byte(l.Replica))
	start := int(h.Sum32() % uint32(len(mailboxes)))
	return append(slices.Clone(mailboxes[start:]), mailboxes[:start]...)
}

func replicaKey(id string) string {
	return "replica." + base64.RawURLEncoding.EncodeToString([]byte(id))
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Holder returns the replica holding mailbox's lease, or "".
func (l *Leases) Holder(ctx context.Context, mailbox string) string {
	e, err := l.JS.Leases.Get(ctx, mailboxKey(mailbox))
	if err != nil {
		return ""
	}
	return string(e.Value())
}
