package router

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ticketrouter/ticketrouter/ingest"
	"github.com/ticketrouter/ticketrouter/ingest/mail"
	"github.com/ticketrouter/ticketrouter/router/config"
	"github.com/ticketrouter/ticketrouter/router/ticket"
	"github.com/ticketrouter/ticketrouter/rules"
	"github.com/ticketrouter/ticketrouter/rules/accounts"
	"github.com/ticketrouter/ticketrouter/rules/answer"
	"github.com/ticketrouter/ticketrouter/rules/senderauth"
)

// Pipeline is what one raw mail goes through to become its ticket: parse,
// authenticate the sender, decide against the policy and the account
// directory, rate-limit, and build the ticket. route, run and the demo
// share it, so that a dry run decides exactly as the service does. It is
// safe for concurrent use.
type Pipeline struct {
	policy  *rules.Policy
	dir     atomic.Pointer[accounts.Directory]
	auth    *senderauth.Checker
	limiter rules.RateLimiter
	prefix  string
	// answers: the service sends automatic answers (an smtp section).
	answers bool
}

// NewPipeline loads the policy and the account directory that cfg names.
func NewPipeline(cfg *config.Config) (*Pipeline, error) {
	policy := rules.DefaultPolicy()
	if cfg.Policy != "" {
		p, err := rules.LoadPolicy(cfg.Policy)
		if err != nil {
			return nil, err
		}
		policy = p
	}
	dir, err := accounts.LoadDirectory(cfg.Accounts)
	if err != nil {
		return nil, err
	}
	p := &Pipeline{
		policy: policy, auth: senderauth.NewChecker(cfg.SenderAuth, nil),
		limiter: &rules.MemoryRateLimiter{}, prefix: cfg.Prefix(), answers: cfg.SMTP.On(),
	}
	p.dir.Store(dir)
	return p, nil
}

// Directory returns the account directory in use.
func (p *Pipeline) Directory() *accounts.Directory { return p.dir.Load() }

// SetDirectory replaces the account directory, for the mails decided from
// now on.
func (p *Pipeline) SetDirectory(d *accounts.Directory) { p.dir.Store(d) }

// Prefix is the subject prefix of the tickets.
func (p *Pipeline) Prefix() string { return p.prefix }

// File reads one mail from the named file ("-": stdin) and returns its
// ticket; errors name the file.
func (p *Pipeline) File(ctx context.Context, name string, stdin io.Reader) (*ticket.Ticket, *rules.Decision, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, nil, err // *PathError names the file
		}
		defer f.Close()
		r = f
	}
	t, d, err := p.Read(ctx, r)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return t, d, nil
}

// Read reads one raw mail from r and returns its ticket.
func (p *Pipeline) Read(ctx context.Context, r io.Reader) (*ticket.Ticket, *rules.Decision, error) {
	sp, err := ingest.NewSpool(r, ingest.SpoolMemory, "")
	if err != nil {
		return nil, nil, err
	}
	defer sp.Close()
	return p.Ticket(ctx, &mail.Parser{}, sp, nil)
}

// Ticket decides one spooled mail with parser ps (which reuses its
// buffers, one mail at a time) and returns its ticket and the decision
// behind it. problems (the watcher's, in reading the mail) head the
// ticket's list. When the decision asks to be retried (sender
// authentication failed for now), the ticket must not be published.
func (p *Pipeline) Ticket(ctx context.Context, ps *mail.Parser, sp *ingest.Spool, problems []string) (*ticket.Ticket, *rules.Decision, error) {
	req, err := ps.Parse(sp.Reader())
	if err != nil {
		return nil, nil, err
	}
	if len(problems) > 0 {
		req.Problems = append(problems[:len(problems):len(problems)], req.Problems...)
	}
	v, err := p.auth.Check(ctx, req, sp.Reader())
	if err != nil {
		return nil, nil, err
	}
	d := rules.Decide(p.policy, p.dir.Load(), v, req)
	p.policy.RateLimit(req, d, p.limiter, time.Now())
	t := ticket.New(p.prefix, req, d)
	if p.answers {
		t.Answer = p.answer(req, d)
	}
	return t, d, nil
}

// Policy returns the policy in use.
func (p *Pipeline) Policy() *rules.Policy { return p.policy }

// answer is the automatic answer the policy gives req, decided as d: the
// self-service answer when the row offers it, else an acknowledgement
// when the disposition has one, in the customer's language; none for a
// mail that must not be answered (RFC 3834), a rate-limited one, or one
// without a clear sender. The period per sender is the caller's to check.
func (p *Pipeline) answer(req *mail.Request, d *rules.Decision) *ticket.Answer {
	set := p.policy.Answers()
	lang := answer.Language(req.Subject, req.Text, strings.Join(req.HeaderValues("Content-Language"), ","), set.Languages())
	a := &ticket.Answer{Kind: ticket.AnswerNone, Lang: lang}
	if ok, why := answer.AutoReplyAllowed(req); !ok {
		a.Reason = why
		return a
	}
	switch {
	case d.RateLimited:
		a.Reason = "rate limited: no automatic answer"
	case set.OffersSelfService(d.Row):
		a.Kind = ticket.AnswerSelfService
	case set.Acknowledges(d.Disposition):
		a.Kind = ticket.AnswerAcknowledgement
	default:
		a.Reason = "the policy acknowledges no " + d.Disposition + " mail"
	}
	if a.Kind != ticket.AnswerNone {
		a.To = req.From.Address
	}
	return a
}
