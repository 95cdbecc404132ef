// Package outbox sends ticketrouter's mail: acknowledgements, self-service
// answers and agents' replies. Callers Enqueue a Mail; Run, on any number
// of replicas, submits each to the SMTP server once.
//
// Everything lives in JetStream, beside the service's tickets: the stream
// OUTBOX (subjects outbox.<ticket>.<id>, one message a mail), its durable
// consumer "outbox" that the replicas' Run loops share, and the bucket
// OUTBOX-status (key: the mail's id) holding where each mail stands:
// queued, sending, sent, failed or bounced.
//
// # Exactly once, and the window that remains
//
// A mail is identified by its caller-given id. Enqueue stores it with the
// id as the JetStream message id (a second copy within the duplicate
// window is dropped) and creates its status; an id that has a status is
// never enqueued again, however late it comes, for as long as statuses are
// kept (Options.MaxAge). Run claims a mail by writing its status
// "sending" with compare-and-set before it talks to the server, so two
// replicas, or two copies of one mail, never send it at once; it writes
// "sent" as soon as the server has accepted the data, and acknowledges
// the message only after that. A mail whose status is sent, failed or
// bounced is acknowledged and skipped.
//
// What remains: when the process dies (or loses NATS for longer than the
// status write is retried, 30 s) after the server accepted the mail and
// before the sent status is written, the status still says "sending", the
// message is handed out again after the ack wait, and the mail is sent a
// second time, with the same Message-ID, Date and bytes, which lets the
// recipient's software (and a reader) see it is the same mail. The window
// is the time between the server's answer to the data and one key-value
// write: a few milliseconds. The same holds when the connection breaks
// after the data was sent and before the server's answer was read: the
// outbox cannot know whether the server took the mail, and sends it again.
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/ticketrouter/ticketrouter/router/broker"
	"github.com/ticketrouter/ticketrouter/router/config"
)

// ErrNotFound: no mail has that id.
var ErrNotFound = errors.New("no such outgoing mail")

// State is where an outgoing mail stands.
type State string

// States of an outgoing mail. Sent, failed and bounced are final.
const (
	StateQueued  State = "queued"  // waiting for its first or next try
	StateSending State = "sending" // a replica is submitting it (since LastAttempt)
	StateSent    State = "sent"    // the server accepted it
	StateFailed  State = "failed"  // refused for good, or still failing after the retry age
	StateBounced State = "bounced" // accepted, then a bounce of it came back
)

// Final reports whether nothing more will be done with the mail.
func (s State) Final() bool { return s == StateSent || s == StateFailed || s == StateBounced }

// Status is the record of one outgoing mail in the status bucket.
type Status struct {
	ID        string `json:"id"`
	Ticket    string `json:"ticket"`
	Kind      Kind   `json:"kind"`
	MessageID string `json:"message_id"` // without angle brackets
	State     State  `json:"state"`
	// Enqueued is when the mail was first enqueued (its Date header).
	Enqueued time.Time `json:"enqueued"`
	// Attempts counts the submissions begun; LastAttempt is the last
	// one's start, and LastError its error when it failed.
	Attempts    int       `json:"attempts"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	// Sent is when the server accepted it.
	Sent time.Time `json:"sent,omitzero"`
	// Reason says why it failed or bounced; Done is when.
	Reason string    `json:"reason,omitempty"`
	Done   time.Time `json:"done,omitzero"`
}

// envelope is a mail as the stream holds it.
type envelope struct {
	Mail     Mail      `json:"mail"`
	Enqueued time.Time `json:"enqueued"`
}

// Options are the outbox's settings. From is required; the rest have
// defaults (OptionsFrom derives them from the configuration).
type Options struct {
	// From is the sender, e.g. "Support <support@ca.test>" (smtp.from):
	// the From header, the envelope sender, and its domain the
	// Message-IDs' right-hand side.
	From string
	// Name names the stream (OUTBOX), the consumer (its lower case) and
	// the status bucket (<Name>-status).
	Name string
	// Subject heads the stream's subjects; "outbox".
	Subject string
	// Replicas of the stream, the consumer and the bucket; 1.
	Replicas int
	// MaxAge is how long mails and their statuses are kept; 90 days. An id
	// enqueued again after its status expired is sent again.
	MaxAge time.Duration
	// DuplicateWindow is the stream's; 2h.
	DuplicateWindow time.Duration
	// RetryMaxAge: a mail still failing transiently this long after it was
	// enqueued is recorded as failed; 48h.
	RetryMaxAge time.Duration
	// BackoffMin and BackoffMax bound the delay before the next try after
	// a transient failure, doubling from the first to the second; 1s, 5m.
	BackoffMin, BackoffMax time.Duration
	// SendTimeout bounds one submission, connection and all; 5m.
	SendTimeout time.Duration
	// AckWait is how long a mail handed to a replica stays its own before
	// it is handed out again (and a "sending" claim counts as abandoned);
	// SendTimeout plus a minute. Keep it above SendTimeout + 30s.
	AckWait time.Duration
	// Now is the clock; time.Now.
	Now func() time.Time
	// Log hears every sent, retried and failed mail (ids, never text or
	// addresses).
	Log zerolog.Logger
}

// OptionsFrom returns the options of the configuration's smtp and nats
// sections.
func OptionsFrom(s config.SMTP, n config.NATS) Options {
	s, n = s.WithDefaults(), n.WithDefaults()
	return Options{
		From: s.From, Replicas: n.Replicas, MaxAge: n.MaxAge, DuplicateWindow: n.DuplicateWindow,
		RetryMaxAge: s.RetryMaxAge, BackoffMax: s.RetryBackoffMax, SendTimeout: 5 * s.Timeout,
	}
}

func (o Options) withDefaults() Options {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if o.Name == "" {
		o.Name = "OUTBOX"
	}
	if o.Subject == "" {
		o.Subject = "outbox"
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	def(&o.MaxAge, 90*24*time.Hour)
	def(&o.DuplicateWindow, 2*time.Hour)
	def(&o.RetryMaxAge, 48*time.Hour)
	def(&o.BackoffMin, time.Second)
	def(&o.BackoffMax, 5*time.Minute)
	def(&o.SendTimeout, 5*time.Minute)
	def(&o.AckWait, o.SendTimeout+time.Minute)
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Outbox is the outgoing mail on one JetStream. It is safe for concurrent
// use.
type Outbox struct {
	opts     Options
	from     *mail.Address
	domain   string
	js       jetstream.JetStream
	stream   jetstream.Stream
	consumer jetstream.Consumer
	status   jetstream.KeyValue

	// afterSend, when set (by tests), runs after a submission returned and
	// before its status is written; false makes the handler stop there,
	// as if the process died.
	afterSend func(id string, err error) bool
}

// requestTimeout bounds one JetStream request.
const requestTimeout = 5 * time.Second

// Open provisions the outbox's stream, consumer and status bucket on js
// (creating them or bringing them to opts' settings; idempotent, every
// replica calls it) and returns the Outbox.
func Open(ctx context.Context, js *broker.JetStream, opts Options) (*Outbox, error) {
	opts = opts.withDefaults()
	from, err := config.SMTP{From: opts.From}.FromAddress()
	if err != nil {
		return nil, fmt.Errorf("open outbox: from: %w", err)
	}
	o := &Outbox{opts: opts, from: &mail.Address{Name: from.Name, Address: from.Address}, js: js.JS}
	_, o.domain, _ = strings.Cut(from.Address, "@")
	o.domain = strings.ToLower(o.domain)

	kvc := jetstream.KeyValueConfig{
		Bucket: opts.Name + "-status", Description: "where each outgoing mail stands", History: 1,
		TTL: opts.MaxAge, Storage: jetstream.FileStorage, Replicas: opts.Replicas,
	}
	err = retry(ctx, func(ctx context.Context) error {
		bs, err := o.js.Stream(ctx, "KV_"+kvc.Bucket)
		switch {
		case err == nil && bs.CachedInfo().Config.Replicas == kvc.Replicas && bs.CachedInfo().Config.MaxAge == kvc.TTL:
			o.status, err = o.js.KeyValue(ctx, kvc.Bucket)
		case err == nil || errors.Is(err, jetstream.ErrStreamNotFound):
			o.status, err = o.js.CreateOrUpdateKeyValue(ctx, kvc)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("provision outbox bucket %s: %w", kvc.Bucket, err)
	}
	sc := jetstream.StreamConfig{
		Name: opts.Name, Description: "ticketrouter's outgoing mail", Subjects: []string{opts.Subject + ".>"},
		Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy, Replicas: opts.Replicas,
		MaxAge: opts.MaxAge, Duplicates: opts.DuplicateWindow,
	}
	err = retry(ctx, func(ctx context.Context) error {
		s, err := o.js.Stream(ctx, sc.Name)
		switch {
		case err == nil:
			h := s.CachedInfo().Config
			if !slices.Equal(h.Subjects, sc.Subjects) || h.Replicas != sc.Replicas || h.MaxAge != sc.MaxAge || h.Duplicates != sc.Duplicates {
				s, err = o.js.UpdateStream(ctx, sc)
			}
		case errors.Is(err, jetstream.ErrStreamNotFound):
			s, err = o.js.CreateStream(ctx, sc)
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				s, err = o.js.Stream(ctx, sc.Name)
			}
		}
		o.stream = s
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("provision outbox stream %s: %w", sc.Name, err)
	}
	cc := jetstream.ConsumerConfig{
		Durable: strings.ToLower(opts.Name), Description: "the replicas' delivery loops",
		FilterSubject: opts.Subject + ".>", AckPolicy: jetstream.AckExplicitPolicy, AckWait: opts.AckWait,
		MaxDeliver: -1, MaxAckPending: 1000, Replicas: opts.Replicas,
	}
	err = retry(ctx, func(ctx context.Context) error {
		c, err := o.stream.Consumer(ctx, cc.Durable)
		if err == nil {
			h := c.CachedInfo().Config
			if h.FilterSubject == cc.FilterSubject && h.AckWait == cc.AckWait && h.Replicas == cc.Replicas && h.AckPolicy == cc.AckPolicy {
				o.consumer = c
				return nil
			}
		} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return err
		}
		o.consumer, err = o.stream.CreateOrUpdateConsumer(ctx, cc)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("provision outbox consumer %s: %w", cc.Durable, err)
	}
	return o, nil
}

// retry runs op, with a deadline of requestTimeout, until it succeeds,
// fails for good, or ctx ends: in a cluster JetStream may not answer one
// of two identical creates sent at once by replicas starting together.
func retry(ctx context.Context, op func(context.Context) error) error {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		err := op(rctx)
		cancel()
		if err == nil || !transientNATS(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// transientNATS reports whether a JetStream request may succeed if sent
// again.
func transientNATS(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrDisconnected) ||
		errors.As(err, &apiErr) && apiErr.Code == 503
}

// Domain returns the sender's domain, the right-hand side of our
// Message-IDs (for ParseMessageID).
func (o *Outbox) Domain() string { return o.domain }

// subject is the stream subject of a mail.
func (o *Outbox) subject(ticket, id string) string {
	return o.opts.Subject + "." + ticket + "." + id
}

// Enqueue stores m to be sent, once. It returns nil, and stores nothing,
// for an id already enqueued, however long ago (as long as its status is
// kept), so callers may enqueue again whenever they are unsure. A mail
// the outbox refuses (Validate) is an error wrapping ErrInvalid.
func (o *Outbox) Enqueue(ctx context.Context, m Mail) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("enqueue %s: %w", m.ID, err)
	}
	if _, err := o.status.Get(ctx, m.ID); err == nil {
		return nil
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("enqueue %s: %w", m.ID, err)
	}
	// The Date header shows it to the second; the conversation orders by
	// the full time.
	env := envelope{Mail: m, Enqueued: o.opts.Now().UTC()}
	data, err := json.Marshal(env)
	if err != nil {
		return fmt.Errorf("enqueue %s: %w", m.ID, err)
	}
	// The message first: a crash before the status leaves a mail that Run
	// still sends (it creates the status), never a status without a mail.
	if _, err := o.js.Publish(ctx, o.subject(m.Ticket, m.ID), data, jetstream.WithMsgID(m.ID)); err != nil {
		return fmt.Errorf("enqueue %s: %w", m.ID, err)
	}
	if _, err := o.createStatus(ctx, env); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("enqueue %s: %w", m.ID, err)
	}
	return nil
}

// createStatus creates the queued status of a mail, returning its revision.
func (o *Outbox) createStatus(ctx context.Context, env envelope) (uint64, error) {
	st := o.newStatus(env)
	data, _ := json.Marshal(st)
	return o.status.Create(ctx, env.Mail.ID, data)
}

func (o *Outbox) newStatus(env envelope) Status {
	return Status{
		ID: env.Mail.ID, Ticket: env.Mail.Ticket, Kind: env.Mail.Kind, MessageID: MessageID(env.Mail.ID, o.domain),
		State: StateQueued, Enqueued: env.Enqueued,
	}
}

// Status returns the status of the mail id; ErrNotFound when there is none.
func (o *Outbox) Status(ctx context.Context, id string) (Status, error) {
	st, _, err := o.getStatus(ctx, id)
	return st, err
}

func (o *Outbox) getStatus(ctx context.Context, id string) (Status, uint64, error) {
	if !ValidID(id) {
		return Status{}, 0, fmt.Errorf("outbox status %q: %w", id, ErrNotFound)
	}
	e, err := o.status.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Status{}, 0, fmt.Errorf("outbox status %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Status{}, 0, fmt.Errorf("outbox status %s: %w", id, err)
	}
	var st Status
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return Status{}, 0, fmt.Errorf("outbox status %s: %w", id, err)
	}
	return st, e.Revision(), nil
}

// Statuses returns the statuses of a ticket's mails, by id. It asks the
// stream which subjects of the ticket hold mail (one request), then reads
// each status.
func (o *Outbox) Statuses(ctx context.Context, ticket string) ([]Status, error) {
	if ticket == "" || !validToken.MatchString(ticket) || strings.Contains(ticket, ".") {
		return nil, nil
	}
	prefix := o.subject(ticket, "")
	info, err := o.stream.Info(ctx, jetstream.WithSubjectFilter(prefix+">"))
	if err != nil {
		return nil, fmt.Errorf("outbox statuses of %s: %w", ticket, err)
	}
	ids := make([]string, 0, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		ids = append(ids, strings.TrimPrefix(subj, prefix))
	}
	slices.Sort(ids)
	out := make([]Status, 0, len(ids))
	for _, id := range ids {
		st, err := o.Status(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue // enqueued this instant, or its status expired
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Mail returns the mail id as it was enqueued (for showing a conversation).
func (o *Outbox) Mail(ctx context.Context, id string) (Mail, error) {
	st, err := o.Status(ctx, id)
	if err != nil {
		return Mail{}, err
	}
	raw, err := o.stream.GetLastMsgForSubject(ctx, o.subject(st.Ticket, id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Mail{}, fmt.Errorf("outbox mail %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Mail{}, fmt.Errorf("outbox mail %s: %w", id, err)
	}
	var env envelope
	if err := json.Unmarshal(raw.Data, &env); err != nil {
		return Mail{}, fmt.Errorf("outbox mail %s: %w", id, err)
	}
	return env.Mail, nil
}

// MarkBounced records that a bounce of the mail id came back: its status
// becomes bounced with the reason, whatever it was (a bounce may even
// overtake the sent status in the window described above). Marking a
// bounced mail again changes nothing. ErrNotFound for an unknown id.
func (o *Outbox) MarkBounced(ctx context.Context, id, reason string) error {
	for range 20 {
		st, rev, err := o.getStatus(ctx, id)
		if err != nil {
			return fmt.Errorf("mark bounced: %w", err)
		}
		if st.State == StateBounced {
			return nil
		}
		st.State, st.Reason, st.Done = StateBounced, reason, o.opts.Now().UTC()
		data, _ := json.Marshal(st)
		_, err = o.status.Update(ctx, id, data, rev)
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("mark bounced %s: %w", id, err)
		}
	}
	return fmt.Errorf("mark bounced %s: the status kept changing", id)
}

// fromAddress is the sender's bare address, for the envelope.
func (o *Outbox) fromAddress() string { return o.from.Address }

// parseTo returns the recipient's bare address, for the envelope.
func parseTo(to string) string {
	a, err := recipient(to)
	if err != nil {
		return ""
	}
	return a.Address
}
