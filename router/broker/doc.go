// Package broker is ticketrouter's NATS side: connecting (with TLS and
// credentials), the embedded server, provisioning the stream, buckets and
// one consumer per queue, publishing tickets with their raw mail exactly
// once, the mailbox leases that share mailboxes among replicas, and the
// watchers' checkpoints.
package broker
