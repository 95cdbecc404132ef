// Package natstest starts NATS for tests: an embedded nats-server with
// JetStream on a free loopback port, its store in a throw-away directory,
// and connections to it provisioned as a replica provisions them. The
// broker package's own tests cannot use it (it imports broker).
package natstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/ticketrouter/ticketrouter/router/broker"
	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// Start starts the server, shut down when the test ends.
func Start(t testing.TB) *broker.Embedded {
	t.Helper()
	s, err := broker.StartEmbedded(broker.EmbeddedConfig{
		StoreDir: t.TempDir(), Host: "127.0.0.1", Port: -1, MaxStore: 256 << 20, MaxMemory: 16 << 20,
	}, zerolog.Nop())
	if err != nil {
		t.Fatalf("natstest: start: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// Connect makes a new connection to s named name, closed when the test
// ends, as another replica would, and provisions the service's stream,
// consumers and buckets on it: default settings, the default subject
// prefix.
func Connect(t testing.TB, s *broker.Embedded, name string) *broker.JetStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := broker.Connect(ctx, broker.NATSConfig{}, s, name, zerolog.Nop())
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	out, err := broker.Provision(ctx, js, broker.NATSConfig{}, ticket.DefaultPrefix, 10*time.Second)
	if err != nil {
		t.Fatalf("natstest: provision: %v", err)
	}
	return out
}
