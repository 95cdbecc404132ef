package router

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/ticketrouter/ticketrouter/ingest"
	"github.com/ticketrouter/ticketrouter/ingest/mail"
	"github.com/ticketrouter/ticketrouter/router/broker"
	"github.com/ticketrouter/ticketrouter/router/outbox"
	"github.com/ticketrouter/ticketrouter/router/thread"
	"github.com/ticketrouter/ticketrouter/router/ticket"
	"github.com/ticketrouter/ticketrouter/rules"
)

// publishTimeout bounds one ticket's publication; past it the mail is
// retried later (NATS unreachable is not the mail's fault).
const publishTimeout = 30 * time.Second

// mailHandler is the watcher's handler in the service: it decides each
// mail as route does, stores the raw mail and publishes the ticket, and
// reports success only once JetStream acknowledged it. The watcher calls
// it for many mails at once.
type mailHandler struct {
	pipeline *Pipeline
	pub      *broker.Publisher
	threads  *thread.Store
	// outbox and answered are nil when the service sends no mail.
	outbox   *outbox.Outbox
	answered jetstream.KeyValue
	metrics  *metrics
	log      zerolog.Logger
	parsers  sync.Pool // of *mail.Parser: a parser reuses its buffers, one mail at a time
}

// HandleMail implements ingest.Handler.
func (h *mailHandler) HandleMail(ctx context.Context, m *ingest.Mail) error {
	p, _ := h.parsers.Get().(*mail.Parser)
	if p == nil {
		p = &mail.Parser{}
	}
	t, d, err := h.pipeline.Ticket(ctx, p, m.Raw, m.Problems)
	h.parsers.Put(p)
	if err != nil {
		return err
	}
	if d.Retry {
		return fmt.Errorf("%w: %s", ingest.ErrUnavailable, d.Checks.SenderIsAdmin.Reason)
	}
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	parent, err := h.thread(pctx, t)
	if err == nil {
		err = h.reserveAnswer(pctx, t)
	}
	if err == nil {
		err = h.markBounce(pctx, t, m.Raw)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ingest.ErrUnavailable, err)
	}
	began := time.Now()
	seq, published, err := h.pub.Publish(pctx, t, broker.RawMail{
		Reader: m.Raw.Reader(), Size: m.Raw.Size(), Bytes: m.Raw.Bytes(), Digest: t.RawDigest(),
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ingest.ErrUnavailable, err)
	}
	h.metrics.published(t, time.Since(began), published)
	entry, err := h.register(pctx, t, d, seq, parent)
	if err == nil {
		err = h.sendAnswer(pctx, t, seq, entry)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ingest.ErrUnavailable, err)
	}
	ev := h.log.Info().Str("mailbox", m.Mailbox).Uint32("uid", uint32(m.UID)).Str("ticket", t.ID).
		Str("number", ticket.Number(seq)).Str("queue", t.Queue).Bool("duplicate", !published)
	if c := t.Conversation; c != nil {
		ev = ev.Str("conversation", c.RootNumber).Bool("joined", c.Joined)
	}
	if a := t.Answer; a != nil {
		ev = ev.Str("answer", a.Kind)
	}
	ev.Msg("ticket published")
	return nil
}

// thread finds the conversation t names, if any, and records on t whether
// it joined it; it returns the conversation's entry when it did. An
// ignored mail (a bounce, an auto-reply) is not threaded: it joins no one's
// conversation.
func (h *mailHandler) thread(ctx context.Context, t *ticket.Ticket) (*thread.Entry, error) {
	if h.threads == nil || t.Disposition == rules.DispositionIgnored {
		return nil, nil
	}
	n, err := h.threads.Find(ctx, t)
	if err != nil || n == nil {
		return nil, err
	}
	t.Conversation = thread.Decide(t, n)
	if !t.Conversation.Joined {
		return nil, nil
	}
	return n.Entry, nil
}

// register records t's Message-ID (seq is its place in the stream) in the
// threads bucket, in the conversation it joined (parent) or its own, so
// that replies to it find it, and returns its entry (nil when t is not
// threaded).
func (h *mailHandler) register(ctx context.Context, t *ticket.Ticket, d *rules.Decision, seq uint64, parent *thread.Entry) (*thread.Entry, error) {
	if h.threads == nil || seq == 0 || t.Disposition == rules.DispositionIgnored {
		return nil, nil
	}
	var domains []string
	if d.Account != nil {
		domains = d.Account.Domains
	}
	e := thread.Start(t, seq, parent, domains...)
	if t.MessageID == "" {
		return &e, nil
	}
	return &e, h.threads.Register(ctx, t.MessageID, e)
}

// Quarantine implements ingest.Handler: the dead-letter record.
func (h *mailHandler) Quarantine(ctx context.Context, q *ingest.Quarantined) error {
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	return h.pub.PublishDeadLetter(pctx, broker.DeadLetter{
		Mailbox: q.Mailbox, UIDValidity: q.UIDValidity, UID: uint32(q.UID), Size: q.Size,
		Reason: q.Reason, Attempts: q.Attempts, At: time.Now().UTC(),
	})
}
