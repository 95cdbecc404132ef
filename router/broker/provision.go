package broker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ticketrouter/ticketrouter/router/ticket"
	"github.com/ticketrouter/ticketrouter/rules"
	"github.com/ticketrouter/ticketrouter/rules/accounts"
)

// Queues lists the consumers Provision creates: one durable pull consumer
// per colour, named after it, on <prefix>.<colour>.>; one for rate-limited
// tickets of every colour, on <prefix>.rate-limited.>, so that a flood
// does not wait in a colour's queue before its real work; and one each for
// the ignored and dead-letter subjects. Agents of a colour share its
// consumer.
func Queues() []string {
	return append(slices.Clone(accounts.Colours), rules.ColourUnknown, ticket.RateLimited, rules.DispositionIgnored, rules.DispositionDeadletter)
}

// QueueSubject is the subject filter of queue q.
func QueueSubject(prefix, q string) string {
	switch q {
	case rules.DispositionIgnored, rules.DispositionDeadletter:
		return prefix + "." + q
	}
	return prefix + "." + q + ".>"
}

// JetStream is everything the service keeps in NATS.
type JetStream struct {
	JS     jetstream.JetStream
	Stream jetstream.Stream
	// Raw holds every raw mail, named by its ticket id, in the object
	// store RawBucket.
	Raw       jetstream.ObjectStore
	RawBucket string
	// Checkpoints holds the IMAP checkpoint of each mailbox.
	Checkpoints jetstream.KeyValue
	// Leases says which replica works which mailbox; entries expire.
	Leases jetstream.KeyValue
	// Replicas holds a heartbeat of each live replica; entries expire.
	Replicas jetstream.KeyValue
	// Published is the bucket in which versions before the raw mail held
	// the mark of its ticket (Publisher.Publish) marked ticket ids
	// published; nil where no such version ran. It is read, never
	// written, and empties itself after MaxAge.
	Published jetstream.KeyValue
	// Threads maps the Message-IDs of tickets and of the mail the service
	// sent to their conversations (router/thread).
	Threads jetstream.KeyValue
	// Answered holds, per sender, the last automatic answer sent, for the
	// policy's period.
	Answered jetstream.KeyValue
}

// Provision creates the stream, its consumers, the object store and the
// buckets, or brings existing ones to the configured settings. It is
// idempotent: every replica calls it on start. What already has the
// configured settings is only read, never written, so that replicas
// starting together do not race to change the same things.
func Provision(ctx context.Context, js jetstream.JetStream, cfg NATSConfig, prefix string, leaseTTL time.Duration) (*JetStream, error) {
	cfg = cfg.WithDefaults()
	out := &JetStream{JS: js}
	want := jetstream.StreamConfig{
		Name:        cfg.Stream,
		Description: "ticketrouter tickets",
		Subjects:    []string{prefix + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy, // acked tickets stay, for the record, until MaxAge
		Replicas:    cfg.Replicas,
		MaxAge:      cfg.MaxAge,
		Duplicates:  cfg.DuplicateWindow,
	}
	err := attempt(ctx, "stream "+cfg.Stream, func(ctx context.Context) error {
		s, err := js.Stream(ctx, cfg.Stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			// Create, not CreateOrUpdate (which updates first): a replica
			// racing us must not update the stream we just created while
			// we create its consumers (a data race in nats-server 2.15).
			out.Stream, err = js.CreateStream(ctx, want)
			if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				return err
			}
			s, err = js.Stream(ctx, cfg.Stream)
		}
		switch {
		case err != nil:
			return err
		case streamCurrent(s.CachedInfo().Config, want):
			out.Stream = s
			return nil
		}
		out.Stream, err = js.UpdateStream(ctx, want)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, q := range Queues() {
		want := jetstream.ConsumerConfig{
			Durable:       q,
			Description:   "tickets of the " + q + " queue",
			FilterSubject: QueueSubject(prefix, q),
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       cfg.AckWait,
			MaxAckPending: 10000,
			Replicas:      cfg.Replicas,
		}
		err := attempt(ctx, "consumer "+q, func(ctx context.Context) error {
			c, err := out.Stream.Consumer(ctx, q)
			switch {
			case err == nil && consumerCurrent(c.CachedInfo().Config, want):
				return nil
			case err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound):
				return err
			}
			_, err = out.Stream.CreateOrUpdateConsumer(ctx, want)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	bucket := cfg.Stream + "-raw"
	out.RawBucket = bucket
	err = attempt(ctx, "object store "+bucket, func(ctx context.Context) error {
		current, err := backingCurrent(ctx, js, "OBJ_"+bucket, cfg.Replicas, cfg.MaxAge)
		switch {
		case err != nil:
			return err
		case current:
			out.Raw, err = js.ObjectStore(ctx, bucket)
		default:
			out.Raw, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
				Bucket: bucket, Description: "raw mails, by ticket id",
				Storage: jetstream.FileStorage, Replicas: cfg.Replicas, TTL: cfg.MaxAge,
			})
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, b := range []struct {
		kv   *jetstream.KeyValue
		name string
		ttl  time.Duration
		desc string
	}{
		{&out.Checkpoints, "checkpoints", 0, "IMAP checkpoint per mailbox"},
		{&out.Leases, "leases", leaseTTL, "which replica works which mailbox"},
		{&out.Replicas, "replicas", leaseTTL, "live replicas"},
		{&out.Threads, "threads", cfg.MaxAge, "Message-IDs to their conversations"},
		{&out.Answered, "answered", cfg.MaxAge, "the last automatic answer to each sender"},
	} {
		bucket := cfg.Stream + "-" + b.name
		err := attempt(ctx, "bucket "+bucket, func(ctx context.Context) error {
			current, err := backingCurrent(ctx, js, "KV_"+bucket, cfg.Replicas, b.ttl)
			switch {
			case err != nil:
				return err
			case current:
				*b.kv, err = js.KeyValue(ctx, bucket)
			default:
				*b.kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
					Bucket: bucket, Description: b.desc,
					Storage: jetstream.FileStorage, Replicas: cfg.Replicas, TTL: b.ttl, History: 1,
				})
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	legacy := cfg.Stream + "-published"
	err = attempt(ctx, "bucket "+legacy, func(ctx context.Context) error {
		kv, err := js.KeyValue(ctx, legacy)
		switch {
		case errors.Is(err, jetstream.ErrBucketNotFound):
			return nil
		case err != nil:
			return err
		}
		out.Published = kv
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// attemptTimeout bounds one provisioning request. A healthy cluster
// answers within a second or two.
const attemptTimeout = 5 * time.Second

// attempt runs op with a short deadline and runs it again, until ctx
// ends, when it timed out or JetStream was unavailable: in a cluster,
// JetStream may never answer one of two identical creates sent at the
// same moment (nats-io/nats-server#3677), and the next attempt then finds
// the thing made. Other errors (a bad setting) return at once.
func attempt(ctx context.Context, what string, op func(context.Context) error) error {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		err := op(actx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || !transient(err) {
			return fmt.Errorf("provision %s: %w", what, err)
		}
		// Jitter, so that replicas that timed out together do not
		// send their identical requests together again.
		select {
		case <-ctx.Done():
			return fmt.Errorf("provision %s: %w", what, err)
		case <-time.After(wait + rand.N(time.Second)):
		}
	}
}

// transient reports whether a JetStream request may succeed if sent again.
func transient(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) ||
		errors.As(err, &apiErr) && apiErr.Code == 503
}

// streamCurrent reports whether the stream has the settings Provision
// gives it.
func streamCurrent(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) && have.Storage == want.Storage &&
		have.Retention == want.Retention && have.Replicas == want.Replicas &&
		have.MaxAge == want.MaxAge && have.Duplicates == want.Duplicates
}

// consumerCurrent reports whether a queue's consumer has the settings
// Provision gives it.
func consumerCurrent(have, want jetstream.ConsumerConfig) bool {
	return have.FilterSubject == want.FilterSubject && len(have.FilterSubjects) == 0 &&
		have.AckPolicy == want.AckPolicy && have.AckWait == want.AckWait &&
		have.MaxAckPending == want.MaxAckPending && have.Replicas == want.Replicas
}

// backingCurrent reports whether the stream behind a bucket exists with
// the replicas and age limit Provision gives it.
func backingCurrent(ctx context.Context, js jetstream.JetStream, stream string, replicas int, maxAge time.Duration) (bool, error) {
	s, err := js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	c := s.CachedInfo().Config
	return c.Replicas == replicas && c.MaxAge == maxAge, nil
}
