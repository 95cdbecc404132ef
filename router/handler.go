package router

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/ticketrouter/ticketrouter/ingest"
	"github.com/ticketrouter/ticketrouter/ingest/mail"
	"github.com/ticketrouter/ticketrouter/router/broker"
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
	began := time.Now()
	_, published, err := h.pub.Publish(pctx, t, broker.RawMail{
		Reader: m.Raw.Reader(), Size: m.Raw.Size(), Bytes: m.Raw.Bytes(), Digest: t.RawDigest(),
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ingest.ErrUnavailable, err)
	}
	h.metrics.published(t, time.Since(began), published)
	h.log.Info().Str("mailbox", m.Mailbox).Uint32("uid", uint32(m.UID)).Str("ticket", t.ID).
		Str("queue", t.Queue).Bool("duplicate", !published).Msg("ticket published")
	return nil
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
