// Package ticket is the document an agent works from: what one mail
// became (the request, the decision and its reasons), as JSON, and the
// NATS subject of its queue. It links no NATS code, so that agent tools
// can read and write tickets without a server.
package ticket

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/ticketrouter/ticketrouter/ingest/mail"
	"github.com/ticketrouter/ticketrouter/rules"
)

// Version is the version of the ticket document. It changes only when
// a field changes meaning or disappears; new fields may appear within a
// version.
const Version = 1

// DefaultPrefix is the subject prefix of every ticket.
const DefaultPrefix = "helpdesk.tickets"

// RateLimited names the queue of rate-limited tickets: their subjects are
// <prefix>.rate-limited.<colour> (RateLimitedSubject).
const RateLimited = "rate-limited"

// Ticket is the document an agent picks from a queue: who wrote, which
// account the mail is about, what was checked, and what to do. It never
// holds a password, a private key or a PFX: those are redacted, and the raw
// mail is kept apart.
type Ticket struct {
	Version      int        `json:"version"`
	ID           string     `json:"id"` // SHA-256 of the raw mail: the same mail, the same id
	MessageID    string     `json:"message_id"`
	Date         *time.Time `json:"date"`
	From         From       `json:"from"`
	ReplyTo      []string   `json:"reply_to"`
	EmailSubject string     `json:"email_subject"`
	// InReplyTo and References are the mail's threading fields, as the
	// sender wrote them (Message-IDs without brackets); Conversation says
	// what came of them.
	InReplyTo    []string      `json:"in_reply_to,omitempty"`
	References   []string      `json:"references,omitempty"`
	Conversation *Conversation `json:"conversation,omitempty"`
	Size         int64         `json:"size"`

	Intent       string `json:"intent"`
	IntentReason string `json:"intent_reason"`
	Colour       string `json:"colour"`
	Disposition  string `json:"disposition"`
	Queue        string `json:"queue"`
	PolicyRow    int    `json:"policy_row"`
	// RateLimited marks a request beyond the policy's rate limits: it goes
	// to <prefix>.rate-limited.<colour>, keeping its disposition, so that a
	// flood waits in a queue of its own instead of before the colour's
	// real work.
	RateLimited bool `json:"rate_limited"`

	Account    *Account     `json:"account"`
	Candidates []string     `json:"candidates"`
	Checks     rules.Checks `json:"checks"`
	Guidance   []string     `json:"guidance"`
	// GuidanceNever holds the indices in Guidance of the rules that say
	// never or do not, as the policy marks them. A ticket from before the
	// field has none marked.
	GuidanceNever []int `json:"guidance_never"`

	// Answer is the automatic answer the sender gets (an acknowledgement
	// or the self-service answer), or why none; nil when the service
	// sends no mail (no smtp section).
	Answer *Answer `json:"answer,omitempty"`

	IgnoredReason string            `json:"ignored_reason,omitempty"`
	Body          string            `json:"body"`
	Attachments   []mail.Attachment `json:"attachments"`
	KeyExposed    bool              `json:"key_exposed"`
	ParseProblems []string          `json:"parse_problems"`
	// Raw names the raw mail in the object store; null in a dry run.
	Raw *RawRef `json:"raw"`
}

// Conversation is the conversation a mail names, by its threading fields
// or a ticket tag in its subject (router/thread), and whether it joined
// it. A mail that names none has no Conversation: it starts its own.
type Conversation struct {
	// Root is the id of the named conversation's first ticket, and
	// RootNumber its number; Root is empty when the tag names a ticket
	// that does not exist.
	Root       string `json:"root,omitempty"`
	RootNumber string `json:"root_number"`
	// Via is what named it: in-reply-to, references or subject tag.
	Via string `json:"via"`
	// Joined is whether the mail joined the conversation: only when its
	// own sender belongs to it. A mail that names a conversation it may
	// not join starts its own, and Reason is then a signal for the agent.
	Joined bool   `json:"joined"`
	Reason string `json:"reason"`
}

// Answer kinds.
const (
	AnswerAcknowledgement = "acknowledgement"
	AnswerSelfService     = "self-service"
	AnswerNone            = "none"
)

// Answer is what the service answers a mail by itself.
type Answer struct {
	// Kind is AnswerAcknowledgement, AnswerSelfService or AnswerNone.
	Kind string `json:"kind"`
	// Lang is the language the customer wrote in, as the answer uses it.
	Lang string `json:"lang"`
	// To is where the answer goes: the From address.
	To string `json:"to,omitempty"`
	// Reason says why none is sent (RFC 3834, the policy, the period).
	Reason string `json:"reason,omitempty"`
	// MailID is the outgoing mail's id in the outbox.
	MailID string `json:"mail_id,omitempty"`
}

// RawRef names a raw mail kept in a JetStream object store.
type RawRef struct {
	Bucket string `json:"bucket"`
	Name   string `json:"name"`
}

// From is the sender as the From header gives it. Problem is set when the
// header does not name exactly one mailbox.
type From struct {
	Address string `json:"address"`
	Name    string `json:"name,omitempty"`
	Problem string `json:"problem,omitempty"`
}

// Account is the matched account as a ticket shows it.
type Account struct {
	ID         string `json:"id"`
	Colour     string `json:"colour"`
	Name       string `json:"name,omitempty"`
	AdminEmail string `json:"admin_email"`
	Partner    string `json:"partner,omitempty"`
	// PartnerName names the web host, reseller or affiliate.
	PartnerName string `json:"partner_name,omitempty"`
	MatchedBy   string `json:"matched_by"`
}

// New builds the ticket for a parsed mail and the decision on it,
// addressed to a subject under prefix.
func New(prefix string, req *mail.Request, d *rules.Decision) *Ticket {
	t := &Ticket{
		Version:       Version,
		ID:            req.ID,
		MessageID:     req.MessageID,
		From:          From{Address: req.From.Address, Name: req.From.Name, Problem: req.FromProblem},
		ReplyTo:       []string{},
		EmailSubject:  d.Subject,
		InReplyTo:     req.InReplyTo,
		References:    req.References,
		Size:          req.Size,
		Intent:        d.Intent,
		IntentReason:  d.IntentReason,
		Colour:        d.Colour,
		Disposition:   d.Disposition,
		Queue:         Subject(prefix, d.Colour, d.Disposition),
		PolicyRow:     d.Row,
		RateLimited:   d.RateLimited,
		Candidates:    nonNil(d.Candidates),
		Checks:        d.Checks,
		Guidance:      nonNil(d.Guidance),
		GuidanceNever: nonNil(d.Never),

		IgnoredReason: d.IgnoredReason,
		Body:          d.Body,
		Attachments:   nonNil(req.Attachments),
		KeyExposed:    d.KeyExposed,
		ParseProblems: nonNil(d.Problems),
	}
	if d.RateLimited {
		t.Queue = RateLimitedSubject(prefix, d.Colour)
	}
	if !req.Date.IsZero() {
		date := req.Date
		t.Date = &date
	}
	for _, m := range req.ReplyTo {
		t.ReplyTo = append(t.ReplyTo, m.Address)
	}
	if a := d.Account; a != nil {
		t.Account = &Account{ID: a.ID, Colour: a.Colour, Name: a.Name, AdminEmail: a.AdminEmail, Partner: a.Partner, MatchedBy: d.AccountReason}
		if p := d.Partner; p != nil {
			t.Account.PartnerName = p.Name
		}
	}
	t.dropControls()
	return t
}

// dropControls replaces every control character in the ticket's text by
// U+FFFD, whatever put it there (a mail, a signing domain, a reason quoting
// either): C0 (but tab, and line feed in the body), DEL and C1. Agents read
// tickets on terminals, where ESC and CSI (U+009B) are commands.
func (t *Ticket) dropControls() {
	line := func(s *string) { *s = printable(*s, false) }
	lines := func(l []string) {
		for i := range l {
			line(&l[i])
		}
	}
	for _, s := range []*string{&t.MessageID, &t.From.Address, &t.From.Name, &t.From.Problem, &t.EmailSubject,
		&t.IntentReason, &t.IgnoredReason} {
		line(s)
	}
	t.Body = printable(t.Body, true)
	lines(t.ReplyTo)
	// The request's own lists stay as parsed.
	t.InReplyTo, t.References = slices.Clone(t.InReplyTo), slices.Clone(t.References)
	lines(t.InReplyTo)
	lines(t.References)
	lines(t.Candidates)
	lines(t.Guidance)
	lines(t.ParseProblems)
	for _, c := range []*rules.Check{&t.Checks.SenderAuthenticated, &t.Checks.SenderIsAdmin, &t.Checks.SenderIsPartnerAdmin,
		&t.Checks.DomainNamed, &t.Checks.OrderMatched, &t.Checks.UsernameNamed} {
		line(&c.Reason)
	}
	if a := t.Account; a != nil {
		for _, s := range []*string{&a.ID, &a.Name, &a.AdminEmail, &a.Partner, &a.PartnerName, &a.MatchedBy} {
			line(s)
		}
	}
	if len(t.Attachments) > 0 {
		t.Attachments = slices.Clone(t.Attachments) // the request's own stay as parsed
		for i := range t.Attachments {
			line(&t.Attachments[i].Name)
			line(&t.Attachments[i].ContentType)
		}
	}
}

// printable returns s with its control characters replaced by U+FFFD; a
// tab stays, and so does a line feed when multiline is set.
func printable(s string, multiline bool) string {
	control := func(r rune) bool {
		return (r < 0x20 || r >= 0x7f && r <= 0x9f) && r != '\t' && !(multiline && r == '\n')
	}
	if !strings.ContainsFunc(s, control) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if control(r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

// Subject returns the NATS subject of a ticket: <prefix>.<colour>.<disposition>,
// except for mail that is never answered and mail that cannot be parsed,
// which go to <prefix>.ignored and <prefix>.deadletter whatever the colour.
func Subject(prefix, colour, disposition string) string {
	switch disposition {
	case rules.DispositionIgnored, rules.DispositionDeadletter:
		return prefix + "." + disposition
	}
	return prefix + "." + colour + "." + disposition
}

// RateLimitedSubject is the subject of a rate-limited ticket of colour:
// outside <prefix>.<colour>.>, the colour's queue.
func RateLimitedSubject(prefix, colour string) string {
	return prefix + "." + RateLimited + "." + colour
}

// ValidPrefix reports whether prefix can head NATS subjects: tokens
// separated by dots, none empty, without white space or wildcards.
func ValidPrefix(prefix string) bool {
	for tok := range strings.SplitSeq(prefix, ".") {
		if tok == "" || strings.ContainsAny(tok, " \t\r\n*>") {
			return false
		}
	}
	return true
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// RawDigest returns the SHA-256 of the raw mail the ticket came from,
// which New makes the ticket's ID (in hex), or nil for a ticket whose ID
// is not one.
func (t *Ticket) RawDigest() []byte {
	sum, err := hex.DecodeString(t.ID)
	if err != nil || len(sum) != sha256.Size {
		return nil
	}
	return sum
}
