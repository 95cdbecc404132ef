package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/ticketrouter/ticketrouter/deploy/examples"
	"github.com/ticketrouter/ticketrouter/router"
	"github.com/ticketrouter/ticketrouter/router/broker"
	"github.com/ticketrouter/ticketrouter/router/config"
	"github.com/ticketrouter/ticketrouter/router/ticket"
	"github.com/ticketrouter/ticketrouter/rules/senderauth"
)

// templates routes the example mails of deploy/examples with the example
// accounts (sender authentication off, as with no DNS) and returns the
// tickets that land in an agent's colour queue, keyed by nothing: the
// benchmark's tickets are copies of these with their ids varied.
func templates(ctx context.Context, dir string) ([]ticket.Ticket, error) {
	acc, err := fs.ReadFile(examples.FS, "accounts.yaml")
	if err != nil {
		return nil, fmt.Errorf("example accounts: %w", err)
	}
	accPath := filepath.Join(dir, "accounts.yaml")
	if err := os.WriteFile(accPath, acc, 0o600); err != nil {
		return nil, fmt.Errorf("example accounts: %w", err)
	}
	p, err := router.NewPipeline(&config.Config{Accounts: accPath, SenderAuth: senderauth.Config{Mode: senderauth.ModeOff}})
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	names, err := fs.Glob(examples.FS, "mail/*.eml")
	if err != nil {
		return nil, fmt.Errorf("example mails: %w", err)
	}
	var out []ticket.Ticket
	for _, name := range names {
		raw, err := fs.ReadFile(examples.FS, name)
		if err != nil {
			return nil, fmt.Errorf("example mail %s: %w", name, err)
		}
		t, _, err := p.Read(ctx, strings.NewReader(string(raw)))
		if err != nil {
			return nil, fmt.Errorf("route %s: %w", path.Base(name), err)
		}
		if slices.Contains(colourQueues, queueOf(t)) {
			out = append(out, *t)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("route examples: no ticket for a colour queue")
	}
	return out, nil
}

// colourQueues are the queues the simulated agents work: the account
// colours and unknown.
var colourQueues = []string{"blue", "red", "pink", "dark-green", "green", "unknown"}

// queueOf is the queue (consumer) a ticket's subject falls in.
func queueOf(t *ticket.Ticket) string {
	rest, ok := strings.CutPrefix(t.Queue, ticket.DefaultPrefix+".")
	if !ok {
		return ""
	}
	q, _, _ := strings.Cut(rest, ".")
	return q
}

// variant is ticket i of the benchmark: template i mod len(tpl), with its
// own id and Message-ID, and its sender and account one of spread (so
// that, with a large spread, the search index holds the short lists of a
// real mailbox, and the ticket page few related tickets; with 0 the
// example mails' own few senders and accounts).
func variant(tpl []ticket.Ticket, i, spread int) ticket.Ticket {
	t := tpl[i%len(tpl)]
	sum := sha256.Sum256(fmt.Appendf(nil, "deskbench %d", i))
	t.ID = hex.EncodeToString(sum[:])
	t.MessageID = fmt.Sprintf("deskbench.%d@bench.example", i)
	if spread <= 0 {
		return t
	}
	if local, domain, ok := strings.Cut(t.From.Address, "@"); ok {
		t.From.Address = fmt.Sprintf("%s+%d@%s", local, i%spread, domain)
	}
	if t.Account != nil {
		a := *t.Account
		a.ID = fmt.Sprintf("%s-%d", a.ID, i%spread)
		t.Account = &a
	}
	return t
}

// publish publishes n tickets straight to the tickets stream, as the
// service would (the ticket id as the message id), a thousand in flight
// at a time. The raw mails are not stored: the load does not read them.
func publish(ctx context.Context, js *broker.JetStream, tpl []ticket.Ticket, n, spread int) error {
	var acks []jetstream.PubAckFuture
	wait := func() error {
		for _, a := range acks {
			select {
			case <-a.Ok():
			case err := <-a.Err():
				return fmt.Errorf("publish: %w", err)
			case <-ctx.Done():
				return fmt.Errorf("publish: %w", ctx.Err())
			}
		}
		acks = acks[:0]
		return nil
	}
	for i := range n {
		t := variant(tpl, i, spread)
		data, err := json.Marshal(&t)
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		a, err := js.JS.PublishAsync(t.Queue, data, jetstream.WithMsgID(t.ID))
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		acks = append(acks, a)
		if len(acks) == 1000 {
			if err := wait(); err != nil {
				return err
			}
		}
	}
	return wait()
}
