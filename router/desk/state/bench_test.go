package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/ticketrouter/ticketrouter/router/ticket"
)

// fill publishes n blue tickets straight to the stream (no raw mail), a
// thousand at a time in flight.
func (d *desk) fill(b *testing.B, n int) {
	b.Helper()
	ctx := context.Background()
	var acks []jetstream.PubAckFuture
	for i := range n {
		sum := sha256.Sum256(fmt.Appendf(nil, "bench %d", i))
		tk := ticket.Ticket{Version: ticket.Version, ID: hex.EncodeToString(sum[:]), MessageID: fmt.Sprintf("b%d@bench.example", i),
			From: ticket.From{Address: fmt.Sprintf("u%d@bench.example", i%500)}, Colour: "blue", Disposition: "verified",
			Queue: ticket.Subject(ticket.DefaultPrefix, "blue", "verified"), Account: &ticket.Account{ID: fmt.Sprintf("A%d", i%300)}}
		data, _ := json.Marshal(&tk)
		ack, err := d.js.JS.PublishAsync(tk.Queue, data, jetstream.WithMsgID(tk.ID))
		if err != nil {
			b.Fatal(err)
		}
		acks = append(acks, ack)
		if len(acks) == 1000 || i == n-1 {
			for _, a := range acks {
				select {
				case <-a.Ok():
				case err := <-a.Err():
					b.Fatal(err)
				case <-ctx.Done():
				}
			}
			acks = acks[:0]
		}
	}
}

// BenchmarkTakeNext takes tickets one after another from a queue of
// 100,000 (b.N must stay below it): each take is a fetch, a record, an
// acknowledgement and an audit event.
func BenchmarkTakeNext(b *testing.B) {
	d := startDesk(b)
	d.fill(b, 100_000)
	s := d.open("desk")
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if _, _, err := s.TakeNext(ctx, alice, "blue"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBoard counts the queues with 100,000 tickets waiting and 2,000
// records in the desk.
func BenchmarkBoard(b *testing.B) {
	d := startDesk(b)
	d.fill(b, 100_000)
	s := d.open("desk")
	ctx := context.Background()
	for range 2000 {
		if _, _, err := s.TakeNext(ctx, bob, "blue"); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		if _, err := s.Board(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
