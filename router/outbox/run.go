package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// statusWriteBudget is how long the status after a submission is tried
// again while NATS does not answer, before the mail is left to be handed
// out again (and sent again: see the package comment).
const statusWriteBudget = 30 * time.Second

// Run delivers mail until ctx ends, one mail at a time, through s. Any
// number of Run loops (on one or several replicas) share the outbox's
// consumer: each mail is handed to one of them at a time, and the
// "sending" claim in its status keeps a second copy from being submitted
// at once. For each mail:
//
//   - status sent, failed or bounced: acknowledged, skipped;
//   - submitted: status sent (time, attempts), then acknowledged;
//   - a transient failure (network, timeout, 4xx, trouble before MAIL):
//     the attempt and its error recorded, the mail handed out again after
//     a delay that doubles from BackoffMin up to BackoffMax; once
//     RetryMaxAge has passed since it was enqueued, it fails instead;
//   - a permanent failure (5xx to MAIL, RCPT or the data): status failed
//     with the server's answer, never tried again.
//
// When ctx ends, the mail in hand is finished (within SendTimeout) and
// Run returns nil. It returns an error only when the consumer cannot be
// read at all.
func (o *Outbox) Run(ctx context.Context, s Sender) error {
	it, err := o.consumer.Messages(jetstream.PullMaxMessages(1))
	if err != nil {
		return fmt.Errorf("outbox run: %w", err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if ctx.Err() != nil {
			if msg != nil {
				_ = msg.Nak() // not begun: someone else's at once
			}
			return nil
		}
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return fmt.Errorf("outbox run: %w", err)
		}
		if err != nil {
			o.opts.Log.Warn().Err(err).Msg("outbox: waiting for mail")
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(o.opts.BackoffMin):
			}
			continue
		}
		if !o.handle(ctx, s, msg) {
			return nil
		}
	}
}

// claim is the outcome of claiming a mail.
type claim int

const (
	claimed claim = iota // ours to send now
	done                 // final: nothing to do
	busy                 // another replica is sending it
)

// handle works one message; false stops Run (a test's simulated crash).
func (o *Outbox) handle(ctx context.Context, s Sender, msg jetstream.Msg) bool {
	var env envelope
	if err := json.Unmarshal(msg.Data(), &env); err != nil || env.Mail.Validate() != nil {
		o.opts.Log.Error().Str("subject", msg.Subject()).Msg("outbox: not an outgoing mail; dropped")
		_ = msg.TermWithReason("not an outgoing mail")
		return true
	}
	m := &env.Mail
	st, rev, c, wait, err := o.claim(ctx, env)
	switch {
	case err != nil:
		o.opts.Log.Warn().Err(err).Str("mail", m.ID).Msg("outbox: status not readable; trying again")
		_ = msg.NakWithDelay(o.opts.BackoffMin)
		return true
	case c == done:
		_ = msg.Ack()
		return true
	case c == busy:
		_ = msg.NakWithDelay(wait)
		return true
	}
	raw, err := compose(m, o.from, env.Enqueued)
	if err == nil {
		// Not cancelled with ctx: a shutdown lets the mail in hand finish.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.opts.SendTimeout)
		err = s.Send(sctx, o.fromAddress(), parseTo(m.To), raw)
		cancel()
	}
	if o.afterSend != nil && !o.afterSend(m.ID, err) {
		return false
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), statusWriteBudget)
	defer cancel()
	now := o.opts.Now().UTC()
	log := o.opts.Log.With().Str("mail", m.ID).Str("ticket", m.Ticket).Str("kind", string(m.Kind)).Int("attempts", st.Attempts).Logger()
	switch {
	case err == nil:
		st.State, st.Sent, st.LastError = StateSent, now, ""
		if o.write(wctx, st, rev) {
			_ = msg.DoubleAck(wctx)
			log.Info().Msg("outbox: sent")
		}
	case Permanent(err) || now.Sub(st.Enqueued) >= o.opts.RetryMaxAge:
		st.State, st.Done, st.LastError = StateFailed, now, err.Error()
		st.Reason = err.Error()
		if !Permanent(err) {
			st.Reason = fmt.Sprintf("still failing %s after it was enqueued: %v", now.Sub(st.Enqueued).Round(time.Second), err)
		}
		if o.write(wctx, st, rev) {
			_ = msg.TermWithReason("failed")
			log.Warn().Str("reason", st.Reason).Msg("outbox: failed")
		}
	default:
		st.State, st.LastError = StateQueued, err.Error()
		delay := o.backoff(st.Attempts)
		if o.write(wctx, st, rev) {
			_ = msg.NakWithDelay(delay)
			log.Info().Err(err).Dur("retry_in", delay).Msg("outbox: not sent; will try again")
		}
	}
	return true
}

// claim reads the mail's status (creating it when Enqueue did not get to)
// and, unless it is final or another replica's fresh claim, marks it
// sending, one attempt more, with compare-and-set. busy comes with how
// long to wait before looking again.
func (o *Outbox) claim(ctx context.Context, env envelope) (st Status, rev uint64, c claim, wait time.Duration, err error) {
	id := env.Mail.ID
	for range 10 {
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		st, rev, err = o.getStatus(rctx, id)
		if errors.Is(err, ErrNotFound) {
			st = o.newStatus(env)
			rev, err = o.createStatus(rctx, env)
			if errors.Is(err, jetstream.ErrKeyExists) {
				cancel()
				continue
			}
		}
		if err != nil {
			cancel()
			return st, 0, 0, 0, err
		}
		now := o.opts.Now().UTC()
		if st.State.Final() {
			cancel()
			return st, rev, done, 0, nil
		}
		if age := now.Sub(st.LastAttempt); st.State == StateSending && age < o.opts.AckWait {
			cancel()
			return st, rev, busy, max(o.opts.AckWait-age, o.opts.BackoffMin), nil
		}
		st.State, st.Attempts, st.LastAttempt = StateSending, st.Attempts+1, now
		data, _ := json.Marshal(st)
		rev, err = o.status.Update(rctx, id, data, rev)
		cancel()
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return st, 0, 0, 0, err
		}
		return st, rev, claimed, 0, nil
	}
	return st, 0, 0, 0, fmt.Errorf("claim %s: the status kept changing", id)
}

// write stores st over revision rev, again while NATS does not answer,
// until ctx ends. When the status changed meanwhile to a final state (a
// bounce overtook the sent status), that state stays. It reports whether
// the message may now be answered; false leaves it to be handed out again.
func (o *Outbox) write(ctx context.Context, st Status, rev uint64) bool {
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		data, _ := json.Marshal(st)
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		_, err := o.status.Update(rctx, st.ID, data, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			var cur Status
			cur, rev, err = o.getStatus(rctx, st.ID)
			if err == nil && cur.State.Final() {
				cancel()
				return true
			}
			if err == nil {
				cancel()
				continue
			}
		}
		cancel()
		if err == nil {
			return true
		}
		o.opts.Log.Warn().Err(err).Str("mail", st.ID).Str("state", string(st.State)).Msg("outbox: status not written")
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}

// backoff is the delay after the nth failed attempt: BackoffMin doubled
// n-1 times, at most BackoffMax.
func (o *Outbox) backoff(n int) time.Duration {
	d := o.opts.BackoffMin
	for i := 1; i < n && d < o.opts.BackoffMax; i++ {
		d *= 2
	}
	return min(d, o.opts.BackoffMax)
}
