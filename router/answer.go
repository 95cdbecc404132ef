package router

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/ticketrouter/ticketrouter/ingest"
	"github.com/ticketrouter/ticketrouter/ingest/mail"
	"github.com/ticketrouter/ticketrouter/router/outbox"
	"github.com/ticketrouter/ticketrouter/router/thread"
	"github.com/ticketrouter/ticketrouter/router/ticket"
	"github.com/ticketrouter/ticketrouter/rules"
	"github.com/ticketrouter/ticketrouter/rules/address"
	"github.com/ticketrouter/ticketrouter/rules/answer"
)

// answered is the answered bucket's value of a sender: the last ticket
// whose automatic answer went to them, and when.
type answered struct {
	Ticket string    `json:"ticket"`
	At     time.Time `json:"at"`
}

// reserveAnswer keeps the policy's period: an automatic answer goes to a
// sender at most once per period. It records t's answer as the sender's
// last, or turns t's answer into none with the reason. Handling the same
// mail again keeps its answer: the record names its ticket.
func (h *mailHandler) reserveAnswer(ctx context.Context, t *ticket.Ticket) error {
	a := t.Answer
	if h.answered == nil || a == nil || a.Kind == ticket.AnswerNone {
		return nil
	}
	sender, err := address.CanonicalEmail(a.To)
	if err != nil {
		a.Kind, a.Reason = ticket.AnswerNone, "no address to answer"
		return nil
	}
	sum := sha256.Sum256([]byte(sender))
	key := "s." + hex.EncodeToString(sum[:])
	period := h.pipeline.Policy().Answers().Period()
	now := time.Now().UTC()
	value, _ := json.Marshal(answered{Ticket: t.ID, At: now})
	for range 8 {
		e, err := h.answered.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = h.answered.Create(ctx, key, value)
		case err != nil:
			return fmt.Errorf("answer period of the sender: %w", err)
		default:
			var last answered
			if json.Unmarshal(e.Value(), &last) == nil {
				if last.Ticket == t.ID {
					break // this mail's, handled before
				}
				if now.Sub(last.At) < period {
					a.Kind, a.Reason = ticket.AnswerNone, fmt.Sprintf("an automatic answer went to this sender less than %s ago", period)
					return nil
				}
			}
			_, err = h.answered.Update(ctx, key, value, e.Revision())
		}
		switch {
		case err == nil:
			a.MailID = "ack." + t.ID
			return nil
		case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			continue // another mail of the sender, at once
		default:
			return fmt.Errorf("answer period of the sender: %w", err)
		}
	}
	a.Kind, a.Reason = ticket.AnswerNone, "another mail of this sender was answered at the same moment"
	return nil
}

// sendAnswer puts t's automatic answer (t at seq, in the conversation e)
// in the outbox, and records its Message-ID in the conversation, so that
// the customer's reply to it threads.
func (h *mailHandler) sendAnswer(ctx context.Context, t *ticket.Ticket, seq uint64, e *thread.Entry) error {
	a := t.Answer
	if h.outbox == nil || a == nil || a.Kind == ticket.AnswerNone || a.MailID == "" || seq == 0 {
		return nil
	}
	text, ok := h.pipeline.Policy().Answers().Automatic(t.PolicyRow, t.Disposition, a.Lang,
		answer.AckData{Number: ticket.Number(seq), Subject: t.EmailSubject})
	if !ok {
		return nil
	}
	kind := outbox.KindAcknowledgement
	if a.Kind == ticket.AnswerSelfService {
		kind = outbox.KindSelfService
	}
	m := outbox.Mail{
		ID: a.MailID, Ticket: t.ID, Kind: kind, To: a.To, Subject: text.Subject, Text: text.Body, Lang: text.Lang,
		InReplyTo: t.MessageID, References: thread.References(t), AutoReplied: true,
	}
	if err := h.outbox.Enqueue(ctx, m); err != nil {
		if errors.Is(err, outbox.ErrInvalid) {
			h.log.Warn().Err(err).Str("ticket", t.ID).Msg("automatic answer not sent")
			return nil // the mail's fault, not the service's: no retry helps
		}
		return fmt.Errorf("automatic answer of %s: %w", ticket.Number(seq), err)
	}
	if h.threads != nil && e != nil {
		id := outbox.MessageID(a.MailID, h.outbox.Domain())
		if err := h.threads.Register(ctx, id, thread.Sent(*e, a.To)); err != nil {
			return err
		}
	}
	return nil
}

// markBounce marks the outgoing mail a bounce returns (an ignored mail
// that is a delivery status notification of ours) bounced, and says so in
// the ticket's ignored reason.
func (h *mailHandler) markBounce(ctx context.Context, t *ticket.Ticket, raw *ingest.Spool) error {
	if h.outbox == nil || t.Disposition != rules.DispositionIgnored {
		return nil
	}
	b, ok := mail.ReadBounce(raw.Reader())
	if !ok {
		return nil
	}
	id, ok := outbox.ParseMessageID(b.MessageID, h.outbox.Domain())
	if !ok {
		return nil
	}
	reason := strings.TrimSpace(fmt.Sprintf("returned by the recipient's server: %s %s %s", b.Recipient, b.Status, b.Diagnostic))
	err := h.outbox.MarkBounced(ctx, id, reason)
	switch {
	case errors.Is(err, outbox.ErrNotFound):
		return nil // not a mail of this outbox
	case err != nil:
		return fmt.Errorf("mark %s bounced: %w", id, err)
	}
	t.IgnoredReason = strings.TrimSpace(t.IgnoredReason + "; the bounce of our mail " + id + ", marked bounced")
	return nil
}
