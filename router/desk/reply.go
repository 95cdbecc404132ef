package desk

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ticketrouter/ticketrouter/router/outbox"
	"github.com/ticketrouter/ticketrouter/router/thread"
	"github.com/ticketrouter/ticketrouter/router/ticket"
	"github.com/ticketrouter/ticketrouter/rules"
	"github.com/ticketrouter/ticketrouter/rules/accounts"
	"github.com/ticketrouter/ticketrouter/rules/answer"
)

// Outbox is where the desk puts agents' replies (router/outbox.Outbox).
type Outbox interface {
	Enqueue(ctx context.Context, m outbox.Mail) error
	Statuses(ctx context.Context, ticket string) ([]outbox.Status, error)
	// Mail is a mail as it was enqueued.
	Mail(ctx context.Context, id string) (outbox.Mail, error)
	Domain() string
}

// Replies lets agents answer customers from the desk: the policy's reply
// templates and checks, the account directory (the admin address on
// file), the outbox, and the threads. Options.Replies nil: the desk
// offers no replies (the service sends no mail).
type Replies struct {
	Policy *rules.Policy
	// Account returns the account of an id as the directory holds it now;
	// nil when it holds none.
	Account func(id string) *accounts.Account
	Outbox  Outbox
	// Threads, when set, records each reply's Message-ID in its ticket's
	// conversation, so that the customer's answer to it threads.
	Threads *thread.Store
}

// DirectoryAccount is Replies.Account over the directory dir returns.
func DirectoryAccount(dir func() *accounts.Directory) func(string) *accounts.Account {
	return func(id string) *accounts.Account {
		if d := dir(); d != nil {
			if a, ok := d.Account(id); ok {
				return a
			}
		}
		return nil
	}
}

// freeText names the reply without a template: an info reply to the
// sender, written by the agent.
const freeText = "free text"

// draft is a reply the ticket page offers: a template rendered in the
// customer's language, to its fixed recipient, for the agent to edit.
type draft struct {
	Name, Kind, To, Subject, Body, Lang string
	// Token makes the reply's mail id: sending the same form twice sends
	// one mail.
	Token string
	// Problem says why it cannot be sent; empty when it can.
	Problem string
}

// recipient is where a reply of kind to ticket t goes: the admin address
// on file for a reset, the sender otherwise. The form never chooses it.
func (rp *Replies) recipient(kind answer.Kind, t *ticket.Ticket) (string, *accounts.Account, error) {
	var acct *accounts.Account
	admin := ""
	if t.Account != nil {
		if acct = rp.Account(t.Account.ID); acct != nil {
			admin = acct.AdminEmail
		}
	}
	sender := ""
	if t.From.Problem == "" {
		sender = t.From.Address
	}
	to, err := answer.Recipient(kind, admin, sender)
	return to, acct, err
}

// lang is the language replies to t are drafted in: the one the service
// answered in, else the one the customer wrote in.
func (rp *Replies) lang(t *ticket.Ticket, offered []string) string {
	if t.Answer != nil && t.Answer.Lang != "" {
		return t.Answer.Lang
	}
	return answer.Language(t.EmailSubject, t.Body, "", offered)
}

// drafts are the replies offered on ticket t (rec) to agent: each of the
// policy's templates for its disposition, and free text.
func (rp *Replies) drafts(rec *Record, t *ticket.Ticket, agent string) []draft {
	var out []draft
	data := answer.ReplyData{Number: rec.Number, Subject: t.EmailSubject, Agent: agent, Customer: t.From.Address}
	if t.Account != nil {
		data.AccountID, data.AccountName = t.Account.ID, t.Account.Name
	}
	for _, r := range rp.Policy.Answers().Replies(t.Disposition) {
		d := draft{Name: r.Name, Kind: string(r.Kind), Token: newToken()}
		text, err := r.Render(rp.lang(t, r.Languages()), data)
		if err != nil {
			d.Problem = err.Error()
		}
		d.Subject, d.Body, d.Lang = tagged(text.Subject, rec.Number), text.Body, text.Lang
		if to, _, err := rp.recipient(r.Kind, t); err != nil {
			d.Problem = err.Error()
		} else {
			d.To = to
		}
		out = append(out, d)
	}
	free := draft{Name: freeText, Kind: string(answer.KindInfo), Token: newToken(), Subject: tagged("Re: "+t.EmailSubject, rec.Number)}
	if to, _, err := rp.recipient(answer.KindInfo, t); err != nil {
		free.Problem = err.Error()
	} else {
		free.To = to
	}
	return append(out, free)
}

// tagged is subject with the ticket's tag, [TR-…], which threads the
// customer's answer even when their mailer drops In-Reply-To.
func tagged(subject, number string) string {
	subject = strings.TrimSpace(subject)
	if number == "" || strings.Contains(subject, thread.Tag(number)) {
		return subject
	}
	return strings.TrimSpace(subject + " " + thread.Tag(number))
}

// newToken is a random mail token.
func newToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// tokenPattern is what a mail token looks like, and langPattern a
// language code.
var (
	tokenPattern = regexp.MustCompile(`^[0-9a-f]{16}$`)
	langPattern  = regexp.MustCompile(`^[a-z]{2}$`)
)

// errReply is a reply the desk refuses, with the reason for the agent.
type errReply struct{ msg string }

func (e *errReply) Error() string { return e.msg }

// reply sends the agent's reply on ticket t (rec), as the form says: the
// template (or free text) and the edited subject and body. The recipient
// is the template's kind's, never the form's; a text with a secret, or
// with account details for anyone but the admin, is refused.
func (s *Server) reply(ctx context.Context, r *http.Request, q *request, rec *Record, t *ticket.Ticket) error {
	rp := s.opts.Replies
	if rp == nil {
		return &errReply{"This desk sends no mail (no smtp section)."}
	}
	form := func(key string) string { return strings.TrimSpace(r.PostFormValue(key)) }
	name, token := form("template"), form("token")
	subject, body := form("subject"), strings.TrimSpace(strings.ReplaceAll(r.PostFormValue("body"), "\r\n", "\n"))
	if !tokenPattern.MatchString(token) || len(t.ID) != 64 {
		return &errReply{"This reply form is not valid: open the ticket again."}
	}
	kind := answer.KindInfo
	if name != freeText {
		tpl, ok := rp.Policy.Answers().Reply(name)
		if !ok {
			return &errReply{"No such reply template."}
		}
		kind = tpl.Kind
	}
	if subject == "" || body == "" {
		return &errReply{"The reply needs a subject and a text."}
	}
	to, acct, err := rp.recipient(kind, t)
	if err != nil {
		return &errReply{"This reply cannot be sent: " + err.Error()}
	}
	subject = tagged(subject, rec.Number)
	if err := rp.Policy.CheckReply(subject+"\n"+body, acct, to); err != nil {
		return &errReply{"The reply was not sent: " + err.Error()}
	}
	lang := form("lang")
	if !langPattern.MatchString(lang) {
		lang = ""
	}
	m := outbox.Mail{
		ID: "reply." + t.ID[:16] + "." + token, Ticket: t.ID, Kind: outbox.KindReply, To: to,
		Subject: subject, Text: body, Lang: lang, InReplyTo: t.MessageID, References: thread.References(t),
	}
	if err := m.Validate(); err != nil {
		return &errReply{"The reply was not sent: " + err.Error()}
	}
	detail := fmt.Sprintf("to %s (%s, %s), mail %s", to, name, kind, m.ID)
	return s.store.Reply(ctx, q.actor, rec.ID, detail, subject+"\n\n"+body, func(ctx context.Context) error {
		if err := rp.Outbox.Enqueue(ctx, m); err != nil {
			return err
		}
		return rp.thread(ctx, t, rec, m.ID, to)
	})
}

// thread records the Message-ID of reply mailID (to addr) in ticket t's
// conversation.
func (rp *Replies) thread(ctx context.Context, t *ticket.Ticket, rec *Record, mailID, addr string) error {
	if rp.Threads == nil {
		return nil
	}
	var e *thread.Entry
	if t.MessageID != "" {
		var err error
		if e, err = rp.Threads.Lookup(ctx, t.MessageID); err != nil {
			return err
		}
	}
	if e == nil {
		start := thread.Start(t, rec.StreamSeq, nil)
		e = &start
	}
	return rp.Threads.Register(ctx, outbox.MessageID(mailID, rp.Outbox.Domain()), thread.Sent(*e, addr))
}

// sentMail is a mail sent on a ticket, as the conversation shows it.
type sentMail struct {
	outbox.Status
	To, Subject string
}

// sent lists the mail sent on the tickets recs, oldest first: the
// outbox's statuses, with each mail's recipient and subject.
func (rp *Replies) sent(ctx context.Context, recs []Record) ([]sentMail, error) {
	var out []sentMail
	for _, r := range recs {
		list, err := rp.Outbox.Statuses(ctx, r.ID)
		if err != nil && !errors.Is(err, outbox.ErrNotFound) {
			return nil, err
		}
		for _, st := range list {
			sm := sentMail{Status: st}
			if m, err := rp.Outbox.Mail(ctx, st.ID); err == nil {
				sm.To, sm.Subject = m.To, m.Subject
			}
			out = append(out, sm)
		}
	}
	slices.SortFunc(out, func(a, b sentMail) int { return a.Enqueued.Compare(b.Enqueued) })
	return out, nil
}

// turn is one mail of a conversation: a ticket that came in, or a mail
// that went out.
type turn struct {
	At       time.Time
	In       *Record
	Out      *sentMail
	Current  bool // the ticket the page shows
	Incoming bool
}

// timeline merges the conversation's tickets and the mail sent on them,
// in the order they happened; current is the page's ticket.
func timeline(conv []Record, sent []sentMail, current string) []turn {
	var out []turn
	for i := range conv {
		out = append(out, turn{At: conv[i].Published, In: &conv[i], Current: conv[i].ID == current, Incoming: true})
	}
	for i := range sent {
		out = append(out, turn{At: sent[i].Enqueued, Out: &sent[i]})
	}
	slices.SortStableFunc(out, func(a, b turn) int { return a.At.Compare(b.At) })
	return out
}
