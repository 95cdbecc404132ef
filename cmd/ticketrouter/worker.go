package main

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/ticketrouter/ticketrouter/ingest"
	"github.com/ticketrouter/ticketrouter/router"
)

// publishTimeout bounds one ticket's publication; past it the mail is
// retried later (NATS unreachable is not the mail's fault).
const publishTimeout = 30 * time.Second

// mailHandler is the watcher's handler in the service: it spools each
// mail, decides it as route does, stores the raw mail and publishes the
// ticket, and reports success only once JetStream acknowledged it. One
// per mailbox: its parser is not shared.
type mailHandler struct {
	router  *mailRouter
	pub     *router.Publisher
	metrics *metrics
	log     zerolog.Logger
	parser  ingest.Parser
}

// HandleMail implements ingest.Handler.
func (h *mailHandler) HandleMail(ctx context.Context, m *ingest.Mail) error {
	sp, err := ingest.NewSpool(m.Body, spoolMemory, "")
	if err != nil {
		return err // a broken connection: the watcher reconnects
	}
	defer sp.Close()
	t, d, err := h.router.ticket(ctx, &h.parser, sp)
	if err != nil {
		return err
	}
	if d.Retry {
		return fmt.Errorf("%w: %s", ingest.ErrUnavailable, d.Checks.SenderIsAdmin.Reason)
	}
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	began := time.Now()
	published, err := h.pub.Publish(pctx, t, sp.Reader())
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
	return h.pub.PublishDeadLetter(pctx, router.DeadLetter{
		Mailbox: q.Mailbox, UIDValidity: q.UIDValidity, UID: uint32(q.UID), Size: q.Size,
		Reason: q.Reason, Attempts: q.Attempts, At: time.Now().UTC(),
	})
}
