package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Agent is an agent tool's connection to the service's JetStream: it reads
// the state of the queues, claims tickets and finishes them. A claim is
// named by its ID, so that one process may claim a ticket and another
// finish it.
type Agent struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	url    string // redacted
	from   string
	stream string
	prefix string
}

// ConnectAgent connects to t, for the service's stream and subject prefix;
// name shows in the server's list of connections. It does not reconnect:
// an agent tool runs for one command.
func ConnectAgent(ctx context.Context, t Target, stream, prefix, name string) (*Agent, error) {
	auth := t.Auth
	if auth.Password == nil {
		auth.User = "" // a password given as a value: in t.options
	}
	opts, err := authOptions(ctx, auth)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.From, err)
	}
	opts = append(append([]nats.Option{nats.Name(name)}, opts...), t.options()...)
	nc, err := nats.Connect(t.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s (from %s): %w", RedactURL(t.URL), t.From, redactError(err, t.URL))
	}
	var js jetstream.JetStream
	switch {
	case t.JSDomain != "":
		js, err = jetstream.NewWithDomain(nc, t.JSDomain)
	case t.JSAPIPrefix != "":
		js, err = jetstream.NewWithAPIPrefix(nc, t.JSAPIPrefix)
	default:
		js, err = jetstream.New(nc)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("JetStream: %w", err)
	}
	return &Agent{nc: nc, js: js, url: RedactURL(nc.ConnectedUrl()), from: t.From, stream: stream, prefix: prefix}, nil
}

// Close ends the connection.
func (a *Agent) Close() { a.nc.Close() }

// URL is the server connected to, credentials redacted.
func (a *Agent) URL() string { return a.url }

// From says where the server's address came from (Target.From).
func (a *Agent) From() string { return a.from }

// Stream is the name of the tickets' stream.
func (a *Agent) Stream() string { return a.stream }

// Prefix is the tickets' subject prefix.
func (a *Agent) Prefix() string { return a.prefix }

// streamError explains a missing stream or consumer.
func (a *Agent) streamError(err error, stream, what string) error {
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("stream %s not found at %s: 'ticketrouter run' creates it (or pass the service's --config): %w", stream, a.url, err)
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		return fmt.Errorf("consumer %s not found in stream %s at %s: 'ticketrouter run' creates it: %w", what, stream, a.url, err)
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, nats.ErrJetStreamNotEnabled):
		return fmt.Errorf("JetStream is not enabled at %s: %w", a.url, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// QueueStatus is the state of one queue.
type QueueStatus struct {
	Queue   string `json:"queue"`
	Subject string `json:"subject"` // the consumer's filter
	// Waiting have not been delivered yet (consumer NumPending).
	Waiting uint64 `json:"waiting"`
	// Claimed were delivered and are not acknowledged yet (NumAckPending):
	// being worked, or put back (nak, ack wait expired) and due again.
	Claimed uint64 `json:"claimed"`
	Pending uint64 `json:"pending"` // waiting + claimed
	// OldestWaiting is the next ticket never delivered; OldestClaimed the
	// oldest one delivered and not acknowledged. Nil when there is none.
	OldestWaiting *OldestTicket `json:"oldest_waiting"`
	OldestClaimed *OldestTicket `json:"oldest_claimed"`
	// Error is what kept the queue from being read (its consumer is
	// missing); the other queues may still be read.
	Error string `json:"error,omitempty"`
}

// OldestTicket locates a ticket in the stream and says how long it has
// been there.
type OldestTicket struct {
	StreamSeq  uint64    `json:"stream_seq"`
	Subject    string    `json:"subject"`
	TicketID   string    `json:"ticket_id,omitempty"` // the Nats-Msg-Id it was published with
	Published  time.Time `json:"published"`
	AgeSeconds float64   `json:"age_seconds"`
}

// Status reads queue q's consumer and finds its oldest tickets. What keeps
// this one queue from being read is in the status's Error; an error is
// returned when the stream cannot be read at all.
//
// How the oldest tickets are found: the consumer info gives Delivered.Stream,
// the stream sequence of the last ticket delivered, and AckFloor.Stream, the
// sequence below which every ticket of this consumer is acknowledged (the
// server moves the floor to just below the first unacknowledged one). The
// stream's message-get API with next_by_subj (jetstream Stream.GetMsg with
// WithGetMsgSubject) returns the first message at or after a sequence on a
// subject filter, wildcards allowed. So:
//   - oldest waiting = first message on the filter after Delivered.Stream:
//     exactly the next new ticket the consumer will deliver;
//   - oldest claimed = first message on the filter after AckFloor.Stream:
//     the oldest delivered and unacknowledged ticket (tickets put back with
//     a nak are delivered again before new ones, and are counted here).
//
// Its age is the time since the server stored it (publish time). This is
// read-only: unlike fetching, it claims nothing and leaves the consumer as
// it is; it costs a stream and a consumer info and at most two message
// gets.
func (a *Agent) Status(ctx context.Context, q string) (QueueStatus, error) {
	stream, err := a.js.Stream(ctx, a.stream)
	if err != nil {
		return QueueStatus{}, a.streamError(err, a.stream, "stream "+a.stream)
	}
	st := QueueStatus{Queue: q, Subject: QueueSubject(a.prefix, q)}
	cons, err := stream.Consumer(ctx, q)
	if err != nil {
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			st.Error = "consumer not found ('ticketrouter run' creates it)"
		} else {
			st.Error = err.Error()
		}
		return st, nil
	}
	info := cons.CachedInfo()
	if f := info.Config.FilterSubject; f != "" {
		st.Subject = f
	}
	st.Waiting = info.NumPending
	if info.NumAckPending > 0 {
		st.Claimed = uint64(info.NumAckPending)
	}
	st.Pending = st.Waiting + st.Claimed
	now := time.Now()
	if st.Waiting > 0 {
		st.OldestWaiting, err = oldestFrom(ctx, stream, info.Delivered.Stream+1, st.Subject, now)
	}
	if err == nil && st.Claimed > 0 {
		st.OldestClaimed, err = oldestFrom(ctx, stream, info.AckFloor.Stream+1, st.Subject, now)
	}
	if err != nil {
		st.Error = "oldest ticket: " + err.Error()
	}
	return st, nil
}

// oldestFrom returns the first message at or after seq on subject filter, or
// nil when there is none (the stream's limits may have removed it).
func oldestFrom(ctx context.Context, stream jetstream.Stream, seq uint64, filter string, now time.Time) (*OldestTicket, error) {
	m, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	o := &OldestTicket{StreamSeq: m.Sequence, Subject: m.Subject, Published: m.Time.UTC(), AgeSeconds: now.Sub(m.Time).Seconds()}
	if o.AgeSeconds < 0 {
		o.AgeSeconds = 0
	}
	if m.Header != nil {
		o.TicketID = m.Header.Get(jetstream.MsgIDHeader)
	}
	return o, nil
}

// ErrNoTicket is Next's error when no ticket came within the wait.
var ErrNoTicket = errors.New("no ticket waiting")

// Claim is a ticket claimed from a queue: it is the agent's until Expires,
// unless finished (Ack, Nak, Term) or extended (InProgress) by its ID.
type Claim struct {
	// ID names the claim in Ack, Nak, Term and InProgress, from any
	// process: the JetStream acknowledgement subject without its
	// "$JS.ACK." prefix (stream, consumer, delivery count, stream and
	// consumer sequence, timestamp, pending count).
	ID      string `json:"id"`
	Queue   string `json:"queue"`
	Subject string `json:"subject"`
	// StreamSeq is the ticket's sequence in the stream.
	StreamSeq uint64 `json:"stream_seq"`
	// Delivery counts deliveries of this ticket: more than 1 when it was
	// claimed before and not finished.
	Delivery uint64 `json:"delivery"`
	// Waiting counts the tickets still waiting in the queue.
	Waiting   uint64    `json:"waiting"`
	Published time.Time `json:"published"`
	// Expires is when the queue hands the ticket out again, unless it is
	// finished or extended before.
	Expires time.Time `json:"expires"`
	// AckWait is the queue's ack wait: how long a claim lasts.
	AckWait time.Duration `json:"-"`
	// Data is the message as published: the ticket's JSON.
	Data []byte `json:"-"`
}

// Next claims the next ticket of queue q, waiting up to wait for one to
// come; ErrNoTicket when none does.
func (a *Agent) Next(ctx context.Context, q string, wait time.Duration) (*Claim, error) {
	cons, err := a.js.Consumer(ctx, a.stream, q)
	if err != nil {
		return nil, a.streamError(err, a.stream, q)
	}
	fctx, cancel := context.WithTimeout(ctx, wait)
	msg, err := cons.Next(jetstream.FetchContext(fctx))
	cancel()
	if err != nil {
		if ctx.Err() == nil && (errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, context.DeadlineExceeded)) {
			return nil, fmt.Errorf("%s: %w", q, ErrNoTicket)
		}
		return nil, fmt.Errorf("claim a ticket from %s: %w", q, err)
	}
	meta, err := msg.Metadata()
	if err != nil {
		return nil, fmt.Errorf("claim a ticket from %s: %w", q, err)
	}
	ackWait := cons.CachedInfo().Config.AckWait
	return &Claim{
		ID: strings.TrimPrefix(msg.Reply(), ackPrefix), Queue: q, Subject: msg.Subject(),
		StreamSeq: meta.Sequence.Stream, Delivery: meta.NumDelivered, Waiting: meta.NumPending,
		Published: meta.Timestamp.UTC(), Expires: time.Now().Add(ackWait).UTC().Truncate(time.Millisecond),
		AckWait: ackWait, Data: msg.Data(),
	}, nil
}

// ackPrefix heads every JetStream acknowledgement subject.
const ackPrefix = "$JS.ACK."

// ClaimRef is what a claim ID says: the queue's stream and consumer, and
// the ticket's place in them.
type ClaimRef struct {
	Stream, Consumer string
	Delivery         uint64 // the delivery count when claimed
	StreamSeq        uint64
	ConsumerSeq      uint64
	subject          string // to acknowledge on
}

// ParseClaimID reads a claim ID (Claim.ID, or the whole acknowledgement
// subject).
func ParseClaimID(id string) (ClaimRef, error) {
	tokens := strings.Split(strings.TrimPrefix(id, ackPrefix), ".")
	bad := func(why string) (ClaimRef, error) {
		return ClaimRef{}, fmt.Errorf("claim ID %q: %s: want what 'queue next' printed", id, why)
	}
	switch {
	case len(tokens) == 7: // stream, consumer, delivered, stream seq, consumer seq, timestamp, pending
	case len(tokens) >= 9: // domain and account hash first, maybe a random token last
		tokens = tokens[2:9]
	default:
		return bad("not a claim ID")
	}
	for _, tok := range tokens {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n") {
			return bad("not a claim ID")
		}
	}
	n := make([]uint64, 5)
	for i, tok := range tokens[2:] {
		v, err := strconv.ParseUint(tok, 10, 64)
		if err != nil {
			return bad("not a claim ID")
		}
		n[i] = v
	}
	if n[0] == 0 || n[1] == 0 || n[2] == 0 {
		return bad("not a claim ID")
	}
	subject := id
	if !strings.HasPrefix(id, ackPrefix) {
		subject = ackPrefix + id
	}
	return ClaimRef{Stream: tokens[0], Consumer: tokens[1], Delivery: n[0], StreamSeq: n[1], ConsumerSeq: n[2], subject: subject}, nil
}

// ErrClaimFinished is the error of finishing or extending a claim whose
// ticket is acknowledged or terminated already.
var ErrClaimFinished = errors.New("the ticket is finished already (acknowledged or terminated)")

// Ack acknowledges the ticket of claim id: done, the queue never delivers
// it again. It returns once the server confirmed.
func (a *Agent) Ack(ctx context.Context, id string) error {
	_, err := a.answer(ctx, id, "acknowledge", "+ACK")
	return err
}

// Nak puts the ticket of claim id back: the queue delivers it again, to
// this agent or another, before newer tickets.
func (a *Agent) Nak(ctx context.Context, id string) error {
	_, err := a.answer(ctx, id, "put back", "-NAK")
	return err
}

// Term terminates the ticket of claim id: the queue never delivers it
// again; it stays in the stream for the record.
func (a *Agent) Term(ctx context.Context, id string) error {
	_, err := a.answer(ctx, id, "terminate", "+TERM")
	return err
}

// InProgress extends claim id: its ack wait starts again now. It returns
// the claim's new expiry.
func (a *Agent) InProgress(ctx context.Context, id string) (time.Time, error) {
	ackWait, err := a.answer(ctx, id, "extend", "+WPI")
	if err != nil {
		return time.Time{}, err
	}
	return time.Now().Add(ackWait).UTC().Truncate(time.Millisecond), nil
}

// answerTimeout bounds the wait for the server's confirmation.
const answerTimeout = 5 * time.Second

// answer sends body (an acknowledgement of JetStream's protocol) for claim
// id and waits for the server's confirmation; it returns the queue's ack
// wait. A ticket already finished, or never delivered, is refused first.
// The server cannot say whether the claim's ack wait ran out and the
// ticket went to another agent: the answer then acts on that agent's
// claim.
func (a *Agent) answer(ctx context.Context, id, verb, body string) (time.Duration, error) {
	ref, err := ParseClaimID(id)
	if err != nil {
		return 0, err
	}
	cons, err := a.js.Consumer(ctx, ref.Stream, ref.Consumer)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", verb, a.streamError(err, ref.Stream, ref.Consumer))
	}
	info := cons.CachedInfo()
	switch {
	case ref.StreamSeq <= info.AckFloor.Stream:
		return 0, fmt.Errorf("%s ticket %d of %s: %w", verb, ref.StreamSeq, ref.Consumer, ErrClaimFinished)
	case ref.StreamSeq > info.Delivered.Stream || ref.ConsumerSeq > info.Delivered.Consumer:
		return 0, fmt.Errorf("%s: claim ID %q: %s never delivered that ticket", verb, id, ref.Consumer)
	}
	rctx, cancel := context.WithTimeout(ctx, answerTimeout)
	defer cancel()
	if _, err := a.nc.RequestWithContext(rctx, ref.subject, []byte(body)); err != nil {
		return 0, fmt.Errorf("%s ticket %d of %s: %w", verb, ref.StreamSeq, ref.Consumer, err)
	}
	return info.Config.AckWait, nil
}
