package router

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/ticketrouter/ticketrouter/rules"
)

// Queues lists the consumers Provision creates: one durable pull consumer
// per colour, named after it, on <prefix>.<colour>.>, and one each for
// the ignored and dead-letter subjects. Agents of a colour share its
// consumer.
func Queues() []string {
	return append(slices.Clone(rules.Colours), rules.ColourUnknown, rules.DispositionIgnored, rules.DispositionDeadletter)
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
	// Raw holds every raw mail, named by its ticket id.
	Raw jetstream.ObjectStore
	// Checkpoints holds the IMAP checkpoint of each mailbox.
	Checkpoints jetstream.KeyValue
	// Leases says which replica works which mailbox; entries expire.
	Leases jetstream.KeyValue
	// Replicas holds a heartbeat of each live replica; entries expire.
	Replicas jetstream.KeyValue
	// Published marks ticket ids already published, for longer than the
	// stream's duplicate window.
	Published jetstream.KeyValue
}

// Provision creates the stream, its consumers, the object store and the
// buckets, or brings existing ones to the configured settings. It is
// idempotent: every replica calls it on start.
func Provision(ctx context.Context, js jetstream.JetStream, cfg NATSConfig, prefix string, leaseTTL time.Duration) (*JetStream, error) {
	cfg = cfg.WithDefaults()
	out := &JetStream{JS: js}
	var err error
	out.Stream, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        cfg.Stream,
		Description: "ticketrouter tickets",
		Subjects:    []string{prefix + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy, // acked tickets stay, for the record, until MaxAge
		Replicas:    cfg.Replicas,
		MaxAge:      cfg.MaxAge,
		Duplicates:  cfg.DuplicateWindow,
	})
	if err != nil {
		return nil, fmt.Errorf("provision stream %s: %w", cfg.Stream, err)
	}
	for _, q := range Queues() {
		_, err := js.CreateOrUpdateConsumer(ctx, cfg.Stream, jetstream.ConsumerConfig{
			Durable:       q,
			Description:   "tickets of the " + q + " queue",
			FilterSubject: QueueSubject(prefix, q),
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       5 * time.Minute,
			MaxAckPending: 10000,
			Replicas:      cfg.Replicas,
		})
		if err != nil {
			return nil, fmt.Errorf("provision consumer %s: %w", q, err)
		}
	}
	out.Raw, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: cfg.Stream + "-raw", Description: "raw mails, by ticket id",
		Storage: jetstream.FileStorage, Replicas: cfg.Replicas, TTL: cfg.MaxAge,
	})
	if err != nil {
		return nil, fmt.Errorf("provision object store: %w", err)
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
		{&out.Published, "published", cfg.MaxAge, "ticket ids already published"},
	} {
		*b.kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: cfg.Stream + "-" + b.name, Description: b.desc,
			Storage: jetstream.FileStorage, Replicas: cfg.Replicas, TTL: b.ttl, History: 1,
		})
		if err != nil {
			return nil, fmt.Errorf("provision bucket %s-%s: %w", cfg.Stream, b.name, err)
		}
	}
	return out, nil
}
