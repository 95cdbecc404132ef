// Package thread tells which conversation a mail continues: the
// Message-IDs its In-Reply-To and References name, and the ticket tag in
// its subject ([TR-104233]), looked up in a bucket that maps the
// Message-ID of every ticket and of every mail the service sent to its
// conversation.
//
// Threading fields and subjects are the sender's to write. A mail joins
// the conversation it names only when its own sender belongs to it (the
// same address, the account's own domain, or the account's admin as the
// rules checked it); otherwise it starts a conversation of its own and its
// ticket carries the reason, a signal for the agent. Joining never lends
// a mail the verification of an earlier one: each is decided on its own.
package thread

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/ticketrouter/ticketrouter/router/ticket"
	"github.com/ticketrouter/ticketrouter/rules/address"
	"golang.org/x/net/publicsuffix"
)

// Ways a mail names a conversation, in the order they are tried.
const (
	ViaInReplyTo  = "in-reply-to"
	ViaReferences = "references"
	ViaSubjectTag = "subject tag"
)

// maxTags bounds the ticket tags of one subject that are looked up, and
// maxSenders the addresses one conversation remembers.
const (
	maxTags    = 3
	maxSenders = 20
)

// Entry is what a Message-ID leads to: the ticket it is (or, for a mail
// the service sent, the ticket it answered) and that ticket's conversation.
type Entry struct {
	Ticket string `json:"ticket"`
	Seq    uint64 `json:"seq"` // the ticket's place in the tickets stream (its number)
	// Root and RootSeq are the conversation's first ticket.
	Root    string `json:"root"`
	RootSeq uint64 `json:"root_seq"`
	// Senders are the addresses (canonical) that belong to the
	// conversation: who wrote its mails and whom the service wrote to.
	Senders []string `json:"senders"`
	// Domain is a registrable domain whose every address belongs: the
	// first sender's, when it is one of the account's own domains (never a
	// mail provider's shared one); empty otherwise.
	Domain string `json:"domain,omitempty"`
	// Account is the first mail's account id, if one matched.
	Account string `json:"account,omitempty"`
}

// Named is a conversation a mail names, as found.
type Named struct {
	// Entry is the conversation; nil when the subject tags a ticket
	// number that does not exist.
	Entry *Entry
	Via   string
	// Number is the ticket number named (the tag's, or the entry's).
	Number string
}

// Refs are the Message-IDs a ticket's threading fields name, in the order
// they are tried (In-Reply-To, then References newest first), and the
// stream sequences of the ticket tags in its subject.
func Refs(t *ticket.Ticket) (ids []string, vias []string, tags []uint64) {
	for _, id := range t.InReplyTo {
		ids, vias = append(ids, id), append(vias, ViaInReplyTo)
	}
	for _, id := range slices.Backward(t.References) {
		ids, vias = append(ids, id), append(vias, ViaReferences)
	}
	for _, m := range tagPattern.FindAllStringSubmatch(t.EmailSubject, maxTags) {
		if seq, ok := ticket.ParseNumber(m[1]); ok {
			tags = append(tags, seq)
		}
	}
	return ids, vias, tags
}

// tagPattern finds a ticket tag in a subject: [TR-104233], any case.
var tagPattern = regexp.MustCompile(`(?i)\[(TR-\d{6,12})\]`)

// maxReferences bounds the References of a mail the service sends.
const maxReferences = 10

// References is the References field of a mail answering t: t's own
// References, then its Message-ID, the newest maxReferences.
func References(t *ticket.Ticket) []string {
	refs := append([]string(nil), t.References...)
	if t.MessageID != "" {
		refs = append(refs, t.MessageID)
	}
	return refs[max(0, len(refs)-maxReferences):]
}

// Tag is the subject tag of a ticket number: "[TR-104233]".
func Tag(number string) string { return "[" + number + "]" }

// Store is the threads bucket. It is safe for concurrent use.
type Store struct {
	kv     jetstream.KeyValue
	stream jetstream.Stream
}

// New returns the Store on the threads bucket kv and the tickets stream
// (read for ticket tags).
func New(kv jetstream.KeyValue, stream jetstream.Stream) *Store {
	return &Store{kv: kv, stream: stream}
}

// requestTimeout bounds one request to JetStream.
const requestTimeout = 5 * time.Second

// Find returns the first conversation t names: by its threading fields,
// then by a tag in its subject; nil when it names none it can be found
// by. A Message-ID that leads nowhere (a mail from before, or not ours)
// is passed over; a tag of a number that does not exist is returned with
// no Entry.
func (s *Store) Find(ctx context.Context, t *ticket.Ticket) (*Named, error) {
	ids, vias, tags := Refs(t)
	for i, id := range ids {
		if id == t.MessageID {
			continue // a mail naming itself
		}
		e, err := s.Lookup(ctx, id)
		if err != nil {
			return nil, err
		}
		if e != nil && e.Ticket != t.ID {
			return &Named{Entry: e, Via: vias[i], Number: ticket.Number(e.Seq)}, nil
		}
	}
	for _, seq := range tags {
		e, err := s.atSeq(ctx, seq)
		if err != nil {
			return nil, err
		}
		if e == nil || e.Ticket != t.ID {
			return &Named{Entry: e, Via: ViaSubjectTag, Number: ticket.Number(seq)}, nil
		}
	}
	return nil, nil
}

// Lookup returns the entry of a Message-ID; nil when there is none.
func (s *Store) Lookup(ctx context.Context, msgID string) (*Entry, error) {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	kv, err := s.kv.Get(rctx, key(msgID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("thread of <%s>: %w", msgID, err)
	}
	var e Entry
	if err := json.Unmarshal(kv.Value(), &e); err != nil || e.Ticket == "" {
		return nil, nil // unreadable: as if unknown
	}
	return &e, nil
}

// atSeq returns the entry of the ticket at seq in the stream: its
// Message-ID's, or, for a ticket not registered, one made from the ticket
// alone; nil when the stream holds no ticket there.
func (s *Store) atSeq(ctx context.Context, seq uint64) (*Entry, error) {
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	m, err := s.stream.GetMsg(rctx, seq)
	cancel()
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("thread of %s: %w", ticket.Number(seq), err)
	}
	var t ticket.Ticket
	if json.Unmarshal(m.Data, &t) != nil || t.ID == "" {
		return nil, nil // a dead letter's record, not a ticket
	}
	if t.MessageID != "" {
		e, err := s.Lookup(ctx, t.MessageID)
		if err != nil || e != nil && e.Ticket == t.ID {
			return e, err
		}
	}
	e := Start(&t, seq, nil)
	return &e, nil
}

// Register records that msgID leads to e; registering again replaces it
// with the same.
func (s *Store) Register(ctx context.Context, msgID string, e Entry) error {
	data, err := json.Marshal(&e)
	if err != nil {
		return fmt.Errorf("register <%s>: %w", msgID, err)
	}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if _, err := s.kv.Put(rctx, key(msgID), data); err != nil {
		return fmt.Errorf("register <%s>: %w", msgID, err)
	}
	return nil
}

// key is the bucket's key of a Message-ID: hashed, for any Message-ID
// makes a valid key of bounded length.
func key(msgID string) string {
	sum := sha256.Sum256([]byte(strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(msgID), "<"), ">"))))
	return "m." + hex.EncodeToString(sum[:])
}

// Decide says whether t, which names n, joins it, and returns what the
// ticket records of it. t's sender must belong to the conversation: one of
// its addresses, an address at its Domain, or the admin of its account as
// the rules checked (t.Checks.SenderIsAdmin).
func Decide(t *ticket.Ticket, n *Named) *ticket.Conversation {
	c := &ticket.Conversation{Via: n.Via, RootNumber: n.Number}
	e := n.Entry
	if e == nil {
		c.Reason = fmt.Sprintf("the subject names %s, which does not exist", n.Number)
		return c
	}
	c.Root, c.RootNumber = e.Root, ticket.Number(e.RootSeq)
	sender := canonical(t)
	switch {
	case sender == "":
		c.Reason = fmt.Sprintf("names %s (%s), but the sender is unclear: not joined", c.RootNumber, n.Via)
	case slices.Contains(e.Senders, sender):
		c.Joined, c.Reason = true, "the same sender"
	case e.Domain != "" && registrable(sender) == e.Domain:
		c.Joined, c.Reason = true, "an address at the account's domain "+e.Domain
	case e.Account != "" && t.Account != nil && t.Account.ID == e.Account && t.Checks.SenderIsAdmin.OK:
		c.Joined, c.Reason = true, "the account's admin"
	default:
		c.Reason = fmt.Sprintf("names %s (%s), a conversation of another sender: not joined", c.RootNumber, n.Via)
	}
	return c
}

// Start is the entry of ticket t at seq: in the conversation it joined
// (parent, the entry it named), or starting its own. accountDomains are
// the matched account's own domains: the sender's domain belongs to a
// conversation it starts only when it is one of them.
func Start(t *ticket.Ticket, seq uint64, parent *Entry, accountDomains ...string) Entry {
	sender := canonical(t)
	if parent != nil && t.Conversation != nil && t.Conversation.Joined {
		e := *parent
		e.Ticket, e.Seq = t.ID, seq
		e.Senders = with(e.Senders, sender)
		return e
	}
	e := Entry{Ticket: t.ID, Seq: seq, Root: t.ID, RootSeq: seq, Senders: with(nil, sender)}
	if t.Account != nil {
		e.Account = t.Account.ID
		if d := registrable(sender); d != "" && slices.ContainsFunc(accountDomains, func(a string) bool { return registrable("x@"+a) == d }) {
			e.Domain = d
		}
	}
	return e
}

// Sent is the entry of a mail the service sent to addr in the
// conversation of e (the ticket it answers): addr belongs to it now.
func Sent(e Entry, addr string) Entry {
	if c, err := address.CanonicalEmail(addr); err == nil {
		e.Senders = with(e.Senders, c)
	}
	return e
}

// with adds addr to list (a copy) unless it holds it or addr is empty,
// keeping the newest maxSenders.
func with(list []string, addr string) []string {
	if addr == "" || slices.Contains(list, addr) {
		return list
	}
	out := append(slices.Clone(list), addr)
	return out[max(0, len(out)-maxSenders):]
}

// canonical is t's sender in the form addresses are compared in; "" when
// the From header is unclear.
func canonical(t *ticket.Ticket) string {
	if t.From.Problem != "" || t.From.Address == "" {
		return ""
	}
	c, err := address.CanonicalEmail(t.From.Address)
	if err != nil {
		return ""
	}
	return c
}

// registrable is the registrable domain (eTLD+1) of a canonical
// address; "" when it has none.
func registrable(addr string) string {
	_, domain, ok := strings.Cut(addr, "@")
	if !ok {
		return ""
	}
	d, err := address.MappedDomain(domain)
	if err != nil {
		return ""
	}
	r, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return ""
	}
	return r
}
